"""The provider's isolated network: backend subnet behind an NSG, a NAT gateway for outbound, and the PLS NAT subnet."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import network, resources

from components._nat_gateway import nat_gateway
from components._package import formerly, type_token
from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs


class ProviderNetworkArgs(TypedDict):
    location: pulumi.Input[str]
    """Azure region."""
    vnet_cidr: str
    """Address space of the provider's isolated VNet."""
    backend_subnet_cidr: str
    """Subnet of the web VMs and the load balancer frontend."""
    nat_subnet_cidr: str
    """Subnet the Private Link Service draws its NAT IPs from (privateLinkServiceNetworkPolicies Disabled)."""
    additional_nat_subnets: NotRequired[dict[str, str]]
    """More NAT subnets by role (e.g. pls-nat-<service>), for Private Link Services with NAT subnets of their own."""
    nat_gateway: bool
    """Outbound internet for the web VMs (apt) through a NAT gateway, the stack's only public IP."""
    service_ports: NotRequired[list[int]]
    """The ports consumers reach the web VMs on, through the load balancer (default [80])."""
    probe_port: NotRequired[int]
    """The port the load balancer's health probe reaches the web VMs on (default 80)."""
    key_vault_service_endpoint: NotRequired[bool]
    """Let the backend subnet reach Key Vault over the backbone, so a vault's firewall can name the subnet."""
    tags: NotRequired[dict[str, str]]
    """Tags for everything the component creates."""


class ProviderNetwork(pulumi.ComponentResource):
    """The provider's isolated network: a backend subnet behind an NSG with a NAT gateway, and the PLS NAT subnet."""

    resource_group_name: pulumi.Output[str]
    """The provider's resource group."""
    vnet_id: pulumi.Output[str]
    """Resource id of the VNet."""
    backend_subnet_id: pulumi.Output[str]
    """Subnet of the web VMs and the load balancer frontend."""
    nat_subnet_id: pulumi.Output[str]
    """Subnet of the Private Link Service's NAT IPs."""
    nat_subnet_ids: dict[str, pulumi.Output[str]]
    """Every NAT subnet by role: pls-nat and the additional ones."""
    application_security_group_id: pulumi.Output[str]
    """The web servers' application security group."""
    nat_gateway_public_ip: pulumi.Output[str] | None
    """The NAT gateway's public IP (outbound only), if there is one."""

    def __init__(self, name: str, args: ProviderNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("ProviderNetwork"), name, {}, formerly("pls:provider:ProviderNetwork", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        group = resources.ResourceGroup(f"{name}-rg", location=args["location"], tags=tags, opts=child)
        rg = group.name

        web_servers = network.ApplicationSecurityGroup(
            f"{name}-web-asg", resource_group_name=rg, location=args["location"], tags=tags, opts=child
        )
        nsg = network.NetworkSecurityGroup(
            f"{name}-backend-nsg",
            resource_group_name=rg,
            location=args["location"],
            security_rules=[
                {
                    "name": "allow-service-from-vnet",
                    "description": "Private Link traffic arrives from the NAT subnet, inside the VNet",
                    "priority": 100,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "source_address_prefix": args["vnet_cidr"],
                    "source_port_range": "*",
                    "destination_application_security_groups": [{"id": web_servers.id}],
                    "destination_port_ranges": [str(port) for port in args.get("service_ports", [80])],
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
                    "destination_port_range": str(args.get("probe_port", 80)),
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

        backend = SubnetSpec(
            role="backend",
            cidr=args["backend_subnet_cidr"],
            network_security_group_id=nsg.id,
            service_endpoints=["Microsoft.KeyVault"] if args.get("key_vault_service_endpoint") else [],
        )
        self.nat_gateway_public_ip = None
        if args["nat_gateway"]:
            gateway, self.nat_gateway_public_ip = nat_gateway(
                name, resource_group_name=rg, location=args["location"], tags=tags, parent=self
            )
            backend["nat_gateway_id"] = gateway.id

        vnet = VirtualNetwork(
            f"{name}-net",
            VirtualNetworkArgs(
                resource_group_name=rg,
                location=args["location"],
                address_space=args["vnet_cidr"],
                subnets=[
                    backend,
                    SubnetSpec(
                        role="pls-nat", cidr=args["nat_subnet_cidr"], private_link_service_policies_disabled=True
                    ),
                    *(
                        SubnetSpec(role=role, cidr=cidr, private_link_service_policies_disabled=True)
                        for role, cidr in args.get("additional_nat_subnets", {}).items()
                    ),
                ],
                tags=args.get("tags", {}),
            ),
            opts=child,
        )
        self.resource_group_name = rg
        self.vnet_id = vnet.vnet_id
        self.backend_subnet_id = vnet.subnet_ids["backend"]
        self.nat_subnet_id = vnet.subnet_ids["pls-nat"]
        self.nat_subnet_ids = {
            role: vnet.subnet_ids[role] for role in ["pls-nat", *args.get("additional_nat_subnets", {})]
        }
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
