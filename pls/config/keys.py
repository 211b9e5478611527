"""How a configuration key is declared: its type, default, role, meaning and rules, once, on the settings model.

A field of a settings model is a key when its `Annotated` metadata holds a `Key`. Its own rules (a range, a
pattern, a choice, a list's items) run in pydantic and are worded by the `Key` or by `refuse`; rules that
read several keys together run afterwards, in `Checks`, over the keys whose own rules passed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pls import azure_rules
from pls.config.errors import Problem, refuse, shown

Role = Literal["provider", "consumer"]
ROLES: tuple[Role, ...] = ("provider", "consumer")
T = TypeVar("T")


@dataclass(frozen=True)
class Key:
    """The declaration of a configuration key, beside its type and default."""

    role: Literal["both", "provider", "consumer"]
    description: str
    """What the key means, for Pulumi.yaml and the README's reference."""
    problem: str = ""
    """What is wrong when a declared constraint (range, length, choice) refuses a value."""
    fix: str = ""


class Model(BaseModel):
    """Settings: keys by their camelCase names in stack files, snake_case in Python; no coercion, no extras."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, strict=True, frozen=True, extra="forbid", validate_default=True
    )


def rule(ok: Callable[[Any], bool], problem: str | Callable[[Any], str], fix: str) -> AfterValidator:
    """A field's own rule: `ok(value)`, else `problem` (which may quote the value) and `fix`."""

    def check(value: T) -> T:
        if not ok(value):
            raise refuse(problem(value) if callable(problem) else problem, fix)
        return value

    return AfterValidator(check)


def matching(pattern: re.Pattern[str], problem: str, fix: str) -> AfterValidator:
    return rule(lambda value: pattern.fullmatch(value) is not None, problem, fix)


def checked_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise refuse("not an IPv4 CIDR", "write it as a.b.c.d/n, e.g. 10.50.1.0/24") from None
    if str(net) != value:
        raise refuse("host bits are set", f"use the network address: {net}")
    forbidden = azure_rules.forbidden_range(net)
    if forbidden:
        raise refuse(f"overlaps {forbidden}, which Azure does not allow in a VNet", "use a private range")
    return value


Cidr = Annotated[str, AfterValidator(checked_cidr)]
"""An IPv4 network address range of a VNet or subnet."""


def _subscriptions(subscriptions: list[str]) -> list[str]:
    if len(subscriptions) > azure_rules.MAX_SUBSCRIPTIONS:
        raise refuse(
            f"{len(subscriptions)} subscriptions, Azure allows {azure_rules.MAX_SUBSCRIPTIONS}",
            "split customers over more Private Link Services",
        )
    lowered = [s.lower() for s in subscriptions]
    if len(set(lowered)) != len(lowered):
        raise refuse("lists a subscription twice", "remove the duplicate")
    return lowered


def _subscription_id(allow_anyone: bool) -> AfterValidator:
    return rule(
        lambda sub: (allow_anyone and sub == "*") or azure_rules.GUID_RE.fullmatch(sub) is not None,
        lambda sub: f"{shown(sub)} is not a subscription ID",
        "use the subscription's GUID (az account show --query id)",
    )


Subscriptions = Annotated[list[Annotated[str, _subscription_id(False)]], AfterValidator(_subscriptions)]
"""Subscription IDs (lower case), as Azure's visibility and auto-approval lists take them."""
SubscriptionsOrAnyone = Annotated[list[Annotated[str, _subscription_id(True)]], AfterValidator(_subscriptions)]
"""Subscription IDs, or `*`: anyone with the alias."""


def fqdn_ok(name: str) -> bool:
    labels = name.removesuffix(".").split(".")
    return len(labels) >= 2 and len(name) <= 253 and all(azure_rules.DNS_LABEL_RE.fullmatch(label) for label in labels)


def optional(pattern: re.Pattern[str], problem: str, fix: str) -> AfterValidator:
    """A string's rule: empty (not set), or it matches `pattern`."""
    return rule(lambda value: not value or pattern.fullmatch(value) is not None, problem, fix)


SubnetId = Annotated[
    str,
    optional(
        azure_rules.SUBNET_ID_RE,
        "not a subnet resource ID",
        "use az network vnet subnet show -g <group> --vnet-name <vnet> -n <subnet> --query id",
    ),
]


class Checks:
    """The rules that read several keys together, over the values whose own rules passed (the others are
    reported already: a check that needs one of them is skipped, so nothing is reported twice)."""

    def __init__(self, values: Mapping[str, Any], failed: Iterable[str], problems: list[Problem]) -> None:
        self.values = values
        self.failed = set(failed)
        self.problems = problems

    def ok(self, *keys: str) -> bool:
        return not self.failed.intersection(keys)

    def fail(self, key: str, problem: str, fix: str) -> None:
        self.problems.append(Problem(key, self.values.get(key), problem, fix))
        self.failed.add(key)

    def check(self, key: str, ok: bool, problem: str, fix: str) -> bool:
        if not ok:
            self.fail(key, problem, fix)
        return ok

    def subnets(self, vnet_key: str, subnet_keys: list[str], min_free: Mapping[str, int]) -> None:
        """Subnets inside their VNet, of a size Azure creates and that holds what they must, never overlapping."""
        if not self.ok(vnet_key):
            return
        vnet = ipaddress.IPv4Network(self.values[vnet_key])
        nets = {k: ipaddress.IPv4Network(self.values[k]) for k in subnet_keys if self.ok(k)}
        for key, net in nets.items():
            usable = net.num_addresses - azure_rules.AZURE_RESERVED_IPS
            if not net.subnet_of(vnet):
                self.fail(key, f"not inside {vnet_key} {vnet}", f"choose a range inside {vnet}")
            elif net.prefixlen > azure_rules.AZURE_SMALLEST_SUBNET:
                self.fail(
                    key,
                    f"smaller than Azure's smallest subnet /{azure_rules.AZURE_SMALLEST_SUBNET}",
                    "use a larger range",
                )
            elif key in min_free and usable < min_free[key]:
                self.fail(
                    key,
                    f"has {usable} usable addresses but needs {min_free[key]}",
                    "use a larger range (a shorter prefix)",
                )
        checked = list(nets.items())
        for i, (key_a, a) in enumerate(checked):
            for key_b, b in checked[i + 1 :]:
                if a.overlaps(b):
                    self.fail(key_b, f"overlaps {key_a} {a}", "give every subnet its own range")
