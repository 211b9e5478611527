"""The customer's network: a subnet for the private endpoint, one for workloads (the test VM) reaching only Azure."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, resources

from components._nat_gateway import nat_gateway
from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs


@dataclass(frozen=True)
class ConsumerNetworkArgs:
    resource_group_name: str
    """Explicit, so the private endpoint's resource id (what the provider approves) is known before it exists."""
    location: str
    vnet_cidr: str
    endpoint_subnet_cidr: str
    workload_subnet_cidr: str
    workload_nat_gateway: bool = False
    """Outbound for the workload subnet through a NAT gateway: Run Command returns a script's output only if the VM
    reaches Azure on TCP 443. The subnet's NSG lets it reach nothing else on the Internet."""
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
        # Azure's default rules refuse inbound traffic from the Internet; the NSG makes that auditable, and keeps
        # whatever outbound path the subnet has to Azure's own endpoints (Run Command's answer).
        workload_nsg = network.NetworkSecurityGroup(
            f"{name}-workload-nsg",
            resource_group_name=group.name,
            location=args.location,
            security_rules=[
                {
                    "name": "allow-azure-https-out",
                    "description": "Run Command uploads a script's output to Azure over TCP 443",
                    "priority": 100,
                    "direction": "Outbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "source_address_prefix": "VirtualNetwork",
                    "source_port_range": "*",
                    "destination_address_prefix": "AzureCloud",
                    "destination_port_range": "443",
                },
                {
                    "name": "deny-internet-out",
                    "description": "Nothing else goes to the Internet (NSGs do not apply to the VM agent's WireServer)",
                    "priority": 4000,
                    "direction": "Outbound",
                    "access": "Deny",
                    "protocol": "*",
                    "source_address_prefix": "*",
                    "source_port_range": "*",
                    "destination_address_prefix": "Internet",
                    "destination_port_range": "*",
                },
            ],
            tags=tags,
            opts=child,
        )
        outbound = (
            nat_gateway(name, resource_group_name=group.name, location=args.location, tags=tags, parent=self)[0]
            if args.workload_nat_gateway
            else None
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
                        role="workload",
                        cidr=args.workload_subnet_cidr,
                        network_security_group_id=workload_nsg.id,
                        nat_gateway_id=outbound.id if outbound else None,
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
