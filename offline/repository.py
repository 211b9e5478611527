"""The repository's stacks, offline: the stack files as the engine would configure them, and every one of them
deployed in the order the README's lifecycle does (`deploy_repository`), over one offline Azure.
"""

from __future__ import annotations

import base64
import copy
import functools
import math
import multiprocessing
import os
import struct
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from offline.engine import ROOT, SimulationError, World, deploy
from offline.records import Simulation
from offline.scratch import scratch_folder
from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, Settings, SettingsError, load_schema, parse
from pls.config.errors import Problem
from pls.config.files import KIB, FileRefusedError, load_yaml, read_text
from pls.config.registry import ENTRY_SUFFIX, MAX_ENTRY_BYTES, REGISTRY

SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SECRET_PLACEHOLDER = "offline-placeholder-for-a-secret"
LAB = ROOT / "tests" / "scenarios" / "lab"
"""The lab's stack files as shipped, frozen: the scenario the README's diagram and most tests are built from.
The repository's own Pulumi.*.yaml are the users' to edit; no test expects anything of their contents."""


def offline_ssh_public_key() -> str:
    """A syntactically real ed25519 public key that opens nothing (its key bytes are zero)."""
    key_type = b"ssh-ed25519"
    blob = struct.pack(">I", len(key_type)) + key_type + struct.pack(">I", 32) + bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} offline-simulation"


MAX_STACK_FILE_BYTES = 256 * KIB


def stack_files(root: Path = ROOT) -> list[str]:
    """Every stack of the project, by the stack files in the repository."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_file_problem(stack: str, problem: str, fix: str) -> SettingsError:
    """A stack file the engine could not read, refused naming the file (its keys are not looked at)."""
    return SettingsError(load_schema().project, [Problem(f"Pulumi.{stack}.yaml", None, problem, fix)])


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack's configuration as the engine would pass it: Pulumi.yaml defaults, then the stack file; a
    SettingsError naming the file when the engine could not read it.

    The project's keys lose their namespace; other namespaces (azure-native:…) keep theirs. An encrypted
    value (`secure:`, what `pulumi config set --secret` writes) becomes a placeholder: offline there is no key.
    """
    schema = load_schema()
    prefix = f"{schema.project}:"
    where = f"Pulumi.{stack}.yaml"
    text = _stack_file_text(stack, root)
    try:
        document = _document(text, where)
    except FileRefusedError as refused:
        raise SettingsError(schema.project, [refused.problem]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise stack_file_problem(
            stack, "is not a stack file (a mapping with config: a mapping of keys)", "see Pulumi.provider.yaml"
        )
    config: dict[str, Any] = schema.defaults()
    for key, value in (document.get("config") or {}).items():
        key = str(key)
        if isinstance(value, dict) and "secure" in value:
            value = offline_ssh_public_key() if key == f"{prefix}sshPublicKey" else SECRET_PLACEHOLDER
        # A copy: the caller may change its config, never the document another caller reads.
        config[key.removeprefix(prefix)] = copy.deepcopy(value)
    return config


def role_of(stack: str, root: Path = ROOT) -> str | None:
    """The stack file's role, or None when it has none or cannot be read (its own check names the problem)."""
    try:
        role = stack_config(stack, root).get("role")
    except SettingsError:
        return None
    return role if isinstance(role, str) else None


def _stack_file_text(stack: str, root: Path) -> str:
    """The stack file's text, bounded; a SettingsError naming the file when it cannot be read."""
    where = f"Pulumi.{stack}.yaml"
    try:
        return read_text(root / where, where=where, limit=MAX_STACK_FILE_BYTES)
    except FileRefusedError as refused:
        raise SettingsError(load_schema().project, [refused.problem]) from None


@functools.cache
def _document(text: str, where: str) -> Any:
    """A stack file's YAML, parsed once per content: a thousand customers' files are read by several checks."""
    return load_yaml(text, where=where) or {}


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


class _Lifecycle:
    """Deploys stack files of `root` over one offline World in the order the README's lifecycle does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = RepositoryWorld(World(root, project=load_schema().project), {}, {}, [])

    def attempt(self, stack: str, project_dir: Path | None = None, **overrides: Any) -> None:
        """The stack's deployment from its file (with `overrides`), in the repository or in `project_dir`."""
        try:
            self.repo.deployed[stack] = deploy(
                self.repo.world, stack, {**deployed_config(stack, self.root), **overrides}, project_dir=project_dir
            )
            self.repo.failed.pop(stack, None)
        except SimulationError as failure:
            self.repo.failed[stack] = failure

    def provider(self, stack: str, entries: Entries | None = None) -> None:
        """The provider's deployment with its whole registry, or with `entries` only (what one customer's plan
        needs). A decision about an endpoint that has not asked waits: the program keeps it back and says so."""
        self.attempt(stack, None if entries is None else registry_project(entries))

    def customer(self, stack: str) -> None:
        provider = provider_of(stack, self.root)
        if provider in self.repo.failed:  # say why the provider has no alias, not that it has none
            cause = ValueError(
                f"providerStack: Pulumi.{provider}.yaml, the provider this customer reaches, cannot be deployed: "
                f"{self.repo.failed[provider].cause}"
            )
            self.repo.failed[stack] = SimulationError(cause, [])
        else:
            self.attempt(stack)

    def ask(self, stack: str, asking: Mapping[str, tuple[str, str, str]]) -> None:
        """Endpoints ask to connect to the provider's services without being deployed: `asking` (lower-case
        endpoint id -> its id, request message and service), where the service is visible to them; and every
        other endpoint a decision is about, assumed to be another tenant's that has asked."""
        if stack in self.repo.failed:
            return
        settings = stack_settings(stack, self.root)
        assert isinstance(settings, ProviderSettings)
        aliases = self.repo.deployed[stack].outputs[contract.ALIASES]
        for published in settings.services:
            service = self.repo.world.azure.service_by_alias(aliases[published.name])
            assert service is not None
            for key, (endpoint_id, message, target) in asking.items():
                if (
                    (target or settings.service_name) == published.name
                    and key not in service.connections
                    and published.fate(endpoint_id.split("/")[2]) != "NotVisible"
                ):
                    self.repo.world.azure.add_connection(service, endpoint_id, message)
            for decision in published.decisions:
                endpoint_id = decision["private_endpoint_id"]
                if endpoint_id.lower() not in service.connections:
                    self.repo.assumed.append(endpoint_id)
                    self.repo.world.azure.add_connection(service, endpoint_id, "a customer outside this repository")


def provider_of(stack: str, root: Path = ROOT) -> str | None:
    """The provider stack file of this repository a customer's stack file reaches (None: the alias is given, or
    its provider is elsewhere)."""
    config = stack_config(stack, root)
    return None if config.get("providerAlias") else provider_stack_file(str(config.get("providerStack", "")), root)


def _roles(root: Path) -> dict[str, str | None]:
    return {stack: role_of(stack, root) for stack in stack_files(root)}


def deploy_repository(root: Path = ROOT) -> RepositoryWorld:
    """Providers first (their decisions wait: nobody has asked yet), then every customer, then the providers again
    (now they decide), then the customers' refresh: the state a team reaches by following the README, which is
    also the order a merge deploys in. (A provider's outputs show its decisions as it makes them.)"""
    lifecycle = _Lifecycle(root)
    roles = _roles(root)
    providers = [s for s, role in roles.items() if role == "provider"]
    consumers = [s for s, role in roles.items() if role == "consumer"]
    for stack in providers:
        lifecycle.provider(stack)
    for stack in consumers:
        lifecycle.customer(stack)
    deciding = [s for s in providers if s not in lifecycle.repo.failed and _decides(s, root)]
    for stack in deciding:
        lifecycle.provider(stack)
    if deciding:  # the customers' refresh: their outputs show the provider's decisions
        for stack in consumers:
            if stack in lifecycle.repo.deployed:
                lifecycle.attempt(stack)
    return lifecycle.repo


def _decides(provider: str, root: Path) -> bool:
    settings = settings_or_problem(provider, root)
    return isinstance(settings, ProviderSettings) and bool(settings.connection_decisions)


@functools.cache
def deployed_once(root: Path = ROOT) -> RepositoryWorld:
    """`deploy_repository(root)`, once per process (the lab's, which the docs' diagram and most tests read)."""
    return deploy_repository(root)


PARALLEL_FROM = 100
"""Stack files from which --all spreads its work over the machine's cores (below, starting them costs more)."""


def verdicts(root: Path = ROOT) -> dict[str, str]:
    """Each refused stack file's cause, on one line: a provider's as its own plan finds it (deploy_for), each
    customer's deployed after its provider's first deployment. The customers are split in as many parts as the
    machine has cores, each part deploying its provider first, so a provider of a thousand customers keeps every
    core busy; the parts, and each provider's plan, run in parallel."""
    providers: list[str] = []
    customers: dict[str, list[str]] = {}
    for stack, role in _roles(root).items():
        if role == "provider":
            providers.append(stack)
        elif role == "consumer":  # a file without a role, or unreadable: its own check names the problem
            customers.setdefault(provider_of(stack, root) or "", []).append(stack)
    cores = os.cpu_count() or 1
    share = max(1, math.ceil(sum(map(len, customers.values())) / cores))
    work: list[tuple[str, list[str]]] = [(provider, []) for provider in providers] + [
        (provider, group[start : start + share])
        for provider, group in customers.items()
        for start in range(0, len(group), share)
    ]
    work.sort(key=lambda item: -len(item[1]))  # the longest first, so no core is left with one at the end
    if len(providers) + sum(map(len, customers.values())) < PARALLEL_FROM:
        return {stack: cause for provider, part in work for stack, cause in _verdicts_of(root, provider, part).items()}
    found: dict[str, str] = {}
    with ProcessPoolExecutor(min(len(work), cores), mp_context=multiprocessing.get_context("spawn")) as pool:
        for verdict in pool.map(_verdicts_of, [root] * len(work), *zip(*work, strict=True)):
            found.update(verdict)
    return found


def _verdicts_of(root: Path, provider: str, customers: list[str]) -> dict[str, str]:
    """The provider's plan without `customers`, or their deployments after the provider's first ('' for none)."""
    if not customers:
        failed = deploy_for(provider, root).failed
    else:
        lifecycle = _Lifecycle(root)
        if provider:
            lifecycle.provider(provider)
        for customer in customers:
            lifecycle.customer(customer)
        failed = {stack: failure for stack, failure in lifecycle.repo.failed.items() if stack in customers}
    return {stack: one_line(failure.cause) for stack, failure in failed.items()}


def one_line(error: BaseException) -> str:
    """An error's message on one line, as a table row shows it."""
    return " ".join(str(error).split())


def deploy_for(stack: str, root: Path = ROOT) -> RepositoryWorld:
    """What one stack's plan deploys: the stack and what it depends on, never every customer, so its cost does
    not grow with the number of customers.

    A provider: itself, then the endpoints its decisions are about ask (a customer's stack file here by its request
    message, without deploying it; any other endpoint assumed), then itself again, deciding. A customer of a
    provider here: the provider's stack file checked with its whole registry, the provider deployed with this
    customer's registry entry only (what this customer's connection depends on), itself, the provider again
    (deciding about it, if its entry does), and its refresh. A customer given the alias: itself.
    """
    lifecycle = _Lifecycle(root)
    if role_of(stack, root) == "provider":
        lifecycle.provider(stack)
        lifecycle.ask(stack, _requests_to(stack, root))
        lifecycle.provider(stack)
        return lifecycle.repo
    provider = provider_of(stack, root)
    own_entry = registry_contents(stack, root)
    if provider is not None:
        checked = settings_or_problem(provider, root)
        if isinstance(checked, SettingsError):
            lifecycle.repo.failed[provider] = SimulationError(checked, [])
        else:
            lifecycle.provider(provider, entries=own_entry)
    lifecycle.customer(stack)
    customer = stack_settings(stack, root) if stack in lifecycle.repo.deployed else None
    if isinstance(customer, ConsumerSettings) and provider is not None and provider not in lifecycle.repo.failed:
        settings = stack_settings(provider, root)
        assert isinstance(settings, ProviderSettings)
        about = customer.private_endpoint_id.lower()
        if any(d["private_endpoint_id"].lower() == about for d in settings.connection_decisions):
            lifecycle.provider(provider, entries=own_entry)
            lifecycle.attempt(stack)
    return lifecycle.repo


def _requests_to(provider: str, root: Path) -> dict[str, tuple[str, str, str]]:
    """The endpoints this repository's customers of `provider` create, with the message each asks with and the
    service it asks ('' for the first)."""
    requests = {}
    for consumer in every_stack_settings(root).values():  # a file with a problem: its own check names it
        if isinstance(consumer, ConsumerSettings) and provider_file_of(consumer, root) == provider:
            message = "" if consumer.auto_approved else consumer.request_message
            requests[consumer.private_endpoint_id.lower()] = (consumer.private_endpoint_id, message, consumer.service)
    return requests


def stack_settings(stack: str, root: Path = ROOT) -> Settings:
    """The stack file's validated settings (SettingsError if it has a problem), parsed once per file content: a
    provider read for each of its customers, and each customer read by a provider's plan twice (its requests and
    its decisions), is parsed once."""
    return _parsed(stack, _stack_file_text(stack, root), root, _registry_fingerprint(stack, root))


@functools.cache
def _parsed(stack: str, _text: str, root: Path, _registry: tuple[tuple[str, int, int], ...]) -> Settings:
    return parse(deployed_config(stack, root), stack=stack, project_dir=root)


def _registry_fingerprint(stack: str, root: Path) -> tuple[tuple[str, int, int], ...]:
    """The registry files the stack's settings read, by name, modification time and size: a provider's are
    looked at for each of its customers, so they are listed and stat'ed, not read, each time."""
    directory = root / REGISTRY
    if directory.is_symlink() or not directory.is_dir():
        return ()
    config = stack_config(stack, root)
    if config.get("role") == "provider":
        with os.scandir(directory) as entries:
            found = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    else:
        own = directory / f"{config.get('customer')}{ENTRY_SUFFIX}"
        found = [(own.name, own.lstat())] if os.path.lexists(own) else []
    return tuple(sorted((name, status.st_mtime_ns, status.st_size) for name, status in found))


Entries = tuple[tuple[str, str], ...]
"""Registry entries by file name and content."""


def registry_contents(stack: str, root: Path) -> Entries:
    """The registry entries the stack's settings read, by name and content: every readable entry for a provider,
    its own for a customer (a file the program refuses is named by the stack's own check, not copied)."""
    found = []
    for name, _, _ in _registry_fingerprint(stack, root):
        if name.endswith(ENTRY_SUFFIX):
            try:
                found.append((name, read_text(root / REGISTRY / name, where=name, limit=MAX_ENTRY_BYTES)))
            except FileRefusedError:
                continue
    return tuple(found)


@functools.cache
def registry_project(contents: Entries) -> Path:
    """A project (in the process's scratch folder) whose registry holds exactly these entries."""
    project = scratch_folder("registry")
    (project / REGISTRY).mkdir()
    for name, text in contents:
        (project / REGISTRY / name).write_text(text)
    return project


def settings_or_problem(stack: str, root: Path = ROOT) -> Settings | SettingsError:
    """The stack file's settings, or its problem."""
    try:
        return stack_settings(stack, root)
    except SettingsError as invalid:
        return invalid


def every_stack_settings(root: Path = ROOT) -> dict[str, Settings | SettingsError]:
    """Every stack file's settings, or its problem, each read once: a check of every file reads a provider's
    settings (and so its registry) once, not once per customer."""
    return {stack: settings_or_problem(stack, root) for stack in stack_files(root)}


def provider_file_of(consumer: ConsumerSettings, root: Path = ROOT) -> str | None:
    """The provider stack file of this repository that the customer reaches (None: a provider elsewhere)."""
    return provider_stack_file(consumer.provider_stack_read or "", root)


def expected_connection(consumer: ConsumerSettings, provider: Settings | SettingsError | None) -> str | None:
    """What the provider's stack file says happens to this customer's connection (None: no valid provider file
    here decides it)."""
    if not isinstance(provider, ProviderSettings) or consumer.subscription_id is None:
        return None
    return provider.connection_fate(consumer.subscription_id, consumer.private_endpoint_id, consumer.service)
