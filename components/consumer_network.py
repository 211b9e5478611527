"""The customer's network: a subnet for the private endpoint and one for workloads (the test VM)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, resources

from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs


@dataclass(frozen=True)
class ConsumerNetworkArgs:
    resource_group_name: str
    """Explicit, so the private endpoint's resource id (what the provider approves) is known before it exists."""
    location: str
    vnet_cidr: str
    endpoint_subnet_cidr: str
    workload_subnet_cidr: str
    tags: dict[str, str] = field(default_factory=dict)


class ConsumerNetwork(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    endpoint_subnet_id: pulumi.Output[str]
    workload_subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: ConsumerNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:consumer:ConsumerNetwork", name, {}, opts)
        tags = {**args.tags, "component": name}
        child = pulumi.ResourceOptions(parent=self)
        group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=args.resource_group_name, location=args.location, tags=tags, opts=child
        )
        # Azure's default rules refuse inbound traffic from the Internet; the NSG makes that auditable.
        workload_nsg = network.NetworkSecurityGroup(
            f"{name}-workload-nsg", resource_group_name=group.name, location=args.location, tags=tags, opts=child
        )
        vnet = VirtualNetwork(
            f"{name}-net",
            VirtualNetworkArgs(
                resource_group_name=group.name,
                location=args.location,
                address_space=args.vnet_cidr,
                subnets=[
                    SubnetSpec(
                        role="endpoints", cidr=args.endpoint_subnet_cidr, private_endpoint_policies_disabled=True
                    ),
                    SubnetSpec(
                        role="workload", cidr=args.workload_subnet_cidr, network_security_group_id=workload_nsg.id
                    ),
                ],
                tags=args.tags,
            ),
            opts=child,
        )
        self.resource_group_name = group.name
        self.vnet_id = vnet.vnet_id
        self.endpoint_subnet_id = vnet.subnet_ids["endpoints"]
        self.workload_subnet_id = vnet.subnet_ids["workload"]
        self.register_outputs(
            {
                "resource_group_name": self.resource_group_name,
                "vnet_id": self.vnet_id,
                "endpoint_subnet_id": self.endpoint_subnet_id,
                "workload_subnet_id": self.workload_subnet_id,
            }
        )
