"""The provider's isolated network: backend subnet behind an NSG, a NAT gateway for outbound, and the PLS NAT subnet."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, resources

from components._nat_gateway import nat_gateway
from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs


@dataclass(frozen=True)
class ProviderNetworkArgs:
    location: str
    vnet_cidr: str
    backend_subnet_cidr: str
    nat_subnet_cidr: str
    nat_gateway: bool
    """Outbound internet for the web VMs (apt) through a NAT gateway, the stack's only public IP."""
    service_ports: tuple[int, ...] = (80,)
    """The ports consumers reach the web VMs on, through the load balancer."""
    probe_port: int = 80
    """The port the load balancer's health probe reaches the web VMs on."""
    key_vault_service_endpoint: bool = False
    """Let the backend subnet reach Key Vault over the backbone, so a vault's firewall can name the subnet."""
    tags: dict[str, str] = field(default_factory=dict)


class ProviderNetwork(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    backend_subnet_id: pulumi.Output[str]
    nat_subnet_id: pulumi.Output[str]
    application_security_group_id: pulumi.Output[str]
    nat_gateway_public_ip: pulumi.Output[str] | None

    def __init__(self, name: str, args: ProviderNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:provider:ProviderNetwork", name, {}, opts)
        tags = {**args.tags, "component": name}
        child = pulumi.ResourceOptions(parent=self)
        group = resources.ResourceGroup(f"{name}-rg", location=args.location, tags=tags, opts=child)
        rg = group.name

        web_servers = network.ApplicationSecurityGroup(
            f"{name}-web-asg", resource_group_name=rg, location=args.location, tags=tags, opts=child
        )
        nsg = network.NetworkSecurityGroup(
            f"{name}-backend-nsg",
            resource_group_name=rg,
            location=args.location,
            security_rules=[
                {
                    "name": "allow-service-from-vnet",
                    "description": "Private Link traffic arrives from the NAT subnet, inside the VNet",
                    "priority": 100,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "source_address_prefix": args.vnet_cidr,
                    "source_port_range": "*",
                    "destination_application_security_groups": [{"id": web_servers.id}],
                    "destination_port_ranges": [str(port) for port in args.service_ports],
                },
                {
                    "name": "allow-health-probes",
                    "description": "Load balancer health probes",
                    "priority": 110,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "source_address_prefix": "AzureLoadBalancer",
                    "source_port_range": "*",
                    "destination_application_security_groups": [{"id": web_servers.id}],
                    "destination_port_range": str(args.probe_port),
                },
                {
                    "name": "deny-everything-else",
                    "description": "Overrides the default AllowVnetInBound: the service ports are the only way in",
                    "priority": 4000,
                    "direction": "Inbound",
                    "access": "Deny",
                    "protocol": "*",
                    "source_address_prefix": "*",
                    "source_port_range": "*",
                    "destination_address_prefix": "*",
                    "destination_port_range": "*",
                },
            ],
            tags=tags,
            opts=child,
        )

        nat_gateway_id: pulumi.Output[str] | None = None
        self.nat_gateway_public_ip = None
        if args.nat_gateway:
            gateway, self.nat_gateway_public_ip = nat_gateway(
                name, resource_group_name=rg, location=args.location, tags=tags, parent=self
            )
            nat_gateway_id = gateway.id

        vnet = VirtualNetwork(
            f"{name}-net",
            VirtualNetworkArgs(
                resource_group_name=rg,
                location=args.location,
                address_space=args.vnet_cidr,
                subnets=[
                    SubnetSpec(
                        role="backend",
                        cidr=args.backend_subnet_cidr,
                        network_security_group_id=nsg.id,
                        nat_gateway_id=nat_gateway_id,
                        service_endpoints=("Microsoft.KeyVault",) if args.key_vault_service_endpoint else (),
                    ),
                    SubnetSpec(role="pls-nat", cidr=args.nat_subnet_cidr, private_link_service_policies_disabled=True),
                ],
                tags=args.tags,
            ),
            opts=child,
        )
        self.resource_group_name = rg
        self.vnet_id = vnet.vnet_id
        self.backend_subnet_id = vnet.subnet_ids["backend"]
        self.nat_subnet_id = vnet.subnet_ids["pls-nat"]
        self.application_security_group_id = web_servers.id
        self.register_outputs(
            {
                "resource_group_name": self.resource_group_name,
                "backend_subnet_id": self.backend_subnet_id,
                "nat_subnet_id": self.nat_subnet_id,
                "application_security_group_id": self.application_security_group_id,
                "nat_gateway_public_ip": self.nat_gateway_public_ip,
            }
        )
