"""A checkout and a state backend for the fleet runner's tests: the Automation API drives the stand-in Pulumi CLI
(offline/bin/pulumi), which answers from the offline engine's run of the real program."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from offline.engine import ROOT
from offline.file_backend import FileBackend
from offline.repository import offline_ssh_public_key, stack_settings
from operations import commands, fleet
from operations.fleet_report import Run, markdown, read_runs
from pls.config import ConsumerSettings, load_schema
from tests.helpers.stacks import committed, copy_lab, edit

STAND_INS = ROOT / "offline" / "bin"


def checkout(root: Path) -> Path:
    """The lab as a project the CLI runs in (Pulumi.yaml, the policy pack's folder), committed."""
    copy_lab(root)
    shutil.copy(ROOT / "Pulumi.yaml", root)
    (root / "policy").mkdir()
    shutil.copy(ROOT / "policy" / "PulumiPolicy.yaml", root / "policy")
    return committed(root)


def commit_all(root: Path, message: str = "change") -> None:
    for git in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message]):
        subprocess.run(["git", *git], cwd=root, check=True, capture_output=True)


@contextmanager
def stand_ins(monkeypatch: pytest.MonkeyPatch, backend: Path) -> Iterator[FileBackend]:
    """The stand-in CLIs first on PATH, a file backend in `backend`, the VMs' SSH key as a workflow gives it."""
    monkeypatch.setenv("PATH", f"{STAND_INS}:{os.environ['PATH']}")
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{backend}")
    monkeypatch.setenv("SSH_PUBLIC_KEY", offline_ssh_public_key())
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    yield FileBackend(backend, load_schema().project)


def run_fleet(root: Path, *argv: str) -> tuple[int, Run]:
    """scripts/fleet with `argv` in `root`: its exit status and its results (--json)."""
    results = root.parent / f"results-{len(list(root.parent.glob('results-*')))}.json"
    status = fleet.main([*argv, "--json", str(results), "--backoff", "0.2"], root)
    (run,) = read_runs([results]) if results.exists() else [Run(argv[0], [])]
    return status, run


def phases_and_stacks(run: Run) -> list[tuple[str, str]]:
    return [(r.phase, r.stack) for r in run.results]


def updates(backend: FileBackend, command: str = "up", since: int = 0) -> list[dict[str, object]]:
    """The stand-in's calls of `command` (from its `since`-th call on), in the order they started."""
    calls = backend.calls()[since:]
    return sorted((c for c in calls if c["command"] == command), key=lambda c: float(str(c["start"])))


def most_at_once(calls: list[dict[str, object]]) -> int:
    """The most calls that ran at the same moment."""
    edges = sorted([(float(str(c["start"])), 1) for c in calls] + [(float(str(c["end"])), -1) for c in calls])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def deploy_lab(base: Path) -> Path:
    """The lab deployed once through the runner (`scripts/fleet up --all`) in `base` (repo/ and backend/), its stack
    files committed after it (the runner wrote sshPublicKey into them, as scripts/deploy does)."""
    root = checkout(base / "repo")
    with pytest.MonkeyPatch.context() as patch, stand_ins(patch, base / "backend"):
        status, run = run_fleet(root, "up", "--all")
    assert status == 0, markdown(run)
    assert phases_and_stacks(run) == [
        ("providers", "provider"),
        ("customers", "consumer"),
        ("customers", "consumer-contoso"),
    ]
    commit_all(root, "deployed")
    return base


@contextmanager
def copy_of(deployed: Path, into: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FileBackend]]:
    """A copy of a deployed checkout and its backend, with the stand-ins on PATH and an empty calls log."""
    shutil.copytree(deployed / "repo", into / "repo")
    shutil.copytree(deployed / "backend", into / "backend")
    with stand_ins(monkeypatch, into / "backend") as backend:
        (backend.state / "offline-calls.jsonl").unlink()
        yield into / "repo", backend


def connection(backend: FileBackend, root: Path, endpoint: str) -> tuple[str, str] | None:
    """The status and description of `endpoint`'s connection in the offline Azure, if it has one."""
    with backend.world(root, writing=False) as world:
        for service in world.azure.state.services.values():
            if endpoint.lower() in service.connections:
                found = service.connections[endpoint.lower()]
                return found.status, found.description
    return None


def endpoint_of(root: Path, stack: str) -> str:
    settings = stack_settings(stack, root)
    assert isinstance(settings, ConsumerSettings)
    return settings.private_endpoint_id


def another_tenant_approved(root: Path, backend: FileBackend) -> str:
    """Fabrikam, a customer that runs its own side, creates its endpoint in its own tenant; the provider approves it
    (scripts/approve) and, so that Azure lets the customer delete its endpoint later, runs without the service's
    lock (ScopeLocked otherwise); committed, not deployed. The endpoint's id."""
    endpoint = endpoint_of(root, "consumer-fabrikam")
    with backend.world(root, writing=True) as world:
        (service,) = world.azure.state.services.values()
        world.azure.add_connection(service, endpoint, "Fabrikam, contract FB-2718")
    assert commands.main(["approve", "fabrikam", "--endpoint-id", endpoint, "--reason", "FB-2718"], root) == 0
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:lockService": False})
    commit_all(root)
    return endpoint
