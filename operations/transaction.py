"""Changes to the repository's files that happen whole or not at all, one at a time.

A registry command plans its whole change in memory, checks it, then `commit` writes it:

1. under an exclusive lock on `.pls-lock` (a second command waits for it, then is refused by name);
2. every new file is staged in `.pls-change/` and flushed to disk, then a manifest naming every file to write and
   to remove is written and renamed into place: the commit point;
3. each staged file is renamed over its target (a rename is atomic), each removed file is removed, and the journal
   goes.

A kill before the commit point leaves the files as they were (the next command discards the staging); a kill after
it leaves a manifest that the next command carries out (`recover`), so the repository ends as the change makes it.
A command that only reads the registry takes the lock shared, so it never reads a change halfway through.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from operations.exits import CannotStartError

LOCK = ".pls-lock"
JOURNAL = ".pls-change"
MANIFEST = "manifest.json"
WAIT_SECONDS = 60.0
"""How long a command waits for another that holds the lock (a registry change takes seconds; a plan of every
stack of a thousand customers, half a minute) before it is refused by name."""


@dataclass
class Change:
    """Files to write (path relative to the repository -> text), files to remove, and what to tell the user."""

    files: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def locked(root: Path, *, exclusive: bool, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """The repository's lock: exclusive to change the registry, shared to read it. Waits `wait` seconds for a
    command that holds it, then refuses naming it."""
    path = root / LOCK
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(handle, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip()
                    raise CannotStartError(
                        f"another command holds {LOCK}{f' (last change: {holder})' if holder else ''} and did not "
                        f"finish within {wait:.0f} s: wait for it (scripts/onboard, approve and offboard change the "
                        "registry one at a time) and run this again"
                    ) from None
                time.sleep(0.05)
        if exclusive:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
        yield


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _carry_out(root: Path, journal: Path) -> int:
    """The manifest's change, done; idempotent (a file already moved is not moved again). Files changed."""
    manifest = json.loads((journal / MANIFEST).read_text())
    for staged, target in manifest["write"]:
        source = journal / staged
        if source.exists():
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, root / target)
    for target in manifest["remove"]:
        (root / target).unlink(missing_ok=True)
    shutil.rmtree(journal)
    return len(manifest["write"]) + len(manifest["remove"])


def recover(root: Path) -> str | None:
    """What an interrupted change left: carried out if it reached its commit point, else discarded. Call it with
    the exclusive lock held. A sentence for the user, or None when there was nothing to do."""
    journal = root / JOURNAL
    if not journal.exists():
        return None
    if (journal / MANIFEST).is_file():
        return f"completed a change that was interrupted after it was committed ({_carry_out(root, journal)} files)"
    shutil.rmtree(journal)
    return "discarded a change that was interrupted before it was committed (the files are as they were)"


def interrupted_change(root: Path) -> str | None:
    """A committed change not yet carried out, as a reader sees it: the fix, or None."""
    if (root / JOURNAL / MANIFEST).is_file():
        return (
            f"a registry change was interrupted after it was committed ({JOURNAL}/ holds it): run "
            "scripts/onboard --recover to complete it"
        )
    return None


def commit(root: Path, change: Change) -> None:
    """Write `change` whole: staged, committed by one rename, then carried out. Call it with the exclusive lock
    held, after `recover`."""
    journal = root / JOURNAL
    journal.mkdir()
    written = []
    for number, (target, text) in enumerate(change.files.items()):
        staged = journal / f"{number}.staged"
        staged.write_text(text)
        _fsync(staged)
        written.append((staged.name, target))
    pending = journal / f"{MANIFEST}.pending"
    pending.write_text(json.dumps({"write": written, "remove": change.removed}))
    _fsync(pending)
    os.replace(pending, journal / MANIFEST)  # the commit point
    _fsync(journal)
    _carry_out(root, journal)
