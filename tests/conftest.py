"""Fixtures shared by the test files. Helpers live in tests/helpers/stacks.py: the xdist controller, which runs no test,
loads this file too, and should not import the program to do so."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from offline.records import Simulation
    from offline.repository import RepositoryWorld


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the collection imported (the Pulumi SDK and azure-native's modules, a few hundred thousand objects)
    lives as long as the test process: frozen, the garbage collector stops walking it again at every full
    collection, and at the exit of each worker."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def repository() -> RepositoryWorld:
    """Every stack file of the lab deployed, in the order the README's lifecycle deploys them.

    The one the README's diagram uses too: computed once per test process.
    """
    from offline.repository import LAB, deployed_once

    return deployed_once(LAB)


@pytest.fixture(scope="session")
def provider(repository: RepositoryWorld) -> Simulation:
    return repository.result("provider")


@pytest.fixture(scope="session")
def provider_outputs(provider: Simulation) -> dict[str, Any]:
    return provider.outputs
