"""What a customer deploys to reach the provider's service from its own VNet: one component, any Pulumi language."""

from typing import NotRequired, TypedDict

import pulumi

from components._package import type_token
from components.linux_vm import LinuxVm, LinuxVmArgs, VmProfile
from components.private_dns import PrivateDnsRecord, PrivateDnsRecordArgs
from components.private_endpoint import PrivateEndpoint, PrivateEndpointArgs


class VerificationVm(TypedDict):
    """A Linux VM (no public IP) to prove the path from, e.g. with Run Command."""

    subnet_id: pulumi.Input[str]
    """Its subnet, in the endpoint's VNet. Run Command returns output only if the subnet reaches Azure on TCP 443."""
    vm: VmProfile
    """Its SSH key (and size, image, admin user)."""


class PrivateServiceAccessArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """An existing resource group for the endpoint, the zone and the test VM. With the component's name it fixes
    the endpoint's resource id, which the provider approves: .../resourceGroups/<group>/providers/
    Microsoft.Network/privateEndpoints/<name>-saas-pe."""
    location: pulumi.Input[str]
    """Azure region of the VNet."""
    subnet_id: pulumi.Input[str]
    """Resource id of the existing subnet the endpoint takes its private IP from."""
    vnet_id: pulumi.Input[str]
    """Resource id of the VNet the private DNS zone is linked to (the subnet's, or the one your resolver is in)."""
    alias: pulumi.Input[str]
    """The service's alias, as the provider gave it to you."""
    auto_approved: NotRequired[bool]
    """The provider auto-approves your subscription: request an automatic connection (default false: a manual
    request that the provider approves)."""
    request_message: NotRequired[pulumi.Input[str]]
    """Message the provider sees with a manual request (at most 140 characters), e.g. your contract number."""
    dns_zone: pulumi.Input[str]
    """Private DNS zone of the service's name, e.g. saas.example.com (one of the provider's names with TLS). With
    dnsZoneId: that zone's name."""
    dns_record: pulumi.Input[str]
    """Record in the zone, e.g. api: clients dial <dnsRecord>.<dnsZone>."""
    dns_zone_id: NotRequired[str]
    """Resource id of an existing private DNS zone, e.g. an enterprise hub's central one: only the A record is
    created in it (through a provider for the zone's subscription), and no zone of the component's own."""
    link_dns_zone: NotRequired[bool]
    """With dnsZoneId: also link that zone to vnetId (default false: the hub's resolver already answers from it)."""
    test_vm: NotRequired[VerificationVm]
    """A VM to prove the path from; remove it once the service is in use."""
    tags: NotRequired[dict[str, str]]
    """Tags for everything the component creates."""


class PrivateServiceAccess(pulumi.ComponentResource):
    """Private access to a provider's service from your own VNet: a private endpoint to its alias, a private DNS
    zone linked to the VNet with an A record to the endpoint's IP, and optionally a test VM."""

    endpoint_id: pulumi.Output[str]
    """Resource id of the private endpoint: tell it to the provider, who approves it."""
    private_ip: pulumi.Output[str]
    """The endpoint's private IP."""
    fqdn: pulumi.Output[str]
    """The service's name in your VNet: <dnsRecord>.<dnsZone>."""
    connection_name: pulumi.Output[str]
    """Name of the endpoint's connection to the service."""
    connection_state: pulumi.Output[str]
    """Pending, Approved, Rejected or Disconnected, as of this deployment (refresh after the provider decides)."""
    test_vm_id: pulumi.Output[str] | None
    """Resource id of the test VM, with testVm."""
    test_vm_name: pulumi.Output[str] | None
    """Azure name of the test VM (Run Command targets it), with testVm."""
    test_vm_private_ip: pulumi.Output[str] | None
    """Its private IP: with PROXY protocol, what the provider sees as your client address."""

    def __init__(self, name: str, args: PrivateServiceAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("PrivateServiceAccess"), name, {}, opts)
        tags = args.get("tags", {})
        # Stacks of this project built before this component registered its parts at their top level, by the same
        # names: the alias keeps their URNs (and so the live endpoint, whose id the provider approved).
        child = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
        endpoint_args = PrivateEndpointArgs(
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            subnet_id=args["subnet_id"],
            alias=args["alias"],
            auto_approved=args.get("auto_approved", False),
            tags=tags,
        )
        if "request_message" in args:
            endpoint_args["request_message"] = args["request_message"]
        endpoint = PrivateEndpoint(f"{name}-saas", endpoint_args, opts=child)
        record_args = PrivateDnsRecordArgs(
            resource_group_name=args["resource_group_name"],
            zone_name=args["dns_zone"],
            record_name=args["dns_record"],
            vnet_id=args["vnet_id"],
            ip_address=endpoint.private_ip,
            tags=tags,
        )
        if "dns_zone_id" in args:
            record_args["existing_zone_id"] = args["dns_zone_id"]
            record_args["link_vnet"] = args.get("link_dns_zone", False)
        dns = PrivateDnsRecord(f"{name}-dns", record_args, opts=child)
        self.test_vm_id = self.test_vm_name = self.test_vm_private_ip = None
        if "test_vm" in args:
            vm = LinuxVm(
                f"{name}-test",
                LinuxVmArgs(
                    resource_group_name=args["resource_group_name"],
                    location=args["location"],
                    subnet_id=args["test_vm"]["subnet_id"],
                    vm=args["test_vm"]["vm"],
                    computer_name=f"{name}-test",
                    tags=tags,
                ),
                opts=child,
            )
            self.test_vm_id, self.test_vm_name, self.test_vm_private_ip = vm.vm_id, vm.vm_name, vm.private_ip
        self.endpoint_id = endpoint.endpoint_id
        self.private_ip = endpoint.private_ip
        self.fqdn = dns.fqdn
        self.connection_name = endpoint.connection_name
        self.connection_state = endpoint.connection_state
        self.register_outputs(
            {
                "endpoint_id": self.endpoint_id,
                "private_ip": self.private_ip,
                "fqdn": self.fqdn,
                "connection_name": self.connection_name,
                "connection_state": self.connection_state,
                "test_vm_id": self.test_vm_id,
                "test_vm_name": self.test_vm_name,
                "test_vm_private_ip": self.test_vm_private_ip,
            }
        )
