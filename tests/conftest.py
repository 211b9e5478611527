"""Run the real program offline: stack file + Pulumi.yaml defaults, under Azure-like mocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from pls.simulate import Simulation, deployed_config, simulate

PROVIDER_STACK = "organization/pls-saas/provider"


def config_for(stack_file: str, **overrides: Any) -> dict[str, Any]:
    return {**deployed_config(stack_file), **overrides}


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
