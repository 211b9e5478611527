"""The stack files tests run the real program with, offline: the lab scenario's (tests/scenarios/lab), never the
repository's own, which users edit; and repositories of stack files that a test edits and commits the way users do.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from offline.engine import ROOT, World, deploy, simulate
from offline.records import Simulation
from offline.repository import LAB, deployed_config, stack_config

PROVIDER_STACK = "organization/pls-saas/provider"


def config_for(stack_file: str, **overrides: Any) -> dict[str, Any]:
    """A lab stack file's configuration as scripts/deploy deploys it, with overrides."""
    return {**deployed_config(stack_file, LAB), **overrides}


FIRST_DEPLOYMENT: dict[str, list[str]] = {"approvedConnections": [], "rejectedConnections": []}
"""A provider's first deployment decides nothing: no endpoint has asked yet (whatever its stack file says now)."""


def run_stack(stack_file: str, *, world: World | None = None, **overrides: Any) -> Simulation:
    """One run of the program for a stack file (with overrides), against `world` or an empty offline Azure."""
    config = config_for(stack_file, **overrides)
    if world is None and config["role"] == "provider":
        config = {**config, **FIRST_DEPLOYMENT, **overrides}
    return simulate(stack_file, config, world=world or World(LAB))


@functools.cache
def _provider_deployed() -> World:
    world = World(LAB)
    deploy(world, "provider", config_for("provider", **FIRST_DEPLOYMENT))
    return world


def world_with_provider() -> World:
    """An offline Azure where the provider stack file has been deployed once (nobody has connected yet).

    Deployed once per test process; each caller gets its own fork.
    """
    return _provider_deployed().fork()


# --- repositories of stack files, edited and committed as a user does -----------------------------------------

README_FILES = ("provider", "consumer")
"""The provider's stack file and the customer it ships with: what a walk that needs no new customer copies, with
that customer's registry entry. A walk copies only such files of the user's (whatever they hold now), never every
customer's (each is checked on its own in tests/test_stack_files.py), so it costs the same with three customers or
a thousand."""


def copy_stack_files(root: Path, source: Path = ROOT) -> None:
    for stack in README_FILES:
        (root / f"Pulumi.{stack}.yaml").write_text((source / f"Pulumi.{stack}.yaml").read_text())
    customer = str(stack_config("consumer", source).get("customer", ""))
    entry = source / "customers" / f"{customer}.yaml"
    if customer and entry.is_file():
        (root / "customers").mkdir(exist_ok=True)
        (root / "customers" / entry.name).write_text(entry.read_text())


def copy_lab(root: Path) -> Path:
    """Every file of the lab: its stack files and its registry."""
    root.mkdir(parents=True, exist_ok=True)
    for lab_file in LAB.glob("Pulumi.*.yaml"):
        shutil.copy(lab_file, root)
    shutil.copytree(LAB / "customers", root / "customers", dirs_exist_ok=True)
    return root


def edit(path: Path, **config: Any) -> None:
    """A user's edit of a stack file: set (or, with None, remove) keys under config:."""
    document = yaml.safe_load(path.read_text())
    for key, value in config.items():
        if value is None:
            document["config"].pop(key, None)
        else:
            document["config"][key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def repo_with(root: Path, **provider_config: Any) -> Path:
    """The lab's provider and first customer, with the provider's stack file edited."""
    copy_stack_files(root, LAB)
    edit(root / "Pulumi.provider.yaml", **{f"pls-saas:{k}": v for k, v in provider_config.items()})
    return root


def committed(root: Path) -> Path:
    """`root`'s stack files committed in a git repository of its own: HEAD is what is deployed."""
    for git in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "deployed"],
    ):
        subprocess.run(["git", *git], cwd=root, check=True, capture_output=True)
    return root
