"""Run the real Pulumi program for a stack offline, under Pulumi mocks, and record what Azure would be asked for.

Used by the tests and by `python -m tooling.plan`. No credentials, no CLI, no provider plugin: the mocks of
tooling/arm_mocks.py answer like Azure, and a recording monitor keeps every registration with its parent,
dependencies and resource options. This is one run of the program; tooling/engine.py adds the engine's part.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.resource
import pulumi.runtime.resource
import yaml
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, reset_options
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from pls.config import AZURE_NATIVE, load_schema
from tooling.arm_mocks import AzureMocks
from tooling.offline_azure import OfflineAzure

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
"""The subscription of a stack whose file names none (azure-native:subscriptionId): the provider's, offline."""
SECRET_PLACEHOLDER = "offline-placeholder-for-a-secret"


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


def offline_ssh_public_key() -> str:
    """A syntactically real ed25519 public key that opens nothing (its key bytes are zero)."""
    import base64
    import struct

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


class SimulationError(Exception):
    """The program (or offline Azure, or the engine) refused; `registrations` is what it had registered by then."""

    def __init__(self, cause: BaseException, registrations: list[Registration]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.registrations = registrations


def run_main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def deployed_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The stack file's configuration as scripts/deploy deploys it, which adds an SSH key when the file has none."""
    config = stack_config(stack, root)
    config.setdefault("sshPublicKey", offline_ssh_public_key())
    return config


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
    world: OfflineAzure | None = None,
    program: Callable[[], object] = run_main,
    sdk_left_alone: bool = False,
) -> Simulation:
    """Run `program` (by default __main__.py) for `stack` with `config` against `world` (a fresh one by default).

    Keys without a namespace are the project's. This is one run of the program; `deploy` adds the engine's part.
    """
    world = world or OfflineAzure()
    project = load_schema().project
    asyncio.set_event_loop(asyncio.new_event_loop())
    reset_options(project=project, stack=stack, preview=False)
    subscription = str(config.get(f"{AZURE_NATIVE}:subscriptionId") or SUBSCRIPTION_ID)
    mocks = AzureMocks(world, subscription)
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
