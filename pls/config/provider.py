"""The provider stack's keys: the network, the web VMs and the Private Link Service, with their rules."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import AfterValidator, Field

from components.internal_load_balancer import PROBE_INTERVAL_SECONDS, PROBE_THRESHOLD
from components.private_link_service import ConnectionDecision
from pls import azure_rules
from pls.config.common import CommonSettings
from pls.config.errors import Problem, refuse, shown
from pls.config.keys import Checks, Cidr, Key, Subscriptions, SubscriptionsOrAnyone, fqdn_ok, matching, rule
from pls.config.operations import OperationsKeys, check_operations
from pls.config.registry import Customer
from pls.config.services import (
    AdditionalService,
    AdditionalServices,
    PublishedService,
    StackFileLists,
    additional_services,
    check_own_nat_subnets,
    check_registry,
    published_service,
)
from pls.config.web import WebTierKeys, app_cloud_config, check_web_tier
from pls.web_server_config import HEALTH_PORT, HTTPS_PORT, RateLimit, WebServerConfig
from pls.webserver import render_web_server

DECISION_KEYS = {"approvedConnections": "Approved", "rejectedConnections": "Rejected"}


def _load_balancer_name(service_name: str) -> str:
    """Fixed by serviceName: the frontend the service (and so its alias) is attached to lives on it."""
    return f"lb-{service_name}"


def _load_balancer_name_ok(service_name: str) -> str:
    name = _load_balancer_name(service_name)
    problem = azure_rules.NAME_RULES["azure-native:network:LoadBalancer"].problem(name)
    if problem:
        raise refuse(f"makes the load balancer name {name!r}: {problem}", "shorten or simplify serviceName")
    return service_name


def _decision(entry: str) -> str:
    """One "<private endpoint resource id> | <reason>" entry, checked: the id by Azure's naming rules."""
    endpoint_id, sep, reason = (part.strip() for part in entry.partition("|"))
    if not sep or not reason:
        raise refuse(f"{shown(entry)} has no reason", 'write "<private endpoint resource id> | <reason>"')
    match = azure_rules.PRIVATE_ENDPOINT_ID_RE.fullmatch(endpoint_id)
    bad_part = match and (
        azure_rules.NAME_RULES["azure-native:resources:ResourceGroup"].problem(match["group"])
        or azure_rules.NAME_RULES["azure-native:network:PrivateEndpoint"].problem(match["name"])
        if match["group"].isascii() and match["name"].isascii()
        else "not ASCII"
    )
    if not match or bad_part:
        raise refuse(
            f"{shown(endpoint_id)} is not a private endpoint resource id"
            + (f" (its names: {bad_part})" if bad_part else ""),
            "use the consumer's endpoint id /subscriptions/<guid>/resourceGroups/<rg>/providers/"
            "Microsoft.Network/privateEndpoints/<name> (never its request message)",
        )
    return entry


Decisions = list[Annotated[str, AfterValidator(_decision)]]


def _zones_ok(zones: list[int]) -> bool:
    return bool(zones) and all(z in (1, 2, 3) for z in zones) and len(set(zones)) == len(zones)


class ProviderSettings(CommonSettings, WebTierKeys, OperationsKeys):
    """The provider stack: what it publishes, on which network, to whom."""

    service_name: Annotated[
        str,
        Key(
            "provider",
            (
                "Name of the Private Link Service and prefix of its alias "
                "(<serviceName>.<guid>.<region>.azure.privatelinkservice), at most 77 characters (the load "
                "balancer is lb-<serviceName>). Fixed once created: a change is refused while protectService is "
                "on."
            ),
        ),
        matching(
            azure_rules.SERVICE_NAME_RE,
            "not a valid Private Link Service name",
            "use 1-80 letters, digits, '.', '-' or '_', starting with a letter or digit",
        ),
        AfterValidator(_load_balancer_name_ok),
    ] = "saas"
    provider_vnet_cidr: Annotated[
        Cidr,
        Key(
            "provider",
            ("Address space of the isolated provider VNet."),
        ),
    ] = "10.50.0.0/16"
    backend_subnet_cidr: Annotated[
        Cidr,
        Key(
            "provider",
            ("Subnet of the web VMs and the load balancer frontend (NSG, NAT gateway)."),
        ),
    ] = "10.50.1.0/24"
    nat_subnet_cidr: Annotated[
        Cidr,
        Key(
            "provider",
            (
                "Dedicated subnet the Private Link Service draws its NAT IPs from "
                "(privateLinkServiceNetworkPolicies Disabled). Size it for peak consumer connections: it cannot "
                "grow in place."
            ),
        ),
    ] = "10.50.2.0/24"
    web_vm_count: Annotated[
        int,
        Key(
            "provider",
            ("Number of nginx web VMs, spread round-robin over `zones`."),
            "must be between 1 and 100",
            "set at least one web VM",
        ),
        Field(ge=1, le=100),
    ] = 3
    zones: Annotated[
        list[int],
        Key(
            "provider",
            ("Availability zones (1, 2, 3) the web VMs are placed in."),
        ),
        rule(_zones_ok, "zones must be distinct values among 1, 2, 3", "e.g. [1, 2, 3]"),
    ] = [1, 2, 3]
    nat_gateway: Annotated[
        bool,
        Key(
            "provider",
            (
                "Give the backend subnet a NAT gateway so cloud-init can install nginx and Run Command can report "
                "the web VMs' software (VMs behind an internal Standard LB have no outbound access). Turn off only "
                "for an image that already carries nginx and njs on a subnet that reaches Azure on TCP 443 another "
                "way (a hub firewall)."
            ),
        ),
    ] = True
    lb_idle_timeout_minutes: Annotated[
        int,
        Key(
            "provider",
            (
                "TCP idle timeout of the load-balancing rule, 4-100 minutes. Private Link itself drops idle "
                "flows after ~5 minutes: clients need keep-alives."
            ),
            "Azure accepts 4 to 100 minutes",
            "e.g. 15",
        ),
        Field(ge=4, le=100),
    ] = 15
    nat_ip_count: Annotated[
        int,
        Key(
            "provider",
            (
                "Number of NAT IP configurations of the Private Link Service, 1-8. Each adds NAT ports; Azure adds "
                "and removes them in place, and a decrease resets the connections through the removed ones (the "
                "program warns)."
            ),
            f"a Private Link Service has 1 to {azure_rules.MAX_NAT_IPS} NAT IP configurations",
            f"choose 1..{azure_rules.MAX_NAT_IPS}",
        ),
        Field(ge=1, le=azure_rules.MAX_NAT_IPS),
    ] = 1
    visibility: Annotated[
        SubscriptionsOrAnyone,
        Key(
            "provider",
            (
                "Deprecated: who may connect lives in the registry (customers/). Subscriptions that may see the "
                "first service, read until scripts/onboard --import-stack-lists moves them into entries (with "
                "nothing changed on Azure). `*`: use allowAnyoneWithAlias instead."
            ),
        ),
    ] = []
    allow_anyone_with_alias: Annotated[
        bool,
        Key(
            "provider",
            (
                "The first service (serviceName) is visible to anyone who knows its alias (its visibility is `*`): "
                "an explicit opt-in. Approvals stay keyed on endpoint ids, and the registry still says who is "
                "auto-approved and decided about."
            ),
        ),
    ] = False
    auto_approval: Annotated[
        Subscriptions,
        Key(
            "provider",
            (
                "Deprecated: who may connect lives in the registry (customers/, approval: auto). Subscriptions the "
                "first service approves on arrival, read until scripts/onboard --import-stack-lists moves them."
            ),
        ),
    ] = []
    fqdns: Annotated[
        list[
            Annotated[
                str,
                rule(
                    fqdn_ok,
                    lambda fqdn: f"{shown(fqdn)} is not a DNS name",
                    "use a name such as api.saas.example.com",
                ),
            ]
        ],
        Key(
            "provider",
            ("FQDNs of the service that Azure attaches to the Private Link Service, for consumers' DNS."),
        ),
    ] = []
    protect_service: Annotated[
        bool,
        Key(
            "provider",
            (
                "Protect the Private Link Service (and so its alias, the customers' contract) against deletion "
                "and replacement."
            ),
        ),
    ] = True
    lock_service: Annotated[
        bool,
        Key(
            "provider",
            (
                "A CanNotDelete lock on the Private Link Service, so a portal click or a script cannot delete "
                "the alias outside Pulumi. Azure applies it to the service's connections too: a customer's "
                "endpoint cannot be deleted (ScopeLocked) while it is on. Offboarding and teardown lift it first "
                "(docs/operations/offboarding.md)."
            ),
        ),
    ] = True
    approved_connections: Annotated[
        Decisions,
        Key(
            "provider",
            (
                'Deprecated: decisions live in the registry (scripts/approve). Each "<private endpoint resource id> '
                '| <reason>" to approve on the first service, read until scripts/onboard --import-stack-lists moves '
                "them."
            ),
        ),
    ] = []
    rejected_connections: Annotated[
        Decisions,
        Key(
            "provider",
            (
                'Deprecated: decisions live in the registry (scripts/approve --reject). Each "<private endpoint '
                'resource id> | <reason>" to reject, read until scripts/onboard --import-stack-lists moves them.'
            ),
        ),
    ] = []
    additional_services: Annotated[
        AdditionalServices,
        Key(
            "provider",
            (
                "More Private Link Services on the same load balancer and web tier, up to 7 (Azure allows 8 per "
                "Standard load balancer), each an object: name (its alias's prefix), natIpCount (1-8, default 1), "
                "natSubnetCidr (a NAT subnet of its own; default: the shared natSubnetCidr) and anyoneWithAlias "
                "(visible to anyone with its alias; default false). Each has its own frontend and alias, and the "
                "customers the registry assigns to it. Append only: a service's name is its alias. scripts/onboard "
                "declares the next one when every service is full."
            ),
            f"at most {azure_rules.MAX_SERVICES_PER_LOAD_BALANCER - 1} more services",
            "publish further customers from another provider stack (docs/operations/capacity.md)",
        ),
        Field(max_length=azure_rules.MAX_SERVICES_PER_LOAD_BALANCER - 1),
    ] = []
    customers: tuple[Customer, ...] = ()
    """This provider's entries in the customer registry (not a key: read from customerRegistry)."""

    @property
    def load_balancer_name(self) -> str:
        return _load_balancer_name(self.service_name)

    @property
    def service_ports(self) -> tuple[int, ...]:
        """The ports consumers reach through the load balancer (the probe reaches HEALTH_PORT regardless)."""
        if not self.tls:
            return (HEALTH_PORT,)
        return (HTTPS_PORT, HEALTH_PORT) if self.http_on_tls == "redirect" else (HTTPS_PORT,)

    @cached_property
    def stack_file_lists(self) -> StackFileLists:
        """Who may connect as the stack file itself says it (deprecated keys), for the first service."""
        decisions = tuple(
            ConnectionDecision(private_endpoint_id=endpoint_id, status=status, reason=reason)
            for entries, status in ((self.approved_connections, "Approved"), (self.rejected_connections, "Rejected"))
            for endpoint_id, _, reason in ((part.strip() for part in entry.partition("|")) for entry in entries)
        )
        visibility = tuple(s for s in self.visibility if s != "*")
        return StackFileLists(visibility, tuple(self.auto_approval), decisions)

    @cached_property
    def services(self) -> tuple[PublishedService, ...]:
        """Every Private Link Service, the first (serviceName) first: who may see it and the decisions about its
        connections, from the registry (and, until they are moved, the stack file's own lists, on the first). Lists
        are sorted, so where a subscription is written never changes what Azure is sent."""
        # The first service's keys are checked by their own rules (serviceName allows 80 characters, not 40).
        first = AdditionalService.model_construct(
            name=self.service_name, nat_ip_count=self.nat_ip_count, anyone_with_alias=self.allow_anyone_with_alias
        )
        return tuple(
            published_service(
                index, spec, self.service_name, self.customers, self.nat_subnet_cidr, self.stack_file_lists
            )
            for index, spec in enumerate([first, *self.additional_services])
        )

    @property
    def warnings(self) -> list[str]:
        """What the plan and the deployment say about this configuration without refusing it."""
        lists = self.stack_file_lists
        if not lists:
            return []
        return [
            f"Pulumi.{self.stack}.yaml still lists customers ({len(lists.visibility)} in visibility, "
            f"{len(lists.auto_approval)} in autoApproval, {len(lists.decisions)} decisions): the registry is their "
            "one place now. scripts/onboard --import-stack-lists moves them into customers/ with nothing changed "
            "on Azure"
        ]

    @property
    def connection_decisions(self) -> list[ConnectionDecision]:
        """Every service's decisions."""
        return [d for service in self.services for d in service.decisions]

    def service(self, name: str = "") -> PublishedService:
        """The service of that name; the first one for ''."""
        return next((s for s in self.services if s.name == name), self.services[0]) if name else self.services[0]

    @property
    def nat_subnet_cidrs(self) -> tuple[str, ...]:
        """Every subnet the services' NAT IPs come from: the backends believe PROXY headers from these only."""
        return tuple(dict.fromkeys(s.nat_subnet_cidr for s in self.services))

    @cached_property
    def web_server(self) -> WebServerConfig:
        """The web VMs' software (zone left empty: each VM has its own). nginx's PROXY protocol switch is the
        service's: they cannot disagree."""
        return WebServerConfig(
            proxy_protocol=self.proxy_protocol,
            trusted_proxy_cidrs=self.nat_subnet_cidrs,
            service_ports=tuple(
                (service.backend_port(HEALTH_PORT), service.backend_port(HTTPS_PORT)) for service in self.services[1:]
            ),
            zone="",
            app_upstream=self.app_upstream,
            app_health_path=self.app_health_path,
            demo_app=self.app_cloud_config == "demo",
            app_cloud_config=app_cloud_config(self.app_cloud_config),
            tls=self.tls,
            http_on_tls=self.http_on_tls,
            server_names=tuple(f.removesuffix(".") for f in self.fqdns),
            rate_limit=RateLimit(per_second=self.tenant_rate_limit, burst=self.tenant_rate_burst),
            # A VM is counted out (or back in) after this many probes: a change waits for it each time.
            settle_seconds=PROBE_INTERVAL_SECONDS * (PROBE_THRESHOLD + 1),
        )

    def connection_fate(self, subscription_id: str, private_endpoint_id: str | None = None, service: str = "") -> str:
        """What Azure does with a new connection from `subscription_id` to `service` (the first one for ''):
        NotVisible, Approved, Rejected or Pending."""
        return self.service(service).fate(subscription_id, private_endpoint_id)


def check_provider(c: Checks, customers: tuple[Customer, ...] = ()) -> None:
    """The provider's rules across keys: subnets that hold what they must, who may connect, one decision each,
    and the registry's customers on services that have room for them."""
    values = c.values
    min_free = {}
    specs = additional_services(c)
    if c.ok("natIpCount") and specs is not None:
        shared = values["natIpCount"] + sum(s.nat_ip_count for s in specs if not s.nat_subnet_cidr)
        min_free["natSubnetCidr"] = shared + azure_rules.NAT_HEADROOM
    if c.ok("webVmCount"):
        min_free["backendSubnetCidr"] = values["webVmCount"] + 1  # the load balancer frontend
    c.subnets("providerVnetCidr", ["backendSubnetCidr", "natSubnetCidr"], min_free)
    if c.ok("visibility", "allowAnyoneWithAlias", "autoApproval"):
        _check_who_may_see_the_first_service(c)
    _check_one_decision_per_endpoint(c)
    if specs is not None:
        check_own_nat_subnets(c, specs)
        if c.ok("serviceName", "visibility", "autoApproval", *DECISION_KEYS):
            check_registry(c, customers, [values["serviceName"], *(s.name for s in specs)], DECISION_KEYS)
    check_web_tier(c)
    check_operations(c)


def _check_who_may_see_the_first_service(c: Checks) -> None:
    """allowAnyoneWithAlias opens the first service to anyone; the stack file's deprecated lists agree with it."""
    visibility = [s.lower() for s in c.values["visibility"]]
    anyone = c.values["allowAnyoneWithAlias"]
    if "*" in visibility:
        if c.check("visibility", visibility == ["*"], "'*' cannot be combined with subscriptions", 'use ["*"] alone'):
            c.check(
                "visibility",
                anyone,
                "'*' lets anyone with the alias request a connection",
                "set allowAnyoneWithAlias: true to opt in (and remove visibility), or register the customers",
            )
    elif anyone and visibility:
        c.fail(
            "visibility",
            "lists subscriptions, but allowAnyoneWithAlias makes the first service visible to anyone",
            "remove visibility (scripts/onboard --import-stack-lists moves it into the registry)",
        )
    elif not anyone:
        outside = [s.lower() for s in c.values["autoApproval"] if s.lower() not in visibility]
        c.check(
            "autoApproval",
            not outside,
            f"{', '.join(outside)} not in visibility (auto-approval must be a subset of visibility)",
            "add them to visibility too, or move both into the registry (scripts/onboard --import-stack-lists)",
        )


def _check_one_decision_per_endpoint(c: Checks) -> None:
    decided: set[str] = set()
    for key in DECISION_KEYS:
        if not c.ok(key):
            continue
        for entry in c.values[key]:
            endpoint_id = entry.partition("|")[0].strip()
            c.check(
                key,
                endpoint_id.lower() not in decided,
                f"{endpoint_id} is decided twice",
                "keep one decision per private endpoint",
            )
            decided.add(endpoint_id.lower())


def built_provider_problems(settings: ProviderSettings) -> list[Problem]:
    """What only the built settings show: the provider's cloud-config against what the web tier writes and can
    apply to running VMs."""
    try:
        render_web_server(settings.web_server)
    except ValueError as clash:
        return [
            Problem(
                "appCloudConfig",
                settings.app_cloud_config,
                str(clash),
                "leave those parts to the web tier, or use your own image (none)",
            )
        ]
    return []
