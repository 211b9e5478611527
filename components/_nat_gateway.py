"""Outbound for a subnet without default outbound access: a NAT gateway on one Standard public IP."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import network


def nat_gateway(
    name: str,
    *,
    resource_group_name: pulumi.Input[str],
    location: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> tuple[network.NatGateway, pulumi.Output[str]]:
    """`<name>-natgw` and its public IP `<name>-nat-pip`: the gateway (for a subnet) and the address it leaves from.

    The public IP belongs to the gateway, never to a NIC: nothing can reach a VM through it.
    """
    child = pulumi.ResourceOptions(parent=parent)
    public_ip = network.PublicIPAddress(
        f"{name}-nat-pip",
        resource_group_name=resource_group_name,
        location=location,
        sku={"name": "Standard", "tier": "Regional"},
        public_ip_allocation_method="Static",
        public_ip_address_version="IPv4",
        tags=tags,
        opts=child,
    )
    gateway = network.NatGateway(
        f"{name}-natgw",
        resource_group_name=resource_group_name,
        location=location,
        sku={"name": "Standard"},
        public_ip_addresses=[{"id": public_ip.id}],
        idle_timeout_in_minutes=4,
        tags=tags,
        opts=child,
    )
    return gateway, public_ip.ip_address.apply(lambda ip: ip or "")
