"""scripts/onboard: register customers in the registry (customers/<name>.yaml) and write their stack files.

Every change is planned whole, then checked the way the program will read it (the providers with their whole
registry, each customer's stack file with its entry, in a staged copy); any problem refuses the whole change by
name and nothing is written. Without --service, a customer goes to the first service with room; when every service
is full the next one is declared on a provider that has fewer than 8, and when none can take it, it is refused
with what is left.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from operations.exits import CannotStartError, RefusedError
from operations.registry_files import (
    check_staged,
    current_state,
    provider_settings,
    registry,
    stacks_of_customers,
)
from operations.transaction import Change
from pls import azure_rules
from pls.config import ProviderSettings, load_schema
from pls.config.registry import MAX_CONTRACT, Registry, customer_name_problem, entry_path
from pls.config.services import PublishedService

ANYONE = "*"


@dataclass
class Onboarding:
    """One customer to onboard, as the command line or a CSV row gives it."""

    customer: str
    subscriptions: list[str]
    auto_approve: bool = False
    service: str = ""
    provider: str = ""
    contract: str = ""
    stack: bool = True
    where: str = ""
    """How errors name it: the customer, or its CSV line."""


@dataclass
class _Room:
    """What a service has taken, as the registry (and the provider's own lists) say."""

    provider: str
    service: PublishedService
    visibility: int
    auto_approval: int
    endpoints: int

    def takes(self, onboarding: Onboarding) -> bool:
        subscriptions = len(onboarding.subscriptions)
        if self.service.visibility == (ANYONE,):
            return self.endpoints < azure_rules.MAX_CONNECTIONS
        return (
            self.visibility + subscriptions <= azure_rules.MAX_SUBSCRIPTIONS
            and (not onboarding.auto_approve or self.auto_approval + subscriptions <= azure_rules.MAX_SUBSCRIPTIONS)
            and self.endpoints < azure_rules.MAX_CONNECTIONS
        )

    def take(self, onboarding: Onboarding) -> None:
        self.visibility += len(onboarding.subscriptions)
        self.auto_approval += len(onboarding.subscriptions) if onboarding.auto_approve else 0
        self.endpoints += 1


def _rooms(root: Path, stacks: list[str]) -> list[_Room]:
    return [
        _Room(stack, service, len(service.visibility), len(service.auto_approval), len(service.customers))
        for stack in stacks
        for service in provider_settings(stack, root).services
    ]


def round_trip() -> YAML:
    """A YAML reader and writer that keeps a file's comments and the stack files' layout."""
    document = YAML()
    document.indent(mapping=2, sequence=4, offset=2)
    document.width = 4096  # an endpoint id stays on its line
    return document


def _with_service(provider_text: str, project: str, name: str) -> str:
    """The provider's stack file with the service `name` appended to additionalServices, its comments kept."""
    document = round_trip()
    data = document.load(provider_text)
    key = f"{project}:additionalServices"
    data["config"].setdefault(key, [])
    data["config"][key].append(CommentedMap(name=name))
    out = io.StringIO()
    document.dump(data, out)
    return out.getvalue()


def _entry_text(onboarding: Onboarding, provider: str, service: PublishedService) -> str:
    entry: dict[str, object] = {"provider": provider}
    if service.index:  # an entry without service reaches the provider's first (serviceName)
        entry["service"] = service.name
    entry |= {
        "subscriptions": [s.lower() for s in onboarding.subscriptions],
        "approval": "auto" if onboarding.auto_approve else "manual",
        "contract": onboarding.contract,
        "decisions": [],
    }
    header = f"# {onboarding.customer}: written by scripts/onboard (docs/operations/registry.md).\n"
    return header + yaml.safe_dump(entry, sort_keys=False)


def _stack_text(onboarding: Onboarding, provider: ProviderSettings, project: str) -> str:
    record, _, zone = (provider.fqdns[0].removesuffix(".") if provider.fqdns else "api.saas.example.com").partition(".")
    message = f"Customer: {onboarding.customer}" + (f", contract {onboarding.contract}" if onboarding.contract else "")
    lines = [
        f"# {onboarding.customer}: written by scripts/onboard (its registry entry: {entry_path(onboarding.customer)}).",
        "# Its network is a new VNet (edit the CIDRs, or attach to its own: docs/operations/onboarding.md).",
        "config:",
        f"  azure-native:subscriptionId: {onboarding.subscriptions[0].lower()}",
        f"  {project}:role: consumer",
        f"  {project}:customer: {onboarding.customer}",
        f"  {project}:providerStack: organization/{project}/{provider.stack}",
        f"  {project}:requestMessage: {yaml.safe_dump(message[: azure_rules.MAX_REQUEST_MESSAGE]).strip()}",
        f"  {project}:dnsZone: {zone}",
        f"  {project}:dnsRecord: {record}",
    ]
    if onboarding.auto_approve:
        lines.append(f"  {project}:autoApproved: true")
    if provider.tls:
        lines.append(f"  {project}:https: true")
    return "\n".join(lines) + "\n"


def _checked(onboarding: Onboarding, registry: Registry, owners: dict[str, str], stacks: dict[str, list[str]]) -> None:
    """The customer's own values: a name, subscriptions and a contract that can be, and no one else's."""
    name = onboarding.where or onboarding.customer
    problem = customer_name_problem(onboarding.customer)
    if problem:
        raise CannotStartError(f"{name}: {problem}: use the customer's short name (lowercase letters, digits and -)")
    if not onboarding.subscriptions:
        raise CannotStartError(f"{name}: give the customer's subscription (--subscription <guid>)")
    for subscription in onboarding.subscriptions:
        if not azure_rules.GUID_RE.fullmatch(subscription):
            raise CannotStartError(
                f"{name}: {subscription[:60]!r} is not a subscription id (az account show --query id)"
            )
    if len(onboarding.contract) > MAX_CONTRACT or not onboarding.contract.isprintable():
        raise CannotStartError(f"{name}: the contract reference is at most {MAX_CONTRACT} printable characters")
    if registry.entry(onboarding.customer) or onboarding.customer in owners.values():
        raise RefusedError(f"{name}: {onboarding.customer} is onboarded already ({entry_path(onboarding.customer)})")
    for subscription in onboarding.subscriptions:
        if subscription.lower() in owners:
            raise RefusedError(
                f"{name}: subscription {subscription} is onboarded already ({owners[subscription.lower()]})"
            )
        owners[subscription.lower()] = onboarding.customer
    existing = stacks.get(onboarding.customer, [])
    if existing and onboarding.stack:
        raise RefusedError(
            f"{name}: {onboarding.customer} has a stack file already (Pulumi.{existing[0]}.yaml): onboard it with "
            "--no-stack (stack = no in a CSV) to give it its entry, or offboard it first"
        )


def plan_onboarding(root: Path, onboardings: Sequence[Onboarding]) -> Change:
    """The files that onboard every customer of `onboardings`; refused naming the first that cannot be."""
    project = load_schema().project
    entries = registry(root)
    owners = {s: c.name for c in entries.customers for s in c.subscriptions}
    stacks = current_state(root)
    if not stacks:
        raise CannotStartError("no provider stack file (role: provider) in this repository")
    customers = stacks_of_customers(root)
    rooms = _rooms(root, stacks)
    change = Change()
    declared: dict[str, list[str]] = {}
    for onboarding in onboardings:
        name = onboarding.where or onboarding.customer
        _checked(onboarding, entries, owners, customers)
        if onboarding.provider and onboarding.provider not in stacks:
            raise RefusedError(f"{name}: no provider stack {onboarding.provider} (Pulumi.{onboarding.provider}.yaml)")
        room = _assign(root, rooms, onboarding, declared, change, name)
        room.take(onboarding)
        change.files[entry_path(onboarding.customer)] = _entry_text(onboarding, room.provider, room.service)
        if onboarding.stack:
            settings = provider_settings(room.provider, root)
            change.files[f"Pulumi.consumer-{onboarding.customer}.yaml"] = _stack_text(onboarding, settings, project)
        change.notes.append(f"{onboarding.customer} -> {room.provider} service {room.service.name}")
    for provider, names in declared.items():
        text = (root / f"Pulumi.{provider}.yaml").read_text()
        for new in names:
            text = _with_service(text, project, new)
        change.files[f"Pulumi.{provider}.yaml"] = text
    onboarded = {o.customer for o in onboardings}
    check_staged(root, change, stacks, [s for c in onboarded for s in customers.get(c, [])])
    return change


def _next_service_name(settings: ProviderSettings, declared: set[str]) -> str:
    n = len(settings.services) + 1
    while f"{settings.service_name}-{n}" in declared:
        n += 1
    return f"{settings.service_name}-{n}"[:40].rstrip("-")


def _asked_for(rooms: list[_Room], onboarding: Onboarding, name: str) -> _Room:
    asked = [r for r in rooms if r.service.name == onboarding.service]
    if not asked:
        raise RefusedError(f"{name}: no service {onboarding.service} (serviceName or additionalServices of a provider)")
    if not asked[0].takes(onboarding):
        raise RefusedError(
            f"{name}: service {onboarding.service} is full ({asked[0].visibility} subscriptions in visibility, "
            f"{asked[0].auto_approval} auto-approved, of {azure_rules.MAX_SUBSCRIPTIONS}): leave out --service "
            "to get one with room"
        )
    return asked[0]


def _assign(
    root: Path, rooms: list[_Room], onboarding: Onboarding, declared: dict[str, list[str]], change: Change, name: str
) -> _Room:
    """The service the customer goes to: the one asked for, or the first with room, or a new one."""
    candidates = [r for r in rooms if not onboarding.provider or r.provider == onboarding.provider]
    if onboarding.service:
        return _asked_for(candidates, onboarding, name)
    for room in candidates:
        if room.takes(onboarding):
            return room
    for provider in dict.fromkeys(r.provider for r in candidates):
        services = [r for r in rooms if r.provider == provider]
        if len(services) >= azure_rules.MAX_SERVICES_PER_LOAD_BALANCER:
            continue
        settings = provider_settings(provider, root)
        new = _next_service_name(settings, {r.service.name for r in services})
        declared.setdefault(provider, []).append(new)
        service = PublishedService(new, len(services), 1, settings.nat_subnet_cidr, False, (), (), (), ())
        room = _Room(provider, service, 0, 0, 0)
        rooms.append(room)
        change.notes.append(
            f"declared service {new} on {provider} (additionalServices in Pulumi.{provider}.yaml): every service "
            "was full. It is a new Private Link Service with its own alias: deploy the provider before the "
            "customers assigned to it"
        )
        return room
    raise RefusedError(
        f"{name}: every service is full ({azure_rules.MAX_SERVICES_PER_LOAD_BALANCER} per load balancer, "
        f"{azure_rules.MAX_SUBSCRIPTIONS} subscriptions each). What is left: another provider stack "
        "(docs/operations/capacity.md), then --provider <its stack>; or a service visible to anyone with its "
        "alias (an additionalServices entry with anyoneWithAlias: true, explicit opt-in), then --service"
    )
