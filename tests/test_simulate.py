"""The offline harness itself: what it changes in the SDK's work must change nothing the engine receives."""

from __future__ import annotations

import dataclasses

import pytest

from offline.engine import simulate
from offline.records import Registration, Simulation
from tests.helpers.stacks import config_for, world_with_provider


def _requests(simulation: Simulation) -> dict[str, Registration]:
    return {urn: dataclasses.replace(r, outputs={}) for urn, r in simulation.by_urn.items()}


@pytest.mark.parametrize("stack", ["provider", "consumer"])
def test_skipping_the_engine_side_work_sends_the_engine_the_same_registrations(stack: str) -> None:
    config = config_for(stack, approvedConnections=[]) if stack == "provider" else config_for(stack)
    world = world_with_provider()
    fast = simulate(stack, config, world=world.fork())
    sdk = simulate(stack, config, world=world.fork(), sdk_left_alone=True)

    # The same resources with the same inputs, parents, dependencies, options and alias specs (source positions,
    # which only the engine's diagnostics show, are not recorded). Only the order in
    # which asyncio lets them through differs, and with it which NIC the offline Azure gives which dynamic address
    # (the answers, not the requests, as on Azure).
    assert _requests(fast) == _requests(sdk)
    assert all(r.aliases for r in sdk.resources if r.type.startswith("azure-native:")), "API-version alias specs"
