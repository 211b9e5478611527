"""Azure's own rules that a configuration value must meet, each with its source, as plain data.

Settings validate against them before any resource is registered, and the tests check every name the
program registers against NAME_RULES, so a value Azure would refuse never reaches it. Every pattern is used
with fullmatch: `$` would accept a trailing newline, which would land in Azure names.
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

# Limits of one Private Link Service ("Azure subscription and service limits", Private Link limits).
MAX_NAT_IPS = 8  # NAT IP configurations
MAX_SUBSCRIPTIONS = 100  # subscriptions in visibility, and in auto-approval
MAX_CONNECTIONS = 1000  # private endpoints connected
MAX_REQUEST_MESSAGE = 140  # a private endpoint connection's request message
NAT_HEADROOM = 8  # Microsoft recommends at least eight free NAT IPs in the NAT subnet
# Subnets: Azure keeps the first four and the last address of every subnet; /29 is the smallest it creates.
AZURE_RESERVED_IPS = 5
AZURE_SMALLEST_SUBNET = 29
MAX_CUSTOM_DATA = 65535  # a VM's customData (cloud-init), in bytes before base64
# Ours, not Azure's: the provider's cloud-config travels in every web VM's Run Command script; it was custom data
# before, and keeps that limit (an app larger than this belongs in a package or the image).
MAX_APP_CLOUD_CONFIG = MAX_CUSTOM_DATA
MAX_KEY_VAULT_IP_RULES = 1000  # Key Vault service limits: IPv4 firewall rules per vault
MAX_ALERT_EMAILS = 20  # e-mail receivers an action group takes (kept small: a list address pages a team)
RETENTION_DAYS = (30, 730)  # Log Analytics: the interactive retention a workspace takes

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_RE = re.compile(GUID)
REGION_NAME_RE = re.compile(r"[a-z0-9]+")
ALIAS_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,79}}\.{GUID}\.[a-z0-9]+\.azure\.privatelinkservice")
PRIVATE_ENDPOINT_ID_RE = re.compile(
    rf"/subscriptions/(?P<subscription>{GUID})/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.Network/privateEndpoints/(?P<name>[^/]+)",
    re.IGNORECASE,
)
SUBNET_ID_RE = re.compile(
    rf"/subscriptions/{GUID}/resourceGroups/[-\w._()]{{0,89}}[-\w_()]"
    r"/providers/Microsoft\.Network/virtualNetworks/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]"
    r"/subnets/[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]",
    re.IGNORECASE | re.ASCII,
)
PRIVATE_DNS_ZONE_ID_RE = re.compile(
    rf"/subscriptions/{GUID}/resourceGroups/[-\w._()]{{0,89}}[-\w_()]"
    r"/providers/Microsoft\.Network/privateDnsZones/(?P<zone>[^/]+)",
    re.IGNORECASE | re.ASCII,
)
WORKSPACE_ID_RE = re.compile(
    rf"/subscriptions/{GUID}/resourceGroups/[-\w._()]{{0,89}}[-\w_()]"
    r"/providers/Microsoft\.OperationalInsights/workspaces/[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]",
    re.IGNORECASE | re.ASCII,
)
DNS_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?")
KEY_VAULT_OBJECT_RE = re.compile(r"[0-9A-Za-z-]{1,127}")
VM_SIZE_RE = re.compile(r"Standard_[A-Za-z0-9_]+")
LINUX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
IMAGE_PART_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
IMAGE_VERSION_RE = re.compile(r"latest|\d+\.\d+\.\d+")
# Azure refuses these as Linux admin user names.
RESERVED_USERNAMES = frozenset(
    {
        *("administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123"),
        *("a", "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner"),
        *("root", "server", "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5"),
    }
)
# Azure accepts these for Linux VMs: RSA of at least 2048 bits and Ed25519; not ECDSA or DSA.
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
MIN_RSA_BITS = 2048
ED25519_KEY_BYTES = 32


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


# Load balancer limits ("Azure subscription and service limits", Load Balancer; the Private Link overview).
MAX_SERVICES_PER_LOAD_BALANCER = 8  # Private Link Services on one Standard load balancer, one frontend each
