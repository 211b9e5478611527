"""The Private Link Service: the load balancer frontend published under an alias, and the connection decisions."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import authorization, network

from components import _azure_metrics as azure_metrics
from components.log_workspace import send_diagnostics
from pls.settings import ConnectionDecision


@dataclass(frozen=True)
class PrivateLinkServiceArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    service_name: str
    """The alias prefix. The alias is the customers' contract: it changes only if the service is replaced."""
    frontend_ip_configuration_id: pulumi.Input[str]
    nat_subnet_id: pulumi.Input[str]
    nat_ip_count: int
    visibility: tuple[str, ...]
    auto_approval: tuple[str, ...]
    fqdns: tuple[str, ...] = ()
    proxy_protocol: bool = False
    protect: bool = True
    connection_decisions: tuple[ConnectionDecision, ...] = ()
    lock: bool = True
    """A CanNotDelete management lock on the service: Azure refuses to delete it (and its connections) outside
    Pulumi until the lock is removed."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """A Log Analytics workspace to send the service's metrics to, or None."""
    tags: dict[str, str] = field(default_factory=dict)


def _connection_view(connection: Any) -> dict[str, str]:
    state = connection.private_link_service_connection_state
    return {
        "name": connection.name or "",
        "privateEndpointId": connection.private_endpoint.id if connection.private_endpoint else "",
        "status": state.status if state else "",
        "requestMessage": (state.description if state else "") or "",
        "linkIdentifier": connection.link_identifier or "",
    }


def _decision_resource_name(name: str, decision: ConnectionDecision) -> str:
    endpoint_name = decision.private_endpoint_id.rsplit("/", 1)[-1]
    digest = hashlib.sha256(decision.private_endpoint_id.lower().encode()).hexdigest()[:8]
    return f"{name}-{decision.status.lower()}-{endpoint_name}-{digest}"


class PrivateLinkService(pulumi.ComponentResource):
    alias: pulumi.Output[str]
    service_id: pulumi.Output[str]
    service_name: pulumi.Output[str]
    connections: pulumi.Output[list[dict[str, str]]]
    """Every private endpoint connection as seen during this deployment, with its request message."""
    pending_connections: pulumi.Output[list[dict[str, str]]]
    """Connections waiting for a decision that the stack configuration does not make."""

    def __init__(self, name: str, args: PrivateLinkServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:provider:PrivateLinkService", name, {}, opts)
        service = network.PrivateLinkService(
            f"{name}-service",
            service_name=args.service_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            load_balancer_frontend_ip_configurations=[{"id": args.frontend_ip_configuration_id}],
            ip_configurations=[
                {
                    "name": f"nat-{index + 1}",
                    "primary": index == 0,
                    "private_ip_allocation_method": "Dynamic",
                    "private_ip_address_version": "IPv4",
                    "subnet": {"id": args.nat_subnet_id},
                }
                for index in range(args.nat_ip_count)
            ],
            visibility={"subscriptions": list(args.visibility)},
            auto_approval={"subscriptions": list(args.auto_approval)},
            fqdns=list(args.fqdns),
            enable_proxy_protocol=args.proxy_protocol,
            tags={**args.tags, "component": name},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # A new frontend means a new service and a new alias for every customer: show it as a replacement.
                replace_on_changes=["loadBalancerFrontendIpConfigurations"],
                # The service keeps its name, so the old one must go before the new one can exist.
                delete_before_replace=True,
            ),
        )
        live = network.get_private_link_service_output(
            resource_group_name=args.resource_group_name,
            service_name=service.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.connections = live.private_endpoint_connections.apply(
            lambda conns: [_connection_view(c) for c in conns or []]
        )
        decided = {d.private_endpoint_id.lower() for d in args.connection_decisions}
        self.pending_connections = self.connections.apply(
            lambda conns: [
                c for c in conns if c["status"] == "Pending" and c["privateEndpointId"].lower() not in decided
            ]
        )
        for decision in args.connection_decisions:
            network.PrivateLinkServicePrivateEndpointConnection(
                _decision_resource_name(name, decision),
                resource_group_name=args.resource_group_name,
                service_name=service.name,
                pe_connection_name=self.connections.apply(
                    functools.partial(_connection_name_for, decision=decision, service_name=args.service_name)
                ),
                private_link_service_connection_state={
                    "status": decision.status,
                    "description": decision.reason,
                    "actions_required": "None",
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.lock:
            authorization.ManagementLockByScope(
                f"{name}-lock",
                scope=service.id,
                lock_name="alias-is-the-customers-contract",
                level=authorization.LockLevel.CAN_NOT_DELETE,
                notes="Deleting this Private Link Service changes its alias for every customer. Set lockService: "
                "false in the provider stack (README, Lifecycle) to offboard a customer or tear down.",
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.diagnostics_workspace_id is not None:
            send_diagnostics(
                f"{name}-diagnostics",
                service.id,
                azure_metrics.PRIVATE_LINK_SERVICE,
                args.diagnostics_workspace_id,
                self,
            )
        self.alias = service.alias
        self.service_id = service.id
        self.service_name = service.name
        self.register_outputs(
            {
                "alias": self.alias,
                "service_id": self.service_id,
                "pending_connections": self.pending_connections,
            }
        )


def _connection_name_for(connections: list[dict[str, str]], decision: ConnectionDecision, service_name: str) -> str:
    for connection in connections:
        if connection["privateEndpointId"].lower() == decision.private_endpoint_id.lower():
            return connection["name"]
    key = "approvedConnections" if decision.status == "Approved" else "rejectedConnections"
    raise ValueError(
        f"{key}: Private Link Service {service_name} has no connection from {decision.private_endpoint_id}. "
        "Create the consumer's private endpoint first, or remove the entry."
    )
