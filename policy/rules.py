"""The security guard rails, as plain functions of a resource's type and properties.

policy/__main__.py runs them as a Pulumi CrossGuard policy pack; the tests call them directly,
with hand-built resources and with the resources of the real program.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol


class Resource(Protocol):
    """What a rule sees of a resource (pulumi_policy's PolicyResource has exactly these)."""

    @property
    def resource_type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def props(self) -> Mapping[str, Any]: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[Resource]]: ...


NIC = "azure-native:network:NetworkInterface"
LOAD_BALANCER = "azure-native:network:LoadBalancer"
VIRTUAL_MACHINE = "azure-native:compute:VirtualMachine"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
SUBNET = "azure-native:network:Subnet"
PRIVATE_LINK_SERVICE = "azure-native:network:PrivateLinkService"
DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
KEY_VAULT = "azure-native:keyvault:Vault"

INTERNET_SOURCES = {"*", "internet", "any", "0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1"}
GUARDED_PORTS = (22, 80)


def _items(props: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [item for item in props.get(key) or [] if isinstance(item, Mapping)]


def no_public_ip(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """NICs, load balancers and VMs stay private: the only way in is the Private Link Service."""
    if resource_type == NIC:
        return [
            f"NIC ip configuration {c.get('name', '?')} has a public IP address"
            for c in _items(props, "ipConfigurations")
            if c.get("publicIPAddress")
        ]
    if resource_type == LOAD_BALANCER:
        return [
            f"load balancer frontend {c.get('name', '?')} is public"
            for c in _items(props, "frontendIPConfigurations")
            if c.get("publicIPAddress") or c.get("publicIPPrefix")
        ]
    if resource_type == VIRTUAL_MACHINE:
        configs = _items(props.get("networkProfile") or {}, "networkInterfaceConfigurations")
        return [
            "VM network interface configuration asks for a public IP address"
            for config in configs
            for ip in _items(config, "ipConfigurations")
            if ip.get("publicIPAddressConfiguration")
        ]
    return []


def _ports(rule: Mapping[str, Any]) -> Iterable[tuple[int, int]]:
    ranges = [rule.get("destinationPortRange"), *list(rule.get("destinationPortRanges") or [])]
    for text in filter(None, ranges):
        if text == "*":
            yield 0, 65535
        else:
            low, _, high = str(text).partition("-")
            yield int(low), int(high or low)


def _rule_opens_guarded_port_to_internet(rule: Mapping[str, Any]) -> list[int]:
    if rule.get("access") != "Allow" or rule.get("direction", "Inbound") != "Inbound":
        return []
    sources = [rule.get("sourceAddressPrefix"), *list(rule.get("sourceAddressPrefixes") or [])]
    if not any(str(s).lower() in INTERNET_SOURCES for s in sources if s):
        return []
    return [port for port in GUARDED_PORTS if any(low <= port <= high for low, high in _ports(rule))]


def no_internet_http_or_ssh(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No NSG rule lets the Internet reach port 80 or 22."""
    rules = (
        _items(props, "securityRules") if resource_type == NSG else [props] if resource_type == SECURITY_RULE else []
    )
    return [
        f"security rule {rule.get('name', '?')} opens port {port} to the Internet"
        for rule in rules
        for port in _rule_opens_guarded_port_to_internet(rule)
    ]


def auto_approval_within_visibility(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Auto-approved subscriptions must be visible ones; Azure's own rule, checked before Azure rejects it."""
    if resource_type != PRIVATE_LINK_SERVICE:
        return []
    visible = {str(s).lower() for s in (props.get("visibility") or {}).get("subscriptions") or []}
    approved = {str(s).lower() for s in (props.get("autoApproval") or {}).get("subscriptions") or []}
    if "*" in visible:
        return []
    return [f"auto-approved subscription {s} is not in visibility" for s in sorted(approved - visible)]


def linux_vm_ssh_key_only(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Linux VMs log in with SSH keys only: no password, password authentication disabled."""
    if resource_type != VIRTUAL_MACHINE:
        return []
    os_profile = props.get("osProfile") or {}
    linux = os_profile.get("linuxConfiguration")
    if linux is None:
        return []
    problems = []
    if os_profile.get("adminPassword"):
        problems.append("Linux VM has an admin password")
    if linux.get("disablePasswordAuthentication") is not True:
        problems.append("Linux VM allows password authentication")
    if not (linux.get("ssh") or {}).get("publicKeys"):
        problems.append("Linux VM has no SSH public key")
    return problems


def dns_link_without_auto_registration(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A service's private zone holds its records only: VMs must not register themselves in it."""
    if resource_type == DNS_LINK and props.get("registrationEnabled"):
        return ["private DNS zone link has auto-registration enabled"]
    return []


def key_vault_rbac_purge_protected_firewalled(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The TLS certificate's vault: Azure RBAC only, purge protection on, and a firewall that denies by default."""
    if resource_type != KEY_VAULT:
        return []
    vault = props.get("properties") or {}
    problems = []
    if vault.get("enableRbacAuthorization") is not True:
        problems.append("Key Vault grants access by access policies, not Azure RBAC")
    if vault.get("enablePurgeProtection") is not True:
        problems.append("Key Vault has no purge protection: a deleted certificate could be purged at once")
    if (
        vault.get("publicNetworkAccess") != "Disabled"
        and (vault.get("networkAcls") or {}).get("defaultAction") != "Deny"
    ):
        problems.append("Key Vault's firewall lets every network in")
    return problems


def pls_nat_subnet_policies_disabled(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """Every subnet a Private Link Service takes NAT IPs from has its network policies Disabled."""
    violations = []
    for service in resources:
        if service.resource_type != PRIVATE_LINK_SERVICE:
            continue
        for subnet in service.property_dependencies.get("ipConfigurations", []):
            if subnet.resource_type == SUBNET and subnet.props.get("privateLinkServiceNetworkPolicies") != "Disabled":
                violations.append(
                    (service.name, f"NAT subnet {subnet.name} must have privateLinkServiceNetworkPolicies Disabled")
                )
    return violations


MAX_SERVICES_PER_LOAD_BALANCER = 8


def pls_services_share_a_load_balancer_as_azure_allows(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """Private Link Services on one load balancer: at most 8, each on a frontend of its own, and PROXY protocol
    on all of them or none (they share the backend pool, whose probes see one or the other)."""
    by_balancer: dict[str, list[Resource]] = {}
    for service in resources:
        if service.resource_type != PRIVATE_LINK_SERVICE:
            continue
        for dependency in service.property_dependencies.get("loadBalancerFrontendIpConfigurations", []):
            if dependency.resource_type == LOAD_BALANCER:
                by_balancer.setdefault(dependency.name, []).append(service)
    violations = []
    for balancer, services in by_balancer.items():
        if len(services) > MAX_SERVICES_PER_LOAD_BALANCER:
            violations.append(
                (balancer, f"load balancer {balancer} has {len(services)} Private Link Services; Azure allows 8")
            )
        if len({bool(s.props.get("enableProxyProtocol")) for s in services}) > 1:
            violations.append(
                (balancer, f"the Private Link Services of {balancer} disagree on PROXY protocol: turn it on for all")
            )
        frontends = [
            str(f["id"]).lower()
            for s in services
            for f in _items(s.props, "loadBalancerFrontendIpConfigurations")
            if f.get("id")
        ]
        if len(frontends) != len(set(frontends)):
            violations.append(
                (balancer, f"two Private Link Services of {balancer} share a frontend: give each its own")
            )
    return violations


STACK_RULES = {
    "pls-nat-subnet-policies-disabled": pls_nat_subnet_policies_disabled,
    "pls-services-share-a-load-balancer-as-azure-allows": pls_services_share_a_load_balancer_as_azure_allows,
}


RESOURCE_RULES = {
    "no-public-ip": no_public_ip,
    "no-internet-http-or-ssh": no_internet_http_or_ssh,
    "pls-auto-approval-within-visibility": auto_approval_within_visibility,
    "linux-vm-ssh-key-only": linux_vm_ssh_key_only,
    "private-dns-link-without-auto-registration": dns_link_without_auto_registration,
    "key-vault-rbac-purge-protected-firewalled": key_vault_rbac_purge_protected_firewalled,
}
