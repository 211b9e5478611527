"""The customer registry: one file per customer (`customers/<name>.yaml`), so onboarding is one new file.

An entry says which provider stack and which of its Private Link Services the customer reaches, its
subscriptions, whether its connections are approved on arrival, its contract, and the provider's decisions
about its private endpoints. The provider derives each service's visibility, auto-approval and decisions
from the entries; a consumer stack of a registered customer reads the alias of the customer's service.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError

from pls import azure_rules
from pls.config.errors import Problem, refuse, shown
from pls.config.keys import Model, Subscriptions, rule

REGISTRY_SUFFIX = ".yaml"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: a provider reads a thousand entries."""
MAX_REASON = 140  # a connection's description, as the consumer sees it
MAX_CUSTOMER = 40  # every name derived from the customer (autonamed VM and VNet included) then fits Azure's limits


def customer_name_problem(name: str) -> str | None:
    """Why `name` cannot be a customer's short name, or None."""
    if azure_rules.DNS_LABEL_RE.fullmatch(name) is None or len(name) > MAX_CUSTOMER:
        return f"{shown(name)} is not a DNS label of at most {MAX_CUSTOMER} characters"
    return None


def _private_endpoint_id_ok(endpoint_id: str) -> str:
    if azure_rules.PRIVATE_ENDPOINT_ID_RE.fullmatch(endpoint_id) is None:
        raise refuse(
            f"{shown(endpoint_id)} is not a private endpoint resource id",
            "use the customer's endpoint id /subscriptions/<guid>/resourceGroups/<rg>/providers/"
            "Microsoft.Network/privateEndpoints/<name> (the customer's stack exports it as privateEndpointId)",
        )
    return endpoint_id


class Decision(Model):
    """The provider's decision about one of the customer's private endpoints."""

    endpoint: Annotated[str, AfterValidator(_private_endpoint_id_ok)]
    status: Literal["Approved", "Rejected"]
    reason: Annotated[
        str,
        rule(
            lambda r: 0 < len(r) <= MAX_REASON and r.isprintable(),
            "the reason is what the customer sees on its connection",
            f"write it on one line, 1-{MAX_REASON} characters (e.g. the contract reference)",
        ),
    ]


class Customer(Model):
    """One registry entry (the file's name is the customer's)."""

    name: str
    provider: Annotated[
        str,
        rule(
            lambda s: azure_rules.DNS_LABEL_RE.fullmatch(s) is not None,
            "not a stack name of this repository",
            "name the provider stack, e.g. provider (Pulumi.provider.yaml)",
        ),
    ] = "provider"
    service: Annotated[
        str,
        rule(
            lambda s: azure_rules.SERVICE_NAME_RE.fullmatch(s) is not None,
            "not a Private Link Service name",
            "name one of the provider's services (serviceName or additionalServices)",
        ),
    ]
    subscriptions: Annotated[
        Subscriptions,
        Field(min_length=1),
    ]
    approval: Literal["auto", "manual"] = "manual"
    contract: str = ""
    decisions: list[Decision] = []


@dataclass(frozen=True)
class Registry:
    """Every entry of a registry directory, or the problems that keep it from being read."""

    directory: str
    customers: tuple[Customer, ...]
    problems: tuple[Problem, ...]

    def of_provider(self, stack: str) -> tuple[Customer, ...]:
        return tuple(c for c in self.customers if c.provider == stack)

    def entry(self, name: str) -> Customer | None:
        return next((c for c in self.customers if c.name == name), None)


def read_registry(directory: Path) -> Registry:
    """The registry in `directory` (none there: empty), every bad entry a problem named by its file and field."""
    if not directory.is_dir():
        return Registry(str(directory), (), ())
    customers: list[Customer] = []
    problems: list[Problem] = []
    for path in sorted(directory.glob(f"*{REGISTRY_SUFFIX}")):
        found = _entry(path.name, path.read_text())
        if isinstance(found, Customer):
            customers.append(found)
        else:
            problems += found
    return Registry(str(directory), tuple(customers), tuple(problems))


def read_entry(directory: Path, name: str) -> Customer | tuple[Problem, ...] | None:
    """One customer's entry (None: not registered), or its problems."""
    path = directory / f"{name}{REGISTRY_SUFFIX}"
    return _entry(path.name, path.read_text()) if path.is_file() else None


@functools.cache
def _entry(file_name: str, text: str) -> Customer | tuple[Problem, ...]:
    """One entry, parsed once per content: a thousand customers' files are read by every provider check."""
    name = file_name.removesuffix(REGISTRY_SUFFIX)
    where = f"customers/{file_name}"
    name_problem = customer_name_problem(name)
    if name_problem:
        return (Problem(where, name, f"the file's name is the customer's: {name_problem}", "rename the file"),)
    try:
        document = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        return (Problem(where, None, f"not YAML: {error}".replace("\n", " "), "fix the file's syntax"),)
    if not isinstance(document, dict):
        return (Problem(where, document, "not a mapping of keys", "see README, The customer registry"),)
    try:
        return Customer.model_validate({**document, "name": name})
    except ValidationError as error:
        return tuple(
            Problem(
                f"{where}:{'.'.join(str(part) for part in item['loc'])}",
                item.get("input"),
                str((item.get("ctx") or {}).get("problem") or item["msg"]),
                str((item.get("ctx") or {}).get("fix") or "see README, The customer registry"),
            )
            for item in error.errors()
        )
