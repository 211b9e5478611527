"""The service itself: nginx VMs spread over availability zones, each in the load balancer's pool."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pulumi

from components.linux_vm import LinuxVm, LinuxVmArgs, ObservedCertificate
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
    web_server: WebServerConfig
    """nginx, the app and TLS on every VM (each VM shows its own zone). Its PROXY protocol switch must match the
    Private Link Service's: both are rendered from one setting."""
    certificate: ObservedCertificate | None = None
    """The Key Vault certificate nginx serves on HTTPS, installed by the Key Vault VM extension."""
    data_collection_rule_id: pulumi.Input[str] | None = None
    """Ship each VM's logs (nginx's access log) as this data collection rule says, through the Azure Monitor agent."""
    tags: dict[str, str] = field(default_factory=dict)


class WebTier(pulumi.ComponentResource):
    vm_ids: pulumi.Output[list[str]]
    private_ips: pulumi.Output[list[str]]

    def __init__(self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:provider:WebTier", name, {}, opts)
        servers = []
        for index in range(args.count):
            zone = args.zones[index % len(args.zones)]
            rendered = render_web_server(dataclasses.replace(args.web_server, zone=str(zone)))
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
                        certificate=args.certificate,
                        data_collection_rule_id=args.data_collection_rule_id,
                        tags=args.tags,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.vm_ids = pulumi.Output.all(*[s.vm_id for s in servers])
        self.private_ips = pulumi.Output.all(*[s.private_ip for s in servers])
        self.register_outputs({"vm_ids": self.vm_ids, "private_ips": self.private_ips})
