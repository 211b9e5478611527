"""What a platform team runs to onboard, approve and offboard customers: scripts/onboard, scripts/approve and
scripts/offboard. Each writes the customer registry (and the customer's stack file), never Azure.

Every change is checked before it is written: the new files are staged beside a copy of the registry and read
back the way the program reads them (the provider's settings with its whole registry, each new customer's
stack file); any problem refuses the whole change, naming the customer (or the CSV row), and nothing is
written. Without --service, onboard assigns the first service with room, declares the next one on a provider
that has fewer than 8 when every service is full, and refuses when none can take the customer.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from offline.engine import ROOT
from offline.repository import stack_config, stack_files, stack_settings
from pls import azure_rules
from pls.config import ConsumerSettings, ProviderSettings, SettingsError, load_schema
from pls.config.registry import REGISTRY_SUFFIX, Customer, customer_name_problem, read_entry, read_registry
from pls.config.services import PublishedService

REGISTRY = "customers"
ANYONE = "*"


def _entry_path(customer: str) -> str:
    """The customer's registry entry, relative to the repository."""
    return f"{REGISTRY}/{customer}{REGISTRY_SUFFIX}"


class OnboardingRefusedError(Exception):
    """A change that would not hold: nothing has been written."""


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
    """How errors name it: the customer, or its CSV row."""


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


@dataclass
class _Change:
    """Files to write (path relative to the root -> text) and what to tell the user."""

    files: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def providers(root: Path) -> list[str]:
    return [s for s in stack_files(root) if stack_config(s, root).get("role") == "provider"]


def _provider_settings(stack: str, root: Path) -> ProviderSettings:
    try:
        settings = stack_settings(stack, root)
    except SettingsError as error:
        raise OnboardingRefusedError(f"Pulumi.{stack}.yaml has problems; fix them first:\n{error}") from None
    assert isinstance(settings, ProviderSettings)
    return settings


def _rooms(root: Path, stacks: list[str]) -> list[_Room]:
    rooms = []
    for stack in stacks:
        settings = _provider_settings(stack, root)
        for service in settings.services:
            rooms.append(
                _Room(stack, service, len(service.visibility), len(service.auto_approval), len(service.customers))
            )
    return rooms


def _next_service_name(settings: ProviderSettings, declared: set[str]) -> str:
    n = len(settings.services) + 1
    while f"{settings.service_name}-{n}" in declared:
        n += 1
    return f"{settings.service_name}-{n}"[:40].rstrip("-")


def _round_trip() -> YAML:
    """A YAML reader and writer that keeps a file's comments and the stack files' layout."""
    document = YAML()
    document.indent(mapping=2, sequence=4, offset=2)
    document.width = 4096  # an endpoint id stays on its line
    return document


def _with_service(provider_text: str, project: str, entry: str) -> str:
    """The provider's stack file with `entry` appended to additionalServices, its comments kept."""
    document = _round_trip()
    data = document.load(provider_text)
    key = f"{project}:additionalServices"
    data["config"].setdefault(key, [])
    data["config"][key].append(entry)
    out = io.StringIO()
    document.dump(data, out)
    return out.getvalue()


def _entry_text(onboarding: Onboarding, provider: str, service: str) -> str:
    entry = {
        "provider": provider,
        "service": service,
        "subscriptions": [s.lower() for s in onboarding.subscriptions],
        "approval": "auto" if onboarding.auto_approve else "manual",
        "contract": onboarding.contract,
        "decisions": [],
    }
    return f"# {onboarding.customer}: written by scripts/onboard (README, The customer registry).\n" + yaml.safe_dump(
        entry, sort_keys=False
    )


def _stack_text(onboarding: Onboarding, provider: ProviderSettings, project: str) -> str:
    record, _, zone = (provider.fqdns[0].removesuffix(".") if provider.fqdns else "api.saas.example.com").partition(".")
    message = f"Customer: {onboarding.customer}" + (f", contract {onboarding.contract}" if onboarding.contract else "")
    lines = [
        f"# {onboarding.customer}: written by scripts/onboard (registry entry {_entry_path(onboarding.customer)}).",
        "# Its network is a new VNet (edit the CIDRs, or attach to its own: README, Onboarding a customer).",
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


def plan_onboarding(root: Path, onboardings: Sequence[Onboarding]) -> _Change:
    """The files that onboard every customer of `onboardings`; refused naming the first that cannot be."""
    project = load_schema().project
    registry = read_registry(root / REGISTRY)
    if registry.problems:
        raise OnboardingRefusedError(
            "the registry has problems; fix them first:\n" + "\n".join(f"  - {p}" for p in registry.problems)
        )
    owners = {s: c.name for c in registry.customers for s in c.subscriptions}
    stacks = providers(root)
    if not stacks:
        raise OnboardingRefusedError("no provider stack file (role: provider) in this repository")
    rooms = _rooms(root, stacks)
    change = _Change()
    declared: dict[str, list[str]] = {}
    for onboarding in onboardings:
        name = onboarding.where or onboarding.customer
        problem = customer_name_problem(onboarding.customer)
        if problem:
            raise OnboardingRefusedError(
                f"{name}: {problem}: use the customer's short name (lowercase letters, digits and -)"
            )
        if registry.entry(onboarding.customer) or _entry_path(onboarding.customer) in change.files:
            raise OnboardingRefusedError(
                f"{name}: {onboarding.customer} is onboarded already ({_entry_path(onboarding.customer)})"
            )
        if onboarding.stack and (root / f"Pulumi.consumer-{onboarding.customer}.yaml").exists():
            raise OnboardingRefusedError(f"{name}: Pulumi.consumer-{onboarding.customer}.yaml exists already")
        if not onboarding.subscriptions:
            raise OnboardingRefusedError(f"{name}: give the customer's subscription (--subscription <guid>)")
        for subscription in onboarding.subscriptions:
            if not azure_rules.GUID_RE.fullmatch(subscription):
                raise OnboardingRefusedError(
                    f"{name}: {subscription!r} is not a subscription id (az account show --query id)"
                )
            if subscription.lower() in owners:
                raise OnboardingRefusedError(
                    f"{name}: subscription {subscription} is onboarded already ({owners[subscription.lower()]})"
                )
            owners[subscription.lower()] = onboarding.customer
        if onboarding.provider and onboarding.provider not in stacks:
            raise OnboardingRefusedError(
                f"{name}: no provider stack {onboarding.provider} (Pulumi.{onboarding.provider}.yaml)"
            )
        room = _assign(root, rooms, onboarding, declared, change, name)
        room.take(onboarding)
        change.files[_entry_path(onboarding.customer)] = _entry_text(onboarding, room.provider, room.service.name)
        if onboarding.stack:
            settings = _provider_settings(room.provider, root)
            change.files[f"Pulumi.consumer-{onboarding.customer}.yaml"] = _stack_text(onboarding, settings, project)
        change.notes.append(f"{onboarding.customer} -> {room.provider} service {room.service.name}")
    for provider, entries in declared.items():
        text = (root / f"Pulumi.{provider}.yaml").read_text()
        for entry in entries:
            text = _with_service(text, project, entry)
        change.files[f"Pulumi.{provider}.yaml"] = text
    _check_staged(root, change, stacks)
    return change


def _assign(
    root: Path, rooms: list[_Room], onboarding: Onboarding, declared: dict[str, list[str]], change: _Change, name: str
) -> _Room:
    """The service the customer goes to: the one asked for, or the first with room, or a new one."""
    candidates = [r for r in rooms if not onboarding.provider or r.provider == onboarding.provider]
    if onboarding.service:
        asked = [r for r in candidates if r.service.name == onboarding.service]
        if not asked:
            raise OnboardingRefusedError(
                f"{name}: no service {onboarding.service} (serviceName or additionalServices of a provider)"
            )
        if not asked[0].takes(onboarding):
            raise OnboardingRefusedError(
                f"{name}: service {onboarding.service} is full ({asked[0].visibility} subscriptions in visibility, "
                f"{asked[0].auto_approval} auto-approved, of {azure_rules.MAX_SUBSCRIPTIONS}): leave out --service "
                "to get one with room"
            )
        return asked[0]
    for room in candidates:
        if room.takes(onboarding):
            return room
    for provider in dict.fromkeys(r.provider for r in candidates):
        services = [r for r in rooms if r.provider == provider]
        if len(services) >= azure_rules.MAX_SERVICES_PER_LOAD_BALANCER:
            continue
        settings = _provider_settings(provider, root)
        new = _next_service_name(settings, {r.service.name for r in services})
        declared.setdefault(provider, []).append(new)
        index = len(services)
        service = PublishedService(new, index, 1, settings.nat_subnet_cidr, False, (), (), (), ())
        room = _Room(provider, service, 0, 0, 0)
        rooms.append(room)
        change.notes.append(
            f"declared service {new} on {provider} (additionalServices in Pulumi.{provider}.yaml): every service "
            "was full. It is a new Private Link Service with its own alias: deploy the provider before the "
            "customers assigned to it"
        )
        return room
    raise OnboardingRefusedError(
        f"{name}: every service is full ({azure_rules.MAX_SERVICES_PER_LOAD_BALANCER} per load balancer, "
        f"{azure_rules.MAX_SUBSCRIPTIONS} subscriptions each). What is left: another provider stack "
        "(README, Onboarding a customer, step 2), then --provider <its stack>; or a service visible to anyone "
        "with the alias (additionalServices entry with anyoneWithAlias=true, explicit opt-in), then --service"
    )


def _check_staged(root: Path, change: _Change, stacks: list[str]) -> None:
    """The change read back as the program reads it, in a copy: the providers with their whole registry, each
    new customer's stack file with its entry."""
    with tempfile.TemporaryDirectory(prefix="pls-onboard-") as staging:
        stage = Path(staging)
        if (root / REGISTRY).is_dir():
            shutil.copytree(root / REGISTRY, stage / REGISTRY)
        (stage / REGISTRY).mkdir(exist_ok=True)
        for stack in stacks:
            shutil.copy(root / f"Pulumi.{stack}.yaml", stage)
        for removed in change.removed:
            (stage / removed).unlink(missing_ok=True)
        for path, text in change.files.items():
            (stage / path).write_text(text)
        checked = [
            *stacks,
            *(p[len("Pulumi.") : -len(".yaml")] for p in change.files if p.startswith("Pulumi.consumer-")),
        ]
        for stack in checked:
            try:
                settings = stack_settings(stack, stage)
            except SettingsError as error:
                raise OnboardingRefusedError(
                    f"Pulumi.{stack}.yaml would not hold, nothing was written:\n{error}"
                ) from None
            if isinstance(settings, ConsumerSettings) and settings.registered is None:
                raise OnboardingRefusedError(f"Pulumi.{stack}.yaml does not find its registry entry")


def write(root: Path, change: _Change) -> None:
    (root / REGISTRY).mkdir(exist_ok=True)
    for path in change.removed:
        (root / path).unlink(missing_ok=True)
    for path, text in change.files.items():
        (root / path).write_text(text)


def _entry_of(root: Path, customer: str) -> Customer:
    """The customer's own entry, read alone: approving hundreds of customers at once reads each entry once, not
    the whole registry for each."""
    entry = None if customer_name_problem(customer) else read_entry(root / REGISTRY, customer)
    if isinstance(entry, tuple):
        problems = "\n".join(f"  - {problem}" for problem in entry)
        raise OnboardingRefusedError(f"{_entry_path(customer)} has problems; fix them first:\n{problems}")
    if entry is None:
        known = ", ".join(c.name for c in read_registry(root / REGISTRY).customers[:10]) or "none"
        raise OnboardingRefusedError(
            f"{customer} is not in the registry ({_entry_path(customer)}); registered: {known}"
        )
    return entry


@dataclass(frozen=True)
class Approval:
    """One decision to record: about the customer's endpoint (its stack file's when endpoint_id is empty)."""

    customer: str
    reason: str
    endpoint_id: str = ""
    status: str = "Approved"


def plan_approvals(root: Path, approvals: Sequence[Approval]) -> _Change:
    """Each customer's entry with its decisions (one per endpoint: a new one replaces the old), checked once."""
    change = _Change()
    for approval in approvals:
        entry = _entry_of(root, approval.customer)
        endpoint_id = approval.endpoint_id or _stack_endpoint(root, approval.customer)
        if not approval.reason.strip():
            raise OnboardingRefusedError(
                '--reason: say why (e.g. "contract AC-1"); the customer sees it on its connection'
            )
        path = _entry_path(approval.customer)
        document = _round_trip()
        data = document.load(change.files.get(path) or (root / path).read_text())
        decisions = [
            d for d in data.get("decisions") or [] if str(d.get("endpoint", "")).lower() != endpoint_id.lower()
        ]
        data["decisions"] = [
            *decisions,
            {"endpoint": endpoint_id, "status": approval.status, "reason": approval.reason.strip()},
        ]
        out = io.StringIO()
        document.dump(data, out)
        change.files[path] = out.getvalue()
        change.notes.append(
            f"{approval.customer}: {approval.status} {endpoint_id} ({approval.reason.strip()}); "
            f"now scripts/deploy {entry.provider}"
        )
    _check_staged(root, change, providers(root))
    return change


def _stack_endpoint(root: Path, customer: str) -> str:
    """The endpoint the customer's stack file creates."""
    stack = f"consumer-{customer}"
    if not (root / f"Pulumi.{stack}.yaml").exists():
        raise OnboardingRefusedError(
            f"{customer} has no stack file here: give --endpoint-id (the customer's privateEndpointId)"
        )
    try:
        consumer = stack_settings(stack, root)
    except SettingsError as error:
        raise OnboardingRefusedError(f"Pulumi.{stack}.yaml has problems; fix them first:\n{error}") from None
    assert isinstance(consumer, ConsumerSettings)
    return consumer.private_endpoint_id


def plan_offboarding(root: Path, customer: str) -> _Change:
    entry = _entry_of(root, customer)
    change = _Change(removed=[_entry_path(customer)])
    if (root / f"Pulumi.consumer-{customer}.yaml").exists():
        change.removed.append(f"Pulumi.consumer-{customer}.yaml")
    _check_staged(root, change, providers(root))
    change.notes.append(
        f"{customer} leaves {entry.provider} service {entry.service}. Deploy in this order (README, Offboarding): "
        f"pulumi config set lockService false -s {entry.provider} && scripts/deploy {entry.provider}; "
        f"pulumi destroy -s consumer-{customer} (or the customer deletes its endpoint); then this change and "
        f"scripts/deploy {entry.provider}; pulumi config rm lockService -s {entry.provider}"
    )
    return change


def _from_csv(path: Path) -> list[Onboarding]:
    """Rows customer,subscriptions(space-separated),approval(auto|manual),service,provider,contract,stack(yes|no)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    onboardings = []
    for number, row in enumerate(rows, start=2):
        where = f"{path.name} row {number}"
        approval = (row.get("approval") or "manual").strip()
        if approval not in ("auto", "manual") or not (row.get("customer") or "").strip():
            raise OnboardingRefusedError(f"{where}: needs a customer and approval auto or manual (got {approval!r})")
        onboardings.append(
            Onboarding(
                customer=row["customer"].strip(),
                subscriptions=(row.get("subscriptions") or "").split(),
                auto_approve=approval == "auto",
                service=(row.get("service") or "").strip(),
                provider=(row.get("provider") or "").strip(),
                contract=(row.get("contract") or "").strip(),
                stack=(row.get("stack") or "yes").strip() != "no",
                where=where,
            )
        )
    return onboardings


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="scripts/<command>", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    onboard = commands.add_parser("onboard", help="register a customer (and write its stack file)")
    onboard.add_argument("customer", nargs="?", default="")
    onboard.add_argument("--subscription", action="append", default=[], help="the customer's subscription id")
    onboard.add_argument("--auto-approve", action="store_true", help="approve its connections on arrival")
    onboard.add_argument("--service", default="", help="the service it reaches (default: one with room)")
    onboard.add_argument("--provider", default="", help="the provider stack (default: the first with room)")
    onboard.add_argument("--contract", default="", help="your contract reference")
    onboard.add_argument("--no-stack", action="store_true", help="the customer runs its own side (another tenant)")
    onboard.add_argument("--from", dest="csv", type=Path, help="onboard every row of a CSV, all or nothing")
    approve = commands.add_parser("approve", help="approve (or reject) a customer's private endpoint")
    approve.add_argument("customer")
    approve.add_argument("--endpoint-id", default="", help="default: the endpoint its stack file creates")
    approve.add_argument("--reason", required=True)
    approve.add_argument("--reject", action="store_true")
    offboard = commands.add_parser("offboard", help="remove a customer's registry entry and stack file")
    offboard.add_argument("customer")
    args = parser.parse_args(argv)
    try:
        if args.command == "onboard":
            if bool(args.csv) == bool(args.customer):
                raise OnboardingRefusedError("give a customer, or --from <customers.csv>, not both")
            onboardings = (
                _from_csv(args.csv)
                if args.csv
                else [
                    Onboarding(
                        customer=args.customer,
                        subscriptions=args.subscription,
                        auto_approve=args.auto_approve,
                        service=args.service,
                        provider=args.provider,
                        contract=args.contract,
                        stack=not args.no_stack,
                    )
                ]
            )
            change = plan_onboarding(root, onboardings)
        elif args.command == "approve":
            status = "Rejected" if args.reject else "Approved"
            change = plan_approvals(root, [Approval(args.customer, args.reason, args.endpoint_id, status)])
        else:
            change = plan_offboarding(root, args.customer)
    except OnboardingRefusedError as refusal:
        print(f"refused, nothing written: {refusal}", file=sys.stderr)
        return 1
    write(root, change)
    for path in [*change.files, *(f"{p} (removed)" for p in change.removed)]:
        print(f"wrote {path}")
    for note in change.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
