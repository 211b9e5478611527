"""The customer registry: one file per customer (`customers/<name>.yaml`), so onboarding is one new file.

An entry says which provider stack and which of its Private Link Services the customer reaches, its
subscriptions, whether its connections are approved on arrival, its contract, and the provider's decisions
about its private endpoints. The provider derives each service's visibility, auto-approval and decisions
from the entries; a consumer stack of a registered customer reads the alias of the customer's service.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError

from pls import azure_rules
from pls.config.errors import Problem, refuse, shown
from pls.config.files import KIB, FileRefusedError, directory_problem, load_yaml, read_text
from pls.config.keys import Model, Subscriptions, rule

REGISTRY = "customers"
"""The registry's folder, beside Pulumi.yaml: the one place that says who may connect."""
ENTRY_SUFFIX = ".yaml"
REGISTRY_README = "README.md"
"""The folder's own description: the one file in it that is not an entry."""
MAX_ENTRY_BYTES = 64 * KIB
MAX_REASON = 140  # a connection's description, as the consumer sees it
MAX_CONTRACT = 140
MAX_CUSTOMER = 40  # every name derived from the customer (autonamed VM and VNet included) then fits Azure's limits


def entry_path(customer: str) -> str:
    """The customer's registry entry, relative to the project."""
    return f"{REGISTRY}/{customer}{ENTRY_SUFFIX}"


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


def _printable_line(limit: int, what: str) -> AfterValidator:
    return rule(
        lambda text: len(text) <= limit and (text == "" or text.isprintable()),
        f"{what} is at most {limit} printable characters on one line",
        f"shorten it to {limit} characters",
    )


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
            lambda s: s == "" or azure_rules.SERVICE_NAME_RE.fullmatch(s) is not None,
            "not a Private Link Service name",
            "name one of the provider's services (serviceName or additionalServices), or leave it out for the first",
        ),
    ] = ""
    """Which of the provider's Private Link Services the customer reaches; empty: the first (serviceName)."""
    subscriptions: Annotated[
        Subscriptions,
        Field(min_length=1),
    ]
    approval: Literal["auto", "manual"] = "manual"
    contract: Annotated[str, _printable_line(MAX_CONTRACT, "the contract reference")] = ""
    decisions: Annotated[list[Decision], Field(max_length=azure_rules.MAX_CONNECTIONS)] = []


@dataclass(frozen=True)
class Registry:
    """Every entry of the registry, or the problems that keep it from being read."""

    customers: tuple[Customer, ...]
    problems: tuple[Problem, ...]

    def of_provider(self, stack: str) -> tuple[Customer, ...]:
        return tuple(c for c in self.customers if c.provider == stack)

    def entry(self, name: str) -> Customer | None:
        return next((c for c in self.customers if c.name == name), None)


def read_registry(project_dir: Path) -> Registry:
    """The registry of the project in `project_dir` (none there: empty). A file that is not an entry, and every bad
    entry, is a problem named by its file (and field)."""
    directory = project_dir / REGISTRY
    refused = directory_problem(directory, where=f"{REGISTRY}/")
    if refused:
        return Registry((), (refused.problem,))
    if not directory.is_dir():
        return Registry((), ())
    customers: list[Customer] = []
    problems: list[Problem] = []
    with os.scandir(directory) as found:
        names = sorted(entry.name for entry in found)
    for name in names:
        if name.startswith(".") or name == REGISTRY_README:
            continue
        if not name.endswith(ENTRY_SUFFIX):
            problems.append(
                Problem(
                    f"{REGISTRY}/{name}",
                    None,
                    f"is not a registry entry (entries are <customer>{ENTRY_SUFFIX}), so nobody reads it",
                    f"rename it to <customer>{ENTRY_SUFFIX}, or move it out of {REGISTRY}/",
                )
            )
            continue
        entry = _read(directory, name)
        if isinstance(entry, Customer):
            customers.append(entry)
        else:
            problems += entry
    return Registry(tuple(customers), tuple(problems))


def read_entry(project_dir: Path, name: str) -> Customer | tuple[Problem, ...] | None:
    """One customer's entry (None: not registered), or its problems."""
    directory = project_dir / REGISTRY
    refused = directory_problem(directory, where=f"{REGISTRY}/")
    if refused:
        return (refused.problem,)
    path = directory / f"{name}{ENTRY_SUFFIX}"
    return _read(directory, path.name) if os.path.lexists(path) else None


def _read(directory: Path, file_name: str) -> Customer | tuple[Problem, ...]:
    where = f"{REGISTRY}/{file_name}"
    try:
        text = read_text(directory / file_name, where=where, limit=MAX_ENTRY_BYTES)
    except FileRefusedError as refused:
        return (refused.problem,)
    return _entry(file_name, text)


@functools.cache
def _entry(file_name: str, text: str) -> Customer | tuple[Problem, ...]:
    """One entry, parsed once per content: a thousand customers' files are read by every provider check."""
    name = file_name.removesuffix(ENTRY_SUFFIX)
    where = f"{REGISTRY}/{file_name}"
    name_problem = customer_name_problem(name)
    if name_problem:
        return (Problem(where, name, f"the file's name is the customer's: {name_problem}", "rename the file"),)
    try:
        document = load_yaml(text, where=where)
    except FileRefusedError as refused:
        return (refused.problem,)
    if not isinstance(document, dict):
        return (Problem(where, None, "is not a mapping of keys", "see docs/operations/registry.md"),)
    try:
        return Customer.model_validate({**document, "name": name})
    except ValidationError as error:
        return tuple(
            Problem(
                f"{where}:{'.'.join(str(part) for part in item['loc'])}",
                item.get("input"),
                str((item.get("ctx") or {}).get("problem") or item["msg"]),
                str((item.get("ctx") or {}).get("fix") or "see docs/operations/registry.md"),
            )
            for item in error.errors()
        )
