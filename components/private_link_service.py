"""The Private Link Service: the load balancer frontend published under an alias, and the connection decisions."""

import functools
import hashlib
import operator
from typing import Any, NotRequired, TypedDict

import pulumi
from pulumi_azure_native import authorization, network

from components import _azure_metrics as azure_metrics
from components._package import formerly, type_token
from components.log_workspace import send_diagnostics

DEFAULT_LOCK_NOTES = (
    "Deleting this Private Link Service changes its alias for every customer: lift this lock through the Pulumi "
    "stack that owns it, never by hand."
)


class ConnectionDecision(TypedDict):
    """The provider's decision about one private endpoint's connection."""

    private_endpoint_id: str
    """Resource id of the consumer's private endpoint (Azure vouches for it; never decide on a request message)."""
    status: str
    """Approved or Rejected."""
    reason: str
    """Why, as the connection's description (the consumer sees it)."""


class PrivateLinkServiceArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the service."""
    location: pulumi.Input[str]
    """Azure region of the load balancer (consumers may be anywhere)."""
    service_name: str
    """Azure name of the service and prefix of its alias. The alias is the customers' contract: it changes only if
    the service is replaced."""
    frontend_ip_configuration_id: pulumi.Input[str]
    """The Standard internal load balancer frontend to publish (its backend pool must be NIC-based)."""
    nat_subnet_id: pulumi.Input[str]
    """Subnet the NAT IPs come from, with privateLinkServiceNetworkPolicies Disabled."""
    nat_ip_count: NotRequired[int]
    """NAT IP configurations, 1-8 (default 1). Removing one resets the connections NATed through it."""
    visibility: NotRequired[list[str]]
    """Subscriptions that may see the service and request a connection; ["*"]: anyone with the alias; empty (the
    default): only subscriptions with RBAC on the service."""
    auto_approval: NotRequired[list[str]]
    """Subscriptions whose connections are approved on arrival; each must be in visibility."""
    fqdns: NotRequired[list[str]]
    """FQDNs Azure attaches to the service, for consumers' DNS."""
    proxy_protocol: NotRequired[bool]
    """Send a PROXY protocol v2 header (client address, LinkID TLV 0xEE) to the backends (default false). The
    backends must expect it, health probes included."""
    protect: NotRequired[bool]
    """Protect the service (and its alias) against deletion and replacement by Pulumi (default true)."""
    connection_decisions: NotRequired[list[ConnectionDecision]]
    """Connections to approve or reject, one resource per endpoint whose status and reason change in place. A provider
    can only update a connection that exists: a decision about an endpoint that has not asked fails the deployment
    (pass only the endpoints that have). Dropping a decision deletes its resource, and Azure then removes the
    connection: the customer's endpoint is disconnected (refused while the service's lock is on)."""
    lock: NotRequired[bool]
    """A CanNotDelete management lock on the service (default true): Azure refuses to delete it (and its
    connections) outside Pulumi until the lock is removed."""
    lock_notes: NotRequired[str]
    """What the lock tells whoever meets it, e.g. how your stack lifts it."""
    diagnostics_workspace_id: NotRequired[pulumi.Input[str]]
    """A Log Analytics workspace to send the service's metrics to."""
    tags: NotRequired[dict[str, str]]
    """Tags for the service."""


def _connection_view(connection: Any) -> dict[str, str]:
    state = connection.private_link_service_connection_state
    return {
        "name": connection.name or "",
        "privateEndpointId": connection.private_endpoint.id if connection.private_endpoint else "",
        "status": state.status if state else "",
        "requestMessage": (state.description if state else "") or "",
        "linkIdentifier": connection.link_identifier or "",
    }


def _decision_resource_name(name: str, private_endpoint_id: str, role: str = "decision") -> str:
    """One resource per endpoint, whatever its status: a new decision about it updates the connection in place."""
    endpoint_name = private_endpoint_id.rsplit("/", 1)[-1]
    digest = hashlib.sha256(private_endpoint_id.lower().encode()).hexdigest()[:8]
    return f"{name}-{role}-{endpoint_name}-{digest}"


def _named_by_status_before(name: str, private_endpoint_id: str) -> list[pulumi.Input[str | pulumi.Alias]]:
    """The names this endpoint's decision had while they carried its status (pls-approved-…, pls-rejected-…): the
    engine finds a live stack's decision under either and updates it, instead of deleting it (which removes the
    customer's connection) and creating another."""
    return [pulumi.Alias(name=_decision_resource_name(name, private_endpoint_id, s)) for s in ("approved", "rejected")]


class PrivateLinkService(pulumi.ComponentResource):
    """A Private Link Service on a load balancer frontend, its connection decisions, lock and diagnostics."""

    alias: pulumi.Output[str]
    """The alias consumers connect to: the customers' contract."""
    service_id: pulumi.Output[str]
    """Resource id of the service."""
    service_name: pulumi.Output[str]
    """Azure name of the service."""
    connections: pulumi.Output[list[dict[str, str]]]
    """Every private endpoint connection as this deployment leaves it: its request message, or, once decided, the
    decision and its reason."""
    pending_connections: pulumi.Output[list[dict[str, str]]]
    """Connections waiting for a decision that the stack configuration does not make."""

    def __init__(self, name: str, args: PrivateLinkServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("PrivateLinkService"), name, {}, formerly("pls:provider:PrivateLinkService", opts))
        decisions = args.get("connection_decisions", [])
        diagnostics_workspace_id = args.get("diagnostics_workspace_id")
        service = network.PrivateLinkService(
            f"{name}-service",
            service_name=args["service_name"],
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            load_balancer_frontend_ip_configurations=[{"id": args["frontend_ip_configuration_id"]}],
            ip_configurations=[
                {
                    "name": f"nat-{index + 1}",
                    "primary": index == 0,
                    "private_ip_allocation_method": "Dynamic",
                    "private_ip_address_version": "IPv4",
                    "subnet": {"id": args["nat_subnet_id"]},
                }
                for index in range(args.get("nat_ip_count", 1))
            ],
            visibility={"subscriptions": args.get("visibility", [])},
            auto_approval={"subscriptions": args.get("auto_approval", [])},
            fqdns=args.get("fqdns", []),
            enable_proxy_protocol=args.get("proxy_protocol", False),
            tags={**args.get("tags", {}), "component": name},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.get("protect", True),
                # A new frontend means a new service and a new alias for every customer: show it as a replacement.
                replace_on_changes=["loadBalancerFrontendIpConfigurations"],
                # The service keeps its name, so the old one must go before the new one can exist.
                delete_before_replace=True,
            ),
        )
        live = network.get_private_link_service_output(
            resource_group_name=args["resource_group_name"],
            service_name=service.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        decided = {d["private_endpoint_id"].lower(): d for d in decisions}
        asked = live.private_endpoint_connections.apply(lambda conns: [_connection_view(c) for c in conns or []])
        # What each connection is once this deployment's decisions are made: the outputs agree with the customers'.
        self.connections = asked.apply(lambda conns: [_as_decided(c, decided) for c in conns])
        self.pending_connections = self.connections.apply(lambda conns: [c for c in conns if c["status"] == "Pending"])
        names = asked.apply(
            functools.partial(_connection_names, decisions=decisions, service_name=args["service_name"])
        )
        for decision in decisions:
            endpoint_id = decision["private_endpoint_id"]
            network.PrivateLinkServicePrivateEndpointConnection(
                _decision_resource_name(name, endpoint_id),
                resource_group_name=args["resource_group_name"],
                service_name=service.name,
                pe_connection_name=names.apply(operator.itemgetter(decision["private_endpoint_id"].lower())),
                private_link_service_connection_state={
                    "status": decision["status"],
                    "description": decision["reason"],
                    "actions_required": "None",
                },
                opts=pulumi.ResourceOptions(parent=self, aliases=_named_by_status_before(name, endpoint_id)),
            )
        if args.get("lock", True):
            authorization.ManagementLockByScope(
                f"{name}-lock",
                scope=service.id,
                lock_name="alias-is-the-customers-contract",
                level=authorization.LockLevel.CAN_NOT_DELETE,
                notes=args.get("lock_notes", DEFAULT_LOCK_NOTES),
                opts=pulumi.ResourceOptions(parent=self),
            )
        if diagnostics_workspace_id is not None:
            send_diagnostics(
                f"{name}-diagnostics",
                service.id,
                azure_metrics.PRIVATE_LINK_SERVICE,
                diagnostics_workspace_id,
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


def _as_decided(connection: dict[str, str], decided: dict[str, ConnectionDecision]) -> dict[str, str]:
    decision = decided.get(connection["privateEndpointId"].lower())
    if decision is None:
        return connection
    # Azure keeps the decision's reason as the connection's description, where the request message was.
    return {**connection, "status": decision["status"], "requestMessage": decision["reason"]}


def _connection_names(
    connections: list[dict[str, str]], decisions: list[ConnectionDecision], service_name: str
) -> dict[str, str]:
    """The name of each decided endpoint's connection, by the endpoint's id in lower case."""
    names = {c["privateEndpointId"].lower(): c["name"] for c in connections}
    missing = [d for d in decisions if d["private_endpoint_id"].lower() not in names]
    if missing:
        raise ValueError(
            f"Private Link Service {service_name} has no connection from "
            f"{', '.join(d['private_endpoint_id'] for d in missing)} to decide about: a provider can only decide "
            "about an endpoint that has asked. Create the consumer's private endpoint first, or drop the decision."
        )
    return names
