"""A private endpoint to a Private Link Service alias, and the private IP it got."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network


@dataclass(frozen=True)
class PrivateEndpointArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    alias: pulumi.Input[str]
    """The provider's alias (or its resource id): the only coordinate a consumer needs."""
    request_message: str
    auto_approved: bool
    """Auto-approved subscriptions request an automatic connection; everyone else a manual one, with a message."""
    tags: dict[str, str] = field(default_factory=dict)


def _first_nic_name(nics: Sequence[network.outputs.NetworkInterfaceResponse] | None) -> str:
    nic_id = nics[0].id if nics else None
    if not nic_id:
        raise ValueError("the private endpoint reports no network interface")
    return nic_id.rsplit("/", 1)[-1]


def _first_connection_status(connections: Sequence[network.outputs.PrivateLinkServiceConnectionResponse] | None) -> str:
    state = connections[0].private_link_service_connection_state if connections else None
    return (state.status if state else None) or "Unknown"


class PrivateEndpoint(pulumi.ComponentResource):
    endpoint_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    connection_state: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:consumer:PrivateEndpoint", name, {}, opts)
        endpoint_name = f"{name}-pe"
        connection_name = f"{name}-connection"
        connection: network.PrivateLinkServiceConnectionArgsDict = {
            "name": connection_name,  # Azure rejects a connection without a name
            "private_link_service_id": args.alias,
        }
        if not args.auto_approved:
            connection["request_message"] = args.request_message
        endpoint = network.PrivateEndpoint(
            endpoint_name,
            private_endpoint_name=endpoint_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet={"id": args.subnet_id},
            # A fixed NIC name, so the endpoint's address can be looked up on its NIC.
            custom_network_interface_name=f"{endpoint_name}-nic",
            private_link_service_connections=[connection] if args.auto_approved else None,
            manual_private_link_service_connections=None if args.auto_approved else [connection],
            tags={**args.tags, "component": name},
            # An endpoint cannot move between subnets in place; say so rather than fail mid-update.
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["subnet"], delete_before_replace=True),
        )
        # customDnsConfigs can be empty for a Private Link Service endpoint; the NIC always has the address.
        nic = network.get_network_interface_output(
            resource_group_name=args.resource_group_name,
            network_interface_name=endpoint.network_interfaces.apply(_first_nic_name),
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.private_ip = nic.ip_configurations.apply(lambda cfgs: (cfgs or [])[0].private_ip_address or "")
        connections = (
            endpoint.private_link_service_connections
            if args.auto_approved
            else endpoint.manual_private_link_service_connections
        )
        self.connection_state = connections.apply(_first_connection_status)
        self.connection_name = pulumi.Output.from_input(connection_name)
        self.endpoint_id = endpoint.id
        self.register_outputs(
            {
                "endpoint_id": self.endpoint_id,
                "private_ip": self.private_ip,
                "connection_state": self.connection_state,
            }
        )
