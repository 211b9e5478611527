"""The repository's files as the program and the scripts read them: bounded, so that no file can make them hang,
exhaust memory or fail with a traceback.

Every read has a size limit; text is UTF-8 (a byte order mark is accepted); a link is refused (it could lead out
of the repository, and its target's content would be quoted back); YAML is read without anchors and aliases (an
alias bomb expands a kilobyte into gigabytes), without duplicate keys (the second silently wins otherwise), at most
MAX_NESTING levels deep. A refusal is a `FileRefusedError` naming the file, the problem and the fix, never quoting more
of the file than a position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pls.config.errors import Problem

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: a provider reads a thousand entries."""
MAX_NESTING = 16
"""Levels of mappings and lists in a YAML file: the deepest the project's files go is four."""
KIB = 1024


class FileRefusedError(Exception):
    """A file the program or a script cannot use, as a Problem keyed on the file's path."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        super().__init__(f"{where}: {problem}. Fix: {fix}.")
        self.problem = Problem(where, None, problem, fix)


def read_text(path: Path, *, where: str, limit: int) -> str:
    """The file's text: a regular file (not a link), at most `limit` bytes, UTF-8."""
    if path.is_symlink():
        raise FileRefusedError(where, "is a link", "replace it with the file itself, inside the repository")
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FileRefusedError(where, "is not a file", "make it a file, or remove it")
        if size > limit:
            raise FileRefusedError(where, f"is {size:,} bytes, more than the {limit:,} allowed", "split or shorten it")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise FileRefusedError(
            where, f"cannot be read ({error.strerror})", "check the file and its permissions"
        ) from None
    if len(data) > limit:
        raise FileRefusedError(where, f"grew past the {limit:,} bytes allowed while it was read", "try again")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileRefusedError(
            where, f"is not UTF-8 (byte {error.start} cannot be decoded)", "save it as UTF-8"
        ) from None


@dataclass
class _Mapping:
    keys: set[str]
    expecting_key: bool = True


def _check_events(text: str, where: str) -> None:
    """Anchors, aliases, duplicate or complex keys and deep nesting refused, in one pass over libyaml's events."""
    open_collections: list[_Mapping | None] = []  # None: a sequence
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        line = f"line {event.start_mark.line + 1}" if event.start_mark else "somewhere"
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise FileRefusedError(where, f"uses a YAML anchor or alias ({line})", "write each value out in full")
        if isinstance(event, yaml.CollectionEndEvent):
            open_collections.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        enclosing = open_collections[-1] if open_collections else None
        if enclosing is not None:
            if enclosing.expecting_key:
                if not isinstance(event, yaml.ScalarEvent):
                    raise FileRefusedError(where, f"has a key that is not a plain value ({line})", "use a name as key")
                if event.value in enclosing.keys:
                    raise FileRefusedError(where, f"sets {event.value[:40]!r} twice ({line})", "keep one of them")
                enclosing.keys.add(event.value)
            enclosing.expecting_key = not enclosing.expecting_key
        if isinstance(event, yaml.CollectionStartEvent):
            open_collections.append(_Mapping(set()) if isinstance(event, yaml.MappingStartEvent) else None)
            if len(open_collections) > MAX_NESTING:
                raise FileRefusedError(where, f"nests deeper than {MAX_NESTING} levels ({line})", "flatten it")


def load_yaml(text: str, *, where: str) -> Any:
    """The YAML document in `text` (None for an empty one), refused by name if it cannot be read as plain data."""
    try:
        _check_events(text, where)
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = str(getattr(error, "problem", None) or "cannot be parsed").split("\n")[0][:120]
        raise FileRefusedError(where, f"is not valid YAML: {what}{at}", "fix its syntax") from None


def read_yaml(path: Path, *, where: str, limit: int) -> Any:
    return load_yaml(read_text(path, where=where, limit=limit), where=where)


def directory_problem(path: Path, *, where: str) -> FileRefusedError | None:
    """Why `path` cannot be a folder of the repository's data (a link, a file), or None (a folder, or absent)."""
    if path.is_symlink():
        return FileRefusedError(where, "is a link", "make it a folder of the repository")
    if os.path.exists(path) and not path.is_dir():
        return FileRefusedError(where, "is not a folder", "move the file away: this name is the folder's")
    return None
