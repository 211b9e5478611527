"""The web VMs' software checked by the real tools: cloud-init's schema, nginx on loopback, node for the njs decoder.

These need Debian's nginx-light, libnginx-mod-http-js, cloud-init and node. Locally a missing
binary skips with its reason; in CI (CI=true, .ci/run installs them) a missing binary fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pls.webserver import NJS_MODULE, WebServerConfig, render_web_server
from tests import proxy_v2

NJS_MODULE_SO = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
CONSUMER_CLIENT = "10.0.5.4"  # the test VM behind the customer's private endpoint
LINK_ID = 0x12345678
IO_TIMEOUT = 3.0


def need(binary: str) -> str:
    # Debian installs nginx in /usr/sbin, which a non-root PATH often lacks.
    path = shutil.which(binary) or shutil.which(binary, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is missing in CI: .ci/run must install it")
        pytest.skip(f"{binary} is not installed (Debian: see .ci/run)")
    return path


def nginx_version(nginx: str) -> tuple[int, ...]:
    banner = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", banner)
    assert match, banner
    return tuple(int(part) for part in match.groups())


# --- the rendered cloud-init -------------------------------------------------------------------


@pytest.mark.parametrize("proxy_protocol", [False, True])
def test_cloud_init_passes_the_schema(tmp_path: Path, proxy_protocol: bool) -> None:
    cloud_init = need("cloud-init")
    rendered = render_web_server(
        WebServerConfig(proxy_protocol=proxy_protocol, trusted_proxy_cidr="10.50.2.0/24", zone="1")
    )
    user_data = tmp_path / "user-data"
    user_data.write_text(rendered.cloud_init)
    result = subprocess.run([cloud_init, "schema", "-c", str(user_data)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(rendered.cloud_init)
    assert config["packages"] == ["nginx", "libnginx-mod-http-js"]
    files = {f["path"]: f["content"] for f in config["write_files"]}
    assert files["/etc/nginx/sites-available/pls.conf"] == rendered.site_config
    assert files["/etc/nginx/njs/azure_pls.js"] == NJS_MODULE


# --- a real nginx running the rendered site on loopback ----------------------------------------


@dataclass
class RunningNginx:
    port: int
    access_log: Path
    error_log: Path
    process: subprocess.Popen[bytes]
    proxy_protocol: bool

    def header(self) -> bytes:
        """What the load balancer puts in front of a consumer's request on this listener."""
        return _proxied() if self.proxy_protocol else b""

    def exchange(self, payload: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT) as conn:
            conn.sendall(payload)
            chunks = []
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    chunk = conn.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    def get(self, path: str, header: bytes = b"") -> tuple[int, str]:
        response = self.exchange(header + f"GET {path} HTTP/1.1\r\nHost: saas\r\nConnection: close\r\n\r\n".encode())
        if not response:
            return 0, ""
        head, _, body = response.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_nginx(proxy_protocol: bool, prefix: Path) -> RunningNginx:
    binary = need("nginx")
    if not NJS_MODULE_SO.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the njs module is missing in CI: .ci/run must install libnginx-mod-http-js")
        pytest.skip("libnginx-mod-http-js is not installed")
    prefix.chmod(0o755)
    port = _free_port()
    rendered = render_web_server(
        WebServerConfig(
            proxy_protocol=proxy_protocol,
            trusted_proxy_cidr="127.0.0.0/8",  # on loopback the "NAT subnet" is the test client
            zone="2",
            listen_port=port,
            njs_path=str(prefix / "azure_pls.js"),
            access_log=str(prefix / "access.log"),
        )
    )
    (prefix / "azure_pls.js").write_text(rendered.njs_module)
    (prefix / "site.conf").write_text(rendered.site_config)
    temp_paths = "".join(
        f"  {kind}_temp_path {prefix}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"load_module {NJS_MODULE_SO};\n"
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  client_header_timeout 5s;\n{temp_paths}  include {prefix}/site.conf;\n}}\n"
    )
    conf = ["-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run([binary, "-t", *conf], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([binary, *conf], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, (prefix / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start listening"
            time.sleep(0.05)
    return RunningNginx(port, prefix / "access.log", prefix / "error.log", process, proxy_protocol)


def _stop(server: RunningNginx) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxied_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    server = _start_nginx(True, tmp_path_factory.mktemp("nginx-proxy"))
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def plain_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    server = _start_nginx(False, tmp_path_factory.mktemp("nginx-plain"))
    yield server
    _stop(server)


@pytest.fixture(params=["proxied_nginx", "plain_nginx"])
def nginx(request: pytest.FixtureRequest) -> RunningNginx:
    server: RunningNginx = request.getfixturevalue(request.param)
    return server


def _proxied(link_id: int | None = LINK_ID) -> bytes:
    tlvs = proxy_v2.azure_link_id_tlv(link_id) if link_id is not None else b""
    return proxy_v2.proxy_header(CONSUMER_CLIENT, 51234, "10.50.2.5", 80, tlvs)


def test_health_probe(nginx: RunningNginx) -> None:
    probe_header = proxy_v2.local_header() if nginx.proxy_protocol else b""
    assert nginx.get("/healthz", probe_header) == (200, "ok\n")


def test_page_names_host_and_zone(nginx: RunningNginx) -> None:
    status, body = nginx.get("/", nginx.header())
    assert status == 200
    assert f"Host: {socket.gethostname()}" in body
    assert "Zone: 2" in body


def test_consumer_address_reaches_response_and_log(proxied_nginx: RunningNginx) -> None:
    before = len(proxied_nginx.log_lines())
    status, body = proxied_nginx.get("/whoami.json", _proxied())
    assert status == 200
    whoami = json.loads(body)
    assert whoami["client"] == CONSUMER_CLIENT
    assert whoami["connectedFrom"] == "127.0.0.1"
    assert whoami["zone"] == "2" and whoami["proxyProtocol"] is True
    (line,) = proxied_nginx.log_lines()[before:]
    assert line.startswith(f"{CONSUMER_CLIENT} connected_from=127.0.0.1 ")
    assert '"GET /whoami.json HTTP/1.1" 200' in line


def test_link_id_reaches_response_and_log(proxied_nginx: RunningNginx) -> None:
    version = nginx_version(need("nginx"))
    if version < (1, 23, 2):
        pytest.skip(
            f"nginx {'.'.join(map(str, version))} has no $proxy_protocol_tlv_* variables (needs >= 1.23.2; "
            "Ubuntu 24.04 ships 1.24). The decoder is covered by test_njs_decoder_agrees_with_the_header_parser."
        )
    status, body = proxied_nginx.get("/whoami.json", _proxied())
    assert status == 200 and json.loads(body)["linkId"] == str(LINK_ID)
    assert f'link_id="{LINK_ID}"' in proxied_nginx.log_lines()[-1]


def test_request_without_header_is_refused_when_proxy_protocol_is_on(proxied_nginx: RunningNginx) -> None:
    status, _ = proxied_nginx.get("/")
    assert status == 0, "a PROXY listener must not answer a bare HTTP request"
    assert "broken header" in proxied_nginx.error_log.read_text()


def test_header_is_refused_when_proxy_protocol_is_off(plain_nginx: RunningNginx) -> None:
    status, body = plain_nginx.get("/", _proxied())
    assert status == 400, body
    status, body = plain_nginx.get("/whoami.json")
    assert status == 200
    assert json.loads(body)["client"] == "127.0.0.1"
    assert json.loads(body)["proxyProtocol"] is False


MALFORMED = {
    "truncated-signature": proxy_v2.SIGNATURE[:7],
    "wrong-version": proxy_v2.SIGNATURE + bytes([0x11, 0x11, 0x00, 0x0C]) + bytes(12),
    "length-past-end": proxy_v2.SIGNATURE + bytes([0x21, 0x11, 0xFF, 0xFF]) + bytes(12),
    "garbage": bytes(range(256)),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_header_is_refused_without_crash_or_hang(proxied_nginx: RunningNginx, payload: bytes) -> None:
    started = time.monotonic()
    response = proxied_nginx.exchange(payload + b"GET / HTTP/1.1\r\nHost: saas\r\nConnection: close\r\n\r\n")
    assert not response.startswith(b"HTTP/1.1 200"), "a malformed header must not be served"
    assert time.monotonic() - started < IO_TIMEOUT + 1
    assert proxied_nginx.process.poll() is None
    assert proxied_nginx.get("/healthz", proxy_v2.local_header())[0] == 200


def test_broken_azure_tlv_yields_no_link_id(proxied_nginx: RunningNginx) -> None:
    # The header's framing is sound, so the request may be served; the broken TLV must not become a LinkID.
    bad_tlv = proxy_v2.proxy_header(CONSUMER_CLIENT, 1, "10.50.2.5", 80, b"\xee\xff\xff\x01")
    status, body = proxied_nginx.get("/whoami.json", bad_tlv)
    assert status in (0, 400, 200)
    if status == 200:
        assert json.loads(body)["linkId"] == ""
    assert proxied_nginx.process.poll() is None


def test_a_stalled_header_does_not_block_other_clients(nginx: RunningNginx) -> None:
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=IO_TIMEOUT) as stalled:
        stalled.sendall(proxy_v2.SIGNATURE[:5])
        assert nginx.get("/whoami.json", nginx.header())[0] == 200


# --- the njs LinkID decoder, run by node --------------------------------------------------------


def test_njs_decoder_agrees_with_the_header_parser(tmp_path: Path) -> None:
    node = need("node")
    module = tmp_path / "azure_pls.mjs"
    module.write_text(NJS_MODULE)
    cases = {
        "plain": proxy_v2.azure_link_id_tlv(LINK_ID),
        "high-bit": proxy_v2.azure_link_id_tlv(0xFEDCBA98),
        "zero": proxy_v2.azure_link_id_tlv(0),
        "wrong-subtype": proxy_v2.tlv(proxy_v2.PP2_TYPE_AZURE, b"\x02\x01\x00\x00\x00"),
        "short": proxy_v2.tlv(proxy_v2.PP2_TYPE_AZURE, b"\x01\x01\x00"),
    }
    header = {
        name: proxy_v2.parse(proxy_v2.proxy_header(CONSUMER_CLIENT, 1, "10.50.2.5", 80, t))[0]
        for name, t in cases.items()
    }
    # nginx hands njs the TLV's value only: the subtype byte and what follows.
    values = {name: list(h.tlvs[proxy_v2.PP2_TYPE_AZURE]) for name, h in header.items()}
    script = (
        f"import m from {json.dumps(str(module))};\n"
        f"const values = {json.dumps(values)};\n"
        "const out = {};\n"
        "for (const [k, v] of Object.entries(values)) out[k] = m.decodeLinkId(Buffer.from(v));\n"
        "out.missing = m.decodeLinkId(undefined);\n"
        "console.log(JSON.stringify(out));\n"
    )
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout)
    assert decoded == {
        "plain": "305419896",
        "high-bit": "4275878552",
        "zero": "0",
        "wrong-subtype": "",
        "short": "",
        "missing": "",
    }
    for name, h in header.items():
        assert decoded[name] == ("" if h.link_id is None else str(h.link_id)), name
