"""The service itself: web VMs spread over availability zones, each in the load balancer's pool."""

from typing import NotRequired, TypedDict

import pulumi

from components._package import formerly, type_token
from components.linux_vm import LinuxVm, LinuxVmArgs, ObservedCertificate, VmProfile


class WebTierArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the VMs."""
    location: pulumi.Input[str]
    """Azure region, with availability zones."""
    subnet_id: pulumi.Input[str]
    """Backend subnet of the VMs' NICs (it needs outbound for cloud-init's apt)."""
    backend_pool_id: pulumi.Input[str]
    """The load balancer's NIC-based backend pool every VM joins."""
    application_security_group_id: pulumi.Input[str]
    """The web servers' application security group (the NSG's service rules name it)."""
    vm: VmProfile
    """Size, image and admin of every VM."""
    count: int
    """Number of VMs, placed round-robin over `zones`."""
    zones: list[int]
    """Availability zones (1-3)."""
    cloud_init_by_zone: dict[str, str]
    """Each VM's cloud-init, by its zone (every VM shows its own zone)."""
    certificate: NotRequired[ObservedCertificate]
    """The Key Vault certificate the web servers serve on HTTPS, installed by the Key Vault VM extension."""
    data_collection_rule_id: NotRequired[pulumi.Input[str]]
    """Ship each VM's logs (the web server's access log) as this data collection rule says."""
    tags: NotRequired[dict[str, str]]
    """Tags for every VM and NIC."""


class WebTier(pulumi.ComponentResource):
    """Web VMs spread round-robin over availability zones, each in the load balancer's backend pool."""

    vm_ids: pulumi.Output[list[str]]
    """Resource ids of the VMs, in order."""
    private_ips: pulumi.Output[list[str]]
    """Their private IPs, in order."""

    def __init__(self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("WebTier"), name, {}, formerly("pls:provider:WebTier", opts))
        servers = []
        for index in range(args["count"]):
            zone = args["zones"][index % len(args["zones"])]
            vm_args = LinuxVmArgs(
                resource_group_name=args["resource_group_name"],
                location=args["location"],
                subnet_id=args["subnet_id"],
                vm=args["vm"],
                computer_name=f"{name}-{index + 1}",
                zone=zone,
                cloud_init=args["cloud_init_by_zone"][str(zone)],
                load_balancer_backend_pool_ids=[args["backend_pool_id"]],
                application_security_group_ids=[args["application_security_group_id"]],
                tags=args.get("tags", {}),
            )
            if "certificate" in args:
                vm_args["certificate"] = args["certificate"]
            if "data_collection_rule_id" in args:
                vm_args["data_collection_rule_id"] = args["data_collection_rule_id"]
            servers.append(LinuxVm(f"{name}-{index + 1}", vm_args, opts=pulumi.ResourceOptions(parent=self)))
        self.vm_ids = pulumi.Output.all(*[s.vm_id for s in servers])
        self.private_ips = pulumi.Output.all(*[s.private_ip for s in servers])
        self.register_outputs({"vm_ids": self.vm_ids, "private_ips": self.private_ips})
