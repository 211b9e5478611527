"""The parts of the Pulumi SDK (and of asyncio) that are not public API and that the program or the offline engine
use: a Pulumi upgrade that renames or reshapes one fails here first, by name, before any other test."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pulumi
import pytest

from offline.engine import ROOT, World, simulate
from offline.sdk_shortcuts import SDK_INTERNALS
from pls.sdk import wait_for


def _resolved(dotted: str) -> Any:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", SDK_INTERNALS)
def test_every_sdk_internal_the_offline_engine_touches_is_still_there(dotted: str) -> None:
    assert _resolved(dotted) is not None


def test_the_offline_engines_readme_lists_exactly_the_internals_it_touches() -> None:
    readme = (ROOT / "offline" / "README.md").read_text()
    assert set(re.findall(r"`((?:pulumi|asyncio)\.[\w.]+)`", readme)) == set(SDK_INTERNALS)


def test_wait_for_is_the_sdks_synchronous_wait_and_returns_what_a_running_program_awaits() -> None:
    assert list(inspect.signature(_resolved("pulumi.runtime.sync_await._sync_await")).parameters) == ["awaitable"]
    seen: list[int | None] = []

    def program() -> None:
        # What pls/contract.py and pls/deployed.py do: wait for an Output's value before registering anything.
        seen.append(wait_for(pulumi.Output.from_input(41).apply(lambda value: value + 1).future()))

    simulate("provider", {"role": "provider"}, program=program, world=World(ROOT))
    assert seen == [42]
