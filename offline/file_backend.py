"""Pulumi's self-managed file backend (`PULUMI_BACKEND_URL=file://<dir>`) as the stand-in CLIs keep it: where
`offline/pulumi_cli.py` records each stack and `offline/az_cli.py` finds the Azure those stacks deployed.

The layout is the CLI's own for a project-scoped backend: a stack's record in `.pulumi/stacks/<project>/<stack>.json`
(here: its update history and outputs), an update's lock in `.pulumi/locks/<organization>/<project>/<stack>/`. Beside
them, what only the stand-ins keep: the offline world (Azure and every stack's last deployment, as offline/engine.py
models them) in `.pulumi/offline-world.pickle`, written by the stand-in itself and read only by it; the faults a test
or the benchmark asks for in `.pulumi/offline-faults.json`; and one line per command in `.pulumi/offline-calls.jsonl`.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import pickle
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offline.engine import World

ORGANIZATION = "organization"
"""What the file backend calls every stack's organization."""
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How `pulumi stack history --json` writes times (pulumi.automation reads them with this format)."""


class BackendError(Exception):
    """What the CLI prints after `error: ` and exits 255 with."""


def now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class FileBackend:
    directory: Path
    project: str

    @classmethod
    def from_environment(cls, project: str) -> FileBackend:
        url = os.environ.get("PULUMI_BACKEND_URL", "")
        if not url.startswith("file://"):
            raise BackendError(
                f"PULUMI_BACKEND_URL is {url or 'not set'}: this stand-in imitates the file backend only "
                "(file://<directory>)"
            )
        return cls(Path(url.removeprefix("file://")).expanduser(), project)

    @property
    def state(self) -> Path:
        return self.directory / ".pulumi"

    def record_path(self, stack: str) -> Path:
        return self.state / "stacks" / self.project / f"{stack}.json"

    def exists(self, stack: str) -> bool:
        return self.record_path(stack).is_file()

    def record(self, stack: str) -> dict[str, Any]:
        if not self.exists(stack):
            raise BackendError(f"no stack named '{stack}' found")
        loaded: dict[str, Any] = json.loads(self.record_path(stack).read_text())
        return loaded

    def write_record(self, stack: str, record: dict[str, Any]) -> None:
        _replace(self.record_path(stack), json.dumps(record, indent=1).encode())

    def init(self, stack: str) -> None:
        if self.exists(stack):
            raise BackendError(f"stack '{ORGANIZATION}/{self.project}/{stack}' already exists")
        self.write_record(stack, {"history": [], "outputs": {}})

    # --- an update's lock, as the file backend takes it ------------------------------------------------------

    def _locks(self, stack: str) -> Path:
        return self.state / "locks" / ORGANIZATION / self.project / stack

    @contextlib.contextmanager
    def update_lock(self, stack: str) -> Iterator[None]:
        """The stack's lock for one update: refused, as the CLI refuses it, while another holds one."""
        folder = self._locks(stack)
        folder.mkdir(parents=True, exist_ok=True)
        held = sorted(folder.glob("*.json"))
        if held:
            holders = "\n".join(f"  file://{path}: {_holder(path)}" for path in held)
            raise BackendError(
                f"the stack is currently locked by {len(held)} lock(s). Either wait for the other process(es) to "
                f"end or delete the lock file with `pulumi cancel`.\n{holders}"
            )
        mine = folder / f"{uuid.uuid4()}.json"
        mine.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "username": getpass.getuser(),
                    "hostname": socket.gethostname(),
                    "timestamp": now(),
                }
            )
        )
        try:
            yield
        finally:
            mine.unlink(missing_ok=True)

    # --- the offline world ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def world(self, project_dir: Path, *, writing: bool) -> Iterator[World]:
        """The offline Azure and every stack's last deployment: shared to read, exclusive to change (then saved
        whole, or not at all when the block raises)."""
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / "offline-world.pickle"
        with open(self.state / "offline-world.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX if writing else fcntl.LOCK_SH)
            from offline.engine import World  # the engine only for the commands that run the program

            kept = _KEPT.get(path)
            if kept is not None and kept[0] == _identity(path):
                world = kept[1]  # this process's own copy: the warm engine's fork of what it kept
            else:  # trusted: the stand-in wrote it, in a folder only the test or benchmark that made it uses
                world = pickle.loads(path.read_bytes()) if path.exists() else World(project_dir, project=self.project)
            world.project_dir = project_dir
            yield world
            if writing:
                _replace(path, pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL))

    def keep_world(self) -> None:
        """The world in this process's memory, read again only when its file has been replaced: the warm engine
        keeps it, so that each command it forks starts with it instead of reading tens of megabytes."""
        path = self.state / "offline-world.pickle"
        with open(self.state / "offline-world.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_SH)
            identity = _identity(path)
            if identity is not None and (path not in _KEPT or _KEPT[path][0] != identity):
                _KEPT.clear()  # one world at a time: the engine serves one run after another
                _KEPT[path] = (identity, pickle.loads(path.read_bytes()))

    def seed(self, world: World, stacks: dict[str, dict[str, Any]]) -> None:
        """A backend where `stacks` (name -> outputs) are deployed in `world`, as if each had had one update: what the
        benchmark starts from (a thousand updates through the stand-in would take it an hour)."""
        self.state.mkdir(parents=True, exist_ok=True)
        _replace(self.state / "offline-world.pickle", pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL))
        for stack, outputs in stacks.items():
            update = {"version": 1, "kind": "update", "startTime": now(), "endTime": now(), "message": "seeded"}
            update |= {"environment": {}, "config": {}, "result": "succeeded", "resourceChanges": {}}
            self.write_record(stack, {"history": [update], "outputs": outputs})

    # --- what the tests and the benchmark ask of it ------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        path = self.state / "offline-faults.json"
        loaded: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return loaded

    def set_faults(self, faults: dict[str, Any]) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        _replace(self.state / "offline-faults.json", json.dumps(faults).encode())

    def take_throttling(self, stack: str) -> bool:
        """True when the faults say Azure throttles this stack's next update (each answer uses one up)."""
        with open(self.state / "offline-faults.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            faults = self.faults()
            left = int(faults.get("throttled", {}).get(stack, 0))
            if left > 0:
                faults["throttled"][stack] = left - 1
                self.set_faults(faults)
            return left > 0

    def log_call(self, call: dict[str, Any]) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "offline-calls.jsonl", "a") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.write(json.dumps(call) + "\n")

    def calls(self) -> list[dict[str, Any]]:
        path = self.state / "offline-calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


_KEPT: dict[Path, tuple[tuple[int, int, int], World]] = {}
"""The world a warm engine keeps, by its file, with the file's identity when it was read."""


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced (each save is a new file, moved into place)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def _holder(path: Path) -> str:
    try:
        lock = json.loads(path.read_text())
        return f"created by {lock['username']}@{lock['hostname']} (pid {lock['pid']}) at {lock['timestamp']}"
    except (OSError, ValueError, KeyError):
        return "unreadable"


def _replace(path: Path, data: bytes) -> None:
    """Written whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    scratch.write_bytes(data)
    os.replace(scratch, path)
