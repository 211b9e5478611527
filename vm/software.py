"""Applies the web tier's software to this VM, in place: what each web VM's managed Run Command runs.

Azure runs the Run Command when the VM is created and again whenever its script changes, so a change of the nginx
site, the rate limits, the upstream, TLS or the provider's app reaches running VMs without rebuilding them. The
script is this file followed by the software it applies (pls/webserver.py renders both). Standard library only:
it runs on the VM's own python3.

In order, each step idempotent:
1. wait for the first boot's cloud-init (it installs nginx), then make sure every package is installed;
2. write the files that differ (and remove those an earlier run wrote that are no longer wanted), keeping the
   previous contents;
3. `nginx -t`: if nginx refuses the new configuration, put every file back and fail, naming this VM; nginx never
   stops serving the previous configuration;
4. when a service or the provider's app changes, drain first: /healthz answers 503, so the load balancer (and the
   Application Health extension) stop sending new connections to this VM before anything restarts; then restart
   those services and run the app's commands, and wait until the app answers again;
5. reload nginx (gracefully: open connections finish on the old workers);
6. wait until /healthz answers 200 exactly as the load balancer's probe asks it (with PROXY protocol's LOCAL header
   when it is on), then long enough for the probe to count this VM in again: only then does the deployment go on
   to the next zone. A VM that does not become healthy fails the deployment, naming it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0x00, 0x00])
"""A PROXY protocol v2 header of command LOCAL without addresses: what the load balancer's probes send."""


class StepFailedError(Exception):
    """A step that failed: the Run Command exits non-zero and the deployment fails with this message."""


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(argv: list[str], what: str, timeout: float = 900) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StepFailedError(f"{what}: {' '.join(argv)} could not run ({error})") from None
    if done.returncode != 0:
        raise StepFailedError(f"{what}: {' '.join(argv)} exited {done.returncode}\n{_tail(done.stderr or done.stdout)}")
    return done.stdout


def wait_for_first_boot(commands: dict[str, list[str]]) -> None:
    """cloud-init's first boot installs nginx; its status exits 2 when it finished with warnings only."""
    done = subprocess.run(commands["first_boot"], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode not in (0, 2):
        raise StepFailedError(
            f"cloud-init's first boot failed (cloud-init status --long tells why; without outbound access, apt "
            f"cannot install nginx):\n{_tail(done.stdout + done.stderr)}"
        )


def install(packages: list[str], commands: dict[str, list[str]]) -> None:
    """Install what is missing (apt-get installs nothing twice); the package lists are refreshed only if needed."""
    if not packages:
        return
    try:
        run([*commands["install"], *packages], "installing packages")
    except StepFailedError:
        run(commands["refresh_packages"], "refreshing the package lists")
        run([*commands["install"], *packages], "installing packages")


def _content(file: dict[str, str]) -> bytes:
    if file.get("encoding") in ("b64", "base64"):
        return base64.b64decode(file["content"])
    return file["content"].encode()


def _mode(file: dict[str, str]) -> int:
    return int(file.get("permissions", "0644"), 8)


Files = dict[str, tuple[bytes, int]]
"""Files by path: their content and mode."""


def wanted(software: dict[str, Any]) -> Files:
    return {file["path"]: (_content(file), _mode(file)) for file in software["files"]}


def on_disk(root: str, paths: list[str]) -> Files:
    found = {}
    for path in paths:
        target = Path(root + path)
        if target.is_file():
            found[path] = (target.read_bytes(), target.stat().st_mode & 0o7777)
    return found


@dataclass(frozen=True)
class Changes:
    """What applying some software changes on a VM, from the files it has and what the last run applied."""

    files: tuple[str, ...]
    """Paths written or removed."""
    restarts: tuple[str, ...]
    """Services whose files change: they restart."""
    app: bool
    """The provider's app changes (or was never applied here): its commands run."""
    drains: bool
    """The VM leaves the load balancer's pool while it changes: a service that serves restarts, or the app's
    commands run."""


def changes(software: dict[str, Any], current: Files, applied: dict[str, Any]) -> Changes:
    """What applying `software` changes where `current` are the files there are (of those it writes, and those
    the last run wrote) and `applied` is what the last run applied ({} on a new VM)."""
    want = wanted(software)
    files = sorted({path for path, file in want.items() if current.get(path) != file} | (set(current) - set(want)))
    restarts = [service for service in software["services"] if set(service["files"]) & set(files)]
    app = applied.get("app") != software["app_revision"] or bool(set(software["app_files"]) & set(files))
    return Changes(
        files=tuple(files),
        restarts=tuple(service["unit"] for service in restarts),
        app=app,
        drains=any(service["serves"] for service in restarts) or (app and bool(software["app_commands"])),
    )


def write_files(root: str, software: dict[str, Any], paths: tuple[str, ...]) -> Files:
    """Write (or remove, when no longer wanted) the files at `paths`, each atomically. Returns what each was
    before (a path that had no file is absent)."""
    want = {file["path"]: file for file in software["files"]}
    previous = on_disk(root, list(paths))
    for path in paths:
        target = Path(root + path)
        if path not in want:
            target.unlink(missing_ok=True)
            continue
        file = want[path]
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.pls-new")
        staged.write_bytes(_content(file))
        staged.chmod(_mode(file))
        if file.get("owner"):
            user, _, group = file["owner"].partition(":")
            shutil.chown(staged, user, group or None)
        os.replace(staged, target)  # atomic: nothing ever reads half a file
    return previous


def restore(root: str, paths: tuple[str, ...], previous: Files) -> None:
    for path in paths:
        target = Path(root + path)
        if path not in previous:
            target.unlink(missing_ok=True)
            continue
        content, mode = previous[path]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)


def http_get(host: str, port: int, path: str, prefix: bytes = b"") -> tuple[int, str]:
    """GET `path` from host:port, after `prefix` on the connection: (status, body), or (0, why). A plain socket,
    not urllib: the import of urllib.request (http.client, email, ssl) was a third of each run's start."""
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.sendall(prefix + f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    except OSError as error:
        return 0, str(error)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b"0"
    return (int(status) if status.isdigit() else 0), body.decode(errors="replace").strip()


def probe(port: int, path: str, proxy_protocol: bool) -> tuple[int, str]:
    """GET `path` on this VM's probe port as the load balancer sends it: (status, body), or (0, why)."""
    return http_get("127.0.0.1", port, path, PROXY_V2_LOCAL if proxy_protocol else b"")


def app_answers(upstream: str, path: str) -> tuple[bool, str]:
    """The app at `upstream` (host:port) answers `path` with a status below 500 (what nginx's /healthz asks of
    it, redirects included: nginx does not follow them either)."""
    host, _, port = upstream.rpartition(":")
    status, body = http_get(host, int(port), path)
    return 0 < status < 500, str(status or body)


def wait_until(check: Callable[[], tuple[bool, str]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ok, seen = check()
        if ok:
            return
        if time.monotonic() > deadline:
            raise StepFailedError(f"{what} within {timeout:.0f} s (last answer: {seen})")
        time.sleep(0.05)  # a reload takes tens of milliseconds, and every VM's wait holds up its zone


def applied_state(software: dict[str, Any]) -> dict[str, Any]:
    """What a run of `software` records on the VM, for the next run to compare with: the files it wrote, the units
    it enabled, the app's revision."""
    return {
        "files": list(wanted(software)),
        "units": [service["unit"] for service in software["services"]],
        "app": software["app_revision"],
    }


def apply(software: dict[str, Any]) -> str:
    """Apply `software` to this VM; what was done, on one line."""
    root, commands, health = software["root"], software["commands"], software["health"]
    state_file = Path(root + software["state_file"])
    applied = json.loads(state_file.read_text()) if state_file.is_file() else {}
    wait_for_first_boot(commands)
    install(software["packages"], commands)
    current = on_disk(root, [*wanted(software), *applied.get("files", [])])
    change = changes(software, current, applied)
    previous = write_files(root, software, change.files)
    for command in software["prepare"]:
        run(command, "preparing nginx's configuration")
    try:
        run(commands["nginx_check"], "nginx refused the new configuration")
    except StepFailedError as failed:
        restore(root, change.files, previous)
        raise StepFailedError(
            f"{failed}\nEvery file is back as it was: nginx still serves the previous configuration."
        ) from None
    drain_flag = Path(root + health["drain_flag"])
    if change.drains:
        drain_flag.parent.mkdir(parents=True, exist_ok=True)
        drain_flag.touch()
        time.sleep(health["settle_seconds"])  # the probe counts this VM out before anything restarts
    units = [service["unit"] for service in software["services"]]
    run([*commands["systemctl"], "daemon-reload"], "reloading systemd")
    for unit in sorted(set(applied.get("units", [])) - set(units)):
        run([*commands["systemctl"], "disable", "--now", unit], f"stopping {unit}")
    for unit in units:
        run([*commands["systemctl"], "enable", "--now", unit], f"starting {unit}")
    for unit in change.restarts:
        run([*commands["systemctl"], "restart", unit], f"restarting {unit}")
    if change.app:
        for command in software["app_commands"]:
            argv = command if isinstance(command, list) else ["sh", "-c", command]
            run([str(part) for part in argv], "the app's command (appCloudConfig runcmd)")
    run(commands["nginx_reload"], "reloading nginx")
    if change.drains:
        wait_until(
            lambda: app_answers(health["app_upstream"], health["app_path"]),
            health["timeout_seconds"],
            "the app did not answer",
        )
        drain_flag.unlink(missing_ok=True)

    def healthy() -> tuple[bool, str]:
        status, body = probe(health["port"], health["path"], health["proxy_protocol"])
        return status == 200, f"{status} {body}".strip()

    wait_until(healthy, health["timeout_seconds"], f"{health['path']} did not answer 200")
    time.sleep(health["settle_seconds"])  # the probe counts this VM in again before the next zone starts
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(applied_state(software)))
    how = f"drained, restarted {', '.join(change.restarts) or 'no service'}" if change.drains else "nginx reloaded"
    return f"revision {software['revision']}: changed {', '.join(change.files) or 'nothing'}; {how}; healthy"


def main(software: dict[str, Any]) -> int:
    vm = f"{socket.gethostname()} (zone {software['zone']})"
    try:
        print(f"{vm}: {apply(software)}")
    except StepFailedError as failed:
        print(f"{vm}: {failed}", file=sys.stderr)
        return 1
    return 0
