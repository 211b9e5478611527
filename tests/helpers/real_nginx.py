"""A real nginx (>= 1.23.2, with njs) on loopback, configured by the web tier's own software script (what each web
VM's Run Command runs), in front of the real demo app.

The VM's file system is a folder of the test's (WebServerConfig.root) and the VM's commands are loopback's: nginx
checked and reloaded with its prefix, nothing installed, no systemd (the harness runs the demo app as systemd
would). nginx comes from `.tools/nginx` (scripts/fetch-nginx: Debian trixie's, which .ci/run fetches) or from the
system when it is new enough. Locally a missing one skips with its reason; in CI (CI=true) it fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pls.nginx_site import ACCESS_LOG, TLS_ACTIVATE_PATH
from pls.web_server_config import VmCommands, WebServerConfig
from pls.webserver import CERT_STORE, DEMO_APP, render_web_server
from tests.helpers import proxy_v2

ROOT = Path(__file__).resolve().parents[2]
NGINX_MIN = (1, 23, 2)
"""The first nginx with $proxy_protocol_tlv_* variables: the LinkID needs it."""
IO_TIMEOUT = 3.0
CONSUMER_CLIENT = "10.0.5.4"  # the test VM behind the customer's private endpoint
LINK_ID = 0x12345678


VM_PYTHON = Path(sys.base_prefix, "bin", "python3")
"""The interpreter that stands in for a VM's python3 (Ubuntu's): this one's own, outside the virtualenv."""


def with_vm_python(bin_dir: Path) -> Path:
    """`bin_dir`, holding the VM's python3, for the front of PATH: the interpreter with the standard library only
    (-S: no site-packages), as on a VM, so a program that needs more fails here too; and found directly, not
    through a version manager's shim (pyenv's spends a third of a second choosing the interpreter, every call)."""
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python3"
    if not python.exists():
        python.write_text(f'#!/bin/sh\nexec {shlex.quote(str(VM_PYTHON))} -S "$@"\n')
        python.chmod(0o755)
    return bin_dir


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI: .ci/run must provide it")
    pytest.skip(f"{what} is not installed (see .ci/run)")


def need(binary: str) -> str:
    # Debian installs nginx in /usr/sbin, which a non-root PATH often lacks.
    path = shutil.which(binary) or shutil.which(binary, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        missing(binary)
    assert path is not None
    return path


def version(nginx: str) -> tuple[int, ...]:
    banner = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=True, timeout=30).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", banner)
    assert match, banner
    return tuple(int(part) for part in match.groups())


def modern_nginx() -> tuple[str, Path]:
    """nginx >= NGINX_MIN and its njs module: .tools/nginx first, then the system's."""
    candidates = [(ROOT / ".tools/nginx/nginx", ROOT / ".tools/nginx/modules")]
    system = shutil.which("nginx", path="/usr/local/sbin:/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    if system:
        candidates.append((Path(system), Path("/usr/lib/nginx/modules")))
    for binary, modules in candidates:
        if binary.exists() and (modules / "ngx_http_js_module.so").exists() and version(str(binary)) >= NGINX_MIN:
            return str(binary), modules
    missing("nginx >= 1.23.2 with njs (scripts/fetch-nginx unpacks Debian trixie's into .tools/nginx)")
    raise AssertionError("unreachable")


# nginx binds its own ports, so they are chosen before it starts. A port the kernel hands out (bind to 0) could be
# handed to another process meanwhile and nginx's listener silently swapped for someone else's. These come from
# below Linux's ephemeral range (32768-60999), which the kernel never hands out, a block per xdist worker.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_PORTS = itertools.count(20000 + 1000 * _WORKER)


def free_port() -> int:
    for port in _PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the count is endless")


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            # Someone listens; it must be our process (it exits at once if another took one of its ports).
            assert process.poll() is None, log.read_text() if log and log.exists() else "exited"
            return
        except OSError:
            assert process.poll() is None, log.read_text() if log and log.exists() else "exited"
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.01)


def proxied(link_id: int | None = LINK_ID, client: str = CONSUMER_CLIENT) -> bytes:
    """What the Private Link Service puts in front of a consumer's connection."""
    tlvs = proxy_v2.azure_link_id_tlv(link_id) if link_id is not None else b""
    return proxy_v2.proxy_header(client, 51234, "10.50.2.5", 80, tlvs)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


def parse_response(raw: bytes) -> Response:
    if not raw:
        return Response(0, {}, "")
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Response(int(status_line.split()[1]), headers, body.decode())


def request(path: str, host: str = "saas", extra_headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}Connection: close\r\n\r\n".encode()


def read_all(conn: socket.socket) -> bytes:
    chunks = []
    deadline = time.monotonic() + IO_TIMEOUT
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except (ConnectionResetError, TimeoutError, ssl.SSLError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class RunningNginx:
    config: WebServerConfig
    binary: str
    prefix: Path
    process: subprocess.Popen[bytes]
    upstream: subprocess.Popen[bytes] | None

    @property
    def access_log(self) -> Path:
        return Path(self.config.vm(ACCESS_LOG))

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def cert_store(self) -> Path:
        """Where the Key Vault VM extension puts the certificate on the VM."""
        return Path(self.config.vm(CERT_STORE))

    def header(self) -> bytes:
        """What the load balancer puts in front of a consumer's request on this listener."""
        return proxied() if self.config.proxy_protocol else b""

    def exchange(self, payload: bytes, port: int | None = None) -> bytes:
        with socket.create_connection(("127.0.0.1", port or self.config.http_port), timeout=IO_TIMEOUT) as conn:
            conn.sendall(payload)
            return read_all(conn)

    def get(self, path: str, header: bytes = b"", host: str = "saas", extra_headers: str = "") -> Response:
        return parse_response(self.exchange(header + request(path, host, extra_headers)))

    def get_tls(self, path: str, server_name: str, ca_file: Path, header: bytes = b"") -> tuple[Response, dict]:
        """HTTPS with SNI, the PROXY header (if any) sent before the handshake, verified against ca_file."""
        context = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", self.config.https_port), timeout=IO_TIMEOUT) as raw:
            raw.sendall(header)
            with context.wrap_socket(raw, server_hostname=server_name) as conn:
                peer = conn.getpeercert()
                conn.sendall(request(path, server_name))
                return parse_response(read_all(conn)), peer or {}

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def workers(self) -> set[int]:
        """The master's worker processes."""
        return {int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if self._serves(stat)}

    def _serves(self, stat: Path) -> bool:
        """Whether the process whose /proc/<pid>/stat this is is one of the master's workers."""
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            return False  # gone
        return int(fields[1]) == self.process.pid

    @property
    def vm_bin(self) -> Path:
        """This VM's commands for the front of PATH (its python3)."""
        return with_vm_python(self.prefix / "vm-bin")

    def apply(self, config: WebServerConfig) -> subprocess.CompletedProcess[str]:
        """The software's script for `config`, run as the VM's Run Command runs it; when nginx reloads, until its old
        workers are gone (new connections then meet the new configuration only)."""
        script = self.prefix / "software.sh"
        script.write_text(render_web_server(config).software_script)
        before = self.workers()
        vm_path = f"{self.vm_bin}:{os.environ['PATH']}"
        done = subprocess.run(
            ["sh", str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PATH": vm_path},
        )
        if done.returncode == 0:
            self._until_replaced(before)
        return done

    def activate_tls(self) -> None:
        """The TLS activation script the software installed, run as the path unit does when the extension writes,
        until nginx's reload has replaced its workers."""
        activate = self.config.vm(TLS_ACTIVATE_PATH)
        before = self.workers()
        subprocess.run(["sh", activate], check=True, timeout=60, capture_output=True)
        self._until_replaced(before)

    def _until_replaced(self, workers: set[int]) -> None:
        """Until none of `workers` is left: after a reload, new connections meet the new configuration only."""
        deadline = time.monotonic() + 10
        # Each of them is looked up on its own: a scan of every process, each 5 ms, took the CPU the reload needs.
        while any(self._serves(Path(f"/proc/{pid}/stat")) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.005)

    def start_app(self) -> None:
        """The demo app, as its systemd unit runs it."""
        (self.prefix / "demo_app.py").write_text(DEMO_APP)
        self.upstream = subprocess.Popen(
            [self.vm_bin / "python3", self.prefix / "demo_app.py", self.config.app_upstream],
            env={**os.environ, "PLS_ZONE": self.config.zone},
            stderr=subprocess.DEVNULL,
        )
        wait_listening(int(self.config.app_upstream.rpartition(":")[2]), self.upstream)

    def stop_app(self) -> None:
        if self.upstream is not None:
            self.upstream.terminate()
            self.upstream.wait(timeout=10)
            self.upstream = None

    def stop(self) -> None:
        self.stop_app()
        self.process.terminate()
        self.process.wait(timeout=10)


def start(prefix: Path, config: WebServerConfig, *, upstream: bool = True) -> RunningNginx:
    """A VM after its first boot (launch), with the web tier's software (config's) applied as its Run Command does."""
    server = launch(prefix, config, upstream=upstream)
    applied = server.apply(config)
    assert applied.returncode == 0, applied.stderr
    wait_listening(config.http_port, server.process, prefix / "error.log")
    return server


def launch(prefix: Path, config: WebServerConfig, *, upstream: bool = True) -> RunningNginx:
    """A VM whose cloud-init has installed nginx: nginx on loopback with no site yet, and the demo app."""
    binary, modules = modern_nginx()
    prefix.chmod(0o755)
    for folder in ("/etc/nginx/sites-enabled", str(Path(ACCESS_LOG).parent)):  # what the nginx package makes
        Path(config.vm(folder)).mkdir(parents=True, exist_ok=True)
    temp_paths = "".join(
        f"  {kind}_temp_path {prefix}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"load_module {modules / 'ngx_http_js_module.so'};\n"
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  client_header_timeout 5s;\n{temp_paths}  include {config.vm('/etc/nginx/sites-enabled')}/*;\n}}\n"
    )
    process = subprocess.Popen([*_nginx(prefix, binary)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (prefix / "nginx.pid").exists():
        assert process.poll() is None and time.monotonic() < deadline, (prefix / "error.log").read_text()
        time.sleep(0.01)
    server = RunningNginx(config, binary, prefix, process, None)
    if upstream:
        server.start_app()
    return server


def _nginx(prefix: Path, binary: str) -> tuple[str, ...]:
    return (binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"))


@contextlib.contextmanager
def running(prefix: Path, **overrides: object) -> Iterator[RunningNginx]:
    """nginx and the demo app with loopback_config(prefix, **overrides), stopped on the way out."""
    server = start(prefix, loopback_config(prefix, **overrides))
    try:
        yield server
    finally:
        server.stop()


def loopback_config(prefix: Path, **overrides: object) -> WebServerConfig:
    """The software as on a VM, but on free loopback ports, with the test client as the 'NAT subnet', the VM's file
    system under `prefix`, and this nginx's commands."""
    binary, _ = modern_nginx()
    nginx = _nginx(prefix, binary)
    defaults: dict[str, object] = {
        "proxy_protocol": True,
        "trusted_proxy_cidrs": ("127.0.0.0/8",),
        "zone": "2",
        "app_upstream": f"127.0.0.1:{free_port()}",
        "http_port": free_port(),
        "https_port": free_port(),
        "local_health_port": free_port(),
        "root": str(prefix / "vm"),
        "commands": VmCommands(
            first_boot=("true",),
            install=("true",),
            refresh_packages=("true",),
            nginx_check=(*nginx, "-t"),
            nginx_reload=(*nginx, "-s", "reload"),
            systemctl=("true",),
        ),
        "settle_seconds": 0,
        "health_timeout_seconds": 10,
    }
    return WebServerConfig(**{**defaults, **overrides})  # type: ignore[arg-type]
