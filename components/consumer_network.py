"""The customer's network: the one it has, or a new VNet with a subnet for the private endpoint and one for
workloads (the test VM) reaching only Azure."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import network, resources

from components._nat_gateway import nat_gateway
from components._package import formerly, type_token
from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs, vnet_of


class ExistingSubnets(TypedDict):
    """Subnets of a VNet the customer already has."""

    endpoint_subnet_id: str
    """Resource id of the subnet for the private endpoint."""
    workload_subnet_id: str
    """Resource id of the subnet for workloads (the test VM), in the same VNet."""


class NewNetwork(TypedDict):
    """A VNet to create: the lab's case."""

    vnet_cidr: str
    """Address space of the VNet."""
    endpoint_subnet_cidr: str
    """Subnet of the private endpoint (privateEndpointNetworkPolicies Disabled)."""
    workload_subnet_cidr: str
    """Subnet of workloads (the test VM), behind an NSG that lets it reach only Azure on TCP 443."""
    workload_nat_gateway: NotRequired[bool]
    """Outbound for the workload subnet through a NAT gateway: Run Command returns a script's output only if the VM
    reaches Azure on TCP 443."""


class ConsumerNetworkArgs(TypedDict):
    resource_group_name: str
    """The customer's resource group for everything of this stack. Explicit, so the private endpoint's resource id
    (what the provider approves) is known before it exists."""
    location: pulumi.Input[str]
    """Azure region of the VNet."""
    existing: NotRequired[ExistingSubnets]
    """Attach to the customer's own VNet (the usual case)."""
    new: NotRequired[NewNetwork]
    """Create a VNet (exactly one of existing and new)."""
    tags: NotRequired[dict[str, str]]
    """Tags for what the component creates."""


class ConsumerNetwork(pulumi.ComponentResource):
    """The customer's resource group and network: its own VNet's subnets, or a new VNet."""

    resource_group_name: pulumi.Output[str]
    """The resource group."""
    vnet_id: pulumi.Output[str]
    """Resource id of the VNet (the private DNS zone is linked to it)."""
    endpoint_subnet_id: pulumi.Output[str]
    """Subnet of the private endpoint."""
    workload_subnet_id: pulumi.Output[str]
    """Subnet of workloads (the test VM)."""

    def __init__(self, name: str, args: ConsumerNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("ConsumerNetwork"), name, {}, formerly("pls:consumer:ConsumerNetwork", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            tags=tags,
            opts=child,
        )
        if "existing" in args:
            existing = args["existing"]
            self.vnet_id = pulumi.Output.from_input(vnet_of(existing["endpoint_subnet_id"]))
            self.endpoint_subnet_id = pulumi.Output.from_input(existing["endpoint_subnet_id"])
            self.workload_subnet_id = pulumi.Output.from_input(existing["workload_subnet_id"])
        else:
            self.vnet_id, self.endpoint_subnet_id, self.workload_subnet_id = self._create(
                name, group.name, args["new"], args["location"], args.get("tags", {})
            )
        self.resource_group_name = group.name
        self.register_outputs(
            {
                "resource_group_name": self.resource_group_name,
                "vnet_id": self.vnet_id,
                "endpoint_subnet_id": self.endpoint_subnet_id,
                "workload_subnet_id": self.workload_subnet_id,
            }
        )

    def _create(
        self,
        name: str,
        resource_group_name: pulumi.Output[str],
        new: NewNetwork,
        location: pulumi.Input[str],
        vnet_tags: dict[str, str],
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        """A new VNet: its id, the endpoints subnet's and the workload subnet's."""
        tags = {**vnet_tags, "component": name}
        child = pulumi.ResourceOptions(parent=self)
        # Azure's default rules refuse inbound traffic from the Internet; the NSG makes that auditable, and keeps
        # whatever outbound path the subnet has to Azure's own endpoints (Run Command's answer).
        workload_nsg = network.NetworkSecurityGroup(
            f"{name}-workload-nsg",
            resource_group_name=resource_group_name,
            location=location,
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
        workload = SubnetSpec(
            role="workload", cidr=new["workload_subnet_cidr"], network_security_group_id=workload_nsg.id
        )
        if new.get("workload_nat_gateway"):
            gateway, _ = nat_gateway(
                name, resource_group_name=resource_group_name, location=location, tags=tags, parent=self
            )
            workload["nat_gateway_id"] = gateway.id
        vnet = VirtualNetwork(
            f"{name}-net",
            VirtualNetworkArgs(
                resource_group_name=resource_group_name,
                location=location,
                address_space=new["vnet_cidr"],
                subnets=[
                    SubnetSpec(
                        role="endpoints", cidr=new["endpoint_subnet_cidr"], private_endpoint_policies_disabled=True
                    ),
                    workload,
                ],
                tags=vnet_tags,
            ),
            opts=child,
        )
        return vnet.vnet_id, vnet.subnet_ids["endpoints"], vnet.subnet_ids["workload"]
