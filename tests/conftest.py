"""Fixtures shared by the test files. Helpers live in tests/helpers/stacks.py: the xdist controller, which runs no test,
loads this file too, and should not import the program to do so."""

from __future__ import annotations

import fcntl
import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from offline.file_backend import FileBackend
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


@pytest.fixture(scope="session")
def deployed_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab deployed through the fleet runner and the stand-in Pulumi CLI, once per test run: the first worker
    that needs it deploys it into this run's temporary folder, the others wait for it and read it (tests copy it)."""
    from tests.helpers.fleet import deploy_lab

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    deployed = shared / "deployed-lab"
    with open(shared / "deployed-lab.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (deployed / "ready").exists():
            shutil.rmtree(deployed, ignore_errors=True)
            deploy_lab(deployed)
            (deployed / "ready").touch()
    return deployed


@pytest.fixture
def fleet_lab(
    deployed_lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, FileBackend]]:
    """A copy of the deployed lab (checkout and file backend), the stand-in CLIs first on PATH."""
    from tests.helpers.fleet import copy_of

    with copy_of(deployed_lab, tmp_path, monkeypatch) as copied:
        yield copied
