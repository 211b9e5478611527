"""The web VMs' software checked by the real tools: cloud-init's schema, nginx on loopback in front of the real
demo app, TLS against a test CA, node for the njs decoder. No mocks of nginx.

These need cloud-init and node (Debian), and nginx >= 1.23.2 with njs (scripts/fetch-nginx). Locally a
missing one skips with its reason; in CI (CI=true, .ci/run provides them) a missing one fails.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pls.nginx_site import ACCESS_LOG_COLUMNS, DRAIN_FLAG, NJS_MODULE, SITE_PATH
from pls.web_server_config import RateLimit, WebServerConfig
from pls.webserver import BOOTSTRAP, CERT_STORE, render_web_server, software_in
from tests.helpers import proxy_v2
from tests.helpers.certificates import install_like_key_vault_extension, make_ca
from tests.helpers.real_nginx import (
    CONSUMER_CLIENT,
    IO_TIMEOUT,
    LINK_ID,
    RunningNginx,
    launch,
    loopback_config,
    need,
    parse_response,
    proxied,
    read_all,
    request,
    running,
)
from vm.software import PROXY_V2_LOCAL

FQDNS = ("api.saas.example.com", "api.contoso.example")
APP_CLOUD_CONFIG = {
    "packages": ["redis-server"],
    "write_files": [{"path": "/opt/app/app.env", "content": "PORT=3000\n", "permissions": "0600"}],
    "runcmd": [["systemctl", "enable", "--now", "redis-server"]],
}


# --- what reaches a VM: the first boot's cloud-init, and the software its Run Command applies ------------------


def test_the_first_boot_passes_cloud_inits_schema_and_installs_nginx_and_njs(tmp_path: Path) -> None:
    cloud_init = need("cloud-init")
    user_data = tmp_path / "user-data"
    user_data.write_text(BOOTSTRAP)
    result = subprocess.run([cloud_init, "schema", "-c", str(user_data)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(BOOTSTRAP) == {"package_update": True, "packages": ["nginx", "libnginx-mod-http-js"]}


@pytest.mark.parametrize(
    "config",
    [
        WebServerConfig(proxy_protocol=False, trusted_proxy_cidrs=("10.50.2.0/24",), zone="1"),
        WebServerConfig(
            proxy_protocol=True, trusted_proxy_cidrs=("10.50.2.0/24",), zone="1", tls=True, server_names=FQDNS
        ),
        WebServerConfig(
            proxy_protocol=True,
            trusted_proxy_cidrs=("10.50.2.0/24",),
            zone="3",
            demo_app=False,
            app_upstream="127.0.0.1:3000",
            app_cloud_config=APP_CLOUD_CONFIG,
        ),
    ],
    ids=["plain", "tls", "providers-app"],
)
def test_the_software_holds_every_file_service_and_command_of_the_web_tier(config: WebServerConfig) -> None:
    rendered = render_web_server(config)
    software = software_in(rendered.software_script)
    assert software == rendered.software
    files = {f["path"]: f["content"] for f in software["files"]}
    assert files["/etc/nginx/sites-available/pls.conf"] == rendered.site_config
    assert files["/etc/nginx/njs/azure_pls.js"] == NJS_MODULE
    assert software["packages"][:2] == ["nginx", "libnginx-mod-http-js"]
    assert ["ln", "-sfn", "/etc/nginx/sites-available/pls.conf", "/etc/nginx/sites-enabled/pls.conf"] in software[
        "prepare"
    ]
    units = {service["unit"]: service for service in software["services"]}
    assert ("/opt/pls/demo_app.py" in files) == config.demo_app == ("pls-demo-app.service" in units)
    assert ("/usr/local/sbin/pls-tls-activate" in files) == config.tls == ("pls-tls.path" in units)
    if config.demo_app:
        assert units["pls-demo-app.service"]["serves"], "restarting the app drains the VM"
    if config.tls:
        assert f"PathChanged={CERT_STORE}" in files["/etc/systemd/system/pls-tls.path"]
        assert not units["pls-tls.path"]["serves"]
    health = software["health"]
    assert (health["port"], health["path"], health["proxy_protocol"]) == (80, "/healthz", config.proxy_protocol)
    assert (health["app_upstream"], health["app_path"]) == (config.app_upstream, "/")
    if config.app_cloud_config:
        # The provider's parts come after ours, whole.
        assert software["packages"] == ["nginx", "libnginx-mod-http-js", "redis-server"]
        assert files["/opt/app/app.env"] == "PORT=3000\n"
        assert software["app_files"] == ["/opt/app/app.env"]
        assert software["app_commands"] == [["systemctl", "enable", "--now", "redis-server"]]
    assert (
        rendered.software_script.startswith("#!/bin/sh\n")
        and "exec python3 - <<'PLS_SOFTWARE'" in rendered.software_script
    )


def test_every_change_of_the_software_is_a_new_revision_and_the_same_software_is_the_same_script() -> None:
    base = WebServerConfig(proxy_protocol=True, trusted_proxy_cidrs=("10.50.2.0/24",), zone="1")
    same = render_web_server(base).software_script
    assert render_web_server(base).software_script == same  # Azure runs it again only when it changes
    changed = {
        "rate limit": dataclasses.replace(base, rate_limit=RateLimit(per_second=80, burst=100)),
        "upstream": dataclasses.replace(base, app_upstream="127.0.0.1:9090"),
        "app": dataclasses.replace(base, demo_app=False, app_cloud_config=APP_CLOUD_CONFIG),
        "tls": dataclasses.replace(base, tls=True, server_names=FQDNS),
        "zone": dataclasses.replace(base, zone="2"),
    }
    revisions = {what: render_web_server(config).software["revision"] for what, config in changed.items()}
    assert len({*revisions.values(), render_web_server(base).software["revision"]}) == len(changed) + 1


@pytest.mark.parametrize(
    ("theirs", "complaint"),
    [
        ({"write_files": [{"path": "/etc/nginx/sites-available/pls.conf", "content": ""}]}, "pls.conf"),
        ({"package_update": False}, "package_update: the web tier applies only packages, write_files, runcmd"),
        ({"users": ["default"]}, "do the rest from runcmd, or put your app in vmImage"),
        ({"packages": "nginx"}, "packages must be a list"),
        ({"write_files": ["/etc/motd"]}, "must be a mapping with a path"),
        ({"write_files": [{"path": "/etc/motd", "append": True}]}, "not append"),
        ({"write_files": [{"path": "/etc/motd", "encoding": "gzip"}]}, "encoding"),
        ({"write_files": [{"path": "etc/motd"}]}, "path (absolute)"),
        ({"write_files": [{"path": "/etc/motd", "permissions": "rw-r--r--"}]}, "permissions (octal"),
        ({"write_files": [{"path": "/etc/motd", "owner": "root root"}]}, "owner (user:group)"),
        ({"runcmd": [{"not": "a command"}]}, "runcmd must be a list of commands"),
    ],
)
def test_a_providers_cloud_config_the_web_tier_cannot_apply_in_place_is_refused(
    theirs: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        render_web_server(WebServerConfig(False, ("10.50.2.0/24",), "1", app_cloud_config=theirs))


# --- nginx in front of the demo app ------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-proxy"), proxy_protocol=True) as server:
        yield server


@pytest.fixture(scope="module")
def plain_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-plain"), proxy_protocol=False) as server:
        yield server


@pytest.fixture(params=["proxied_nginx", "plain_nginx"])
def nginx(request: pytest.FixtureRequest) -> RunningNginx:
    server: RunningNginx = request.getfixturevalue(request.param)
    return server


def _app_saw(body: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    seen = json.loads(body)
    assert seen["app"] == "pls-demo", "the request must reach the app, not nginx"
    headers: dict[str, list[str]] = {}
    for name, value in seen["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return seen, headers


def test_health_probe(nginx: RunningNginx) -> None:
    probe_header = proxy_v2.local_header() if nginx.config.proxy_protocol else b""
    response = nginx.get("/healthz", probe_header)
    assert (response.status, response.body) == (200, "ok\n")


def test_consumer_address_and_link_id_reach_nginx_and_its_log(proxied_nginx: RunningNginx) -> None:
    before = len(proxied_nginx.log_lines())
    response = proxied_nginx.get("/_pls/whoami.json", proxied())
    assert response.status == 200
    whoami = json.loads(response.body)
    assert whoami["client"] == CONSUMER_CLIENT
    assert whoami["connectedFrom"] == "127.0.0.1"
    assert whoami["linkId"] == str(LINK_ID) == whoami["tenant"]
    assert whoami["zone"] == "2" and whoami["proxyProtocol"] is True and whoami["scheme"] == "http"
    (line,) = proxied_nginx.log_lines()[before:]
    # What the data collection rule ingests: a leading ISO 8601 time (the agent's record boundary), then JSON
    # whose fields are exactly the workspace table's columns, each of its declared type.
    timestamp, entry = line.split(" ", 1)
    assert datetime.datetime.fromisoformat(timestamp).tzinfo is not None
    fields = json.loads(entry)
    assert list(fields) == [name for name, _, _ in ACCESS_LOG_COLUMNS]
    python_types = {"string": str, "int": int, "long": int, "real": float}
    assert all(isinstance(fields[name], python_types[kind]) for name, _, kind in ACCESS_LOG_COLUMNS), fields
    assert (fields["Client"], fields["ConnectedFrom"], fields["LinkId"]) == (CONSUMER_CLIENT, "127.0.0.1", str(LINK_ID))
    assert (fields["Request"], fields["Status"]) == ("GET /_pls/whoami.json HTTP/1.1", 200)


FORGED = (
    "X-Forwarded-For: 203.0.113.66\r\n"
    "X-Real-IP: 203.0.113.66\r\n"
    "X-Azure-Private-Link-Id: 1\r\n"
    "X-Forwarded-Proto: https\r\n"
    "Forwarded: for=203.0.113.66\r\n"
)
"""What a consumer might send to pass for another tenant."""


def test_the_app_gets_the_consumers_address_and_link_id_and_never_a_forged_one(proxied_nginx: RunningNginx) -> None:
    response = proxied_nginx.get("/orders?id=7", proxied(), extra_headers=FORGED)
    assert response.status == 200
    seen, headers = _app_saw(response.body)
    assert seen["path"] == "/orders?id=7"
    assert seen["client"] == CONSUMER_CLIENT and seen["linkId"] == str(LINK_ID) and seen["proto"] == "http"
    assert headers["x-forwarded-for"] == [CONSUMER_CLIENT]
    assert headers["x-real-ip"] == [CONSUMER_CLIENT]
    assert headers["x-azure-private-link-id"] == [str(LINK_ID)]
    assert headers["x-forwarded-proto"] == ["http"]
    assert "forwarded" not in headers
    assert not any("203.0.113.66" in value for values in headers.values() for value in values)


def test_without_a_link_id_the_app_gets_none_not_the_clients(proxied_nginx: RunningNginx) -> None:
    response = proxied_nginx.get("/", proxied(link_id=None), extra_headers=FORGED)
    seen, headers = _app_saw(response.body)
    assert seen["linkId"] == "" and "x-azure-private-link-id" not in headers
    assert headers["x-real-ip"] == [CONSUMER_CLIENT]


def test_request_without_header_is_refused_when_proxy_protocol_is_on(proxied_nginx: RunningNginx) -> None:
    assert proxied_nginx.get("/").status == 0, "a PROXY listener must not answer a bare HTTP request"
    assert "broken header" in proxied_nginx.error_log.read_text()


def test_header_is_refused_when_proxy_protocol_is_off(plain_nginx: RunningNginx) -> None:
    assert plain_nginx.get("/", proxied()).status == 400
    whoami = json.loads(plain_nginx.get("/_pls/whoami.json").body)
    assert whoami["client"] == "127.0.0.1" and whoami["linkId"] == "" and whoami["proxyProtocol"] is False
    _, headers = _app_saw(plain_nginx.get("/", extra_headers=FORGED).body)
    assert headers["x-real-ip"] == ["127.0.0.1"] and "x-azure-private-link-id" not in headers


MALFORMED = {
    "truncated-signature": proxy_v2.SIGNATURE[:7],
    "wrong-version": proxy_v2.SIGNATURE + bytes([0x11, 0x11, 0x00, 0x0C]) + bytes(12),
    "length-past-end": proxy_v2.SIGNATURE + bytes([0x21, 0x11, 0xFF, 0xFF]) + bytes(12),
    "garbage": bytes(range(256)),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_header_is_refused_without_crash_or_hang(proxied_nginx: RunningNginx, payload: bytes) -> None:
    started = time.monotonic()
    response = proxied_nginx.exchange(payload + request("/"))
    assert not response.startswith(b"HTTP/1.1 200"), "a malformed header must not be served"
    assert time.monotonic() - started < IO_TIMEOUT + 1
    assert proxied_nginx.process.poll() is None
    assert proxied_nginx.get("/healthz", proxy_v2.local_header()).status == 200


def test_broken_azure_tlv_yields_no_link_id(proxied_nginx: RunningNginx) -> None:
    # The header's framing is sound, so the request may be served; the broken TLV must not become a LinkID.
    bad_tlv = proxy_v2.proxy_header(CONSUMER_CLIENT, 1, "10.50.2.5", 80, b"\xee\xff\xff\x01")
    response = proxied_nginx.get("/_pls/whoami.json", bad_tlv)
    assert response.status in (0, 400, 200)
    if response.status == 200:
        assert json.loads(response.body)["linkId"] == ""
    assert proxied_nginx.process.poll() is None


def test_a_stalled_header_does_not_block_other_clients(nginx: RunningNginx) -> None:
    with socket.create_connection(("127.0.0.1", nginx.config.http_port), timeout=IO_TIMEOUT) as stalled:
        stalled.sendall(proxy_v2.SIGNATURE[:5])
        assert nginx.get("/_pls/whoami.json", nginx.header()).status == 200


# --- per-tenant rate limits: the blog post's incident -------------------------------------------

LIMIT = RateLimit(per_second=1, burst=3)
TENANT_A, TENANT_B = 1001, 2002


@pytest.fixture(scope="module")
def limited_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-limited"), proxy_protocol=True, rate_limit=LIMIT) as server:
        yield server


def test_a_tenant_over_its_limit_gets_429_and_no_other_tenant_does(limited_nginx: RunningNginx) -> None:
    # Both tenants arrive from the same NAT address (127.0.0.1), as every tenant does through Private Link.
    noisy = [limited_nginx.get("/", proxied(TENANT_A)).status for _ in range(LIMIT.burst + 4)]
    assert noisy[: LIMIT.burst + 1] == [200] * (LIMIT.burst + 1)
    assert 429 in noisy[LIMIT.burst + 1 :]
    quiet = [limited_nginx.get("/", proxied(TENANT_B)).status for _ in range(LIMIT.burst + 1)]
    assert quiet == [200] * (LIMIT.burst + 1)
    assert limited_nginx.get("/healthz", proxy_v2.local_header()).status == 200, "probes are never limited"


@pytest.fixture(scope="module")
def limited_plain_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-limited-plain"), proxy_protocol=False, rate_limit=LIMIT) as server:
        yield server


def _get_from(server: RunningNginx, source: str, path: str = "/") -> int:
    with socket.socket() as conn:
        conn.settimeout(IO_TIMEOUT)
        conn.bind((source, 0))
        conn.connect(("127.0.0.1", server.config.http_port))
        conn.sendall(request(path))
        return parse_response(read_all(conn)).status


def test_without_proxy_protocol_the_limit_falls_back_to_the_client_address(limited_plain_nginx: RunningNginx) -> None:
    noisy = [_get_from(limited_plain_nginx, "127.0.0.2") for _ in range(LIMIT.burst + 4)]
    assert 429 in noisy
    assert _get_from(limited_plain_nginx, "127.0.0.3") == 200


# --- TLS with the certificate the Key Vault VM extension installs --------------------------------


@pytest.fixture(scope="module")
def tls_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    with running(tmp_path_factory.mktemp("nginx-tls"), proxy_protocol=True, tls=True, server_names=FQDNS) as server:
        yield server


def test_tls_serves_the_key_vault_certificate_for_every_fqdn_and_follows_renewals(
    tls_nginx: RunningNginx, tmp_path: Path
) -> None:
    ca = make_ca()
    ca_file = ca.write(tmp_path / "ca.pem")
    # Until the extension has installed a certificate, nginx serves a placeholder no client trusts.
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_nginx.get_tls("/", FQDNS[0], ca_file, proxied())

    first = install_like_key_vault_extension(tls_nginx.cert_store, ca, list(FQDNS), "v1")
    tls_nginx.activate_tls()
    for fqdn in FQDNS:
        response, peer = tls_nginx.get_tls("/_pls/whoami.json", fqdn, ca_file, proxied())
        assert response.status == 200 and int(peer["serialNumber"], 16) == first
        whoami = json.loads(response.body)
        assert whoami["scheme"] == "https" and whoami["serverName"] == fqdn
        assert whoami["client"] == CONSUMER_CLIENT and whoami["linkId"] == str(LINK_ID)
    response, _ = tls_nginx.get_tls("/", FQDNS[1], ca_file, proxied())
    seen, headers = _app_saw(response.body)
    assert seen["proto"] == "https" and headers["x-forwarded-host"] == [FQDNS[1]]

    renewed = install_like_key_vault_extension(tls_nginx.cert_store, ca, list(FQDNS), "v2")
    tls_nginx.activate_tls()
    _, peer = tls_nginx.get_tls("/", FQDNS[0], ca_file, proxied())
    assert int(peer["serialNumber"], 16) == renewed != first


def test_with_tls_plain_http_redirects_and_the_probe_still_answers(tls_nginx: RunningNginx) -> None:
    response = tls_nginx.get("/orders?id=7", proxied(), host=FQDNS[0])
    assert response.status == 308
    assert response.headers["location"] == f"https://{FQDNS[0]}/orders?id=7"
    assert tls_nginx.get("/healthz", proxy_v2.local_header()).status == 200


def test_with_http_off_only_the_probe_is_answered_on_port_80(tmp_path: Path) -> None:
    with running(tmp_path, tls=True, http_on_tls="off", server_names=FQDNS) as server:
        assert server.get("/", proxied(), host=FQDNS[0]).status == 404
        assert server.get("/healthz", proxy_v2.local_header()).status == 200


# --- the software applied in place, zone by zone: what a VM's Run Command does to a running nginx --------------


def test_the_probe_sends_what_azures_load_balancer_sends() -> None:
    assert proxy_v2.local_header() == PROXY_V2_LOCAL
    header, rest = proxy_v2.parse(PROXY_V2_LOCAL + b"GET /")
    assert header.command == proxy_v2.COMMAND_LOCAL and header.tlvs == {} and rest == b"GET /"


def test_a_configuration_nginx_refuses_fails_naming_the_vm_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        site = Path(server.config.vm(SITE_PATH))
        serving = site.read_text()
        # A rate nginx refuses ("invalid rate"): the software must not take nginx down with it.
        refused = server.apply(dataclasses.replace(server.config, rate_limit=RateLimit(per_second=0, burst=1)))
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"{socket.gethostname()} (zone 2): nginx refused the new configuration")
        assert "invalid rate" in refused.stderr and "nginx still serves the previous configuration" in refused.stderr
        assert site.read_text() == serving
        assert server.get("/_pls/whoami.json", proxied()).status == 200
        assert server.get("/healthz", proxy_v2.local_header()).status == 200
        again = server.apply(server.config)  # the same software again changes nothing and says so
        assert again.returncode == 0 and "changed nothing; nginx reloaded; healthy" in again.stdout, again.stderr


def test_a_new_rate_limit_is_applied_in_place_by_a_reload(tmp_path: Path) -> None:
    with running(tmp_path, rate_limit=RateLimit(per_second=1, burst=1)) as server:
        assert 429 in [server.get("/", proxied(TENANT_A)).status for _ in range(5)]
        applied = server.apply(dataclasses.replace(server.config, rate_limit=RateLimit(per_second=80, burst=200)))
        assert applied.returncode == 0, applied.stderr
        assert "changed /etc/nginx/sites-available/pls.conf; nginx reloaded; healthy" in applied.stdout
        assert [server.get("/", proxied(TENANT_B)).status for _ in range(20)] == [200] * 20


def test_a_restart_of_the_app_drains_the_vm_first(tmp_path: Path) -> None:
    calls = tmp_path / "systemctl.log"
    flag = Path(loopback_config(tmp_path).vm(DRAIN_FLAG))
    # systemd, as far as the software can tell: every call logged, with whether the VM was draining then.
    systemctl = ("sh", "-c", f'echo "$* $(test -e {flag} && echo draining)" >> {calls}', "systemctl")
    with running(tmp_path) as server:
        config = dataclasses.replace(
            server.config, commands=dataclasses.replace(server.config.commands, systemctl=systemctl)
        )
        moved = dataclasses.replace(config, zone="3")  # the demo app's unit changes: it restarts
        applied = server.apply(moved)
        assert applied.returncode == 0, applied.stderr
        assert "drained, restarted pls-demo-app.service; healthy" in applied.stdout
        log = calls.read_text().splitlines()
        assert "restart pls-demo-app.service draining" in log
        assert not flag.exists() and server.get("/healthz", proxy_v2.local_header()).status == 200
        calls.unlink()
        assert server.apply(dataclasses.replace(moved, rate_limit=RateLimit(per_second=9, burst=9))).returncode == 0
        assert not any("restart" in line for line in calls.read_text().splitlines()), "nginx alone reloads in place"


class _App(http.server.BaseHTTPRequestHandler):
    """An app whose health is what its path says: /down answers 503, /missing 404, the rest 200."""

    def do_GET(self) -> None:
        status = {"/down": 503, "/missing": 404}.get(self.path, 200)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("health_path", "status"), [("/", 200), ("/missing", 200), ("/down", 503)])
def test_the_vm_is_healthy_while_the_app_answers_its_health_path_below_500(
    tmp_path: Path, health_path: str, status: int
) -> None:
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    # Polled often: shutdown() waits for the next poll.
    threading.Thread(target=app.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    config = loopback_config(
        tmp_path,
        app_upstream=f"127.0.0.1:{app.server_address[1]}",
        app_health_path=health_path,
        demo_app=False,
        health_timeout_seconds=1,
    )
    server = launch(tmp_path, config, upstream=False)
    try:
        applied = server.apply(config)
        if status == 200:
            assert applied.returncode == 0, applied.stderr
        else:  # the software waits for the VM's health and fails naming it: the deployment stops at this zone
            assert applied.returncode == 1
            assert applied.stderr.startswith(f"{socket.gethostname()} (zone 2): /healthz did not answer 200 within 1 s")
            assert "(last answer: 503 app answered 503)" in applied.stderr
        assert server.get("/healthz", proxy_v2.local_header()).status == status
        local = server.exchange(request("/healthz"), port=config.local_health_port)
        assert parse_response(local).status == status, "the Application Health extension's listener agrees"
    finally:
        server.stop()
        app.shutdown()


def test_an_app_that_stops_answering_takes_its_vm_out_of_the_pool_until_it_answers_again(
    proxied_nginx: RunningNginx,
) -> None:
    proxied_nginx.stop_app()
    try:
        down = proxied_nginx.get("/healthz", proxy_v2.local_header())
        assert (down.status, down.body) == (503, "app answered 502\n")
    finally:
        proxied_nginx.start_app()
    assert proxied_nginx.get("/healthz", proxy_v2.local_header()).status == 200


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
