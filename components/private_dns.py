"""Split-horizon DNS for the service: a private zone linked to the customer VNet, one A record to the endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import privatedns


@dataclass(frozen=True)
class PrivateDnsRecordArgs:
    resource_group_name: pulumi.Input[str]
    zone_name: str
    record_name: str
    vnet_id: pulumi.Input[str]
    ip_address: pulumi.Input[str]
    ttl_seconds: int = 300
    tags: dict[str, str] = field(default_factory=dict)


class PrivateDnsRecord(pulumi.ComponentResource):
    zone_id: pulumi.Output[str]
    fqdn: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateDnsRecordArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:consumer:PrivateDnsRecord", name, {}, opts)
        tags = {**args.tags, "component": name}
        child = pulumi.ResourceOptions(parent=self)
        zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=args.zone_name,
            resource_group_name=args.resource_group_name,
            location="global",
            tags=tags,
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            f"{name}-link",
            resource_group_name=args.resource_group_name,
            private_zone_name=zone.name,
            location="global",
            virtual_network={"id": args.vnet_id},
            # The zone holds the service's name only; VMs must not register themselves in it.
            registration_enabled=False,
            tags=tags,
            opts=child,
        )
        privatedns.PrivateRecordSet(
            f"{name}-a",
            resource_group_name=args.resource_group_name,
            private_zone_name=zone.name,
            record_type="A",
            relative_record_set_name=args.record_name,
            ttl=args.ttl_seconds,
            a_records=[{"ipv4_address": args.ip_address}],
            opts=child,
        )
        self.zone_id = zone.id
        self.fqdn = pulumi.Output.from_input(f"{args.record_name}.{args.zone_name}")
        self.register_outputs({"zone_id": self.zone_id, "fqdn": self.fqdn})
