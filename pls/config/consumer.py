"""A consumer stack's keys: the customer, the provider it reaches, its network and DNS, with their rules."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo, field_validator

from components.virtual_network import vnet_of
from pls import azure_rules
from pls.config.common import CommonSettings
from pls.config.errors import Problem, refuse
from pls.config.keys import Checks, Cidr, Key, SubnetId, fqdn_ok, optional, rule
from pls.config.registry import MAX_CUSTOMER, Customer, customer_name_problem

STACK_PART_RE = re.compile(r"[A-Za-z0-9_.-]+")
DEFAULT_PROVIDER_STACK = "organization/pls-saas/provider"
OWN_NETWORK_CIDRS = ("consumerVnetCidr", "endpointSubnetCidr", "workloadSubnetCidr")


def _customer(customer: str) -> str:
    if customer_name_problem(customer):
        raise refuse(
            "a consumer stack needs the customer's short name as a DNS label of at most "
            f"{MAX_CUSTOMER} characters (every Azure name of the stack is derived from it)",
            "set e.g. customer: tradewinds (lowercase letters, digits and -)",
        )
    for resource_type, name, what in (
        ("azure-native:network:PrivateEndpoint", f"{customer}-saas-pe", "private endpoint"),
        ("azure-native:resources:ResourceGroup", f"{customer}-rg", "resource group"),
    ):
        problem = azure_rules.NAME_RULES[resource_type].problem(name)
        if problem:
            raise refuse(f"makes the {what} name {name!r}: {problem}", "shorten or simplify customer")
    return customer


def _dns_zone(zone: str) -> str:
    if not fqdn_ok(zone):
        raise refuse("not a DNS zone name", "use e.g. saas.example.com")
    zone = zone.removesuffix(".")
    labels = zone.split(".")
    if len(labels) > azure_rules.MAX_DNS_ZONE_LABELS:
        raise refuse(
            f"{len(labels)} labels, a private DNS zone has at most {azure_rules.MAX_DNS_ZONE_LABELS}",
            "use a shorter name",
        )
    reserved = azure_rules.reserved_dns_zone(zone)
    if reserved:
        raise refuse(f"Azure reserves {reserved} for itself", "use your own domain")
    return zone


def _dns_zone_id(zone_id: str) -> str:
    if not zone_id:
        return zone_id
    match = azure_rules.PRIVATE_DNS_ZONE_ID_RE.fullmatch(zone_id)
    if match is None:
        raise refuse(
            "not a private DNS zone resource ID",
            "use az network private-dns zone show -g <group> -n <zone> --query id, or leave it empty for a zone "
            "of the stack's own",
        )
    _dns_zone(match["zone"])
    return zone_id


class ConsumerSettings(CommonSettings):
    """One customer's stack: a private endpoint to the provider's alias, private DNS, and a test VM."""

    customer: Annotated[
        str,
        Key(
            "consumer",
            (
                "The customer's short name, a DNS label of at most 40 characters (e.g. tradewinds); it names the "
                "resource group <customer>-rg and every resource. Required for a consumer stack, together with "
                "azure-native:subscriptionId (the customer's subscription)."
            ),
        ),
        AfterValidator(_customer),
    ] = ""
    provider_stack: Annotated[
        str,
        Key(
            "consumer",
            (
                "Fully qualified provider stack whose `alias` output the endpoint connects to. Leave at the "
                "default when providerAlias is set."
            ),
        ),
        rule(
            lambda ref: len(parts := ref.split("/")) == 3 and all(STACK_PART_RE.fullmatch(p) for p in parts),
            "not a fully qualified stack name",
            "write <organization>/<project>/<stack>, e.g. organization/pls-saas/provider, or set providerAlias",
        ),
    ] = DEFAULT_PROVIDER_STACK
    provider_alias: Annotated[
        str,
        Key(
            "consumer",
            (
                "The provider's alias, for a customer that cannot read the provider's state (another tenant). "
                "Set this or a non-default providerStack, not both."
            ),
        ),
        optional(
            azure_rules.ALIAS_RE,
            "not a Private Link Service alias",
            "copy the provider's alias output: <prefix>.<guid>.<region>.azure.privatelinkservice",
        ),
    ] = ""
    endpoint_subnet_id: Annotated[
        SubnetId,
        Key(
            "consumer",
            (
                "Resource ID of a subnet of the customer's own VNet for the private endpoint: attach to the "
                "network the customer has (the private DNS zone is linked to its VNet). Empty: the stack creates "
                "a VNet from consumerVnetCidr, endpointSubnetCidr and workloadSubnetCidr."
            ),
        ),
    ] = ""
    workload_subnet_id: Annotated[
        SubnetId,
        Key(
            "consumer",
            (
                "With endpointSubnetId: the subnet of the test VM, in the same VNet (default: endpointSubnetId). "
                "The stack does not change subnets it does not own: with testVm, set vnetHasOutbound (the subnet "
                "must reach Azure on TCP 443)."
            ),
        ),
    ] = ""
    consumer_vnet_cidr: Annotated[
        Cidr,
        Key(
            "consumer",
            ("Address space of the customer VNet; it may overlap the provider's (nothing is routed between them)."),
        ),
    ] = "10.0.0.0/16"
    endpoint_subnet_cidr: Annotated[
        Cidr,
        Key(
            "consumer",
            ("Subnet of the private endpoint (privateEndpointNetworkPolicies Disabled)."),
        ),
    ] = "10.0.4.0/24"
    workload_subnet_cidr: Annotated[
        Cidr,
        Key(
            "consumer",
            ("Subnet of the test VM."),
        ),
    ] = "10.0.5.0/24"
    request_message: Annotated[
        str,
        Key(
            "consumer",
            ('Message sent with a manual connection request (at most 140 characters). Empty: "Customer: <customer>".'),
        ),
    ] = ""
    auto_approved: Annotated[
        bool,
        Key(
            "consumer",
            (
                "The provider auto-approves this customer's subscription: request an automatic connection "
                "instead of a manual one."
            ),
        ),
    ] = False
    dns_zone: Annotated[
        str,
        Key(
            "consumer",
            ("Private DNS zone for the service's domain, linked to the customer VNet."),
        ),
        AfterValidator(_dns_zone),
    ] = "saas.example.com"
    dns_zone_id: Annotated[
        str,
        Key(
            "consumer",
            "Resource ID of an existing private DNS zone for the service's domain, e.g. an enterprise hub's central "
            "zone (in any subscription the deployment may write to): the stack creates only the A record in it, "
            "and links it to the VNet only with linkDnsZone. Empty: a zone of the stack's own (dnsZone), linked to "
            "the VNet.",
        ),
        AfterValidator(_dns_zone_id),
    ] = ""
    link_dns_zone: Annotated[
        bool,
        Key(
            "consumer",
            "With dnsZoneId: link that zone to the customer's VNet too. Leave it false when the VNet already "
            "resolves from the hub (its DNS servers, a DNS Private Resolver, or a link of the hub's own).",
        ),
    ] = False
    dns_record: Annotated[
        str,
        Key(
            "consumer",
            ("A record in dnsZone that points at the private endpoint's IP."),
        ),
        rule(lambda label: azure_rules.DNS_LABEL_RE.fullmatch(label) is not None, "not a DNS label", "use e.g. api"),
    ] = "api"
    https: Annotated[
        bool,
        Key(
            "consumer",
            (
                "The provider serves HTTPS (its tls): scripts/verify then speaks HTTPS to dnsRecord.dnsZone and "
                "checks the certificate against the test VM's trusted CAs."
            ),
        ),
    ] = False
    test_vm: Annotated[
        bool,
        Key(
            "consumer",
            (
                "A Linux test VM in the workload subnet (no public IP) that scripts/verify runs its checks on "
                "through Run Command, with an outbound path for Run Command's answer (a NAT gateway, unless "
                "vnetHasOutbound). Set false once the customer is live: the VM, its disk and NIC and the NAT "
                "gateway go."
            ),
        ),
    ] = True
    vnet_has_outbound: Annotated[
        bool,
        Key(
            "consumer",
            (
                "The workload subnet already reaches Azure on TCP 443 (e.g. a hub firewall through a route "
                "table), so the test VM gets no NAT gateway. Run Command returns the checks' output only over "
                "that path."
            ),
        ),
    ] = False

    registered: Customer | None = None
    """The customer's entry in the registry, if it has one (not a key: read from customerRegistry)."""

    @field_validator("request_message")
    @classmethod
    def _request_message(cls, message: str, info: ValidationInfo) -> str:
        """Empty: "Customer: <customer>". Azure takes 140 printable characters."""
        message = message or f"Customer: {info.data.get('customer', '')}"
        if len(message) > azure_rules.MAX_REQUEST_MESSAGE or not message.isprintable():
            raise refuse(
                f"{len(message)} characters, Azure allows {azure_rules.MAX_REQUEST_MESSAGE} printable ones",
                "shorten it, on one line",
            )
        return message

    @property
    def service(self) -> str:
        """The provider's service this customer reaches: its registry entry's; '' (the first) when unregistered."""
        return self.registered.service if self.registered else ""

    @property
    def provider_stack_read(self) -> str | None:
        """The provider stack the alias is read from; None when the stack file gives the alias."""
        return None if self.provider_alias else self.provider_stack

    @property
    def own_subnets(self) -> tuple[str, str] | None:
        """The customer's own subnets (endpoint, test VM); None when the stack creates the VNet."""
        if not self.endpoint_subnet_id:
            return None
        return self.endpoint_subnet_id, self.workload_subnet_id or self.endpoint_subnet_id

    @property
    def zone_name(self) -> str:
        """The private DNS zone the record is in: dnsZoneId's, or dnsZone."""
        return self.dns_zone_id.split("/")[8].lower().removesuffix(".") if self.dns_zone_id else self.dns_zone

    @property
    def fqdn(self) -> str:
        return f"{self.dns_record}.{self.zone_name}"

    @property
    def service_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.fqdn}"

    @property
    def workload_nat_gateway(self) -> bool:
        """Run Command returns output only over outbound TCP 443: the test VM's subnet needs a path while it exists."""
        return self.test_vm and not self.vnet_has_outbound

    @property
    def resource_group_name(self) -> str:
        """Fixed, so the endpoint's id (what the provider approves) is known from the stack file alone."""
        return f"{self.customer}-rg"

    @property
    def endpoint_component_name(self) -> str:
        return f"{self.customer}-saas"

    @property
    def private_endpoint_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"
            f"/providers/Microsoft.Network/privateEndpoints/{self.endpoint_component_name}-pe"
        )


def check_consumer(
    c: Checks, defaults: dict[str, object], registered: Customer | None, subscription_id: str | None
) -> None:
    """The consumer's rules across keys: one way to the alias, what its registry entry says, and either its own
    network or a new one."""
    values = c.values
    if registered is not None:
        _check_registered(c, registered, subscription_id)
    if c.ok("providerAlias", "providerStack") and values["providerAlias"]:
        c.check(
            "providerStack",
            values["providerStack"] == defaults["providerStack"],
            "set together with providerAlias",
            "set exactly one of providerAlias and providerStack",
        )
    if c.ok("dnsZoneId", "dnsZone", "linkDnsZone"):
        if values["dnsZoneId"]:
            c.check(
                "dnsZone",
                values["dnsZone"] == defaults["dnsZone"],
                "set together with dnsZoneId (the record goes into that zone, whose name the ID holds)",
                "remove dnsZone, or dnsZoneId for a zone of the stack's own",
            )
        else:
            c.check(
                "linkDnsZone",
                not values["linkDnsZone"],
                "is true without dnsZoneId (a zone of the stack's own is always linked to its VNet)",
                "remove linkDnsZone, or set dnsZoneId",
            )
    if not c.ok("endpointSubnetId", "workloadSubnetId"):
        return
    endpoint, workload = values["endpointSubnetId"], values["workloadSubnetId"]
    if not endpoint:
        c.check(
            "workloadSubnetId",
            not workload,
            "set without endpointSubnetId",
            "set endpointSubnetId too (the customer's own network), or remove workloadSubnetId",
        )
        c.subnets("consumerVnetCidr", ["endpointSubnetCidr", "workloadSubnetCidr"], {"endpointSubnetCidr": 1})
        return
    for key in OWN_NETWORK_CIDRS:
        c.check(
            key,
            values.get(key) == defaults[key],
            "set together with endpointSubnetId (the stack creates no VNet then)",
            f"remove {key}, or endpointSubnetId to let the stack create a VNet",
        )
    if workload:
        c.check(
            "workloadSubnetId",
            vnet_of(workload).lower() == vnet_of(endpoint).lower(),
            "not in endpointSubnetId's VNet: the test VM would not resolve the private DNS zone linked to that VNet",
            "use a subnet of the endpoint's VNet",
        )
    if c.ok("vnetHasOutbound", "testVm"):
        c.check(
            "vnetHasOutbound",
            values["vnetHasOutbound"] or not values["testVm"],
            "is false, but the stack cannot give a subnet it does not own a NAT gateway, and Run Command (the verify "
            "step) needs the test VM to reach Azure on TCP 443",
            "set vnetHasOutbound: true if the subnet reaches Azure (e.g. through your firewall), or testVm: false",
        )


def _check_registered(c: Checks, registered: Customer, subscription_id: str | None) -> None:
    """The stack file agrees with the customer's registry entry, the one place the provider reads it from."""
    entry = f"customers/{registered.name}.yaml"
    if subscription_id is not None and subscription_id not in registered.subscriptions:
        c.problems.append(
            Problem(
                "azure-native:subscriptionId",
                subscription_id,
                f"not among {entry}'s subscriptions, so the provider's service does not see it",
                f"add it to subscriptions in {entry}, or deploy from one of {', '.join(registered.subscriptions)}",
            )
        )
    if c.ok("autoApproved"):
        c.check(
            "autoApproved",
            c.values["autoApproved"] == (registered.approval == "auto"),
            f"disagrees with {entry}, whose approval is {registered.approval}",
            f"set autoApproved: {str(registered.approval == 'auto').lower()}, or change approval in {entry}",
        )
    if c.ok("providerAlias", "providerStack") and not c.values["providerAlias"]:
        c.check(
            "providerStack",
            c.values["providerStack"].rsplit("/", 1)[-1] == registered.provider,
            f"not the provider stack {entry} names ({registered.provider})",
            f"set providerStack to <organization>/<project>/{registered.provider}, or change provider in {entry}",
        )
