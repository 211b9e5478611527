"""What this stack's last deployment left in Azure: its Private Link Service, looked up live before any change.

The stack's own previous outputs say where the service is (`privateLinkServiceId`); Azure says what it is now.
Run by the program, first: `check_deployed` refuses what Azure cannot undo before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from pls.config import Problem, ProviderSettings, SettingsError
from pls.contract import SERVICE_ID, SERVICE_IDS
from pls.sdk import wait_for


def deployed_services() -> tuple[DeployedService | None, dict[str, DeployedService]]:
    """The live services of this stack's last deployment: the first (None before the first deployment, or if it
    is gone), and the others by name."""
    own_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    # The check must finish before any resource is registered, so wait for the reference here, as a
    # synchronous invoke does (a stack may read its own last outputs: they are replaced only when it ends).
    reference = pulumi.StackReference(own_stack)
    first_id = wait_for(reference.get_output_details(SERVICE_ID)).value
    every_id = wait_for(reference.get_output_details(SERVICE_IDS)).value
    others = {
        name: found
        for name, service_id in (every_id.items() if isinstance(every_id, dict) else [])
        if service_id != first_id and (found := _live(service_id)) is not None
    }
    return _live(first_id), others


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


def _asked(service: DeployedService | None) -> set[str]:
    return {e.lower() for e in service.connection_endpoint_ids} if service else set()


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


def check_deployed(
    settings: ProviderSettings, deployed: DeployedService | None, others: Mapping[str, DeployedService] | None = None
) -> list[str]:
    """Refuse (SettingsError) what Azure cannot undo; return warnings for what the configuration allows.

    A new name, region or frontend replaces the service, and a new service has a new alias that no customer
    knows. Fewer NAT IPs is a warning: Azure removes them in place, resetting the flows through them.
    """
    live = {settings.service_name: deployed, **(others or {})}
    registered = {
        d.endpoint.lower(): f"customers/{c.name}.yaml:decisions" for c in settings.customers for d in c.decisions
    }
    problems = [
        Problem(
            registered.get(d["private_endpoint_id"].lower())
            or ("approvedConnections" if d["status"] == "Approved" else "rejectedConnections"),
            f"{d['private_endpoint_id']} | {d['reason']}",
            f"no private endpoint {d['private_endpoint_id']} has asked to connect to the service {service.name} "
            "(yet, or any more)",
            "remove the entry (an offboarded customer), or wait until the customer has deployed its endpoint",
        )
        for service in settings.services
        for d in service.decisions
        if d["private_endpoint_id"].lower() not in _asked(live.get(service.name))
    ]
    if deployed is None:
        if problems:
            raise SettingsError(settings.project, problems)
        return []
    warnings = []
    if settings.nat_ip_count < deployed.nat_ip_count:
        # Azure takes a smaller list in place (it refuses only an empty one, which natIpCount's range rules out);
        # what goes is the traffic: flows NATed through a removed address are reset.
        warnings.append(
            f"natIpCount {deployed.nat_ip_count} -> {settings.nat_ip_count} removes NAT IP configurations "
            f"nat-{settings.nat_ip_count + 1}..nat-{deployed.nat_ip_count} of {deployed.name}: connections "
            "through them are reset (customers reconnect), and fewer NAT IPs mean fewer NAT ports"
        )
    frontend_lbs = {f.split("/loadBalancers/")[-1].split("/")[0] for f in deployed.frontend_ids}
    changes = [
        ("serviceName", settings.service_name, deployed.name, deployed.name != settings.service_name),
        ("location", settings.location, deployed.location, deployed.location != settings.location),
        (
            "serviceName",
            settings.service_name,
            deployed.name,
            bool(frontend_lbs) and frontend_lbs != {settings.load_balancer_name},
        ),
    ]
    for key, value, was, changed in changes:
        if not changed:
            continue
        why = f"{ALIAS_CHANGES} (now {deployed.alias}, {len(deployed.connection_endpoint_ids)} connection(s))"
        if settings.protect_service:
            problems.append(
                Problem(key, value, why, f"keep {key}: {was}, or replace it on purpose (README, Guard rails)")
            )
        else:
            warnings.append(f"{key} {was} -> {value} {why}")
    if problems:
        raise SettingsError(settings.project, list(dict.fromkeys(problems)))
    return list(dict.fromkeys(warnings))
