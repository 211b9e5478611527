"""A stand-in for the Azure CLI, for the reconciliation's tests (`offline/bin/az` on PATH): it answers
`az network private-link-service show --ids <id>` from the offline Azure that the stand-in Pulumi CLI deploys to
(offline/file_backend.py keeps it in the file backend of $PULUMI_BACKEND_URL).

What it imitates: the command's JSON as the Azure CLI prints it (the resource's properties flattened beside its id
and name, as `az` shows every resource): alias, visibility, autoApproval, and each private endpoint connection with
its id, endpoint, state (status, description, actionsRequired) and LinkID; a service that is not there is an error on
stderr, exit status 3, as `az` answers a 404. Anything else is refused by name (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from offline.azure import Service
from offline.file_backend import BackendError, FileBackend

NOT_FOUND, USAGE = 3, 2


def az_view(service: Service) -> dict[str, Any]:
    """The service as `az network private-link-service show` prints it."""
    return {
        "id": service.id,
        "name": service.name,
        "resourceGroup": service.resource_group,
        "location": service.location,
        "type": "Microsoft.Network/privateLinkServices",
        "provisioningState": "Succeeded",
        "alias": service.alias,
        "visibility": {"subscriptions": list(service.visibility)},
        "autoApproval": {"subscriptions": list(service.auto_approval)},
        "privateEndpointConnections": [
            {
                "id": f"{service.id}/privateEndpointConnections/{c.name}",
                "name": c.name,
                "type": "Microsoft.Network/privateLinkServices/privateEndpointConnections",
                "provisioningState": "Succeeded",
                "privateEndpoint": {"id": c.private_endpoint_id},
                "privateLinkServiceConnectionState": {
                    "status": c.status,
                    "description": c.description,
                    "actionsRequired": "None",
                },
                "linkIdentifier": c.link_identifier,
            }
            for c in service.connections.values()
        ],
    }


def _show(ids: str) -> int:
    backend = FileBackend.from_environment("")
    with backend.world(Path.cwd(), writing=False) as world:
        service = world.azure.state.services.get(ids.lower())
        if service is None:
            parts = ids.split("/")
            name, group = (parts[8], parts[4]) if len(parts) == 9 else (ids, "?")
            print(
                f"ERROR: (ResourceNotFound) The Resource 'Microsoft.Network/privateLinkServices/{name}' under "
                f"resource group '{group}' was not found.",
                file=sys.stderr,
            )
            return NOT_FOUND
        print(json.dumps(az_view(service), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:3] != ["network", "private-link-service", "show"]:
        print(f"ERROR: the stand-in does not imitate `az {' '.join(args[:3])}`", file=sys.stderr)
        return USAGE
    parser = argparse.ArgumentParser(prog="az network private-link-service show", add_help=False)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--output", "-o", choices=["json"], default="json")
    options, unknown = parser.parse_known_args(args[3:])
    if unknown:
        print(f"ERROR: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return USAGE
    try:
        return _show(options.ids)
    except BackendError as refused:
        print(f"ERROR: {refused}", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)
