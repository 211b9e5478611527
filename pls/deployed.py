"""What this stack's last deployment left in Azure: its Private Link Services, looked up live before any change.

The stack's own previous outputs say where the services are (`privateLinkServiceIds`) and which endpoints were
connected (`connections`); Azure says what they are now. Run by the program, first: `check_deployed` refuses what
Azure cannot undo before anything changes, and `decisions_ready` keeps back each decision whose endpoint has not
asked (Azure takes a decision only about a connection that exists), saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from components.private_link_service import ConnectionDecision
from pls.config import Problem, ProviderSettings, SettingsError
from pls.contract import CONNECTIONS, SERVICE_ID, SERVICE_IDS
from pls.sdk import wait_for


@dataclass(frozen=True)
class LastDeployment:
    """This stack's services as Azure has them now, and the endpoints its last deployment saw connected."""

    first: DeployedService | None
    """The first service (None before the first deployment, or if it is gone)."""
    others: dict[str, DeployedService]
    connected_before: frozenset[str]
    """Private endpoint ids (lower case) that had a connection when the stack last deployed."""

    def live(self, service: str, first: str) -> DeployedService | None:
        return self.first if service == first else self.others.get(service)


def last_deployment() -> LastDeployment:
    """The live services of this stack's last deployment, and the endpoints that were connected then."""
    own_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    # The check must finish before any resource is registered, so wait for the reference here, as a
    # synchronous invoke does (a stack may read its own last outputs: they are replaced only when it ends).
    reference = pulumi.StackReference(own_stack)
    first_id = wait_for(reference.get_output_details(SERVICE_ID)).value
    every_id = wait_for(reference.get_output_details(SERVICE_IDS)).value
    connections = wait_for(reference.get_output_details(CONNECTIONS)).value
    others = {
        name: found
        for name, service_id in (every_id.items() if isinstance(every_id, dict) else [])
        if service_id != first_id and (found := _live(service_id)) is not None
    }
    connected = (
        frozenset(str(c.get("privateEndpointId", "")).lower() for c in connections if isinstance(c, dict))
        if isinstance(connections, list)
        else frozenset()
    )
    return LastDeployment(_live(first_id), others, connected)


def _live(service_id: object) -> DeployedService | None:
    if not isinstance(service_id, str) or service_id.count("/") != 8:
        return None
    parts = service_id.split("/")
    try:
        live = network.get_private_link_service(resource_group_name=parts[4], service_name=parts[8])
    except Exception as error:  # the SDK raises a bare Exception for a failed invoke
        if "NotFound" in str(error):
            return None  # deleted outside Pulumi: this deployment creates it again
        raise
    return DeployedService(
        name=live.name or parts[8],
        location=live.location or "",
        alias=live.alias or "",
        nat_ip_count=len(live.ip_configurations or []),
        frontend_ids=tuple(f.id or "" for f in live.load_balancer_frontend_ip_configurations or []),
        connection_endpoint_ids=tuple(
            c.private_endpoint.id
            for c in live.private_endpoint_connections or []
            if c.private_endpoint is not None and c.private_endpoint.id
        ),
    )


ALIAS_CHANGES = "replaces the Private Link Service: every customer's alias changes"


@dataclass(frozen=True)
class DeployedService:
    """The Private Link Service this stack deployed last time, as Azure has it now."""

    name: str
    location: str
    alias: str
    nat_ip_count: int
    frontend_ids: tuple[str, ...]
    connection_endpoint_ids: tuple[str, ...]
    """The private endpoints that have a connection (any state) to the service."""


def check_deployed(settings: ProviderSettings, deployed: LastDeployment) -> list[str]:
    """Refuse (SettingsError) what Azure cannot undo; return warnings for what the configuration allows.

    A new name, region or frontend replaces the service, and a new service has a new alias that no customer
    knows. Fewer NAT IPs is a warning: Azure removes them in place, resetting the flows through them.
    """
    first = deployed.first
    if first is None:
        return []
    problems, warnings = [], []
    if settings.nat_ip_count < first.nat_ip_count:
        # Azure takes a smaller list in place (it refuses only an empty one, which natIpCount's range rules out);
        # what goes is the traffic: flows NATed through a removed address are reset.
        warnings.append(
            f"natIpCount {first.nat_ip_count} -> {settings.nat_ip_count} removes NAT IP configurations "
            f"nat-{settings.nat_ip_count + 1}..nat-{first.nat_ip_count} of {first.name}: connections "
            "through them are reset (customers reconnect), and fewer NAT IPs mean fewer NAT ports"
        )
    frontend_lbs = {f.split("/loadBalancers/")[-1].split("/")[0] for f in first.frontend_ids}
    changes = [
        ("serviceName", settings.service_name, first.name, first.name != settings.service_name),
        ("location", settings.location, first.location, first.location != settings.location),
        (
            "serviceName",
            settings.service_name,
            first.name,
            bool(frontend_lbs) and frontend_lbs != {settings.load_balancer_name},
        ),
    ]
    for key, value, was, changed in changes:
        if not changed:
            continue
        why = f"{ALIAS_CHANGES} (now {first.alias}, {len(first.connection_endpoint_ids)} connection(s))"
        if settings.protect_service:
            problems.append(
                Problem(
                    key, value, why, f"keep {key}: {was}, or replace it on purpose (docs/operations/guard-rails.md)"
                )
            )
        else:
            warnings.append(f"{key} {was} -> {value} {why}")
    if problems:
        raise SettingsError(settings.project, list(dict.fromkeys(problems)))
    return list(dict.fromkeys(warnings))


WAITS = "waits for {endpoint}: applied once its private endpoint asks"
"""How a deployment says it keeps a decision back (the plan and the reconciliation say the same)."""


def decisions_ready(
    settings: ProviderSettings, deployed: LastDeployment
) -> tuple[dict[str, list[ConnectionDecision]], list[str]]:
    """Each service's decisions whose endpoint has asked, which this deployment applies; and a warning for every
    other: one that waits for its endpoint (the customer has not deployed yet: the next deployment applies it), or
    one whose endpoint has gone (it was connected, and is no more: the fix is to offboard the customer)."""
    where = {d.endpoint.lower(): c.name for c in settings.customers for d in c.decisions}
    ready: dict[str, list[ConnectionDecision]] = {}
    warnings = []
    for service in settings.services:
        live = deployed.live(service.name, settings.service_name)
        asked = {e.lower() for e in live.connection_endpoint_ids} if live else set()
        ready[service.name] = []
        for decision in service.decisions:
            endpoint = decision["private_endpoint_id"]
            if endpoint.lower() in asked:
                ready[service.name].append(decision)
                continue
            customer = where.get(endpoint.lower())
            if endpoint.lower() in deployed.connected_before:
                fix = f"scripts/offboard {customer}" if customer else "remove it from the stack file's decisions"
                warnings.append(
                    f"decision {decision['status']} about {endpoint}: its private endpoint has gone from service "
                    f"{service.name} (it was connected): {fix}"
                )
            else:
                warnings.append(f"decision {decision['status']} {WAITS.format(endpoint=endpoint)}")
    return ready, warnings
