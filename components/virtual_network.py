"""A VNet and its subnets, every subnet explicit about outbound access and Private Link policies."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import network

from components._package import formerly, type_token


def vnet_of(subnet_id: str) -> str:
    """The VNet's resource id, from one of its subnets' (…/virtualNetworks/<vnet>/subnets/<subnet>)."""
    return subnet_id.rsplit("/subnets/", 1)[0]


class SubnetSpec(TypedDict):
    """One subnet of the VNet."""

    role: str
    """Short role of the subnet; names the subnet resource (`<vnet>-<role>`) and its key in `subnet_ids`."""
    cidr: str
    """Address prefix, inside the VNet's address space."""
    private_link_service_policies_disabled: NotRequired[bool]
    """A Private Link Service can take NAT IPs only from a subnet with these policies Disabled."""
    private_endpoint_policies_disabled: NotRequired[bool]
    """A subnet for private endpoints."""
    network_security_group_id: NotRequired[pulumi.Input[str]]
    """The subnet's NSG."""
    nat_gateway_id: NotRequired[pulumi.Input[str]]
    """The subnet's outbound path; without one it has none (default outbound access is off)."""
    service_endpoints: NotRequired[list[str]]
    """Azure services reached over the backbone, whose firewalls can then name the subnet (e.g. Microsoft.KeyVault)."""


class VirtualNetworkArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the VNet."""
    location: pulumi.Input[str]
    """Azure region."""
    address_space: str
    """The VNet's address space (one CIDR)."""
    subnets: list[SubnetSpec]
    """Its subnets, written one after the other."""
    tags: NotRequired[dict[str, str]]
    """Tags for the VNet."""


class VirtualNetwork(pulumi.ComponentResource):
    """A VNet and its subnets, every subnet explicit about outbound access and Private Link policies."""

    vnet_id: pulumi.Output[str]
    """Resource id of the VNet."""
    vnet_name: pulumi.Output[str]
    """Azure name of the VNet."""
    subnet_ids: dict[str, pulumi.Output[str]]
    """Resource id of each subnet, by role."""

    def __init__(self, name: str, args: VirtualNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("VirtualNetwork"), name, {}, formerly("pls:network:VirtualNetwork", opts))
        tags = {**args.get("tags", {}), "component": name}
        # Subnets are separate resources, so the VNet must not list any (an inline list would fight them).
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            address_space={"address_prefixes": [args["address_space"]]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vnet_id = vnet.id
        self.vnet_name = vnet.name
        self.subnet_ids = {}
        previous: network.Subnet | None = None
        for spec in args["subnets"]:
            subnet = network.Subnet(
                f"{name}-{spec['role']}",
                resource_group_name=args["resource_group_name"],
                virtual_network_name=vnet.name,
                subnet_name=spec["role"],
                address_prefix=spec["cidr"],
                # Azure is retiring default outbound access; outbound is explicit (NAT gateway) or none.
                default_outbound_access=False,
                private_link_service_network_policies="Disabled"
                if spec.get("private_link_service_policies_disabled")
                else "Enabled",
                private_endpoint_network_policies="Disabled"
                if spec.get("private_endpoint_policies_disabled")
                else "Enabled",
                network_security_group={"id": spec["network_security_group_id"]}
                if "network_security_group_id" in spec
                else None,
                nat_gateway={"id": spec["nat_gateway_id"]} if "nat_gateway_id" in spec else None,
                service_endpoints=[{"service": service} for service in spec.get("service_endpoints", [])] or None,
                # Azure rejects concurrent writes to subnets of one VNet (AnotherOperationInProgress).
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None),
            )
            self.subnet_ids[spec["role"]] = subnet.id
            previous = subnet
        self.register_outputs({"vnet_id": self.vnet_id, "subnet_ids": self.subnet_ids})
