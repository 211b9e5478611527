"""Split-horizon DNS for the service: a private zone linked to the customer VNet, one A record to the endpoint."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import privatedns

from components._package import formerly, type_token


class PrivateDnsRecordArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the zone."""
    zone_name: pulumi.Input[str]
    """The private DNS zone, e.g. saas.example.com (with the provider's TLS: the domain of one of its names)."""
    record_name: pulumi.Input[str]
    """The A record in the zone, e.g. api."""
    vnet_id: pulumi.Input[str]
    """Resource id of the VNet whose resolver answers from the zone (the endpoint's VNet)."""
    ip_address: pulumi.Input[str]
    """Where the record points: the private endpoint's IP."""
    ttl_seconds: NotRequired[int]
    """TTL of the record, default 300."""
    tags: NotRequired[dict[str, str]]
    """Tags for the zone and its VNet link."""


class PrivateDnsRecord(pulumi.ComponentResource):
    """A private DNS zone linked to a VNet without auto-registration, and one A record in it."""

    zone_id: pulumi.Output[str]
    """Resource id of the private DNS zone."""
    fqdn: pulumi.Output[str]
    """<recordName>.<zoneName>: the name clients in the VNet dial."""

    def __init__(self, name: str, args: PrivateDnsRecordArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("PrivateDnsRecord"), name, {}, formerly("pls:consumer:PrivateDnsRecord", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=args["zone_name"],
            resource_group_name=args["resource_group_name"],
            location="global",
            tags=tags,
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            f"{name}-link",
            resource_group_name=args["resource_group_name"],
            private_zone_name=zone.name,
            location="global",
            virtual_network={"id": args["vnet_id"]},
            # The zone holds the service's name only; VMs must not register themselves in it.
            registration_enabled=False,
            tags=tags,
            opts=child,
        )
        privatedns.PrivateRecordSet(
            f"{name}-a",
            resource_group_name=args["resource_group_name"],
            private_zone_name=zone.name,
            record_type="A",
            relative_record_set_name=args["record_name"],
            ttl=args.get("ttl_seconds", 300),
            a_records=[{"ipv4_address": args["ip_address"]}],
            opts=child,
        )
        self.zone_id = zone.id
        self.fqdn = pulumi.Output.concat(args["record_name"], ".", args["zone_name"])
        self.register_outputs({"zone_id": self.zone_id, "fqdn": self.fqdn})
