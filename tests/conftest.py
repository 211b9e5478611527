"""Run the real program offline: stack file + Pulumi.yaml defaults, under Azure-like mocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from pls.simulate import Simulation, offline_ssh_public_key, simulate, stack_config

PROVIDER_STACK = "organization/pls-saas/provider"


def config_for(stack_file: str, **overrides: Any) -> dict[str, Any]:
    """The stack file's configuration as deployed: scripts/deploy adds the user's SSH key when the file has none."""
    config = stack_config(stack_file)
    config.setdefault("sshPublicKey", offline_ssh_public_key())
    config.update(overrides)
    return config


def run_stack(
    stack_file: str,
    *,
    provider_outputs: Mapping[str, Any] | None = None,
    connections: Iterable[Mapping[str, str]] = (),
    **overrides: Any,
) -> Simulation:
    outputs = {PROVIDER_STACK: provider_outputs} if provider_outputs is not None else {}
    return simulate(stack_file, config_for(stack_file, **overrides), stack_outputs=outputs, connections=connections)


@pytest.fixture(scope="session")
def provider() -> Simulation:
    return run_stack("provider")


@pytest.fixture(scope="session")
def provider_outputs(provider: Simulation) -> dict[str, Any]:
    return provider.outputs
