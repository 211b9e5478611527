"""The service itself: web VMs spread over availability zones, each in the load balancer's pool, changed a zone at a
time."""

from typing import NotRequired, TypedDict

import pulumi

from components._package import formerly, type_token
from components.linux_vm import LinuxVm, LinuxVmArgs, LocalHealthProbe, ObservedCertificate, VmProfile


class WebTierArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the VMs."""
    location: pulumi.Input[str]
    """Azure region, with availability zones."""
    subnet_id: pulumi.Input[str]
    """Backend subnet of the VMs' NICs (it needs outbound for cloud-init's apt and for Run Command's answers)."""
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
    cloud_init: str
    """Every VM's first boot (cloud-init user data): it installs what the software needs."""
    software_by_zone: dict[str, pulumi.Input[str]]
    """The script each VM's Run Command applies in place, by the VM's zone (every VM shows its own zone). It must
    exit non-zero unless the VM answers its health probe."""
    health_probe: LocalHealthProbe
    """The VMs' health as a probe from inside them sees it (the Application Health extension; Azure's automatic
    guest patching watches it)."""
    certificate: NotRequired[ObservedCertificate]
    """The Key Vault certificate the web servers serve on HTTPS, installed by the Key Vault VM extension."""
    data_collection_rule_id: NotRequired[pulumi.Input[str]]
    """Ship each VM's logs (the web server's access log) as this data collection rule says."""
    tags: NotRequired[dict[str, str]]
    """Tags for every VM and NIC."""


def batches(count: int, zones: list[int]) -> list[list[int]]:
    """Which VMs (by index) a change takes at once: a zone's, in the order of `zones` (one at a time when there is
    a single zone, so the others keep serving)."""
    if len(zones) == 1:
        return [[index] for index in range(count)]
    # VM `index` is in zones[index % len(zones)]: a zone's VMs are every len(zones)-th, from its position.
    return [list(range(first, count, len(zones))) for first in range(min(count, len(zones)))]


class WebTier(pulumi.ComponentResource):
    """Web VMs spread round-robin over availability zones, each in the load balancer's backend pool. A change
    reaches them a zone at a time: the VMs of a zone start changing (software in place, or a new VM for a new
    image) only once every VM of the previous zone has applied it and answers its health probe, so at most one
    zone is ever out of the pool. Azure patches them itself, never two zones at once."""

    vm_ids: pulumi.Output[list[str]]
    """Resource ids of the VMs, in order."""
    private_ips: pulumi.Output[list[str]]
    """Their private IPs, in order."""

    def __init__(self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("WebTier"), name, {}, formerly("pls:provider:WebTier", opts))
        servers: dict[int, LinuxVm] = {}
        previous: list[pulumi.Resource] = []
        for batch in batches(args["count"], args["zones"]):
            for index in batch:
                zone = args["zones"][index % len(args["zones"])]
                vm_args = LinuxVmArgs(
                    resource_group_name=args["resource_group_name"],
                    location=args["location"],
                    subnet_id=args["subnet_id"],
                    vm=args["vm"],
                    computer_name=f"{name}-{index + 1}",
                    zone=zone,
                    cloud_init=args["cloud_init"],
                    software={"script": args["software_by_zone"][str(zone)]},
                    health_probe=args["health_probe"],
                    automatic_patching=True,
                    load_balancer_backend_pool_ids=[args["backend_pool_id"]],
                    application_security_group_ids=[args["application_security_group_id"]],
                    tags=args.get("tags", {}),
                )
                if "certificate" in args:
                    vm_args["certificate"] = args["certificate"]
                if "data_collection_rule_id" in args:
                    vm_args["data_collection_rule_id"] = args["data_collection_rule_id"]
                # Waiting for the previous batch (every resource of its VMs, the software last) is the rollout.
                servers[index] = LinuxVm(
                    f"{name}-{index + 1}", vm_args, opts=pulumi.ResourceOptions(parent=self, depends_on=previous)
                )
            previous = [servers[index] for index in batch]
        ordered = [servers[index] for index in sorted(servers)]
        self.vm_ids = pulumi.Output.all(*[s.vm_id for s in ordered])
        self.private_ips = pulumi.Output.all(*[s.private_ip for s in ordered])
        self.register_outputs({"vm_ids": self.vm_ids, "private_ips": self.private_ips})
