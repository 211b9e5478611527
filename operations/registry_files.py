"""The repository as a registry command reads it: every stack file (one the engine could not read refuses the
command, by name), the registry (an entry with a problem refuses it too), each provider's settings, and the staged
check that reads a planned change back the way the program will before anything is written."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from offline.repository import stack_config, stack_files, stack_settings
from offline.scratch import scratch_folder
from operations.exits import CannotStartError, RefusedError
from operations.transaction import Change
from pls.config import ConsumerSettings, ProviderSettings, SettingsError
from pls.config.registry import (
    REGISTRY,
    Customer,
    Registry,
    customer_name_problem,
    entry_path,
    read_entry,
    read_registry,
)


def configs(root: Path) -> dict[str, dict[str, object]]:
    """Every stack file's configuration; one the engine could not read at all refuses the command, by name."""
    configs = {}
    for stack in stack_files(root):
        try:
            configs[stack] = stack_config(stack, root)
        except SettingsError as unreadable:
            raise CannotStartError(f"{unreadable.problems[0]}") from None
    return configs


def providers(root: Path) -> list[str]:
    return [stack for stack, config in configs(root).items() if config.get("role") == "provider"]


def stacks_of_customers(root: Path) -> dict[str, list[str]]:
    """Each customer's stack files here, by the customer they deploy (their `customer` key)."""
    found: dict[str, list[str]] = {}
    for stack, config in configs(root).items():
        if config.get("role") == "consumer" and isinstance(config.get("customer"), str):
            found.setdefault(str(config["customer"]), []).append(stack)
    return found


def registry(root: Path) -> Registry:
    registry = read_registry(root)
    if registry.problems:
        raise CannotStartError(
            f"the registry ({REGISTRY}/) has problems; fix them first:\n"
            + "\n".join(f"  - {problem}" for problem in registry.problems)
        )
    return registry


def current_state(root: Path) -> list[str]:
    """The provider stacks, once the repository as it is now holds: every stack file readable, the registry's
    entries readable, every provider's settings valid. Anything else refuses the command (it is not about the
    change: "fix them first"), naming the file."""
    registry(root)
    stacks = providers(root)
    for stack in stacks:
        provider_settings(stack, root)
    return stacks


def provider_settings(stack: str, root: Path) -> ProviderSettings:
    try:
        settings = stack_settings(stack, root)
    except SettingsError as error:
        raise CannotStartError(f"Pulumi.{stack}.yaml has problems; fix them first:\n{error}") from None
    assert isinstance(settings, ProviderSettings)
    return settings


@contextlib.contextmanager
def staged(root: Path, change: Change, stacks: Sequence[str], customers: Sequence[str] = ()) -> Iterator[Path]:
    """The change applied to a staged copy, read back as the program reads it: the providers with their whole
    registry, and each customer's stack file (new, or of a customer the change is about) with its entry. Refused
    by name if any would not hold; the copy is removed when the caller is done with it."""
    stage = scratch_folder("staged")
    try:
        if (root / REGISTRY).is_dir():
            shutil.copytree(root / REGISTRY, stage / REGISTRY)
        (stage / REGISTRY).mkdir(exist_ok=True)
        for stack in [*stacks, *customers]:
            shutil.copy(root / f"Pulumi.{stack}.yaml", stage)
        for removed in change.removed:
            (stage / removed).unlink(missing_ok=True)
        for path, text in change.files.items():
            (stage / path).write_text(text)
        new = [p[len("Pulumi.") : -len(".yaml")] for p in change.files if p.startswith("Pulumi.consumer-")]
        for stack in dict.fromkeys([*stacks, *customers, *new]):
            if not (stage / f"Pulumi.{stack}.yaml").exists():
                continue  # removed by the change
            try:
                settings = stack_settings(stack, stage)
            except SettingsError as error:
                raise RefusedError(f"Pulumi.{stack}.yaml would not hold:\n{error}") from None
            if isinstance(settings, ConsumerSettings) and settings.registered is None:
                raise RefusedError(f"Pulumi.{stack}.yaml does not find its registry entry")
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_staged(root: Path, change: Change, stacks: Sequence[str], customers: Sequence[str] = ()) -> None:
    """Refused by name unless the change holds (see `staged`)."""
    with staged(root, change, stacks, customers):
        pass


def entry_of(root: Path, customer: str) -> Customer:
    """The customer's own entry, read alone: approving hundreds of customers at once reads each entry once, not
    the whole registry for each."""
    if customer_name_problem(customer):
        raise CannotStartError(f"{customer[:60]!r}: {customer_name_problem(customer)}")
    entry = read_entry(root, customer)
    if isinstance(entry, tuple):
        problems = "\n".join(f"  - {problem}" for problem in entry)
        raise CannotStartError(f"{entry_path(customer)} has problems; fix them first:\n{problems}")
    if entry is None:
        known = ", ".join(c.name for c in read_registry(root).customers[:10]) or "none"
        raise RefusedError(f"{customer} is not in the registry ({entry_path(customer)}); registered: {known}")
    return entry
