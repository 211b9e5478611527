"""Run the real program offline: stack file + Pulumi.yaml defaults, under Azure-like mocks, over an offline Azure.

The stack files are the lab scenario's (tests/scenarios/lab), never the repository's own, which users edit.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import pls.config
from tooling import plan
from tooling.engine import Simulation, World, deploy, simulate
from tooling.repository import LAB, RepositoryWorld, deployed_config

PROVIDER_STACK = "organization/pls-saas/provider"

# A configuration a test builds by hand names the registry relatively (customerRegistry: customers): it is the
# lab's (none), never the repository's own customers/, which users fill with scripts/onboard.
pls.config.REGISTRY_BASE = LAB


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
    return simulate(stack_file, config, world=world)


@functools.cache
def _provider_deployed() -> World:
    world = World()
    deploy(world, "provider", config_for("provider", **FIRST_DEPLOYMENT))
    return world


def world_with_provider() -> World:
    """An offline Azure where the provider stack file has been deployed once (nobody has connected yet).

    Deployed once per test process; each caller gets its own fork.
    """
    return _provider_deployed().fork()


@pytest.fixture(scope="session")
def repository() -> RepositoryWorld:
    """Every stack file of the lab deployed, in the order the README's lifecycle deploys them.

    The one the README's diagram uses too: computed once per test process.
    """
    return plan.repository(LAB)


@pytest.fixture(scope="session")
def provider(repository: RepositoryWorld) -> Simulation:
    return repository.result("provider")


@pytest.fixture(scope="session")
def provider_outputs(provider: Simulation) -> dict[str, Any]:
    return provider.outputs
