"""The service itself: nginx VMs spread over availability zones, each in the load balancer's pool."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.linux_vm import LinuxVm, LinuxVmArgs
from pls.settings import VmSettings
from pls.webserver import WebServerConfig, render_web_server


@dataclass(frozen=True)
class WebTierArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    backend_pool_id: pulumi.Input[str]
    application_security_group_id: pulumi.Input[str]
    vm: VmSettings
    count: int
    zones: tuple[int, ...]
    proxy_protocol: bool
    """Must match the Private Link Service: both sides are rendered from this one value."""
    nat_subnet_cidr: str
    tags: dict[str, str] = field(default_factory=dict)


class WebTier(pulumi.ComponentResource):
    vm_ids: pulumi.Output[list[str]]
    private_ips: pulumi.Output[list[str]]

    def __init__(self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:provider:WebTier", name, {}, opts)
        servers = []
        for index in range(args.count):
            zone = args.zones[index % len(args.zones)]
            rendered = render_web_server(
                WebServerConfig(
                    proxy_protocol=args.proxy_protocol,
                    trusted_proxy_cidr=args.nat_subnet_cidr,
                    zone=str(zone),
                )
            )
            servers.append(
                LinuxVm(
                    f"{name}-{index + 1}",
                    LinuxVmArgs(
                        resource_group_name=args.resource_group_name,
                        location=args.location,
                        subnet_id=args.subnet_id,
                        vm=args.vm,
                        computer_name=f"{name}-{index + 1}",
                        zone=zone,
                        cloud_init=rendered.cloud_init,
                        load_balancer_backend_pool_ids=[args.backend_pool_id],
                        application_security_group_ids=[args.application_security_group_id],
                        tags=args.tags,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.vm_ids = pulumi.Output.all(*[s.vm_id for s in servers])
        self.private_ips = pulumi.Output.all(*[s.private_ip for s in servers])
        self.register_outputs({"vm_ids": self.vm_ids, "private_ips": self.private_ips})
