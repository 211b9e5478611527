"""Approvals as code: the provider's stack file decides on connections, keyed on the private endpoint's id."""

from __future__ import annotations

import pytest

from pls.simulate import SimulationError
from tests.conftest import run_stack

TRADEWINDS_PE = (
    "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/tradewinds-rg/providers/"
    "Microsoft.Network/privateEndpoints/tradewinds-saas-pe"
)
MALLORY_PE = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/rg/providers/"
    "Microsoft.Network/privateEndpoints/mallory-pe"
)
CONNECTIONS = [
    {
        "name": "tradewinds-saas-pe.4f1c",
        "privateEndpointId": TRADEWINDS_PE,
        "status": "Pending",
        "requestMessage": "Customer: Tradewinds, Order no.: 314159",
        "linkIdentifier": "536870913",
    },
    {
        "name": "mallory-pe.9a2b",
        "privateEndpointId": MALLORY_PE,
        "status": "Pending",
        "requestMessage": "Customer: Tradewinds, Order no.: 314159 (please approve)",
        "linkIdentifier": "536870914",
    },
]


def test_declared_approval_is_applied_to_the_matching_connection() -> None:
    sim = run_stack(
        "provider",
        connections=CONNECTIONS,
        approvedConnections=[f"{TRADEWINDS_PE.upper()} | contract TW-314159 signed"],
    )
    (decision,) = sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    assert decision.inputs["peConnectionName"] == "tradewinds-saas-pe.4f1c"
    assert decision.inputs["serviceName"] == "saas"
    assert decision.inputs["resourceGroupName"] == sim.outputs["resourceGroupName"]
    assert decision.inputs["privateLinkServiceConnectionState"] == {
        "status": "Approved",
        "description": "contract TW-314159 signed",
        "actionsRequired": "None",
    }
    assert sim.depends_on(decision, sim.one("network:PrivateLinkService"))


def test_undeclared_requests_stay_pending_and_are_listed_with_their_message() -> None:
    sim = run_stack(
        "provider", connections=CONNECTIONS, approvedConnections=[f"{TRADEWINDS_PE} | contract TW-314159 signed"]
    )
    assert sim.outputs["pendingConnections"] == [
        {
            "name": "mallory-pe.9a2b",
            "privateEndpointId": MALLORY_PE,
            "status": "Pending",
            "requestMessage": "Customer: Tradewinds, Order no.: 314159 (please approve)",
            "linkIdentifier": "536870914",
        }
    ]
    decided = [d.inputs["peConnectionName"] for d in sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")]
    assert decided == ["tradewinds-saas-pe.4f1c"], "the same request message must not approve another endpoint"


def test_rejection_is_applied_too() -> None:
    sim = run_stack("provider", connections=CONNECTIONS, rejectedConnections=[f"{MALLORY_PE} | unknown customer"])
    (decision,) = sim.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    assert decision.inputs["peConnectionName"] == "mallory-pe.9a2b"
    assert decision.inputs["privateLinkServiceConnectionState"]["status"] == "Rejected"
    assert [c["name"] for c in sim.outputs["pendingConnections"]] == ["tradewinds-saas-pe.4f1c"]


def test_a_decision_on_an_endpoint_that_never_asked_is_an_error() -> None:
    with pytest.raises(SimulationError) as failure:
        run_stack("provider", connections=[], approvedConnections=[f"{TRADEWINDS_PE} | contract TW-314159 signed"])
    assert "approvedConnections: Private Link Service saas has no connection from" in str(failure.value)
