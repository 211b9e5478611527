"""The provider's Private Link Services: the first (serviceName and its keys) and up to seven more on the same
load balancer (additionalServices), each on its own frontend, with the lists the customer registry adds."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from components.private_link_service import ConnectionDecision
from pls import azure_rules
from pls.config.errors import Problem, refuse, shown
from pls.config.keys import Checks, checked_cidr
from pls.config.registry import Customer

MAX_ADDITIONAL_NAME = 40  # "frontend-<name>-https" and every other derived name then fit Azure's limits
OPTIONS = {"natIpCount", "natSubnetCidr", "anyoneWithAlias"}
ENTRY_FIX = (
    'write "<name> [natIpCount=<1-8>] [natSubnetCidr=<cidr>] [anyoneWithAlias=true]", e.g. "saas-2 natIpCount=2"'
)


@dataclass(frozen=True)
class AdditionalService:
    """One entry of additionalServices, as written."""

    name: str
    nat_ip_count: int = 1
    nat_subnet_cidr: str = ""
    """Its own NAT subnet; empty: the shared natSubnetCidr."""
    anyone_with_alias: bool = False


def additional_service(entry: str) -> AdditionalService:
    """`entry` read, or a refusal naming what is wrong and how to write it."""
    name, *options = entry.split()
    if azure_rules.DNS_LABEL_RE.fullmatch(name) is None or len(name) > MAX_ADDITIONAL_NAME or not name[0].isalpha():
        raise refuse(
            f"{shown(name)} is not a service name: lowercase letters, digits and -, starting with a letter, at "
            f"most {MAX_ADDITIONAL_NAME} characters",
            ENTRY_FIX,
        )
    values: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in OPTIONS or key in values:
            raise refuse(f"{shown(option)} is not one of {', '.join(sorted(OPTIONS))} (once each)", ENTRY_FIX)
        values[key] = value
    count = values.get("natIpCount", "1")
    if not count.isdigit() or not 1 <= int(count) <= azure_rules.MAX_NAT_IPS:
        raise refuse(f"natIpCount={count}: a Private Link Service has 1 to {azure_rules.MAX_NAT_IPS}", ENTRY_FIX)
    if values.get("anyoneWithAlias", "false") not in ("true", "false"):
        raise refuse("anyoneWithAlias is true or false", ENTRY_FIX)
    cidr = values.get("natSubnetCidr", "")
    if cidr:
        checked_cidr(cidr)
    return AdditionalService(name, int(count), cidr, values.get("anyoneWithAlias") == "true")


def checked_additional_service(entry: str) -> str:
    additional_service(entry)
    return entry


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


def additional_services(c: Checks) -> list[AdditionalService] | None:
    """additionalServices read, each name once and none the first service's; None when they cannot be read."""
    if not c.ok("additionalServices"):
        return None
    specs = [additional_service(entry) for entry in c.values["additionalServices"]]
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
        if customer.service not in counts:
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
        counts[customer.service][0] += len(customer.subscriptions)
        counts[customer.service][1] += len(customer.subscriptions) if customer.approval == "auto" else 0
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
