"""The process's scratch folder: where offline work writes what it needs for a while (a registry as a revision had it,
a project with one customer's entry), removed when the process ends however it ends.

One folder per process, `pls-<pid>-…` under the system's temporary folder, removed at exit (a SIGTERM or SIGINT
ends the scripts through their normal exit path: `operations.exits`). A process killed with SIGKILL cannot remove
its own: the next command (operations.exits) removes every `pls-<pid>-…` whose process is gone.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "pls-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(parent: Path | None = None) -> None:
    """The scratch folders of processes that no longer run (killed before they could remove their own)."""
    for folder in (parent or Path(tempfile.gettempdir())).glob(f"{PREFIX}*-*"):
        owner = folder.name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def scratch() -> Path:
    """This process's scratch folder, made on first use and removed at exit."""
    parent = Path(tempfile.gettempdir())
    remove_leftovers(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def scratch_folder(name: str) -> Path:
    """A new folder inside the scratch folder (removed with it)."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch()))
