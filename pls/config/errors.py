"""What a refused configuration looks like: every problem names its key, the value, what is wrong and the fix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulumi.errors import RunError
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

MAX_SHOWN = 80  # characters of a bad value quoted back in an error
RULE = "pls_rule"
"""The pydantic error type of the project's own rules: its context carries the problem and the fix."""


def shown(value: Any) -> str:
    """A value as an error quotes it: JSON, cut short, whatever its size, depth or type."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=True)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} nested too deep to show>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class Problem:
    key: str
    """The key without the project's namespace, or `<namespace>:<key>` for another namespace."""
    value: Any
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key} = {shown(self.value)}: {self.problem}. Fix: {self.fix}."


class SettingsError(ValueError, RunError):
    """Every configuration problem of a stack, raised before any resource exists.

    A RunError: Pulumi prints its message, not a Python traceback.
    """

    def __init__(self, namespace: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {'' if ':' in p.key else namespace + ':'}{p}" for p in problems)
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


def problems_of(error: ValidationError, values: dict[str, Any], declared: dict[str, Declared]) -> list[Problem]:
    """The one adapter from pydantic's errors to Problems: a wrong type is said once per key, in the schema's
    words; a declared constraint in the key's own; a project rule in the words it raised with."""
    found: dict[tuple[str, str], Problem] = {}
    for item in error.errors():
        key = str(item["loc"][0])
        spec, value = declared[key], values.get(key)
        context = item.get("ctx") or {}
        if item["type"] == RULE:
            problem, fix = context["problem"], context["fix"]
            value = "<hidden>" if context["hide_value"] else value
        elif item["type"].endswith("_type"):
            problem, fix = f"expected {spec.expected}", f"write a value of type {spec.expected}"
        else:
            problem, fix = spec.problem, spec.fix
        found.setdefault((key, problem), Problem(key, value, problem, fix))
    typed = {key for key, problem in found if problem.startswith("expected ")}
    return [p for (key, _), p in found.items() if key not in typed or p.problem.startswith("expected ")]
