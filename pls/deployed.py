"""What this stack's last deployment left in Azure: its Private Link Service, looked up live before any change.

The stack's own previous outputs say where the service is (`privateLinkServiceId`); Azure says what it is now.
Run by the program, first: pls.settings.check_deployed refuses what Azure cannot undo before anything changes.
"""

from __future__ import annotations

import pulumi
from pulumi.runtime.sync_await import _sync_await
from pulumi_azure_native import network

from pls.settings import DeployedService

SERVICE_ID_OUTPUT = "privateLinkServiceId"


def deployed_service() -> DeployedService | None:
    """The live service of this stack's last deployment, or None before the first one (or if it is gone)."""
    own_stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    # The check must finish before any resource is registered, so wait for the reference here, as a
    # synchronous invoke does (a stack may read its own last outputs: they are replaced only when it ends).
    details = _sync_await(pulumi.StackReference(own_stack).get_output_details(SERVICE_ID_OUTPUT))
    service_id = details.value
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
