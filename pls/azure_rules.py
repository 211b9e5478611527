"""Azure's own rules that a configuration value must meet, each with its source, as plain data.

Settings validate against them before any resource is registered, and the tests check every name the
program registers against NAME_RULES, so a value Azure would refuse never reaches it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# Public-cloud regions with availability zones 1-3 ("Azure regions list", learn.microsoft.com/azure/reliability/
# regions-list, programmatic names of the rows with 3 availability zones; read 2026-11-24). The design spreads the
# web VMs and the load balancer frontend over zones, so a region without them cannot host the provider.
ZONE_REGIONS = frozenset(
    {
        "australiaeast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "chilecentral",
        "denmarkeast",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "koreacentral",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "westeurope",
        "westus2",
        "westus3",
    }
)


@dataclass(frozen=True)
class NameRule:
    """Length and characters Azure allows for one resource type's name."""

    min_length: int
    max_length: int
    pattern: re.Pattern[str]
    says: str
    """The rule in words, for error messages."""

    def problem(self, name: str) -> str | None:
        if not self.min_length <= len(name) <= self.max_length:
            return f"{len(name)} characters, Azure allows {self.min_length}-{self.max_length}"
        if not self.pattern.fullmatch(name):
            return f"Azure allows {self.says}"
        return None


_NETWORK_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_NETWORK_SAYS = "letters, digits, '_', '.' and '-', starting with a letter or digit and ending with one or '_'"


def _network(min_length: int, max_length: int) -> NameRule:
    return NameRule(min_length, max_length, _NETWORK_NAME, _NETWORK_SAYS)


LINUX_NAME = NameRule(
    1,
    64,
    re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"),
    "letters, digits and '-', not starting or ending with '-'",
)
"""A Linux VM's resource name and its computer (host) name."""

# "Naming rules and restrictions for Azure resources", learn.microsoft.com/azure/azure-resource-manager/management/
# resource-name-rules (Microsoft.Network, Microsoft.Compute, Microsoft.Resources), read 2026-11-24. ASCII only:
# resource groups also take Unicode letters, which the Azure CLI and many tools mishandle.
NAME_RULES: dict[str, NameRule] = {
    "azure-native:resources:ResourceGroup": NameRule(
        1,
        90,
        re.compile(r"[A-Za-z0-9_().-]*[A-Za-z0-9_()-]"),
        "letters, digits, '_', '(', ')', '-' and '.', not ending in '.'",
    ),
    "azure-native:network:VirtualNetwork": _network(2, 64),
    "azure-native:network:Subnet": _network(1, 80),
    "azure-native:network:NetworkSecurityGroup": _network(1, 80),
    "azure-native:network:ApplicationSecurityGroup": _network(1, 80),
    "azure-native:network:PublicIPAddress": _network(1, 80),
    "azure-native:network:NatGateway": _network(1, 80),
    "azure-native:network:LoadBalancer": _network(1, 80),
    "azure-native:network:NetworkInterface": _network(1, 80),
    "azure-native:network:PrivateLinkService": _network(1, 80),
    "azure-native:network:PrivateEndpoint": _network(2, 64),
    "azure-native:network:PrivateLinkServicePrivateEndpointConnection": _network(1, 80),
    "azure-native:privatedns:VirtualNetworkLink": _network(1, 80),
    "azure-native:compute:VirtualMachine": LINUX_NAME,
}
AUTONAME_SUFFIX = 8
"""azure-native appends this many random characters to a resource's logical name when it names it itself."""

# "Azure Private DNS zones: restrictions", learn.microsoft.com/azure/dns/private-dns-privatednszone (read 2026-11-24):
# these names (and their subdomains, except the privatelink.* zones of Azure's own services) cannot be created.
RESERVED_DNS_ZONES = (
    "azclient.ms",
    "azure.com",
    "cloudapp.net",
    "core.windows.net",
    "microsoft.com",
    "microsoftonline.com",
    "msidentity.com",
    "trafficmanager.net",
    "windows.net",
)
MAX_DNS_ZONE_LABELS = 34

# "Azure Virtual Network FAQ: what address ranges can I use" (learn.microsoft.com/azure/virtual-network/
# virtual-networks-faq, read 2026-11-24): ranges a VNet may not contain.
FORBIDDEN_VNET_RANGES = (
    (ipaddress.IPv4Network("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (ipaddress.IPv4Network("127.0.0.0/8"), "loopback"),
    (ipaddress.IPv4Network("169.254.0.0/16"), "link-local"),
    (ipaddress.IPv4Network("168.63.129.16/32"), "Azure's platform address 168.63.129.16 (DNS, DHCP, health probes)"),
    (ipaddress.IPv4Network("224.0.0.0/4"), "multicast"),
    (ipaddress.IPv4Network("240.0.0.0/4"), "reserved (240.0.0.0/4, broadcast included)"),
)


def reserved_dns_zone(zone: str) -> str | None:
    """The reserved name `zone` falls under, if any."""
    zone = zone.lower()
    if zone.startswith("privatelink."):
        return None
    return next((r for r in RESERVED_DNS_ZONES if zone == r or zone.endswith(f".{r}")), None)


def forbidden_range(net: ipaddress.IPv4Network) -> str | None:
    return next((why for forbidden, why in FORBIDDEN_VNET_RANGES if net.overlaps(forbidden)), None)
