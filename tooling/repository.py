"""The repository's stacks, offline: the stack files as the engine would configure them, and every one of them
deployed in the order the README's lifecycle does (`deploy_repository`), over one offline Azure.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, Settings, SettingsError, load_schema, parse
from tooling.engine import ROOT, Simulation, SimulationError, World, deploy

SECRET_PLACEHOLDER = "offline-placeholder-for-a-secret"
LAB = ROOT / "tests" / "scenarios" / "lab"
"""The lab's stack files as shipped, frozen: the scenario the README's diagram and most tests are built from.
The repository's own Pulumi.*.yaml are the users' to edit; no test expects anything of their contents."""


def offline_ssh_public_key() -> str:
    """A syntactically real ed25519 public key that opens nothing (its key bytes are zero)."""
    key_type = b"ssh-ed25519"
    blob = struct.pack(">I", len(key_type)) + key_type + struct.pack(">I", 32) + bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} offline-simulation"


def stack_files(root: Path = ROOT) -> list[str]:
    """Every stack of the project, by the stack files in the repository."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack's configuration as the engine would pass it: Pulumi.yaml defaults, then the stack file.

    The project's keys lose their namespace; other namespaces (azure-native:…) keep theirs. An encrypted
    value (`secure:`, what `pulumi config set --secret` writes) becomes a placeholder: offline there is no key.
    """
    schema = load_schema()
    prefix = f"{schema.project}:"
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    config: dict[str, Any] = schema.defaults()
    for key, value in (document.get("config") or {}).items():
        key = str(key)
        if isinstance(value, dict) and "secure" in value:
            value = offline_ssh_public_key() if key == f"{prefix}sshPublicKey" else SECRET_PLACEHOLDER
        config[key.removeprefix(prefix)] = value
    return config


def deployed_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack file's configuration as scripts/deploy deploys it, which adds an SSH key when the file has none."""
    config = stack_config(stack, root)
    config.setdefault("sshPublicKey", offline_ssh_public_key())
    return config


@dataclass
class RepositoryWorld:
    """Every stack file of a repository deployed offline in the order they happen in life."""

    world: World
    deployed: dict[str, Simulation]
    failed: dict[str, SimulationError]
    assumed: list[str]
    """Endpoints a provider decides on that no stack file here creates: assumed to have asked (another tenant)."""

    def result(self, stack: str) -> Simulation:
        if stack in self.failed:
            raise self.failed[stack]
        return self.deployed[stack]


def provider_stack_file(qualified_stack: str, root: Path = ROOT) -> str | None:
    """The stack file of this repository that a consumer's providerStack names, if there is one."""
    parts = qualified_stack.split("/")
    if len(parts) == 3 and parts[1] == load_schema().project and (root / f"Pulumi.{parts[2]}.yaml").exists():
        return parts[2]
    return None


def deploy_repository(root: Path = ROOT) -> RepositoryWorld:
    """Providers first (without decisions: nobody has asked yet), then every customer, then the providers again
    with their decisions, then the customers' refresh: the state a team reaches by following the README."""
    world = World(project=load_schema().project)
    configs = {stack: deployed_config(stack, root) for stack in stack_files(root)}
    providers = [s for s, c in configs.items() if c.get("role") == "provider"]
    consumers = [s for s, c in configs.items() if c.get("role") == "consumer"]
    repo = RepositoryWorld(world, {}, {}, [])

    def attempt(stack: str, config: Mapping[str, Any]) -> None:
        try:
            repo.deployed[stack] = deploy(world, stack, config)
            repo.failed.pop(stack, None)
        except SimulationError as failure:
            repo.failed[stack] = failure

    for stack in providers:
        attempt(stack, {**configs[stack], "approvedConnections": [], "rejectedConnections": []})
    for stack in consumers:
        provider = (
            None
            if configs[stack].get("providerAlias")
            else provider_stack_file(str(configs[stack].get("providerStack", "")), root)
        )
        if provider in repo.failed:  # say why the provider has no alias, not that it has none
            cause = ValueError(
                f"providerStack: Pulumi.{provider}.yaml, the provider this customer reaches, cannot be deployed: "
                f"{repo.failed[provider].cause}"
            )
            repo.failed[stack] = SimulationError(cause, [])
            continue
        attempt(stack, configs[stack])
    decided = False
    for stack in providers:
        if stack in repo.failed:
            continue
        settings = stack_settings(stack, root)
        assert isinstance(settings, ProviderSettings)
        decided = decided or bool(settings.connection_decisions)
        service = world.azure.service_by_alias(repo.deployed[stack].outputs[contract.ALIAS])
        assert service is not None
        for decision in settings.connection_decisions:
            if decision["private_endpoint_id"].lower() not in service.connections:
                world.azure.add_connection(
                    service, decision["private_endpoint_id"], "a customer outside this repository"
                )
                repo.assumed.append(decision["private_endpoint_id"])
        attempt(stack, configs[stack])
    if decided:  # everyone's refresh: each side's outputs show the decisions (the provider's connections too)
        for stack in consumers + providers:
            if stack in repo.deployed:
                attempt(stack, configs[stack])
    return repo


def stack_settings(stack: str, root: Path = ROOT) -> Settings:
    """The stack file's validated settings (SettingsError if it has a problem), parsed once per file content: a
    provider read for each of its customers is parsed once, not once per customer."""
    return _parsed(stack, (root / f"Pulumi.{stack}.yaml").read_text(), root)


@functools.lru_cache(maxsize=64)
def _parsed(stack: str, _text: str, root: Path) -> Settings:
    return parse(deployed_config(stack, root), stack=stack)


def expected_connection(consumer: ConsumerSettings, root: Path = ROOT) -> str | None:
    """What the provider's stack file says happens to this customer's connection, when that file is here."""
    provider_stack = provider_stack_file(consumer.provider_stack_read or "", root)
    if provider_stack is None or consumer.subscription_id is None:
        return None
    try:
        provider = stack_settings(provider_stack, root)
    except SettingsError:
        return None
    assert isinstance(provider, ProviderSettings)
    return provider.connection_fate(consumer.subscription_id, consumer.private_endpoint_id)
