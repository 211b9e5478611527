"""Split-horizon DNS for the service: one A record to the endpoint, in a private zone of its own linked to the
customer's VNet, or in an existing zone (an enterprise hub's central one)."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_azure_native
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
    existing_zone_id: NotRequired[str]
    """Resource id of an existing private DNS zone (/subscriptions/<sub>/resourceGroups/<group>/providers/
    Microsoft.Network/privateDnsZones/<zone>): the record goes into it, in its own subscription, and no zone is
    created. Default: a zone of the component's own, in resourceGroupName."""
    link_vnet: NotRequired[bool]
    """Link the zone to vnetId (default true for a zone of its own; false for an existing one, which the hub's
    resolver already answers from)."""
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
        existing = args.get("existing_zone_id")
        zone_group: pulumi.Input[str]
        zone_name: pulumi.Input[str]
        if existing:
            # /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.Network/privateDnsZones/<zone>
            parts = existing.split("/")
            zone_group, zone_name = parts[4], parts[8]
            self.zone_id = pulumi.Output.from_input(existing)
            # The zone may live in another subscription (a connectivity hub's): write there, not in the stack's.
            hub = pulumi_azure_native.Provider(f"{name}-zone-subscription", subscription_id=parts[2], opts=child)
            in_zone = pulumi.ResourceOptions(parent=self, provider=hub)
        else:
            zone = privatedns.PrivateZone(
                f"{name}-zone",
                private_zone_name=args["zone_name"],
                resource_group_name=args["resource_group_name"],
                location="global",
                tags=tags,
                opts=child,
            )
            zone_group, zone_name, in_zone = args["resource_group_name"], zone.name, child
            self.zone_id = zone.id
        if args.get("link_vnet", not existing):
            privatedns.VirtualNetworkLink(
                f"{name}-link",
                resource_group_name=zone_group,
                private_zone_name=zone_name,
                location="global",
                virtual_network={"id": args["vnet_id"]},
                # The zone holds the service's name only; VMs must not register themselves in it.
                registration_enabled=False,
                tags=tags,
                opts=in_zone,
            )
        privatedns.PrivateRecordSet(
            f"{name}-a",
            resource_group_name=zone_group,
            private_zone_name=zone_name,
            record_type="A",
            relative_record_set_name=args["record_name"],
            ttl=args.get("ttl_seconds", 300),
            a_records=[{"ipv4_address": args["ip_address"]}],
            opts=in_zone,
        )
        self.fqdn = pulumi.Output.concat(args["record_name"], ".", zone_name)
        self.register_outputs({"zone_id": self.zone_id, "fqdn": self.fqdn})
