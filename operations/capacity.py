"""Capacity at a glance: what each Private Link Service of a provider uses of Azure's limits, with a warning
before any of them runs out (scripts/plan provider prints it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from pls import azure_rules
from pls.config import ProviderSettings

WARN_AT = 0.8
"""A limit used this much is worth a warning: onboarding the next customers takes planning (a new service)."""


def capacity_notes(provider: ProviderSettings, connections: Sequence[Mapping[str, str]]) -> list[str]:
    """Per service: endpoints of 1,000, subscriptions of 100 in each list, NAT IPs of 8, the NAT subnet's free
    addresses; then a warning for each limit that is nearly or wholly used."""
    lines = [
        f"capacity ({len(provider.services)} of {azure_rules.MAX_SERVICES_PER_LOAD_BALANCER} services on the "
        "load balancer):"
    ]
    warnings = []
    endpoints_of = {s.name: sum(1 for c in connections if c.get("service") == s.name) for s in provider.services}
    room = [
        s.name
        for s in provider.services
        if endpoints_of[s.name] < WARN_AT * azure_rules.MAX_CONNECTIONS
        and (s.visibility == ("*",) or len(s.visibility) < WARN_AT * azure_rules.MAX_SUBSCRIPTIONS)
    ]
    elsewhere = (
        f"services with room: {', '.join(room)}"
        if room
        else "none has room: scripts/onboard declares the next service"
        if len(provider.services) < azure_rules.MAX_SERVICES_PER_LOAD_BALANCER
        else "none has room on this load balancer: start another provider stack (docs/operations/capacity.md)"
    )
    sharing: dict[str, int] = {}
    for service in provider.services:
        sharing[service.nat_subnet_cidr] = sharing.get(service.nat_subnet_cidr, 0) + service.nat_ip_count
    for service in provider.services:
        endpoints = endpoints_of[service.name]
        anyone = service.visibility == ("*",)
        subnet = ipaddress.IPv4Network(service.nat_subnet_cidr)
        free = subnet.num_addresses - azure_rules.AZURE_RESERVED_IPS - sharing[service.nat_subnet_cidr]
        used = [
            ("endpoints", endpoints, azure_rules.MAX_CONNECTIONS),
            ("NAT IPs", service.nat_ip_count, azure_rules.MAX_NAT_IPS),
        ]
        if not anyone:
            used[1:1] = [
                ("visibility", len(service.visibility), azure_rules.MAX_SUBSCRIPTIONS),
                ("auto-approval", len(service.auto_approval), azure_rules.MAX_SUBSCRIPTIONS),
            ]
        shown = ", ".join(f"{what} {count}/{limit}" for what, count, limit in used)
        lines.append(
            f"  {service.name}: {shown}{', visible to anyone with the alias' if anyone else ''}, "
            f"NAT subnet {subnet} {free} addresses free"
        )
        for what, count, limit in used:
            if what != "NAT IPs" and count >= WARN_AT * limit:
                warnings.append(f"warning: {service.name} uses {count} of {limit} {what}; {elsewhere}")
        if free < azure_rules.NAT_HEADROOM:
            warnings.append(
                f"warning: {service.name}'s NAT subnet {subnet} has {free} free addresses, fewer than Microsoft's "
                f"{azure_rules.NAT_HEADROOM}: give new services a NAT subnet of their own (natSubnetCidr=)"
            )
    return lines + warnings
