"""scripts/onboard --import-stack-lists: move the customers a provider's stack file still lists into the registry,
with nothing a deployment would change.

A provider stack file written before the registry lists subscriptions (`visibility`, `autoApproval`) and decisions
(`approvedConnections`, `rejectedConnections`), and may write `additionalServices` as strings. This writes an entry
per customer (named after the customer's stack file here, else `sub-<first eight hex digits>`), puts each decision
in the entry of its endpoint's subscription, rewrites `additionalServices` as objects and removes the lists, the
file's comments kept. The change is refused, by name, unless every service is sent exactly what it was sent
before: the same visibility, auto-approval, decisions and services.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from ruamel.yaml.comments import CommentedMap

from offline.repository import stack_settings
from operations.exits import CannotStartError, RefusedError
from operations.onboarding import round_trip
from operations.registry_files import configs, provider_settings, providers, registry, staged
from operations.transaction import Change
from pls.config import ProviderSettings, load_schema
from pls.config.registry import customer_name_problem, entry_path
from pls.config.services import AdditionalService, PublishedService

LISTS = ("visibility", "autoApproval", "approvedConnections", "rejectedConnections")
"""The deprecated keys that listed customers in a provider's stack file."""


@dataclass
class _Entry:
    """An entry the import writes (or adds decisions to)."""

    name: str
    provider: str
    subscriptions: list[str]
    auto: bool
    decisions: list[dict[str, str]] = field(default_factory=list)

    def text(self) -> str:
        entry = {
            "provider": self.provider,
            "subscriptions": self.subscriptions,
            "approval": "auto" if self.auto else "manual",
            "contract": "",
            "decisions": self.decisions,
        }
        header = f"# {self.name}: moved from Pulumi.{self.provider}.yaml by scripts/onboard --import-stack-lists.\n"
        return header + yaml.safe_dump(entry, sort_keys=False)


def _customers_by_subscription(root: Path) -> dict[str, str]:
    """The customer each consumer stack file here deploys, by its subscription."""
    found: dict[str, str] = {}
    for config in configs(root).values():
        subscription, customer = config.get("azure-native:subscriptionId"), config.get("customer")
        if config.get("role") == "consumer" and isinstance(subscription, str) and isinstance(customer, str):
            found.setdefault(subscription.lower(), customer)
    return found


class _Names:
    """Entry names nobody has: the customer's own when it is free, else one made from the subscription."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def claim(self, wanted: str | None, subscription: str) -> str:
        for name in (wanted, f"sub-{subscription[:8]}", f"sub-{subscription.replace('-', '')[:20]}"):
            if name and not customer_name_problem(name) and name not in self.taken:
                self.taken.add(name)
                return name
        raise RefusedError(f"no free entry name for subscription {subscription}: rename an entry and run this again")


def _entries_of(settings: ProviderSettings, names: _Names, by_subscription: dict[str, str]) -> list[_Entry]:
    """The stack file's lists as entries: a customer per subscription (approval from autoApproval), each decision
    in the entry of its endpoint's subscription."""
    lists = settings.stack_file_lists
    anyone = settings.allow_anyone_with_alias
    entries: dict[str, _Entry] = {}
    for subscription in dict.fromkeys([*lists.visibility, *lists.auto_approval]):
        name = names.claim(by_subscription.get(subscription), subscription)
        entries[subscription] = _Entry(name, settings.stack, [subscription], subscription in lists.auto_approval)
    for decision in lists.decisions:
        endpoint = decision["private_endpoint_id"]
        subscription = endpoint.split("/")[2].lower()
        if subscription not in entries:
            if not anyone:
                raise RefusedError(
                    f"Pulumi.{settings.stack}.yaml decides about {endpoint}, whose subscription is not in its "
                    "visibility: moving the decision into an entry would make the service visible to it. Add the "
                    "subscription to visibility, or remove the decision, and run this again"
                )
            entries[subscription] = _Entry(
                names.claim(by_subscription.get(subscription), subscription), settings.stack, [subscription], False
            )
        entries[subscription].decisions.append(
            {"endpoint": endpoint, "status": decision["status"], "reason": decision["reason"]}
        )
    return list(entries.values())


def _written_keys(path: Path, project: str) -> dict[str, object]:
    """The project's keys as the stack file writes them (not as the engine fills in their defaults)."""
    config = (round_trip().load(path.read_text()) or {}).get("config") or {}
    return {str(key).removeprefix(f"{project}:"): value for key, value in config.items()}


def _as_object(service: AdditionalService) -> CommentedMap:
    entry = CommentedMap(name=service.name)
    if service.nat_ip_count != 1:
        entry["natIpCount"] = service.nat_ip_count
    if service.nat_subnet_cidr:
        entry["natSubnetCidr"] = service.nat_subnet_cidr
    if service.anyone_with_alias:
        entry["anyoneWithAlias"] = True
    return entry


def _stack_file_without_lists(text: str, settings: ProviderSettings) -> str:
    """The provider's stack file with its lists removed and additionalServices as objects, comments kept."""
    project = load_schema().project
    document = round_trip()
    data = document.load(text)
    config = data["config"]
    for key in LISTS:
        config.pop(f"{project}:{key}", None)
    if settings.additional_services:
        config[f"{project}:additionalServices"] = [_as_object(s) for s in settings.additional_services]
    out = io.StringIO()
    document.dump(data, out)
    return out.getvalue()


def _what_azure_is_sent(services: Iterable[PublishedService]) -> list[tuple[object, ...]]:
    return [
        (
            s.name,
            s.nat_ip_count,
            s.nat_subnet_cidr,
            s.visibility,
            s.auto_approval,
            sorted((d["private_endpoint_id"].lower(), d["status"], d["reason"]) for d in s.decisions),
        )
        for s in services
    ]


def plan_import(root: Path, only: str = "") -> Change:
    """The entries and stack files that move every listed customer of the provider stack files (or of `only`)
    into the registry; refused when any service would be sent anything else than before."""
    stacks = providers(root)
    if only and only not in stacks:
        raise CannotStartError(f"--provider {only}: no provider stack file Pulumi.{only}.yaml")
    project = load_schema().project
    names = _Names(c.name for c in registry(root).customers)
    by_subscription = _customers_by_subscription(root)
    change, before = Change(), {}
    for stack in [only] if only else stacks:
        settings = provider_settings(stack, root)
        written = _written_keys(root / f"Pulumi.{stack}.yaml", project)
        additional = written.get("additionalServices")
        strings = isinstance(additional, list) and any(isinstance(s, str) for s in additional)
        if not (strings or any(key in written for key in LISTS)):
            continue
        before[stack] = _what_azure_is_sent(settings.services)
        for entry in _entries_of(settings, names, by_subscription):
            change.files[entry_path(entry.name)] = entry.text()
            change.notes.append(f"{entry.name}: {', '.join(entry.subscriptions)} from Pulumi.{stack}.yaml")
        stack_file = f"Pulumi.{stack}.yaml"
        change.files[stack_file] = _stack_file_without_lists((root / stack_file).read_text(), settings)
        change.notes.append(
            f"{stack_file}: its lists are gone; read the comments where they were (they may still describe them), "
            "and rename the entries as you like"
        )
    if not change.files:
        change.notes.append(f"no provider stack file lists customers{f' ({only})' if only else ''}: nothing to move")
        return change
    customers = [
        s for s, c in configs(root).items() if c.get("role") == "consumer" and c.get("customer") in names.taken
    ]
    _check_nothing_changes(root, change, stacks, customers, before, project)
    return change


def _check_nothing_changes(
    root: Path,
    change: Change,
    stacks: list[str],
    customers: list[str],
    before: dict[str, list[tuple[object, ...]]],
    project: str,
) -> None:
    """The staged change holds, and every service is sent what it was sent before."""
    with staged(root, change, stacks, customers) as stage:
        for stack, sent in before.items():
            after = stack_settings(stack, stage)
            assert isinstance(after, ProviderSettings)
            if _what_azure_is_sent(after.services) != sent:
                raise RefusedError(
                    f"moving Pulumi.{stack}.yaml's lists into the registry would change what its services are sent "
                    f"({project} would update them): nothing was written"
                )
