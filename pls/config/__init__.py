"""Stack configuration -> validated settings, before any resource is registered.

Each key is declared once, on the settings model of its role (`common`, `provider` with its sections `web`
and `operations`, `consumer`): its type, default, meaning and rules. Pulumi.yaml's `config:` and the README's
reference are generated from those declarations (`schema`). A bad value stops the program with every problem
at once, each naming the key, the value and the fix (`errors`), and nothing is half-created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pls.azure_rules import GUID_RE
from pls.config.common import CommonSettings
from pls.config.consumer import ConsumerSettings, check_consumer
from pls.config.errors import Problem, SettingsError, problems_of
from pls.config.keys import ROLES, Checks
from pls.config.provider import ProviderSettings, built_provider_problems, check_provider
from pls.config.registry import customer_name_problem, read_entry, read_registry
from pls.config.schema import (
    AZURE_NATIVE,
    MODELS,
    PROJECT_FILE,
    ConfigKey,
    Schema,
    load_schema,
    near,
    split_namespaces,
)

Settings = ProviderSettings | ConsumerSettings

__all__ = [
    "AZURE_NATIVE",
    "CommonSettings",
    "ConfigKey",
    "ConsumerSettings",
    "Problem",
    "ProviderSettings",
    "Schema",
    "Settings",
    "SettingsError",
    "load",
    "load_schema",
    "parse",
]


def _decode(key: ConfigKey, raw: Any) -> Any:
    """Config reaches a Python program as strings (arrays as JSON); defaults come typed from the schema."""
    if not isinstance(raw, str) or key.type == "string":
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, an integer past Python's digit limit, or nested too deep
        return raw  # left for the type check to report


def _subscription(azure: Mapping[str, Any], role: str, stack: str, problems: list[Problem]) -> str | None:
    key = f"{AZURE_NATIVE}:subscriptionId"
    subscription = azure.get("subscriptionId")
    if subscription is None:
        if role == "consumer":
            problems.append(
                Problem(
                    key,
                    None,
                    "a consumer stack names the customer's subscription (the provider's visibility and approvals "
                    "are about it)",
                    f"pulumi config set {key} <the customer's subscription GUID> -s {stack}",
                )
            )
        return None
    if not isinstance(subscription, str) or not GUID_RE.fullmatch(subscription):
        problems.append(Problem(key, subscription, "not a subscription ID", "use az account show --query id"))
        return None
    return subscription.lower()


RETIRED = {
    "customerRegistry": (
        "customers",
        "is retired: the customer registry is always customers/ beside Pulumi.yaml",
        "move the entries into customers/ and remove customerRegistry from the stack file",
    ),
}
"""Keys this program no longer reads: the value that means what the program now does anyway, the problem, the fix."""


def parse(raw: Mapping[Any, Any], *, stack: str, project_dir: Path) -> Settings:
    """Validate `raw` and return the role's settings, or raise SettingsError naming every bad key.

    Keys are `<namespace>:<key>` as the engine passes them; a key without a namespace is the project's. The
    customer registry is read from `project_dir` (the folder of Pulumi.yaml).
    Total: any value of any JSON type, size or depth ends as settings or as a SettingsError.
    """
    schema = load_schema()
    problems: list[Problem] = []
    role = next((raw[k] for k in raw if str(k) in ("role", f"{schema.project}:role")), None)
    own, azure = split_namespaces(raw, schema, problems)
    problems += _unknown_keys(own, schema)
    if not isinstance(role, str) or role not in ROLES:
        problems.append(Problem("role", role, "the stack's role is not set", "set role: provider or role: consumer"))
        raise SettingsError(schema.project, problems)
    subscription_id = _subscription(azure, role, stack, problems)
    values = _role_values(own, schema, role, stack, problems)
    if any(p.key == "sshPublicKey" and p.problem == "required" for p in problems):
        raise SettingsError(schema.project, problems)
    registered, registry_problems = _registered(role, values, stack, project_dir)
    problems += registry_problems
    settings: CommonSettings | None = None
    failed: set[str] = set()
    try:
        settings = MODELS[role].model_validate(
            {**values, "project": schema.project, "stack": stack, "subscriptionId": subscription_id, **registered}
        )
    except ValidationError as error:
        found = problems_of(error, values, schema.declared())
        problems += found
        failed = {p.key.split("[")[0] for p in found}
    checks = Checks(values, failed, problems)
    if role == "provider":
        check_provider(checks, registered.get("customers", ()))
    else:
        check_consumer(checks, schema.defaults(), registered.get("registered"), subscription_id)
    if not problems and isinstance(settings, ProviderSettings):
        problems += built_provider_problems(settings)
    if problems or settings is None:
        raise SettingsError(schema.project, problems)
    assert isinstance(settings, ProviderSettings | ConsumerSettings)
    return settings


def _unknown_keys(own: Mapping[str, Any], schema: Schema) -> list[Problem]:
    """The project's keys the schema does not declare: retired ones with their fix, others with a guess."""
    problems = []
    for name, value in own.items():
        if name in RETIRED:
            meaning, problem, fix = RETIRED[name]
            if value != meaning:
                problems.append(Problem(name, value, problem, fix))
        elif name not in schema.keys:
            guess = near(name, list(schema.keys))
            fix = f"did you mean {guess}?" if guess else "remove it (see docs/reference/configuration.md)"
            problems.append(Problem(name, value, "unknown key", fix))
    return problems


def _role_values(
    own: Mapping[str, Any], schema: Schema, role: str, stack: str, problems: list[Problem]
) -> dict[str, Any]:
    """Every key of the role, as set or by default; a required key missing, or a key of the other role set to
    something else than its default, is a problem."""
    values: dict[str, Any] = {}
    for key in schema.keys.values():
        if key.name not in own:
            if key.required:
                problems.append(Problem(key.name, None, "required", f"set {key.name} in Pulumi.{stack}.yaml"))
            elif role in key.roles:
                values[key.name] = key.default
            continue
        value = _decode(key, own[key.name])
        if role in key.roles:
            values[key.name] = value
        elif value != key.default:
            problems.append(
                Problem(
                    key.name,
                    value,
                    f"is a {key.roles[0]} setting; a {role} stack does not read it",
                    f"remove it from Pulumi.{stack}.yaml",
                )
            )
    return values


def _registered(
    role: str, values: dict[str, Any], stack: str, project_dir: Path
) -> tuple[dict[str, Any], list[Problem]]:
    """What the customer registry holds for this stack: a provider's customers (every entry's problems are its
    own), or a consumer's entry (only its own file's problems)."""
    if role == "provider":
        registry = read_registry(project_dir)
        return {"customers": registry.of_provider(stack)}, list(registry.problems)
    customer = values.get("customer")
    if not isinstance(customer, str) or customer_name_problem(customer):
        return {}, []
    entry = read_entry(project_dir, customer)
    if isinstance(entry, tuple):
        return {}, list(entry)
    return {"registered": entry}, []


def load() -> Settings:
    """Settings of the running stack, from every configuration key the Pulumi engine passes to the program, with
    the registry of the project the engine runs (the folder of Pulumi.yaml)."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    project_dir = Path(pulumi.get_root_directory() or PROJECT_FILE.parent)
    return parse({**get_config_env(), **CONFIG.get()}, stack=pulumi.get_stack(), project_dir=project_dir)
