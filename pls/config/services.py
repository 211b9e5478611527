"""The provider's Private Link Services: the first (serviceName and its keys) and up to seven more on the same
load balancer (additionalServices), each on its own frontend, with the lists the customer registry adds."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, TypeAdapter

from components.private_link_service import ConnectionDecision
from pls import azure_rules
from pls.config.errors import Problem, refuse, shown
from pls.config.keys import Checks, Model, checked_cidr, rule
from pls.config.registry import Customer

MAX_ADDITIONAL_NAME = 40  # "frontend-<name>-https" and every other derived name then fit Azure's limits
LEGACY_OPTIONS = {"natIpCount", "natSubnetCidr", "anyoneWithAlias"}
LEGACY_FIX = "write the entry as an object: {name: saas-2, natIpCount: 2} (docs/reference/configuration.md)"


def _name_ok(name: str) -> bool:
    return bool(azure_rules.DNS_LABEL_RE.fullmatch(name)) and len(name) <= MAX_ADDITIONAL_NAME and name[0].isalpha()


def _cidr_or_empty(cidr: str) -> str:
    return checked_cidr(cidr) if cidr else cidr


class AdditionalService(Model):
    """One more Private Link Service on the load balancer: its own frontend (and alias), NAT IPs and customers."""

    name: Annotated[
        str,
        rule(
            _name_ok,
            lambda name: f"{shown(name)} is not a service name",
            f"lowercase letters, digits and -, starting with a letter, at most {MAX_ADDITIONAL_NAME} characters",
        ),
    ]
    """The service's name, and the prefix of its alias: fixed once deployed."""
    nat_ip_count: Annotated[
        int,
        rule(
            lambda count: 1 <= count <= azure_rules.MAX_NAT_IPS,
            f"a Private Link Service has 1 to {azure_rules.MAX_NAT_IPS} NAT IP configurations",
            f"choose 1..{azure_rules.MAX_NAT_IPS}",
        ),
    ] = 1
    nat_subnet_cidr: Annotated[str, AfterValidator(_cidr_or_empty)] = ""
    """A NAT subnet of its own; empty: the shared natSubnetCidr."""
    anyone_with_alias: bool = False
    """Visible to anyone who knows its alias (explicit opt-in); approvals stay keyed on endpoint ids."""


def from_legacy_entry(entry: object) -> object:
    """An entry written the old way, "<name> [natIpCount=<n>] [natSubnetCidr=<cidr>] [anyoneWithAlias=true]", as the
    object it means (stack files written before the entries were objects still deploy unchanged)."""
    if not isinstance(entry, str):
        return entry
    name, *options = entry.split() or [""]
    values: dict[str, object] = {"name": name}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in LEGACY_OPTIONS or key in values:
            raise refuse(f"{shown(option)} is not one of {', '.join(sorted(LEGACY_OPTIONS))} (once each)", LEGACY_FIX)
        values[key] = value
    count = str(values.get("natIpCount", "1"))
    if not count.isdigit() or len(count) > 2:
        raise refuse(f"natIpCount={count[:10]} is not a number of NAT IPs", LEGACY_FIX)
    if values.get("anyoneWithAlias", "false") not in ("true", "false"):
        raise refuse("anyoneWithAlias is true or false", LEGACY_FIX)
    return {**values, "natIpCount": int(count), "anyoneWithAlias": values.get("anyoneWithAlias") == "true"}


AdditionalServices = list[Annotated[AdditionalService, BeforeValidator(from_legacy_entry)]]
_ADDITIONAL_SERVICES: TypeAdapter[list[AdditionalService]] = TypeAdapter(AdditionalServices)


@dataclass(frozen=True)
class StackFileLists:
    """Who may connect, as a provider's stack file said it before the registry was the one place: read until
    `scripts/onboard --import-stack-lists` moves it into entries, and added to the first service."""

    visibility: tuple[str, ...] = ()
    auto_approval: tuple[str, ...] = ()
    decisions: tuple[ConnectionDecision, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.visibility or self.auto_approval or self.decisions)


@dataclass(frozen=True)
class PublishedService:
    """One Private Link Service as the program builds it: its frontend on the load balancer, its NAT IPs, who
    may see it and the decisions about its connections (its own keys' and the registry's)."""

    name: str
    index: int
    """0 for the first service (serviceName), whose frontend, rules and component keep the names they always had."""
    nat_ip_count: int
    nat_subnet_cidr: str
    own_nat_subnet: bool
    """Its NAT IPs come from a subnet of its own, not the shared natSubnetCidr."""
    visibility: tuple[str, ...]
    auto_approval: tuple[str, ...]
    decisions: tuple[ConnectionDecision, ...]
    customers: tuple[str, ...]
    """The registry's customers assigned to it."""

    @property
    def component_name(self) -> str:
        return "pls" if self.index == 0 else f"pls-{self.name}"

    @property
    def frontend_name(self) -> str:
        return "frontend" if self.index == 0 else f"frontend-{self.name}"

    @property
    def nat_subnet_role(self) -> str:
        return f"pls-nat-{self.name}" if self.own_nat_subnet else "pls-nat"

    def backend_port(self, port: int) -> int:
        """The port the web VMs take this service's `port` on. Azure refuses two rules to one backend port of a
        pool (without floating IP), so each service after the first has its own: 21080, 21443 for the second."""
        return port if self.index == 0 else 20000 + 1000 * self.index + port

    def fate(self, subscription_id: str, private_endpoint_id: str | None = None) -> str:
        """What Azure does with a new connection from `subscription_id`: NotVisible, Approved, Rejected or Pending."""
        subscription_id = subscription_id.lower()
        if self.visibility != ("*",) and subscription_id not in self.visibility:
            return "NotVisible"
        if subscription_id in self.auto_approval:
            return "Approved"
        decided = {d["private_endpoint_id"].lower(): d["status"] for d in self.decisions}
        return decided.get((private_endpoint_id or "").lower(), "Pending")


def published_service(
    index: int,
    spec: AdditionalService,
    first_service: str,
    customers: Iterable[Customer],
    shared_nat_subnet: str,
    stack_file: StackFileLists,
) -> PublishedService:
    """The service `spec` declares, with the registry's customers assigned to it (and, for the first, the stack
    file's own lists until they are moved)."""
    assigned = [c for c in customers if (c.service or first_service) == spec.name]
    visibility = {s for c in assigned for s in c.subscriptions}
    auto = {s for c in assigned if c.approval == "auto" for s in c.subscriptions}
    decisions = [
        ConnectionDecision(private_endpoint_id=d.endpoint, status=d.status, reason=d.reason)
        for c in assigned
        for d in c.decisions
    ]
    if index == 0:
        visibility |= set(stack_file.visibility)
        auto |= set(stack_file.auto_approval)
        decisions += stack_file.decisions
    return PublishedService(
        name=spec.name,
        index=index,
        nat_ip_count=spec.nat_ip_count,
        nat_subnet_cidr=spec.nat_subnet_cidr or shared_nat_subnet,
        own_nat_subnet=bool(spec.nat_subnet_cidr),
        visibility=("*",) if spec.anyone_with_alias else tuple(sorted(visibility)),
        auto_approval=tuple(sorted(auto)),
        decisions=tuple(sorted(decisions, key=lambda d: d["private_endpoint_id"].lower())),
        customers=tuple(c.name for c in assigned),
    )


def additional_services(c: Checks) -> list[AdditionalService] | None:
    """additionalServices read, each name once and none the first service's; None when they cannot be read."""
    if not c.ok("additionalServices"):
        return None
    specs = _ADDITIONAL_SERVICES.validate_python(c.values["additionalServices"])
    names = [str(c.values.get("serviceName")), *(s.name for s in specs)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if not c.check(
        "additionalServices",
        not twice,
        f"names {', '.join(map(str, twice))} twice (serviceName included)",
        "give every service its own name: the name is the prefix of its alias",
    ):
        return None
    return specs


def check_own_nat_subnets(c: Checks, specs: list[AdditionalService]) -> None:
    """A service's own NAT subnet lies in the VNet, holds its NAT IPs and headroom, and overlaps no other subnet."""
    if not c.ok("providerVnetCidr", "backendSubnetCidr", "natSubnetCidr"):
        return
    vnet = ipaddress.IPv4Network(c.values["providerVnetCidr"])
    taken = {
        "backendSubnetCidr": ipaddress.IPv4Network(c.values["backendSubnetCidr"]),
        "natSubnetCidr": ipaddress.IPv4Network(c.values["natSubnetCidr"]),
    }
    for spec in specs:
        if not spec.nat_subnet_cidr:
            continue
        net = ipaddress.IPv4Network(spec.nat_subnet_cidr)
        usable = net.num_addresses - azure_rules.AZURE_RESERVED_IPS
        clash = next((key for key, other in taken.items() if net.overlaps(other)), None)
        if not net.subnet_of(vnet):
            c.fail(
                "additionalServices",
                f"{spec.name}'s natSubnetCidr {net} is not inside {vnet}",
                "choose a range inside it",
            )
        elif clash:
            c.fail("additionalServices", f"{spec.name}'s natSubnetCidr {net} overlaps {clash}", "give it its own range")
        elif usable < spec.nat_ip_count + azure_rules.NAT_HEADROOM:
            c.fail(
                "additionalServices",
                f"{spec.name}'s natSubnetCidr {net} has {usable} usable addresses but needs "
                f"{spec.nat_ip_count + azure_rules.NAT_HEADROOM} (its NAT IPs and Microsoft's eight spare)",
                "use a larger range",
            )
        taken[f"{spec.name}'s natSubnetCidr"] = net


def check_registry(
    c: Checks, customers: tuple[Customer, ...], services: list[str], decision_keys: Iterable[str]
) -> None:
    """Every registered customer on a service of this provider, each subscription and endpoint in one place, and
    no service past Azure's limits once its customers are added."""
    listed = {s.lower() for s in c.values["visibility"]}
    decided = {entry.partition("|")[0].strip().lower(): key for key in decision_keys for entry in c.values[key]}
    seen: dict[str, str] = {}
    counts = {name: [0, 0] for name in services}
    counts[services[0]] = [len(c.values["visibility"]), len(c.values["autoApproval"])]
    for customer in customers:
        entry = f"customers/{customer.name}.yaml"
        service = customer.service or services[0]
        if service not in counts:
            c.problems.append(
                Problem(
                    f"{entry}:service",
                    customer.service,
                    f"not a service of this provider ({', '.join(services)})",
                    "name one of them, or declare it in additionalServices",
                )
            )
            continue
        for subscription in customer.subscriptions:
            where = seen.get(subscription) or (
                "visibility in the provider's stack file" if subscription in listed else ""
            )
            if where:
                c.problems.append(
                    Problem(
                        f"{entry}:subscriptions",
                        subscription,
                        f"already onboarded ({where})",
                        "keep each subscription in one place: the registry entry of its customer",
                    )
                )
            seen[subscription] = entry
        counts[service][0] += len(customer.subscriptions)
        counts[service][1] += len(customer.subscriptions) if customer.approval == "auto" else 0
        for decision in customer.decisions:
            if decision.endpoint.split("/")[2].lower() not in customer.subscriptions:
                c.problems.append(
                    Problem(
                        f"{entry}:decisions",
                        decision.endpoint,
                        "is in another subscription than the customer's",
                        "decide about this customer's own endpoints (its stack's privateEndpointId)",
                    )
                )
            if decision.endpoint.lower() in decided:
                c.problems.append(
                    Problem(
                        f"{entry}:decisions",
                        decision.endpoint,
                        f"is decided twice (also in {decided[decision.endpoint.lower()]})",
                        "keep one decision per private endpoint",
                    )
                )
            decided[decision.endpoint.lower()] = entry
    for name, (visible, auto) in counts.items():
        for what, count in (("visibility", visible), ("auto-approval", auto)):
            if count > azure_rules.MAX_SUBSCRIPTIONS:
                c.problems.append(
                    Problem(
                        "customerRegistry",
                        name,
                        f"service {name} would have {count} subscriptions in {what}, Azure allows "
                        f"{azure_rules.MAX_SUBSCRIPTIONS}",
                        "assign some of its customers to a service with room (service: in their entries; "
                        "scripts/onboard picks one), or declare another in additionalServices",
                    )
                )
