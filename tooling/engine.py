"""The Pulumi engine's part, offline: one run of the program under mocks, and deployments of stacks over one
persistent offline Azure.

`simulate` runs the real program (by default __main__.py) under Pulumi mocks that answer like Azure
(tooling/arm_mocks.py) with a recording monitor that keeps every registration with its parent, dependencies
and resource options. `deploy` is `pulumi up` (the previous state matched by URN or alias, protected
resources, replacements, locks dropped at the end, nothing changed unless the whole deployment succeeds);
`refresh` and `destroy` likewise. No credentials, no CLI, no provider plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.resource
import pulumi.runtime.resource
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, reset_options
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from pls.config import AZURE_NATIVE, load_schema
from pls.deployed import ALIAS_CHANGES
from tooling.arm_mocks import ARM, AzureMocks
from tooling.offline_azure import AzureError, OfflineAzure

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
"""The subscription of a stack whose file names none (azure-native:subscriptionId): the provider's, offline."""


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    dependencies: set[str]
    property_dependencies: dict[str, set[str]] = field(default_factory=dict)
    protect: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)
    provider: str = ""
    """The explicit provider's reference (<urn>::<id>), or empty for the default provider."""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Simulation:
    stack: str
    resources: list[Registration]
    outputs: dict[str, Any]
    invokes: list[MockCallArgs]
    config: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_suffix: str, under: str = "") -> list[Registration]:
        """Custom (cloud) resources whose type token ends with `type_suffix`, e.g. "network:Subnet", and, with
        `under`, that belong to a component of that type (e.g. "CertificateVault")."""
        return [
            r
            for r in self.resources
            if r.custom and r.type.endswith(type_suffix) and (not under or f":{under}$" in r.urn.split("::")[2])
        ]

    def one(self, type_suffix: str, under: str = "") -> Registration:
        found = self.of_type(type_suffix, under)
        assert len(found) == 1, f"expected one {type_suffix}, found {[r.name for r in found]}"
        return found[0]

    def depends_on(self, dependent: Registration, dependency: Registration) -> bool:
        """True when `dependent` waits for `dependency`, directly or through other resources or its parents."""
        seen: set[str] = set()
        todo = [dependent.urn]
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            reg = self.by_urn.get(urn)
            if reg is None:  # the stack itself
                continue
            # A component's dependencies hold for its children too.
            todo.extend([*reg.dependencies, reg.parent] if reg.parent else reg.dependencies)
        return dependency.urn in seen - {dependent.urn}


class RecordingMonitor(MockMonitor):
    """Keeps what the mock monitor drops: parents, dependencies and resource options."""

    def __init__(self, mocks: AzureMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(self._record(request, response.urn))
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)
        self.registrations.append(self._record(request, response.urn, custom=True))
        return response

    def _record(self, request: Any, urn: str, custom: bool | None = None) -> Registration:
        from pulumi.runtime import rpc

        properties = request.properties if custom else request.object
        return Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=request.custom if custom is None else custom,
            parent=request.parent,
            inputs=rpc.deserialize_properties(properties),
            dependencies=set(request.dependencies),
            property_dependencies={
                key: set(deps.urns) for key, deps in getattr(request, "propertyDependencies", {}).items()
            },
            protect=bool(getattr(request, "protect", False)),
            replace_on_changes=list(getattr(request, "replaceOnChanges", [])),
            delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
            aliases=[json_format.MessageToDict(alias) for alias in getattr(request, "aliases", [])],
            provider=getattr(request, "provider", ""),
        )


class SimulationError(Exception):
    """The program (or offline Azure, or the engine) refused; `registrations` is what it had registered by then."""

    def __init__(self, cause: BaseException, registrations: list[Registration]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.registrations = registrations


def run_main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


class EngineError(Exception):
    """What the Pulumi engine refuses before it changes anything (protected resources)."""


class World:
    """Azure, offline, and the state backend the engine keeps beside it: each stack's last deployment."""

    def __init__(self, organization: str = "organization", project: str = "pls-saas") -> None:
        self.organization = organization
        self.project = project
        self.azure = OfflineAzure()
        self.deployments: dict[str, Simulation] = {}
        self.extra_stack_outputs: dict[str, dict[str, Any]] = {}
        """Outputs of stacks that are not deployed in this world (e.g. a provider that has no alias yet)."""

    def fork(self) -> World:
        """An independent copy: Azure is copied; past deployments (records, never changed) are shared."""
        world = World(self.organization, self.project)
        world.azure = self.azure.copy()
        world.deployments = dict(self.deployments)
        world.extra_stack_outputs = dict(self.extra_stack_outputs)
        return world

    def qualified(self, stack: str) -> str:
        return f"{self.organization}/{self.project}/{stack}"

    def stack_outputs(self, qualified_stack: str) -> dict[str, Any]:
        """What a StackReference reads: the stack's outputs as its last deployment left them."""
        for stack, deployment in self.deployments.items():
            if self.qualified(stack) == qualified_stack:
                return dict(deployment.outputs)
        return self.extra_stack_outputs.get(qualified_stack, {})


@contextlib.contextmanager
def all_or_nothing(world: World) -> Iterator[None]:
    """A deployment changes Azure only if it succeeds as a whole (it runs on a copy, kept only then)."""
    saved = world.azure.copy()
    try:
        yield
    except BaseException:
        world.azure = saved
        raise


@contextlib.contextmanager
def _engine_side_work_skipped() -> Iterator[None]:
    """Skip two things the Python SDK computes for every resource that only the real engine would read.

    - Alias URNs. Every azure-native resource carries ~40 API-version aliases. `Resource.__init__` turns each
      into a URN Output (pulumi/pulumi#10010) kept only for the pre-alias-spec protocol; the monitor here, like
      today's engine, announces alias specs, so the SDK sends the specs themselves and those URNs are never
      awaited. That expansion was three quarters of a simulation's time.
    - Stack traces. Each registration walks the Python stack for the source position the engine shows in its
      diagnostics; offline nothing shows it (a tenth of what is left).

    What the monitor receives is unchanged but for the missing source positions: tests/test_simulate.py compares
    it, registration by registration, with the SDK left alone.
    """
    expand = pulumi.resource.collapse_alias_to_urn
    trace = pulumi.runtime.resource._get_stack_trace
    pulumi.resource.collapse_alias_to_urn = lambda alias, *_: alias
    pulumi.runtime.resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        pulumi.resource.collapse_alias_to_urn = expand
        pulumi.runtime.resource._get_stack_trace = trace


def simulate(
    stack: str,
    config: Mapping[str, Any],
    *,
    world: World | None = None,
    program: Callable[[], object] = run_main,
    sdk_left_alone: bool = False,
) -> Simulation:
    """Run `program` (by default __main__.py) for `stack` with `config` against `world` (a fresh one by default).

    Keys without a namespace are the project's. This is one run of the program; `deploy` adds the engine's part.
    """
    world = world or World()
    project = load_schema().project
    asyncio.set_event_loop(asyncio.new_event_loop())
    reset_options(project=project, stack=stack, preview=False)
    subscription = str(config.get(f"{AZURE_NATIVE}:subscriptionId") or SUBSCRIPTION_ID)
    mocks = AzureMocks(world.azure, subscription, world.stack_outputs)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, organization=world.organization
    )
    pulumi.runtime.set_all_config(
        {(k if ":" in k else f"{project}:{k}"): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    def run_program() -> None:
        program()  # a component test's program returns its component; only its registrations matter

    try:
        with contextlib.nullcontext() if sdk_left_alone else _engine_side_work_skipped():
            _sync_await(run_pulumi_func(run_program))
        root = get_root_resource()
        exported = {
            name: _sync_await(pulumi.Output.from_input(value).future())
            for name, value in (root.outputs if root is not None else {}).items()  # type: ignore[attr-defined]
        }
    except Exception as error:
        raise SimulationError(error, monitor.registrations) from error
    states = {r.urn: r.state for r in monitor.resources.values()}
    for registration in monitor.registrations:
        registration.outputs = states.get(registration.urn, {})
    return Simulation(
        stack=stack, resources=monitor.registrations, outputs=exported, invokes=mocks.invokes, config=dict(config)
    )


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


@dataclass(frozen=True)
class Step:
    """What the engine would do to one resource: create, update, replace, delete or nothing (same)."""

    op: str
    resource: Registration
    changed: tuple[str, ...] = ()
    """The inputs that differ (update), or that force the replacement (replace)."""


def steps(previous: Simulation | None, current: Simulation) -> list[Step]:
    """Every cloud resource's step from `previous` (what is deployed) to `current`, as `pulumi preview` lists
    them: matched by URN or alias; replaced when an input Azure cannot change differs; updated when another
    does; deleted when no resource of the program claims it any more."""
    was = matched(previous, current) if previous else {}
    replaced = {r.urn: changed for r, changed in _replaced(was, current)}
    found = []
    for resource in (r for r in current.resources if r.custom):
        before = was.get(resource.urn)
        if before is None:
            found.append(Step("create", resource))
        elif resource.urn in replaced:
            found.append(Step("replace", resource, tuple(replaced[resource.urn])))
        else:
            differ = tuple(
                k for k in sorted({*before.inputs, *resource.inputs}) if before.inputs.get(k) != resource.inputs.get(k)
            )
            found.append(Step("update", resource, differ) if differ else Step("same", resource))
    claimed = {engine_urn(before.urn) for before in was.values()}
    gone = [r for r in previous.resources if r.custom and engine_urn(r.urn) not in claimed] if previous else []
    return found + [Step("delete", r) for r in gone]


def describe_replacement(resource: Registration, changed: list[str]) -> str:
    what = ALIAS_CHANGES if resource.type.endswith(":PrivateLinkService") else f"replaces {resource.name}"
    return f"{what} (changed: {', '.join(changed)})"


def _locked_scopes(simulation: Simulation | None) -> set[str]:
    locks = simulation.of_type("authorization:ManagementLockByScope") if simulation else []
    return {lock.inputs["scope"].lower() for lock in locks}


PLACEHOLDER_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
PLACEHOLDER_RANGES = list(PLACEHOLDER_NETWORK.subnets(new_prefix=24))
"""Where the offline Azure puts a customer's own subnets, whose ranges no stack file states (RFC 2544's
benchmarking block: an address from it is visibly not the customer's)."""


def _customer_subnets_exist(world: World, config: Mapping[str, Any]) -> None:
    """The subnets of the customer's own VNet that a consumer stack attaches to exist in Azure before it does."""
    for key in ("endpointSubnetId", "workloadSubnetId"):
        subnet = config.get(key)
        if isinstance(subnet, str) and subnet:
            index = int(hashlib.sha256(subnet.lower().encode()).hexdigest(), 16) % len(PLACEHOLDER_RANGES)
            world.azure.existing_subnets.setdefault(subnet.lower(), str(PLACEHOLDER_RANGES[index]))


def last_deployment(world: World, stack: str) -> Simulation | None:
    """What the engine recorded of the stack's last successful deployment."""
    deployed = world.deployments.get(stack)
    return deployed


def deploy(world: World, stack: str, config: Mapping[str, Any]) -> Simulation:
    """`pulumi up` of `stack` against `world`: nothing changes unless the whole deployment succeeds."""
    _customer_subnets_exist(world, config)
    previous = last_deployment(world, stack)
    registrations: list[Registration] = []
    try:
        with all_or_nothing(world):
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
                    world.azure.refuse_if_locked(old_id, "replace the Private Link Service")
                    if old_id.lower() != resource.outputs["id"].lower():
                        world.azure.delete_service(old_id)  # replaced under another name: the old one goes first
            for scope in _locked_scopes(previous) - _locked_scopes(current):
                world.azure.unlock(scope)  # a lock dropped from the program goes at the end of the update
    except (EngineError, AzureError) as refused:
        raise SimulationError(refused, registrations) from refused
    world.deployments[stack] = current
    return current


def refresh(world: World, stack: str) -> Simulation:
    """`pulumi refresh` (then `up`, which changes nothing): the stack's outputs as Azure now has them."""
    return deploy(world, stack, _recorded(world, stack).config)


def _recorded(world: World, stack: str) -> Simulation:
    deployed = last_deployment(world, stack)
    assert deployed is not None, f"stack {stack} is not deployed"
    return deployed


def _delete_resources(world: World, resources: list[Registration]) -> None:
    """What Azure is asked to delete when a stack is destroyed, dependents first: a lock before what it locks,
    an endpoint (and so its connection) before a service."""
    for resource in resources:
        if resource.type == "azure-native:authorization:ManagementLockByScope":
            world.azure.unlock(resource.inputs["scope"])
    for resource in resources:
        if resource.type == "azure-native:network:PrivateEndpoint":
            world.azure.delete_endpoint(resource.outputs["id"])
    for resource in resources:
        if resource.type == "azure-native:network:PrivateLinkService":
            world.azure.delete_service(resource.outputs["id"])


def destroy(world: World, stack: str) -> None:
    """`pulumi destroy`: refused for protected resources (engine) and for a service with connections (Azure)."""
    protected = [r.name for r in _recorded(world, stack).resources if r.protect]
    if protected:
        raise SimulationError(
            EngineError(f"cannot delete protected resources {', '.join(protected)}: set protectService false first"),
            [],
        )
    try:
        with all_or_nothing(world):
            _delete_resources(world, _recorded(world, stack).resources)
            del world.deployments[stack]
    except AzureError as refused:
        raise SimulationError(refused, []) from refused
