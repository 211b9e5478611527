"""A VNet and its subnets, every subnet explicit about outbound access and Private Link policies."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network


@dataclass(frozen=True)
class SubnetSpec:
    role: str
    """Short role of the subnet; names the subnet resource (`<vnet>-<role>`) and its key in `subnet_ids`."""
    cidr: str
    private_link_service_policies_disabled: bool = False
    """A Private Link Service can take NAT IPs only from a subnet with these policies Disabled."""
    private_endpoint_policies_disabled: bool = False
    network_security_group_id: pulumi.Input[str] | None = None
    nat_gateway_id: pulumi.Input[str] | None = None
    service_endpoints: tuple[str, ...] = ()
    """Azure services reached over the backbone, whose firewalls can then name the subnet (e.g. Microsoft.KeyVault)."""


@dataclass(frozen=True)
class VirtualNetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    address_space: str
    subnets: list[SubnetSpec]
    tags: dict[str, str] = field(default_factory=dict)


class VirtualNetwork(pulumi.ComponentResource):
    vnet_id: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: VirtualNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:network:VirtualNetwork", name, {}, opts)
        tags = {**args.tags, "component": name}
        # Subnets are separate resources, so the VNet must not list any (an inline list would fight them).
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space={"address_prefixes": [args.address_space]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vnet_id = vnet.id
        self.vnet_name = vnet.name
        self.subnet_ids = {}
        previous: network.Subnet | None = None
        for spec in args.subnets:
            subnet = network.Subnet(
                f"{name}-{spec.role}",
                resource_group_name=args.resource_group_name,
                virtual_network_name=vnet.name,
                subnet_name=spec.role,
                address_prefix=spec.cidr,
                # Azure is retiring default outbound access; outbound is explicit (NAT gateway) or none.
                default_outbound_access=False,
                private_link_service_network_policies="Disabled"
                if spec.private_link_service_policies_disabled
                else "Enabled",
                private_endpoint_network_policies="Disabled" if spec.private_endpoint_policies_disabled else "Enabled",
                network_security_group={"id": spec.network_security_group_id}
                if spec.network_security_group_id
                else None,
                nat_gateway={"id": spec.nat_gateway_id} if spec.nat_gateway_id else None,
                service_endpoints=[{"service": service} for service in spec.service_endpoints] or None,
                # Azure rejects concurrent writes to subnets of one VNet (AnotherOperationInProgress).
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None),
            )
            self.subnet_ids[spec.role] = subnet.id
            previous = subnet
        self.register_outputs({"vnet_id": self.vnet_id, "subnet_ids": self.subnet_ids})
