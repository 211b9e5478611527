"""How the operator's commands end: with a message that names what is wrong and the fix, an exit status a CI can gate
on, and never a traceback or a half-done change.

Exit statuses, the same for every command (docs/operations/index.md):
- 0: done;
- 1: refused: the change (or what a plan previews) would not hold, by the registry's rules, the program's or Azure's;
- 2: cannot start: a file the command needs cannot be used (named, with the problem), an argument is wrong, or the
  registry is being changed by another run;
- 130: interrupted (SIGINT, SIGTERM, SIGHUP): nothing new was started, what ran was finished or undone.

A SIGTERM or SIGHUP is turned into the same orderly exit as Ctrl-C, so every `finally` and every exit handler runs:
temporary folders are removed and the registry is left as it was, or as the change makes it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from offline.scratch import remove_leftovers

DONE, REFUSED, CANNOT_START, INTERRUPTED = 0, 1, 2, 130


class RefusedError(Exception):
    """The change would not hold: nothing has been written. Exit status 1."""


class CannotStartError(Exception):
    """A file, an argument or the registry's state keeps the command from starting: nothing has been written.
    Exit status 2."""


def cli_output(command: Sequence[str], what: str, install: str, timeout: float) -> str:
    """What an external CLI (az, gh) prints; it cannot start the command when it is not installed (`install` says
    how), does not answer within `timeout` seconds, or fails (its own words, shortened, after `what` it was asked)."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise CannotStartError(install) from None
    except subprocess.TimeoutExpired:
        raise CannotStartError(f"{what} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise CannotStartError(f"{what}: {done.stderr.strip()[:400]}")
    return done.stdout


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(command: Callable[[], int]) -> int:
    """`command`'s exit status, every refusal printed as one message on stderr, every termination signal an
    orderly exit."""
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    remove_leftovers()  # what a command killed with SIGKILL could not remove itself
    try:
        return command()
    except RefusedError as refusal:
        print(f"refused, nothing written: {refusal}", file=sys.stderr)
        return REFUSED
    except CannotStartError as problem:
        print(f"cannot start, nothing written: {problem}", file=sys.stderr)
        return CANNOT_START
    except KeyboardInterrupt as signalled:
        print(f"interrupted ({signalled or 'SIGINT'}): nothing half-done is left behind", file=sys.stderr)
        return INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
