"""The configuration schema, read off the settings models: what Pulumi.yaml's `config:` declares to the CLI and
the README's reference shows. `python -m maintenance.docs` writes both; a test fails if either drifts."""

from __future__ import annotations

import difflib
import importlib.util
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from pls.config.common import CommonSettings
from pls.config.consumer import ConsumerSettings
from pls.config.errors import Declared, Problem
from pls.config.keys import ROLES, Key, Model, Role
from pls.config.operations import OperationsKeys
from pls.config.provider import ProviderSettings
from pls.config.web import WebTierKeys

PROJECT_FILE = Path(__file__).resolve().parents[2] / "Pulumi.yaml"
AZURE_NATIVE = "azure-native"
PULUMI_NAMESPACE = "pulumi"
MODELS: dict[Role, type[CommonSettings]] = {"provider": ProviderSettings, "consumer": ConsumerSettings}
SECTIONS: tuple[type[Model], ...] = (CommonSettings, ProviderSettings, WebTierKeys, OperationsKeys, ConsumerSettings)
"""Where keys are declared, in the order Pulumi.yaml and the README list them."""
CONFIG_HEADER = (
    "config:\n"
    "  # Generated from the settings model (pls/config/) by python -m maintenance.docs: edit the model instead.\n"
    "  # Every description starts with the role that reads the key: [both], [provider] or [consumer].\n"
    "  # Keys whose values are objects (additionalServices) cannot be typed here: the program checks them.\n"
)


@dataclass(frozen=True)
class ConfigKey:
    name: str
    """The key without the project's namespace, as stack files write it (camelCase)."""
    field: str
    """The settings models' attribute (snake_case)."""
    type: str
    roles: tuple[Role, ...]
    description: str
    default: Any = None
    required: bool = False
    item_type: str | None = None
    """The type of an array's items."""
    problem: str = ""
    fix: str = ""

    @property
    def expected(self) -> str:
        return f"{self.type} of {self.item_type}" if self.item_type else self.type

    @property
    def declared_to_the_cli(self) -> bool:
        """Pulumi.yaml can type strings, integers, booleans and arrays of them, not objects: a key of objects is
        left out of it (the CLI does not refuse keys it does not declare) and checked by the program alone."""
        return self.item_type != "object"


@dataclass(frozen=True)
class Schema:
    project: str
    keys: Mapping[str, ConfigKey]

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.keys.values() if not k.required}

    def declared(self) -> dict[str, Declared]:
        return {k.name: Declared(k.expected, k.problem, k.fix) for k in self.keys.values()}


def _schema_type(annotation: Any) -> str:
    """string, integer, boolean or array, for a field's (possibly Annotated or Literal) type."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin is Literal:
        annotation = type(typing.get_args(annotation)[0])
    elif origin is list:
        return "array"
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return "object"
    return {str: "string", int: "integer", bool: "boolean"}[annotation]


def _item_type(annotation: Any) -> str | None:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return _schema_type(typing.get_args(annotation)[0]) if typing.get_origin(annotation) is list else None


def _keys() -> dict[str, ConfigKey]:
    """Every key, in the order of its section: the common keys, the provider's (network and service, web tier,
    operations), then the consumer's."""
    keys: dict[str, ConfigKey] = {}
    for section in SECTIONS:
        role: Role = "consumer" if issubclass(section, ConsumerSettings) else "provider"
        fields = MODELS[role].model_fields
        for field_name in section.__annotations__:
            info = fields.get(field_name)
            key = next((m for m in info.metadata if isinstance(m, Key)), None) if info else None
            if info is None or key is None or str(info.alias) in keys:
                continue
            annotation: Any = info.rebuild_annotation()
            keys[str(info.alias)] = ConfigKey(
                name=str(info.alias),
                field=field_name,
                type=_schema_type(annotation),
                roles=ROLES if key.role == "both" else (role,),
                description=key.description,
                default=None if info.is_required() else info.get_default(call_default_factory=True),
                required=info.is_required(),
                item_type=_item_type(annotation),
                problem=key.problem,
                fix=key.fix,
            )
    return keys


@cache
def load_schema() -> Schema:
    return Schema(project=yaml.safe_load(PROJECT_FILE.read_text())["name"], keys=_keys())


def config_block(schema: Schema) -> str:
    """Pulumi.yaml's `config:` section: each key's type, default and description, as the CLI reads them."""
    entries: dict[str, Any] = {}
    for key in schema.keys.values():
        if not key.declared_to_the_cli:
            continue
        role = "both" if len(key.roles) == 2 else key.roles[0]
        entry: dict[str, Any] = {"type": key.type}
        if key.item_type:
            entry["items"] = {"type": key.item_type}
        if not key.required:
            entry["default"] = key.default
        entry["description"] = f"[{role}] {key.description}"
        entries[key.name] = entry
    body = yaml.safe_dump(entries, sort_keys=False, width=10_000, allow_unicode=True, default_flow_style=False)
    return CONFIG_HEADER + "".join(f"  {line}\n" for line in body.splitlines())


def with_config_block(project_file_text: str, schema: Schema) -> str:
    """Pulumi.yaml with its `config:` section (the file's last) generated from the schema."""
    head = project_file_text[: project_file_text.index("\nconfig:\n") + 1]
    return head + config_block(schema)


@cache
def azure_native_keys() -> frozenset[str]:
    """The azure-native provider's configuration keys, read from the installed SDK (never a copied list)."""
    spec = importlib.util.find_spec("pulumi_azure_native")
    assert spec is not None and spec.submodule_search_locations, "pulumi-azure-native is not installed"
    source = Path(spec.submodule_search_locations[0], "config", "vars.py").read_text()
    return frozenset(re.findall(r"__config__\.get(?:_bool|_int|_object)?\('(\w+)'\)", source))


def near(name: str, candidates: list[str]) -> str | None:
    """The candidate `name` most likely misspells, if any (long names are not compared: it costs too much)."""
    found = difflib.get_close_matches(name, candidates, n=1) if len(name) < 100 else []
    return found[0] if found else None


def split_namespaces(
    raw: Mapping[Any, Any], schema: Schema, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The project's keys (namespace removed) and azure-native's; every other key is a problem by name."""
    own: dict[str, Any] = {}
    azure: dict[str, Any] = {}
    for full_key, value in raw.items():
        full_key = str(full_key)
        namespace, sep, name = full_key.rpartition(":")
        if not sep or namespace == schema.project:
            own[name] = value
        elif namespace == AZURE_NATIVE:
            if name in azure_native_keys():
                azure[name] = value
            else:
                guess = near(name, sorted(azure_native_keys()))
                fix = f"did you mean {AZURE_NATIVE}:{guess}?" if guess else "remove it"
                problems.append(Problem(full_key, value, "the azure-native provider has no such key", fix))
        elif namespace != PULUMI_NAMESPACE:
            guess = near(namespace, [schema.project, AZURE_NATIVE, PULUMI_NAMESPACE])
            fix = f"did you mean {guess}:{name}?" if guess else f"use {schema.project}:{name} or remove it"
            problems.append(Problem(full_key, value, f"unknown namespace {namespace!r}", fix))
    return own, azure
