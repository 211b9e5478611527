"""What a refused configuration looks like: every problem names its key, the value, what is wrong and the fix."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from pulumi.errors import RunError
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

MAX_SHOWN = 80  # characters of a bad value quoted back in an error
RULE = "pls_rule"
"""The pydantic error type of the project's own rules: its context carries the problem and the fix."""


class _ShownEnoughError(Exception):
    """Enough has been rendered: the rest of the value is never looked at."""


def shown(value: Any) -> str:
    """A value as an error quotes it: JSON, cut short after MAX_SHOWN characters, whatever its size, depth or type.
    Rendered only as far as it is shown, so quoting a 50 MB string or a deeply nested list costs nothing."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size > MAX_SHOWN:
            raise _ShownEnoughError

    def walk(item: Any, depth: int) -> None:
        if depth > MAX_SHOWN:
            emit("...")
        elif isinstance(item, dict):
            emit("{")
            for index, (key, member) in enumerate(item.items()):
                emit(", " if index else "")
                emit(json.dumps(str(key)[:MAX_SHOWN], ensure_ascii=True) + ": ")
                walk(member, depth + 1)
            emit("}")
        elif isinstance(item, list | tuple):
            emit("[")
            for index, member in enumerate(item):
                emit(", " if index else "")
                walk(member, depth + 1)
            emit("]")
        elif isinstance(item, bool | float) or item is None:
            emit(json.dumps(item))
        elif isinstance(item, int):
            digits = item.bit_length() * 0.302  # log10(2): how many digits, without writing them
            emit(str(item) if digits < MAX_SHOWN else f"<an integer of about {int(digits):,} digits>")
        else:
            emit(json.dumps(str(item)[: MAX_SHOWN + 1], ensure_ascii=True))

    with contextlib.suppress(_ShownEnoughError):
        walk(value, 0)
    text = "".join(parts)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class Problem:
    key: str
    """The key without the project's namespace, or `<namespace>:<key>` for another namespace."""
    value: Any
    problem: str
    fix: str

    @property
    def is_about_a_file(self) -> bool:
        """Keyed on a file (or a field of one: customers/acme.yaml:service), not on a configuration key."""
        return "/" in self.key or self.key.endswith((".yaml", ".yml", ".csv"))

    def __str__(self) -> str:
        value = "" if self.value is None and self.is_about_a_file else f" = {shown(self.value)}"
        return f"{self.key}{value}: {self.problem}. Fix: {self.fix}."


class SettingsError(ValueError, RunError):
    """Every configuration problem of a stack, raised before any resource exists.

    A RunError: Pulumi prints its message, not a Python traceback.
    """

    def __init__(self, namespace: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {'' if ':' in p.key or p.is_about_a_file else namespace + ':'}{p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")

    @property
    def keys(self) -> set[str]:
        return {p.key for p in self.problems}


def refuse(problem: str, fix: str, *, hide_value: bool = False) -> PydanticCustomError:
    """The error a field's own rule raises; `hide_value` keeps a secret out of the message."""
    return PydanticCustomError(RULE, "{problem}", {"problem": problem, "fix": fix, "hide_value": hide_value})


@dataclass(frozen=True)
class Declared:
    """What the model declares about a key, as the adapter needs it to word a refusal."""

    expected: str
    """Its type in the schema's words, e.g. `integer` or `array of string`."""
    problem: str
    """What is wrong when a declared constraint (range, length, pattern, choice) refuses a value."""
    fix: str


NESTED = {
    "int_type": ("expected integer", "write a whole number"),
    "string_type": ("expected string", "write a string"),
    "bool_type": ("expected boolean", "write true or false"),
    "missing": ("required", "set it"),
    "extra_forbidden": ("unknown field", "remove it (docs/reference/configuration.md lists the fields)"),
}
"""How a field inside a key's value (an additionalServices entry's natIpCount) is refused when no rule words it."""


def _path(loc: tuple[int | str, ...]) -> str:
    """Where in a key's value a problem is: the key itself, or a field inside it, e.g. additionalServices[1].name."""
    if not any(isinstance(part, str) for part in loc[1:]):
        return str(loc[0])
    return str(loc[0]) + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])


def problems_of(error: ValidationError, values: dict[str, Any], declared: dict[str, Declared]) -> list[Problem]:
    """The one adapter from pydantic's errors to Problems: a wrong type is said once per key, in the schema's
    words; a declared constraint in the key's own; a project rule in the words it raised with; a field inside a
    key's value is named by its path."""
    found: dict[tuple[str, str], Problem] = {}
    for item in error.errors():
        key, where = str(item["loc"][0]), _path(item["loc"])
        spec, value = declared[key], values.get(key)
        context = item.get("ctx") or {}
        if item["type"] == RULE:
            problem, fix = context["problem"], context["fix"]
            value = "<hidden>" if context["hide_value"] else value
        elif where != key:
            problem, fix = NESTED.get(item["type"], (item["msg"], "see docs/reference/configuration.md"))
            value = item.get("input")
        elif item["type"].endswith("_type"):
            problem, fix = f"expected {spec.expected}", f"write a value of type {spec.expected}"
        else:
            problem, fix = spec.problem, spec.fix
        found.setdefault((where, problem), Problem(where, value, problem, fix))
    typed = {key for key, problem in found if problem.startswith("expected ") and "[" not in key}
    return [p for (key, _), p in found.items() if key not in typed or p.problem.startswith("expected ")]
