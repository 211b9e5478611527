"""Approvals as code: the registry (and, until moved, the provider's stack file) decides on connections, keyed on the
private endpoint's id; one resource per endpoint, changed in place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from offline.azure import AzureError, Service
from offline.engine import SimulationError, World, deploy, refresh
from offline.records import Simulation
from offline.repository import LAB, deployed_config
from offline.steps import steps
from operations import commands
from operations.plan import preview_against
from tests.helpers.stacks import committed, config_for, copy_lab, edit, world_with_provider

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
def test_a_decision_on_an_endpoint_that_has_not_asked_waits_for_it_and_says_so(first_deployment: bool) -> None:
    """Azure decides only about a connection that exists: the deployment registers nothing for the decision, goes
    on with everything else, and says what it waits for; the next deployment after the endpoint asks applies it."""
    world = World(LAB) if first_deployment else world_with_provider()
    decided = config_for("provider", approvedConnections=[f"{TRADEWINDS_PE} | contract TW"], rejectedConnections=[])
    waiting = deploy(world, "provider", decided)
    assert waiting.of_type("network:PrivateLinkServicePrivateEndpointConnection") == []
    assert f"decision Approved waits for {TRADEWINDS_PE}: applied once its private endpoint asks" in waiting.warnings
    service = world.azure.service_by_alias(waiting.outputs["alias"])
    assert service is not None
    world.azure.add_connection(service, TRADEWINDS_PE, TRADEWINDS_MESSAGE)
    applied = deploy(world, "provider", decided)
    (decision,) = applied.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    assert decision.inputs["privateLinkServiceConnectionState"]["status"] == "Approved"
    assert service.connections[TRADEWINDS_PE.lower()].status == "Approved"
    assert not any("waits for" in warning for warning in applied.warnings)


# --- decisions in the registry: one resource per endpoint, changed in place; dropping one removes the connection ---


def _decide(project: Path, status: str, reason: str) -> None:
    """scripts/approve (--reject) for tradewinds' endpoint, as a team runs it."""
    argv = ["approve", "tradewinds", "--reason", reason] + (["--reject"] if status == "Rejected" else [])
    assert commands.main(argv, project) == 0


def _approved(project: Path) -> tuple[World, Simulation, Service]:
    """The lab deployed from `project`, tradewinds' endpoint asked and approved with scripts/approve."""
    world = World(project)
    deploy(world, "provider", config_for("provider"))
    deploy(world, "consumer", config_for("consumer"))
    _decide(project, "Approved", "contract TW")
    approved = deploy(world, "provider", config_for("provider"))
    service = world.azure.service_by_alias(approved.outputs["alias"])
    assert service is not None and service.connections[TRADEWINDS_PE.lower()].status == "Approved"
    return world, approved, service


def test_a_changed_decision_updates_its_connection_in_place_and_the_plan_says_update(tmp_path: Path) -> None:
    project = copy_lab(tmp_path)
    world, approved, service = _approved(project)
    link = service.connections[TRADEWINDS_PE.lower()].link_identifier
    committed(project)
    _decide(project, "Rejected", "contract ended")
    (line,) = [line for line in preview_against("provider", "HEAD", project).lines if "Connection" in line]
    assert line.startswith("  ~  update  pls-decision-tradewinds-saas-pe-")
    assert line.endswith("(PrivateLinkServicePrivateEndpointConnection): privateLinkServiceConnectionState")
    rejected = deploy(world, "provider", config_for("provider"))
    changed = [(s.op, s.resource.type.rsplit(":", 1)[-1], s.changed) for s in steps(approved, rejected)]
    assert [c for c in changed if c[0] != "same"] == [
        ("update", "PrivateLinkServicePrivateEndpointConnection", ("privateLinkServiceConnectionState",))
    ]
    connection = service.connections[TRADEWINDS_PE.lower()]  # the same connection, decided again
    assert (connection.status, connection.description, connection.link_identifier) == (
        "Rejected",
        "contract ended",
        link,
    )
    assert refresh(world, "consumer").outputs["connectionState"] == "Rejected"


def test_a_decision_a_live_stack_holds_under_its_status_name_is_updated_not_deleted(tmp_path: Path) -> None:
    """Stacks deployed before the decision was one resource per endpoint hold it as pls-approved-… (or
    pls-rejected-…): the engine finds it through the aliases and updates it; deleting it would remove the
    customer's connection."""
    project = copy_lab(tmp_path)
    world, approved, service = _approved(project)
    (decision,) = approved.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    old_name = decision.name.replace("-decision-", "-approved-")
    as_it_was = dataclasses.replace(decision, name=old_name, urn=decision.urn.replace(decision.name, old_name))
    previous = dataclasses.replace(approved, resources=[as_it_was if r is decision else r for r in approved.resources])
    world.deployments["provider"] = previous
    _decide(project, "Rejected", "contract ended")
    again = deploy(world, "provider", config_for("provider"))
    moves = {(s.op, s.resource.type.rsplit(":", 1)[-1]) for s in steps(previous, again) if s.op != "same"}
    assert moves == {("update", "PrivateLinkServicePrivateEndpointConnection")}
    assert service.connections[TRADEWINDS_PE.lower()].status == "Rejected"


def test_dropping_a_decision_removes_the_connection_as_azure_does_and_the_lock_refuses_it(tmp_path: Path) -> None:
    project = copy_lab(tmp_path)
    world, _, service = _approved(project)
    entry = project / "customers" / "tradewinds.yaml"
    decided = entry.read_text()
    undecided = yaml.safe_dump({**yaml.safe_load(decided), "decisions": []})
    committed(project)
    entry.write_text(undecided)
    refused = preview_against("provider", "HEAD", project)
    assert refused.refused and "ScopeLocked" in refused.lines[0], "the service's lock covers its connections"
    with pytest.raises(SimulationError) as locked:
        deploy(world, "provider", deployed_config("provider", project))
    assert isinstance(locked.value.cause, AzureError) and locked.value.cause.code == "ScopeLocked"
    left = world.azure.service_named(service.resource_group, service.name)  # Azure as the refusal left it
    assert left is not None
    service = left
    assert service.connections[TRADEWINDS_PE.lower()].status == "Approved", "a refused deployment changes nothing"

    entry.write_text(decided)  # the lock is lifted in a deployment of its own first, as offboarding does
    edit(project / "Pulumi.provider.yaml", **{"pls-saas:lockService": False})
    deploy(world, "provider", deployed_config("provider", project))
    committed(project)
    entry.write_text(undecided)
    (line,) = [line for line in preview_against("provider", "HEAD", project).lines if "Connection" in line]
    assert line.startswith("  -  delete  pls-decision-tradewinds-saas-pe-")
    assert f"Azure removes the connection of {TRADEWINDS_PE}: the customer's endpoint is Disconnected" in line
    deploy(world, "provider", deployed_config("provider", project))
    assert TRADEWINDS_PE.lower() not in service.connections
    assert refresh(world, "consumer").outputs["connectionState"] == "Disconnected"
