"""A private endpoint to a Private Link Service alias, and the private IP it got."""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import network

from components._package import formerly, type_token


class PrivateEndpointArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the endpoint. With the endpoint's name it fixes the endpoint's resource id, which is what
    the provider approves: /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/
    privateEndpoints/<endpointName>."""
    location: pulumi.Input[str]
    """Azure region of the subnet's VNet (the endpoint lives there; the service may be in another region)."""
    subnet_id: pulumi.Input[str]
    """Resource id of the subnet the endpoint takes its private IP from."""
    alias: pulumi.Input[str]
    """The provider's alias (<prefix>.<guid>.<region>.azure.privatelinkservice) or the service's resource id: the
    only coordinate a consumer needs."""
    auto_approved: NotRequired[bool]
    """The provider auto-approves this subscription: request an automatic connection. Default false: a manual
    request, with requestMessage, that the provider approves."""
    request_message: NotRequired[pulumi.Input[str]]
    """Message the provider sees with a manual request (at most 140 characters), e.g. your order number."""
    endpoint_name: NotRequired[str]
    """Azure name of the endpoint (default: <name>-pe); its NIC is <endpointName>-nic."""
    tags: NotRequired[dict[str, str]]
    """Tags for the endpoint."""


def _first_nic_name(nics: Sequence[network.outputs.NetworkInterfaceResponse] | None) -> str:
    nic_id = nics[0].id if nics else None
    if not nic_id:
        raise ValueError("the private endpoint reports no network interface")
    return nic_id.rsplit("/", 1)[-1]


def _first_connection_status(
    connections: Sequence[network.outputs.PrivateLinkServiceConnectionResponse] | None,
) -> str:
    state = connections[0].private_link_service_connection_state if connections else None
    return (state.status if state else None) or "Unknown"


class PrivateEndpoint(pulumi.ComponentResource):
    """A private endpoint to a Private Link Service, by alias, and the private IP it got (read from its NIC)."""

    endpoint_id: pulumi.Output[str]
    """Resource id of the endpoint: what the provider approves."""
    private_ip: pulumi.Output[str]
    """The endpoint's private IP in the subnet: what the service's name must resolve to."""
    connection_name: pulumi.Output[str]
    """Name of the endpoint's connection to the service."""
    connection_state: pulumi.Output[str]
    """Pending, Approved, Rejected or Disconnected, as of this deployment (refresh to see the provider's decision)."""

    def __init__(self, name: str, args: PrivateEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("PrivateEndpoint"), name, {}, formerly("pls:consumer:PrivateEndpoint", opts))
        endpoint_name = args.get("endpoint_name") or f"{name}-pe"
        connection_name = f"{name}-connection"
        auto_approved = args.get("auto_approved", False)
        connection: network.PrivateLinkServiceConnectionArgsDict = {
            "name": connection_name,  # Azure rejects a connection without a name
            "private_link_service_id": args["alias"],
        }
        if not auto_approved and "request_message" in args:
            connection["request_message"] = args["request_message"]
        endpoint = network.PrivateEndpoint(
            f"{name}-pe",
            private_endpoint_name=endpoint_name,
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            subnet={"id": args["subnet_id"]},
            # A fixed NIC name, so the endpoint's address can be looked up on its NIC.
            custom_network_interface_name=f"{endpoint_name}-nic",
            private_link_service_connections=[connection] if auto_approved else None,
            manual_private_link_service_connections=None if auto_approved else [connection],
            tags={**args.get("tags", {}), "component": name},
            # An endpoint cannot move between subnets in place; say so rather than fail mid-update.
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["subnet"], delete_before_replace=True),
        )
        # customDnsConfigs can be empty for a Private Link Service endpoint; the NIC always has the address.
        nic = network.get_network_interface_output(
            resource_group_name=args["resource_group_name"],
            network_interface_name=endpoint.network_interfaces.apply(_first_nic_name),
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.private_ip = nic.ip_configurations.apply(lambda cfgs: (cfgs or [])[0].private_ip_address or "")
        connections = (
            endpoint.private_link_service_connections
            if auto_approved
            else endpoint.manual_private_link_service_connections
        )
        self.connection_state = connections.apply(_first_connection_status)
        self.connection_name = pulumi.Output.from_input(connection_name)
        self.endpoint_id = endpoint.id
        self.register_outputs(
            {
                "endpoint_id": self.endpoint_id,
                "private_ip": self.private_ip,
                "connection_name": self.connection_name,
                "connection_state": self.connection_state,
            }
        )
