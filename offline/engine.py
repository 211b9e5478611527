"""The Pulumi engine's part, offline: one run of the program under mocks, and deployments of stacks over one
persistent offline Azure.

`simulate` runs the real program (by default __main__.py) under Pulumi mocks that answer like Azure
(offline/arm_mocks.py) with a recording monitor that keeps every registration with its parent, dependencies
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
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

import pulumi
import pulumi._types
import pulumi.resource
import pulumi.runtime.resource
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import alias_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, reset_options
from pulumi.runtime.stack import run_pulumi_func

from offline.arm_mocks import AzureMocks
from offline.azure import AzureError, OfflineAzure
from offline.records import Registration, Simulation
from offline.sdk_shortcuts import (
    InlineExecutorLoop,
    LeftoversOfAFailedRun,
    engine_side_work_skipped,
    young_objects_collected_in_bulk,
)
from offline.steps import deleted, describe_replacement, keep_ignored_changes, matched, replacements_of
from pls.config import AZURE_NATIVE, load_schema
from pls.sdk import wait_for

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
"""The subscription of a stack whose file names none (azure-native:subscriptionId): the provider's, offline."""


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
            ignore_changes=list(getattr(request, "ignoreChanges", [])),
            delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
            aliases=[_alias_spec(alias.SerializeToString()) for alias in getattr(request, "aliases", [])],
            provider=getattr(request, "provider", ""),
        )


@functools.lru_cache(maxsize=4096)
def _alias_spec(serialized: bytes) -> dict[str, Any]:
    """An alias as the engine's JSON shows it. Converted once per distinct alias: every azure-native resource of a
    type carries the same ~40 API-version aliases. Shared between registrations, so read-only."""
    return json_format.MessageToDict(alias_pb2.Alias.FromString(serialized))


class SimulationError(Exception):
    """The program (or offline Azure, or the engine) refused; `registrations` is what it had registered by then."""

    def __init__(self, cause: BaseException, registrations: list[Registration]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.registrations = registrations


PROGRAM = ROOT / "__main__.py"


@functools.cache
def _compiled(source: str) -> CodeType:
    return compile(source, str(PROGRAM), "exec")


def run_main() -> None:
    """The program, as `pulumi up` runs it (a fresh __main__ module), compiled once per content."""
    exec(_compiled(PROGRAM.read_text()), {"__name__": "__main__", "__file__": str(PROGRAM)})


class EngineError(Exception):
    """What the Pulumi engine refuses before it changes anything (protected resources)."""


class World:
    """Azure, offline, the state backend the engine keeps beside it (each stack's last deployment), and the
    checkout the CLI runs the program in (`project_dir`, the folder of Pulumi.yaml and customers/)."""

    def __init__(self, project_dir: Path, organization: str = "organization", project: str = "pls-saas") -> None:
        self.project_dir = project_dir
        self.organization = organization
        self.project = project
        self.azure = OfflineAzure()
        self.deployments: dict[str, Simulation] = {}
        self.extra_stack_outputs: dict[str, dict[str, Any]] = {}
        """Outputs of stacks that are not deployed in this world (e.g. a provider that has no alias yet)."""

    def fork(self) -> World:
        """An independent copy: Azure is copied; past deployments (records, never changed) are shared."""
        world = World(self.project_dir, self.organization, self.project)
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


class _Diagnostics(logging.Handler):
    """What the program says to the engine (pulumi.log): its warnings kept for the run's record, as the CLI shows
    them under the stack's diagnostics, instead of going to the process's own log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []
        self.logger = logging.Logger("pulumi-engine")
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.warnings.append(record.getMessage())


def simulate(
    stack: str,
    config: Mapping[str, Any],
    *,
    world: World,
    program: Callable[[], object] = run_main,
    project_dir: Path | None = None,
    sdk_left_alone: bool = False,
) -> Simulation:
    """Run `program` (by default __main__.py) for `stack` with `config` against `world`, in `project_dir` (by
    default the world's checkout).

    Keys without a namespace are the project's. This is one run of the program; `deploy` adds the engine's part.
    """
    project_dir = project_dir or world.project_dir
    project = load_schema().project
    loop = asyncio.new_event_loop() if sdk_left_alone else InlineExecutorLoop()
    leftovers = LeftoversOfAFailedRun()
    loop.set_exception_handler(leftovers)
    asyncio.set_event_loop(loop)
    reset_options(project=project, stack=stack, preview=False)
    subscription = str(config.get(f"{AZURE_NATIVE}:subscriptionId") or SUBSCRIPTION_ID)
    mocks = AzureMocks(world.azure, subscription, world.stack_outputs)
    monitor = RecordingMonitor(mocks)
    diagnostics = _Diagnostics()
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=monitor,
        organization=world.organization,
        logger=diagnostics.logger,
    )
    SETTINGS.root_directory = str(project_dir)  # as the language host tells the program: where Pulumi.yaml is
    pulumi.runtime.set_all_config(
        {(k if ":" in k else f"{project}:{k}"): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    def run_program() -> None:
        program()  # a component test's program returns its component; only its registrations matter

    try:
        with (
            contextlib.nullcontext() if sdk_left_alone else engine_side_work_skipped(),
            young_objects_collected_in_bulk(),
        ):
            wait_for(run_pulumi_func(run_program))
            root = get_root_resource()
            exported = {
                name: wait_for(_resolved(value))
                for name, value in (root.outputs if root is not None else {}).items()  # type: ignore[attr-defined]
            }
    except Exception as error:
        leftovers.settle(loop)
        raise SimulationError(error, monitor.registrations) from error
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    states = {r.urn: r.state for r in monitor.resources.values()}
    for registration in monitor.registrations:
        registration.outputs = states.get(registration.urn, {})
    return Simulation(
        stack=stack,
        resources=monitor.registrations,
        outputs=exported,
        invokes=mocks.invokes,
        config=dict(config),
        project_dir=project_dir,
        warnings=diagnostics.warnings,
    )


async def _resolved(value: Any) -> Any:
    """A stack output's value with every Output in it resolved, as the engine records it: walked once, where
    Output.from_input would make an Output of every element (a provider exports thousands of connections)."""
    if isinstance(value, pulumi.Output):
        return await _resolved(await value.future())
    if isinstance(value, dict):
        return {key: await _resolved(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolved(item) for item in value]
    return value


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


def deploy(world: World, stack: str, config: Mapping[str, Any], *, project_dir: Path | None = None) -> Simulation:
    """`pulumi up` of `stack` against `world` (from the world's checkout, or `project_dir`): nothing changes unless
    the whole deployment succeeds."""
    _customer_subnets_exist(world, config)
    previous = world.deployments.get(stack)  # what the engine recorded of the stack's last deployment
    registrations: list[Registration] = []
    try:
        with all_or_nothing(world):
            current = simulate(stack, config, world=world, project_dir=project_dir)
            registrations = current.resources
            was = matched(previous, current) if previous else {}
            keep_ignored_changes(was, current)
            for resource, changed in replacements_of(was, current):
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
            for gone in deleted(previous, was):
                _delete(world, gone)
            for scope in _locked_scopes(previous) - _locked_scopes(current):
                world.azure.unlock(scope)  # a lock dropped from the program goes at the end of the update
    except (EngineError, AzureError) as refused:
        raise SimulationError(refused, registrations) from refused
    world.deployments[stack] = current
    return current


def _delete(world: World, resource: Registration) -> None:
    """What Azure does when the engine deletes a resource the program no longer registers, for the types whose
    deletion reaches beyond themselves: a private endpoint connection's removes the connection (the customer's
    endpoint is disconnected), refused under the service's lock."""
    if resource.type == "azure-native:network:PrivateLinkServicePrivateEndpointConnection":
        world.azure.delete_connection(
            resource.inputs["resourceGroupName"], resource.inputs["serviceName"], resource.inputs["peConnectionName"]
        )
    elif resource.type == "azure-native:network:PrivateEndpoint":
        world.azure.delete_endpoint(resource.outputs["id"])


def refresh(world: World, stack: str) -> Simulation:
    """`pulumi refresh` (then `up`, which changes nothing): the stack's outputs as Azure now has them."""
    recorded = _recorded(world, stack)
    return deploy(world, stack, recorded.config, project_dir=recorded.project_dir)


def _recorded(world: World, stack: str) -> Simulation:
    deployed = world.deployments.get(stack)
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
