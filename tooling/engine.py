"""The Pulumi engine's part, offline: deployments of stacks over one persistent offline Azure.

`deploy` is `pulumi up` (the previous state, protected resources, replacements, locks dropped at the end, nothing
changed unless the whole deployment succeeds), `refresh` and `destroy` likewise; `deploy_repository` deploys
every stack file of a repository in the order the README's lifecycle does.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, SettingsError, load_schema, parse
from pls.deployed import ALIAS_CHANGES
from tooling.arm_mocks import ARM
from tooling.offline_azure import AzureError, EngineError, OfflineAzure
from tooling.simulate import ROOT, Registration, Simulation, SimulationError, deployed_config, simulate, stack_files


def input_at(inputs: Mapping[str, Any], path: str) -> Any:
    """The input at a property path such as osProfile.customData (a replaceOnChanges entry)."""
    value: Any = inputs
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _split(urn: str) -> tuple[str, str, str]:
    """The URN's prefix (urn:pulumi:<stack>::<project>), qualified type and name."""
    prefix, project, qualified_type, name = urn.split("::", 3)
    return f"{prefix}::{project}", qualified_type, name


def engine_urn(urn: str) -> str:
    """The URN as the engine writes it: a resource whose parent is the stack has no parent type in its URN (the
    mocks' monitor writes `pulumi:pulumi:Stack$` there)."""
    prefix, qualified_type, name = _split(urn)
    return f"{prefix}::{qualified_type.removeprefix(ROOT_STACK_TYPE + '$')}::{name}"


def _urn_under(parent: str | None, prefix: str, type_: str, name: str) -> str:
    parent_type = _split(parent)[1].split("$")[-1] if parent else ROOT_STACK_TYPE
    return f"{prefix}::{'' if parent_type == ROOT_STACK_TYPE else parent_type + '$'}{type_}::{name}"


def aliases(simulation: Simulation) -> dict[str, set[str]]:
    """Every URN each resource answers to (engine form): its own, one per alias spec (a name, type or parent it
    had), and each of those under every URN its parent answers to, a name that starts with the parent's name
    renamed with it (`<parent>-<role>`). The engine matches a resource to its previous state by these."""
    answers: dict[str, set[str]] = {}
    for resource in simulation.resources:  # registered parents first
        prefix = _split(resource.urn)[0]
        candidates: list[tuple[str, str, str | None]] = [(resource.name, resource.type, resource.parent)]
        for alias in resource.aliases:
            spec = alias.get("spec", {})
            parent = None if spec.get("noParent") else spec.get("parentUrn") or resource.parent
            candidates.append((spec.get("name") or resource.name, spec.get("type") or resource.type, parent))
        urns = {_urn_under(parent, prefix, type_, name) for name, type_, parent in candidates}
        parent_resource = simulation.by_urn.get(resource.parent)
        for parent_alias in answers.get(resource.parent, set()) - {engine_urn(resource.parent)}:
            assert parent_resource is not None
            renamed = _split(parent_alias)[2]
            for name, type_, _ in candidates:
                if name.startswith(parent_resource.name):
                    name = renamed + name[len(parent_resource.name) :]
                urns.add(_urn_under(parent_alias, prefix, type_, name))
        answers[resource.urn] = urns
    return answers


def matched(previous: Simulation, current: Simulation) -> dict[str, Registration]:
    """Each current resource's previous state, by URN or alias, as the engine finds it."""
    before = {engine_urn(r.urn): r for r in previous.resources}
    found = {}
    for urn, answers in aliases(current).items():
        match = next((before[a] for a in sorted(answers) if a in before), None)
        if match is not None:
            found[urn] = match
    return found


def replacements(previous: Simulation | None, current: Simulation) -> list[tuple[Registration, list[str]]]:
    """Resources the engine would replace, and the inputs that force it (azure-native: name, group, location)."""
    return _replaced(matched(previous, current), current) if previous else []


def _replaced(was: dict[str, Registration], current: Simulation) -> list[tuple[Registration, list[str]]]:
    found = []
    for resource in current.resources:
        before = was.get(resource.urn)
        if before is None or not resource.custom or resource.type not in ARM:
            continue
        _, own_name_key, parent_key = ARM[resource.type]
        keys = [*resource.replace_on_changes, "location", "resourceGroupName", own_name_key]
        keys += [parent_key] if parent_key else []
        changed = [k for k in dict.fromkeys(keys) if input_at(before.inputs, k) != input_at(resource.inputs, k)]
        if changed:
            found.append((resource, changed))
    return found


def describe_replacement(resource: Registration, changed: list[str]) -> str:
    what = ALIAS_CHANGES if resource.type.endswith(":PrivateLinkService") else f"replaces {resource.name}"
    return f"{what} (changed: {', '.join(changed)})"


def _locked_scopes(simulation: Simulation | None) -> set[str]:
    locks = simulation.of_type("authorization:ManagementLockByScope") if simulation else []
    return {lock.inputs["scope"].lower() for lock in locks}


PLACEHOLDER_RANGES = list(ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=24))
"""Where the offline Azure puts a customer's own subnets, whose ranges no stack file states (RFC 2544's
benchmarking block: an address from it is visibly not the customer's)."""


def _customer_subnets_exist(world: OfflineAzure, config: Mapping[str, Any]) -> None:
    """The subnets of the customer's own VNet that a consumer stack attaches to exist in Azure before it does."""
    for key in ("endpointSubnetId", "workloadSubnetId"):
        subnet = config.get(key)
        if isinstance(subnet, str) and subnet:
            index = int(hashlib.sha256(subnet.lower().encode()).hexdigest(), 16) % len(PLACEHOLDER_RANGES)
            world.existing_subnets.setdefault(subnet.lower(), str(PLACEHOLDER_RANGES[index]))


def last_deployment(world: OfflineAzure, stack: str) -> Simulation | None:
    """What the engine recorded of the stack's last successful deployment."""
    deployed = world.deployments.get(stack)
    assert deployed is None or isinstance(deployed, Simulation), "the engine records Simulations"
    return deployed


def deploy(world: OfflineAzure, stack: str, config: Mapping[str, Any]) -> Simulation:
    """`pulumi up` of `stack` against `world`: nothing changes unless the whole deployment succeeds."""
    _customer_subnets_exist(world, config)
    previous = last_deployment(world, stack)
    registrations: list[Registration] = []
    try:
        with world.transaction():
            current = simulate(stack, config, world=world)
            registrations = current.resources
            was = matched(previous, current) if previous else {}
            for resource, changed in _replaced(was, current):
                if was[resource.urn].protect:
                    raise EngineError(
                        f"unable to replace resource {resource.name} as it is currently marked for protection: "
                        f"it {describe_replacement(resource, changed)}"
                    )
                old_id = was[resource.urn].outputs["id"]
                if resource.type.endswith(":PrivateLinkService"):
                    world.refuse_if_locked(old_id, "replace the Private Link Service")
                    if old_id.lower() != resource.outputs["id"].lower():
                        world.delete_service(old_id)  # replaced under another name: the old one goes first
            for scope in _locked_scopes(previous) - _locked_scopes(current):
                world.unlock(scope)  # a lock dropped from the program goes at the end of the update
    except (EngineError, AzureError) as refused:
        raise SimulationError(refused, registrations) from refused
    world.deployments[stack] = current
    return current


def refresh(world: OfflineAzure, stack: str) -> Simulation:
    """`pulumi refresh` (then `up`, which changes nothing): the stack's outputs as Azure now has them."""
    return deploy(world, stack, _recorded(world, stack).config)


def _recorded(world: OfflineAzure, stack: str) -> Simulation:
    deployed = last_deployment(world, stack)
    assert deployed is not None, f"stack {stack} is not deployed"
    return deployed


def _delete_resources(world: OfflineAzure, resources: list[Registration]) -> None:
    """What Azure is asked to delete when a stack is destroyed, dependents first: a lock before what it locks,
    an endpoint (and so its connection) before a service."""
    for resource in resources:
        if resource.type == "azure-native:authorization:ManagementLockByScope":
            world.unlock(resource.inputs["scope"])
    for resource in resources:
        if resource.type == "azure-native:network:PrivateEndpoint":
            world.delete_endpoint(resource.outputs["id"])
    for resource in resources:
        if resource.type == "azure-native:network:PrivateLinkService":
            world.delete_service(resource.outputs["id"])


def destroy(world: OfflineAzure, stack: str) -> None:
    """`pulumi destroy`: refused for protected resources (engine) and for a service with connections (Azure)."""
    protected = [r.name for r in _recorded(world, stack).resources if r.protect]
    if protected:
        raise SimulationError(
            EngineError(f"cannot delete protected resources {', '.join(protected)}: set protectService false first"),
            [],
        )
    try:
        with world.transaction():
            _delete_resources(world, _recorded(world, stack).resources)
            del world.deployments[stack]
    except AzureError as refused:
        raise SimulationError(refused, []) from refused


@dataclass
class RepositoryWorld:
    """Every stack file of a repository deployed offline in the order they happen in life."""

    world: OfflineAzure
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
    world = OfflineAzure(project=load_schema().project)
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
        attempt(stack, configs[stack])
    decided = False
    for stack in providers:
        if stack in repo.failed:
            continue
        settings = parse(configs[stack], stack=stack)
        assert isinstance(settings, ProviderSettings)
        decided = decided or bool(settings.connection_decisions)
        service = world.service_by_alias(repo.deployed[stack].outputs[contract.ALIAS])
        assert service is not None
        for decision in settings.connection_decisions:
            if decision["private_endpoint_id"].lower() not in service.connections:
                world.add_connection(service, decision["private_endpoint_id"], "a customer outside this repository")
                repo.assumed.append(decision["private_endpoint_id"])
        attempt(stack, configs[stack])
    for stack in consumers:  # their refresh, when a provider has decided on anything
        if decided and stack in repo.deployed:
            attempt(stack, configs[stack])
    return repo


def expected_connection(consumer: ConsumerSettings, root: Path = ROOT) -> str | None:
    """What the provider's stack file says happens to this customer's connection, when that file is here."""
    provider_stack = provider_stack_file(consumer.provider_stack_read or "", root)
    if provider_stack is None or consumer.subscription_id is None:
        return None
    try:
        provider = parse(deployed_config(provider_stack, root), stack=provider_stack)
    except SettingsError:
        return None
    assert isinstance(provider, ProviderSettings)
    return provider.connection_fate(consumer.subscription_id, consumer.private_endpoint_id)
