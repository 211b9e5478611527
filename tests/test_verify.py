"""The verify step: vm/verify_probe.py, exactly as scripts/verify sends it to the test VM, run here against the
provider's real nginx on loopback, behind a loopback Private Link (tests/helpers/private_link.py), with a stub resolver.

Each wrong answer fails with its own message: the DNS answer, the NAT address instead of the client's, a
missing or foreign LinkID, an untrusted certificate. scripts/verify's wrapper (operations/verify.py) runs end to end
with `pulumi` and `az` stand-ins that answer as the real CLIs do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline.records import Simulation
from operations import verify
from tests.helpers.certificates import install_like_key_vault_extension, make_ca
from tests.helpers.private_link import ENDPOINT_IP, NAT_IP, private_endpoint
from tests.helpers.real_nginx import LINK_ID, RunningNginx, running, with_vm_python
from tests.helpers.stacks import PROVIDER_STACK, run_stack, world_with_provider
from vm import verify_probe

RECORD, ZONE = "api", "saas.example.com"
FQDN = f"{RECORD}.{ZONE}"


@pytest.fixture(scope="module")
def consumer() -> Simulation:
    return run_stack(
        "consumer", world=world_with_provider(), dnsZone=ZONE, dnsRecord=RECORD, proxyProtocol=True, https=False
    )


def _stub(bin_dir: Path, name: str, body: str) -> None:
    """An executable `name` in bin_dir: a Python program standing in for a system or cloud CLI."""
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)


def _resolver_answering(bin_dir: Path, *addresses: str) -> None:
    """getent as glibc prints `ahostsv4` answers: what the VNet's resolver (the private DNS zone) says."""
    lines = "".join(f"{a}       STREAM {FQDN}\\n{a}       DGRAM  \\n" for a in addresses)
    _stub(
        bin_dir,
        "getent",
        f"import sys\nsys.stdout.write({lines!r} if sys.argv[1:] == ['ahostsv4', {FQDN!r}] else '')\n",
    )


def _expected(consumer: Simulation, port: int, scheme: str = "http", link_id: str = str(LINK_ID)) -> Any:
    """What the consumer stack tells scripts/verify, moved onto loopback: the endpoint and the test VM are here."""
    exported = consumer.outputs["verify"]
    assert exported["url"] == f"http://{FQDN}/_pls/whoami.json"
    return verify.expectations(exported, link_id)._replace(
        url=f"{scheme}://{FQDN}:{port}/_pls/whoami.json", endpoint_ip=ENDPOINT_IP, client_ip="127.0.0.1"
    )


def _probe(expected: Any, bin_dir: Path, **env: str) -> tuple[int, list[str]]:
    """The Run Command script scripts/verify sends, run by bash as the VM would, with the stub resolver first."""
    script = verify.run_command_script(expected)
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
    )
    assert result.stderr == "", result.stderr
    return result.returncode, result.stdout.splitlines()


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-verify"), proxy_protocol=True) as server:
        yield server


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    stubs = with_vm_python(tmp_path / "bin")
    _resolver_answering(stubs, ENDPOINT_IP)
    return stubs


def test_the_right_path_passes_every_check(consumer: Simulation, nginx: RunningNginx, bin_dir: Path) -> None:
    with private_endpoint(nginx.config.http_port) as port:
        status, lines = _probe(_expected(consumer, port), bin_dir)
    assert status == 0, lines
    assert lines[-1] == verify_probe.PASS_LINE
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok   dns",
        "ok   http",
        "ok   client address",
        "ok   link id",
    ]
    assert f"resolves to {ENDPOINT_IP}, the private endpoint" in lines[0]
    assert "from provider host" in lines[1] and "in zone 2" in lines[1]
    assert f"saw LinkID {LINK_ID}, the connection's linkIdentifier" in lines[3]


def test_a_wrong_dns_answer_fails_the_dns_check(consumer: Simulation, nginx: RunningNginx, bin_dir: Path) -> None:
    _resolver_answering(bin_dir, "127.0.0.2")
    with private_endpoint(nginx.config.http_port) as port:
        status, lines = _probe(_expected(consumer, port), bin_dir)
    assert status == 1
    assert lines[0].startswith(f"FAIL dns: {FQDN} resolves to 127.0.0.2, not to the private endpoint's {ENDPOINT_IP}")
    assert lines[-1] == "verify: FAIL (dns)"  # the rest of the path, through the endpoint itself, works


def test_no_dns_answer_says_to_link_the_zone(consumer: Simulation, nginx: RunningNginx, bin_dir: Path) -> None:
    _resolver_answering(bin_dir)
    with private_endpoint(nginx.config.http_port) as port:
        status, lines = _probe(_expected(consumer, port), bin_dir)
    assert status == 1
    assert lines[0] == (
        f"FAIL dns: {FQDN} does not resolve from this VM: is the private DNS zone linked to this VNet, "
        "with an A record?"
    )


def test_the_nat_address_instead_of_the_client_fails_when_proxy_protocol_is_off_at_the_provider(
    consumer: Simulation, tmp_path: Path, bin_dir: Path
) -> None:
    with (
        running(_folder(tmp_path / "nginx"), proxy_protocol=False) as plain,
        private_endpoint(plain.config.http_port, proxy_protocol=False) as port,
    ):
        status, lines = _probe(_expected(consumer, port), bin_dir)
    assert status == 1
    assert f"FAIL client address: the provider saw {NAT_IP}, the NAT address the request came through" in lines[2]
    assert "PROXY protocol is off at the provider" in lines[2]
    assert lines[3].startswith("FAIL link id: the provider saw no LinkID")
    assert lines[-1] == "verify: FAIL (client address, link id)"


def test_a_header_without_azure_tlv_fails_the_link_id(consumer: Simulation, nginx: RunningNginx, bin_dir: Path) -> None:
    with private_endpoint(nginx.config.http_port, link_id=None) as port:
        status, lines = _probe(_expected(consumer, port), bin_dir)
    assert status == 1
    assert lines[2].startswith("ok   client address")
    assert lines[-1] == "verify: FAIL (link id)"


def test_another_connections_link_id_fails(consumer: Simulation, nginx: RunningNginx, bin_dir: Path) -> None:
    with private_endpoint(nginx.config.http_port) as port:
        status, lines = _probe(_expected(consumer, port, link_id="7"), bin_dir)
    assert status == 1
    assert f"FAIL link id: the provider saw LinkID {LINK_ID}, but this connection's linkIdentifier is 7" in lines[3]


def test_without_an_expected_link_id_it_is_shown_not_compared(
    consumer: Simulation, nginx: RunningNginx, bin_dir: Path
) -> None:
    with private_endpoint(nginx.config.http_port) as port:
        status, lines = _probe(_expected(consumer, port, link_id=""), bin_dir)
    assert status == 0
    assert f"ok   link id: the provider saw LinkID {LINK_ID} (not compared" in lines[3]


def test_https_fails_on_the_placeholder_and_passes_with_the_certificate(
    consumer: Simulation, tmp_path: Path, bin_dir: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca = make_ca()
    ca.write(ca_file)
    with (
        running(_folder(tmp_path / "nginx"), proxy_protocol=True, tls=True, server_names=(FQDN,)) as tls,
        private_endpoint(tls.config.https_port) as port,
    ):
        expected = _expected(consumer, port, scheme="https")
        status, lines = _probe(expected, bin_dir, SSL_CERT_FILE=str(ca_file))
        assert status == 1
        assert lines[1].startswith(f"FAIL https: https://{FQDN}:{port}/_pls/whoami.json (through {ENDPOINT_IP}): ")
        assert "certificate not trusted" in lines[1] and "placeholder" in lines[1]
        install_like_key_vault_extension(tls.cert_store, ca, [FQDN], "v1")
        tls.activate_tls()
        status, lines = _probe(expected, bin_dir, SSL_CERT_FILE=str(ca_file))
    assert status == 0, lines
    assert lines[1].startswith("ok   https:")


# --- scripts/verify: the stack's outputs in, Run Command's answer out, the verdict as exit status -----------------

FAKE_PULUMI = """
import json, os, sys
stack = sys.argv[sys.argv.index("--stack") + 1]
path = os.path.join(os.environ["FAKE_STACK_OUTPUTS"], stack.replace("/", "_") + ".json")
if not os.path.exists(path):
    sys.exit(f"error: no stack named '{stack}' found")
print(open(path).read())
"""
FAKE_AZ = """
import subprocess, sys
args = sys.argv[1:]
assert args[:4] == ["vm", "run-command", "invoke", "--resource-group"], args
assert args[args.index("--command-id") + 1] == "RunShellScript"
assert args[args.index("--query") + 1] == "value[0].message"
script = args[args.index("--scripts") + 1]
done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
print(f"Enable succeeded: \\n[stdout]\\n{done.stdout}\\n[stderr]\\n{done.stderr}")
"""


@pytest.fixture
def stacks(tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    _stub(bin_dir, "pulumi", FAKE_PULUMI)
    _stub(bin_dir, "az", FAKE_AZ)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STACK_OUTPUTS", str(outputs))
    return outputs


def _deployed(stacks: Path, consumer: Simulation, port: int, link_id: int) -> None:
    """The two stacks' outputs as `pulumi stack output --json` prints them, the addresses moved onto loopback."""
    exported = {
        **consumer.outputs["verify"],
        "url": f"http://{FQDN}:{port}/_pls/whoami.json",
        "endpointIp": ENDPOINT_IP,
        "testVmPrivateIp": "127.0.0.1",
    }
    (stacks / "consumer-tradewinds.json").write_text(json.dumps({**consumer.outputs, "verify": exported}))
    connection = {"privateEndpointId": exported["privateEndpointId"].upper(), "linkIdentifier": str(link_id)}
    (stacks / f"{PROVIDER_STACK.replace('/', '_')}.json").write_text(json.dumps({"connections": [connection]}))


def test_scripts_verify_reads_the_link_id_from_the_provider_and_passes(
    consumer: Simulation, nginx: RunningNginx, stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with private_endpoint(nginx.config.http_port) as port:
        _deployed(stacks, consumer, port, LINK_ID)
        assert verify.main(["consumer-tradewinds"]) == 0
    out = capsys.readouterr().out
    assert f"saw LinkID {LINK_ID}, the connection's linkIdentifier" in out and verify_probe.PASS_LINE in out


def test_scripts_verify_exits_1_on_a_failed_check(
    consumer: Simulation, nginx: RunningNginx, stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with private_endpoint(nginx.config.http_port) as port:
        _deployed(stacks, consumer, port, LINK_ID + 1)
        assert verify.main(["consumer-tradewinds"]) == 1
    assert "verify: FAIL (link id)" in capsys.readouterr().out


def test_scripts_verify_explains_a_stack_without_a_test_vm(stacks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stacks / "consumer-tradewinds.json").write_text(json.dumps({"endpointIp": "10.0.4.4"}))
    assert verify.main(["consumer-tradewinds"]) == 2
    assert "has no verify output: deploy it with testVm: true" in capsys.readouterr().err


def test_the_stack_exports_exactly_what_scripts_verify_reads(consumer: Simulation) -> None:
    assert set(consumer.outputs["verify"]) == verify.VERIFY_KEYS


def test_scripts_verify_names_a_missing_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert verify.main(["consumer-tradewinds"]) == 2
    assert "pulumi is not installed: https://www.pulumi.com/docs/" in capsys.readouterr().err


def test_scripts_verify_says_when_run_command_never_answers(
    consumer: Simulation,
    stacks: Path,
    bin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _deployed(stacks, consumer, 9, LINK_ID)
    _stub(bin_dir, "az", "import time\ntime.sleep(30)\n")  # a VM without outbound: Run Command never returns
    monkeypatch.setattr(verify, "VERIFY_SECONDS", 1.0)
    started = time.monotonic()
    assert verify.main(["consumer-tradewinds"]) == 2
    assert time.monotonic() - started < 15, "the command keeps its deadline: the stand-in az would take 30 s"
    assert "if the VM reaches Azure on TCP 443" in capsys.readouterr().err
