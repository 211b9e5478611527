"""Approvals as code: the provider's stack file decides on connections, keyed on the private endpoint's id."""

from __future__ import annotations

import pytest

from offline.azure import Service
from offline.engine import SimulationError, World, deploy
from offline.repository import LAB
from pls.config import SettingsError
from tests.helpers.stacks import config_for, world_with_provider

TRADEWINDS_PE = (
    "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/tradewinds-rg/providers/"
    "Microsoft.Network/privateEndpoints/tradewinds-saas-pe"
)
MALLORY_PE = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/rg/providers/"
    "Microsoft.Network/privateEndpoints/mallory-pe"
)
TRADEWINDS_MESSAGE = "Customer: Tradewinds, Order no.: 314159"
MALLORY_MESSAGE = "Customer: Tradewinds, Order no.: 314159 (please approve)"


def _requested() -> tuple[World, Service]:
    """The provider is deployed, and two endpoints have asked: Tradewinds, and Mallory who copies its message."""
    world = world_with_provider()
    service = world.azure.service_by_alias(world.deployments["provider"].outputs["alias"])
    assert service is not None
    world.azure.add_connection(service, TRADEWINDS_PE, TRADEWINDS_MESSAGE)
    world.azure.add_connection(service, MALLORY_PE, MALLORY_MESSAGE)
    return world, service


def test_declared_approval_is_applied_to_the_matching_connection() -> None:
    world, service = _requested()
    approved = [f"{TRADEWINDS_PE.upper()} | contract TW signed"]
    sim = deploy(world, "provider", config_for("provider", approvedConnections=approved, rejectedConnections=[]))
    (decision,) = sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    tradewinds = service.connections[TRADEWINDS_PE.lower()]
    assert decision.inputs["peConnectionName"] == tradewinds.name
    assert decision.inputs["serviceName"] == "saas"
    assert decision.inputs["resourceGroupName"] == sim.outputs["resourceGroupName"]
    assert decision.inputs["privateLinkServiceConnectionState"] == {
        "status": "Approved",
        "description": "contract TW signed",
        "actionsRequired": "None",
    }
    assert sim.depends_on(decision, sim.one("network:PrivateLinkService"))
    assert world.azure.service_by_alias(sim.outputs["alias"]).connections[TRADEWINDS_PE.lower()].status == "Approved"  # type: ignore[union-attr]


def test_undeclared_requests_stay_pending_and_are_listed_with_their_message() -> None:
    world, service = _requested()
    approved = [f"{TRADEWINDS_PE} | contract TW"]
    sim = deploy(world, "provider", config_for("provider", approvedConnections=approved, rejectedConnections=[]))
    mallory = service.connections[MALLORY_PE.lower()]
    assert sim.outputs["pendingConnections"] == [
        {
            "name": mallory.name,
            "privateEndpointId": MALLORY_PE,
            "status": "Pending",
            "requestMessage": MALLORY_MESSAGE,
            "linkIdentifier": mallory.link_identifier,
            "service": "saas",
        }
    ]
    decided = [d.inputs["peConnectionName"] for d in sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")]
    assert decided == [service.connections[TRADEWINDS_PE.lower()].name], "a copied message must not approve Mallory"
    assert mallory.status == "Pending"


def test_the_deployment_that_decides_shows_its_decisions_in_its_outputs() -> None:
    """No refresh needed: the provider's connections agree with what the customers see as soon as it decides."""
    world, service = _requested()
    decisions = {"approvedConnections": [f"{TRADEWINDS_PE} | contract TW"], "rejectedConnections": []}
    sim = deploy(world, "provider", config_for("provider", **decisions))
    by_endpoint = {c["privateEndpointId"]: c for c in sim.outputs["connections"]}
    assert by_endpoint[TRADEWINDS_PE]["status"] == service.connections[TRADEWINDS_PE.lower()].status == "Approved"
    assert by_endpoint[TRADEWINDS_PE]["requestMessage"] == "contract TW"  # Azure keeps the reason as description
    assert by_endpoint[MALLORY_PE]["status"] == "Pending"
    assert [c["privateEndpointId"] for c in sim.outputs["pendingConnections"]] == [MALLORY_PE]


def test_rejection_is_applied_too() -> None:
    world, service = _requested()
    rejected = [f"{MALLORY_PE} | unknown customer"]
    sim = deploy(world, "provider", config_for("provider", approvedConnections=[], rejectedConnections=rejected))
    (decision,) = sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    assert decision.inputs["privateLinkServiceConnectionState"]["status"] == "Rejected"
    assert service.connections[MALLORY_PE.lower()].status == "Rejected"
    assert [c["privateEndpointId"] for c in sim.outputs["pendingConnections"]] == [TRADEWINDS_PE]


@pytest.mark.parametrize("first_deployment", [True, False], ids=["no-service-yet", "service-without-that-endpoint"])
def test_a_decision_on_an_endpoint_that_never_asked_is_refused_before_any_change(first_deployment: bool) -> None:
    world = World(LAB) if first_deployment else world_with_provider()
    before = dict(world.deployments)
    with pytest.raises(SimulationError) as failure:
        deploy(
            world,
            "provider",
            config_for("provider", approvedConnections=[f"{TRADEWINDS_PE} | contract TW"], rejectedConnections=[]),
        )
    error = failure.value.cause
    assert isinstance(error, SettingsError) and error.keys == {"approvedConnections"}, error
    assert TRADEWINDS_PE in str(error) and "remove the entry" in str(error)
    assert [r.type for r in failure.value.registrations] == ["pulumi:pulumi:StackReference"]
    assert world.deployments == before
