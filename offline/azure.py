"""A stateful offline Azure (a test double, a model of Azure and nothing else): what persists between
deployments of different stacks. The mocks of offline/arm_mocks.py ask it what Azure would answer; the Pulumi
engine's part (state, previous deployments, replacements) is offline/engine.py's.

- a Private Link Service keeps its alias, NAT IP count and frontend across deployments; it gains or loses NAT
  IPs in place (never its last), and it cannot be deleted while it has connections;
- a consumer's private endpoint creates a connection on the service its alias names, with the consumer's
  subscription, request message and a LinkID. Azure's rules decide its fate: a subscription outside the
  service's visibility cannot create it; an auto-approved one is Approved; anything else is Pending until
  the provider decides;
- a service may have 1,000 connections; a load balancer frontend serves one service;
- deleting a private endpoint connection (a provider's decision dropped from its program) removes the connection:
  the customer's endpoint is Disconnected until it is created again;
- a CanNotDelete lock refuses the deletion of what it covers (ScopeLocked);
- the subnets of a customer's own VNet exist before any stack refers to them.

Never imported by the program: it exists only for the simulation, the plan and the tests.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pls.azure_rules import MAX_CONNECTIONS

FIRST_LINK_ID = 536870913  # LinkIDs Azure hands out look like this (0x20000001)


class AzureError(Exception):
    """What Azure Resource Manager answers to a request it refuses: a code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Connection:
    name: str
    private_endpoint_id: str
    subscription_id: str
    request_message: str
    link_identifier: str
    status: str
    description: str


@dataclass
class Service:
    id: str
    name: str
    resource_group: str
    location: str
    alias: str
    nat_ip_count: int
    frontend_ids: list[str]
    visibility: list[str]
    auto_approval: list[str]
    connections: dict[str, Connection] = field(default_factory=dict)
    """By the private endpoint's id, lowercased."""

    def view(self) -> dict[str, Any]:
        """The service as `getPrivateLinkService` returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "alias": self.alias,
            "ipConfigurations": [{"name": f"nat-{i + 1}"} for i in range(self.nat_ip_count)],
            "loadBalancerFrontendIpConfigurations": [{"id": f} for f in self.frontend_ids],
            "privateEndpointConnections": [
                {
                    "name": c.name,
                    "privateEndpoint": {"id": c.private_endpoint_id},
                    "privateLinkServiceConnectionState": {"status": c.status, "description": c.description},
                    "linkIdentifier": c.link_identifier,
                }
                for c in self.connections.values()
            ],
        }


@dataclass
class _State:
    services: dict[str, Service] = field(default_factory=dict)
    """By the service's resource id, lowercased."""
    endpoint_states: dict[str, str] = field(default_factory=dict)
    """Connection status of endpoints whose alias no offline service has (a provider outside this world)."""
    disconnected: set[str] = field(default_factory=set)
    """Endpoints (ids, lowercased) whose connection the provider deleted: Disconnected until they are recreated."""
    locks: set[str] = field(default_factory=set)
    """Scopes (resource ids, lowercased) with a CanNotDelete lock: Azure refuses to delete them or their children."""
    next_link_id: int = FIRST_LINK_ID
    generation: int = 0
    """Bumped when a service is deleted, so a service created again under the same name gets a new alias."""

    def copy(self) -> _State:
        """An independent copy, field by field (every deployment takes one: a deep copy grows with the number of
        connections, and so a repository's deployment with the square of its customers)."""
        services = {
            key: dataclasses.replace(
                service,
                frontend_ids=list(service.frontend_ids),
                visibility=list(service.visibility),
                auto_approval=list(service.auto_approval),
                connections={e: dataclasses.replace(c) for e, c in service.connections.items()},
            )
            for key, service in self.services.items()
        }
        return dataclasses.replace(
            self,
            services=services,
            endpoint_states=dict(self.endpoint_states),
            disconnected=set(self.disconnected),
            locks=set(self.locks),
        )


class OfflineAzure:
    previewing = False
    """A `pulumi preview` sends Azure no request: what only a request meets (a subscription outside the service's
    visibility, a full service) is not refused until `pulumi up`."""

    def __init__(self) -> None:
        self.state = _State()
        self.existing_subnets: dict[str, str] = {}
        """Subnets no stack manages (a customer's own VNet): resource id, lower case -> address prefix."""

    def copy(self) -> OfflineAzure:
        """An independent copy of everything Azure holds."""
        azure = OfflineAzure()
        azure.state = self.state.copy()
        azure.existing_subnets = dict(self.existing_subnets)
        azure.previewing = self.previewing
        return azure

    def service_by_alias(self, alias: str) -> Service | None:
        return next((s for s in self.state.services.values() if s.alias == alias), None)

    def service_named(self, resource_group: str, name: str) -> Service | None:
        return next(
            (s for s in self.state.services.values() if (s.resource_group, s.name) == (resource_group, name)), None
        )

    def add_connection(self, service: Service, private_endpoint_id: str, request_message: str) -> Connection:
        """A customer this world does not deploy (another repository or tenant) requests a connection."""
        subscription = private_endpoint_id.split("/")[2].lower()
        return self._new_connection(service, private_endpoint_id, subscription, request_message, automatic=False)

    # --- what Azure answers the mocks ---------------------------------------------------------------

    def put_service(self, rid: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update a Private Link Service; returns the state Azure reports."""
        frontends = [f["id"] for f in inputs.get("loadBalancerFrontendIpConfigurations") or []]
        nat_ips = len(inputs.get("ipConfigurations") or [])
        service = self.state.services.get(rid.lower())
        if not nat_ips:
            raise AzureError(
                "PrivateLinkServiceMustHaveAtLeastOneIpConfiguration",
                f"Private Link Service {rid.rsplit('/', 1)[-1]} needs at least one NAT IP configuration",
            )
        taken = [
            other.name
            for key, other in self.state.services.items()
            if key != rid.lower() and {f.lower() for f in other.frontend_ids} & {f.lower() for f in frontends}
        ]
        if taken:
            raise AzureError(
                "LoadBalancerFrontendIpConfigurationInUseByAnotherPrivateLinkService",
                f"the load balancer frontend of {rid.rsplit('/', 1)[-1]} already serves the Private Link Service "
                f"{taken[0]}",
            )
        if service is not None and service.frontend_ids != frontends:
            self.delete_service(rid)  # a new frontend replaces the service (delete before replace)
            service = None
        if service is None:
            # A new service has a new alias and no connections.
            guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}|{'|'.join(frontends)}|{self.state.generation}")
            name = rid.rsplit("/", 1)[-1]
            service = Service(
                id=rid,
                name=name,
                resource_group=rid.split("/")[4],
                location=inputs.get("location", ""),
                alias=f"{name}.{guid}.{inputs.get('location', '')}.azure.privatelinkservice",
                nat_ip_count=nat_ips,
                frontend_ids=frontends,
                visibility=[],
                auto_approval=[],
            )
            self.state.services[rid.lower()] = service
        service.nat_ip_count = nat_ips
        service.visibility = [s.lower() for s in (inputs.get("visibility") or {}).get("subscriptions") or []]
        service.auto_approval = [s.lower() for s in (inputs.get("autoApproval") or {}).get("subscriptions") or []]
        return service.view()

    def get_service(self, resource_group: str, name: str) -> dict[str, Any]:
        service = self.service_named(resource_group, name)
        if service is None:
            raise AzureError("ResourceNotFound", f"Private Link Service {name} in {resource_group} was not found")
        return service.view()

    def connect(
        self, endpoint_id: str, subscription: str, alias: str, name: str, message: str, automatic: bool
    ) -> tuple[str, str]:
        """A private endpoint's connection to `alias`: its status and description, as the endpoint reports them."""
        service = self.service_by_alias(alias)
        if service is None:  # a provider outside this world: nothing decides but the provider
            status = self.state.endpoint_states.setdefault(endpoint_id.lower(), "Approved" if automatic else "Pending")
            return status, message
        existing = service.connections.get(endpoint_id.lower())
        if existing is None and endpoint_id.lower() in self.state.disconnected:
            return "Disconnected", "the provider removed this connection: recreate the private endpoint to ask again"
        if existing is None and self.previewing:
            return "Pending", message
        if existing is None:
            if service.visibility != ["*"] and subscription.lower() not in service.visibility:
                raise AzureError(
                    "PrivateLinkServiceNotVisible",
                    f"Private Link Service {alias} is not visible to subscription {subscription}: "
                    "the provider must add it to the service's visibility",
                )
            if len(service.connections) >= MAX_CONNECTIONS:
                raise AzureError(
                    "PrivateLinkServiceMaxPrivateEndpointConnectionsReached",
                    f"Private Link Service {service.name} has {len(service.connections)} private endpoint "
                    f"connections, the most Azure allows",
                )
            existing = self._new_connection(service, endpoint_id, subscription, message, automatic, name)
        return existing.status, existing.description

    def decide(self, resource_group: str, service_name: str, connection_name: str, status: str, reason: str) -> None:
        service = self.service_named(resource_group, service_name)
        connection = next(
            (c for c in (service.connections.values() if service else []) if c.name == connection_name), None
        )
        if service is None or connection is None:
            raise AzureError("NotFound", f"private endpoint connection {connection_name} of {service_name} not found")
        connection.status, connection.description = status, reason

    def _new_connection(
        self,
        service: Service,
        endpoint_id: str,
        subscription: str,
        message: str,
        automatic: bool,
        name: str | None = None,
    ) -> Connection:
        approved = subscription.lower() in service.auto_approval
        connection = Connection(
            # Azure names a connection after the endpoint, with a suffix of its own.
            name=name or f"{endpoint_id.rsplit('/', 1)[-1]}.{uuid.uuid5(uuid.NAMESPACE_URL, endpoint_id).hex[:8]}",
            private_endpoint_id=endpoint_id,
            subscription_id=subscription.lower(),
            request_message="" if automatic else message,
            link_identifier=str(self.state.next_link_id),
            status="Approved" if approved else "Pending",
            description="Auto-Approved" if approved else message,
        )
        self.state.next_link_id += 1
        service.connections[endpoint_id.lower()] = connection
        return connection

    def lock(self, scope: str) -> None:
        self.state.locks.add(scope.lower())

    def unlock(self, scope: str) -> None:
        self.state.locks.discard(scope.lower())

    def refuse_if_locked(self, rid: str, what: str) -> None:
        """Azure applies a lock to the resource and its children (a service's connections are its children)."""
        locked = next((s for s in self.state.locks if rid.lower() == s or rid.lower().startswith(f"{s}/")), None)
        if locked:
            raise AzureError(
                "ScopeLocked",
                f"The scope '{rid}' cannot perform delete operation ({what}) because following scope(s) are locked: "
                f"'{locked}'. Please remove the lock and try again.",
            )

    def delete_service(self, rid: str) -> None:
        service = self.state.services.get(rid.lower())
        if service is None:
            return
        self.refuse_if_locked(service.id, "delete the Private Link Service")
        if service.connections:
            raise AzureError(
                "CannotDeletePrivateLinkServiceWithPrivateEndpointConnections",
                f"Private Link Service {service.name} has {len(service.connections)} private endpoint "
                "connection(s): the consumers must delete their endpoints first (or the provider reject them)",
            )
        del self.state.services[rid.lower()]
        self.state.generation += 1

    def delete_connection(self, resource_group: str, service_name: str, connection_name: str) -> None:
        """The provider deletes a private endpoint connection (a decision's resource): the connection goes and the
        customer's endpoint is Disconnected. Refused while the service's lock covers it; nothing to do when the
        connection is gone already (Azure answers 404, which azure-native takes as deleted)."""
        service = self.service_named(resource_group, service_name)
        if service is None:
            return
        self.refuse_if_locked(
            f"{service.id}/privateEndpointConnections/{connection_name}", "delete the private endpoint connection"
        )
        for key, connection in list(service.connections.items()):
            if connection.name == connection_name:
                del service.connections[key]
                self.state.disconnected.add(key)

    def delete_endpoint(self, endpoint_id: str) -> None:
        """A private endpoint is deleted: its connection goes (refused while the service's lock covers it)."""
        endpoint_id = endpoint_id.lower()
        self.state.endpoint_states.pop(endpoint_id, None)
        self.state.disconnected.discard(endpoint_id)
        for service in self.state.services.values():
            connection = service.connections.get(endpoint_id)
            if connection is not None:
                self.refuse_if_locked(
                    f"{service.id}/privateEndpointConnections/{connection.name}",
                    "delete the private endpoint's connection",
                )
                del service.connections[endpoint_id]
