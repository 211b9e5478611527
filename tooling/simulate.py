"""Run the real Pulumi program for a stack offline, under Pulumi mocks, and record what Azure would be asked for.

Used by the tests and by `python -m tooling.plan`. No credentials, no CLI, no provider plugin:
the mocks answer like Azure (ARM ids, private IPs from the right subnet, an alias for the
Private Link Service) and a recording monitor keeps every registration with its parent,
dependencies and resource options.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import json
import runpy
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.resource
import pulumi.runtime.resource
import yaml
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, reset_options
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from pls import contract
from pls.config import AZURE_NATIVE, ConsumerSettings, ProviderSettings, SettingsError, load_schema, parse
from pls.deployed import ALIAS_CHANGES
from tooling.offline_azure import AzureError, EngineError, OfflineAzure

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
"""The subscription of a stack whose file names none (azure-native:subscriptionId): the provider's, offline."""
SECRET_PLACEHOLDER = "offline-placeholder-for-a-secret"
TENANT_ID = "00000000-0000-4000-8000-000000000002"

# ARM resource type of each azure-native token, and the inputs naming the resource and its ARM parent.
_ARM = {
    "azure-native:resources:ResourceGroup": ("", "resourceGroupName", None),
    "azure-native:network:VirtualNetwork": ("Microsoft.Network/virtualNetworks", "virtualNetworkName", None),
    "azure-native:network:Subnet": ("subnets", "subnetName", "virtualNetworkName"),
    "azure-native:network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        "networkSecurityGroupName",
        None,
    ),
    "azure-native:network:ApplicationSecurityGroup": (
        "Microsoft.Network/applicationSecurityGroups",
        "applicationSecurityGroupName",
        None,
    ),
    "azure-native:network:PublicIPAddress": ("Microsoft.Network/publicIPAddresses", "publicIpAddressName", None),
    "azure-native:network:NatGateway": ("Microsoft.Network/natGateways", "natGatewayName", None),
    "azure-native:network:LoadBalancer": ("Microsoft.Network/loadBalancers", "loadBalancerName", None),
    "azure-native:network:NetworkInterface": ("Microsoft.Network/networkInterfaces", "networkInterfaceName", None),
    "azure-native:network:PrivateLinkService": ("Microsoft.Network/privateLinkServices", "serviceName", None),
    "azure-native:network:PrivateLinkServicePrivateEndpointConnection": (
        "privateEndpointConnections",
        "peConnectionName",
        "serviceName",
    ),
    "azure-native:network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints", "privateEndpointName", None),
    "azure-native:compute:VirtualMachine": ("Microsoft.Compute/virtualMachines", "vmName", None),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName", None),
    "azure-native:privatedns:VirtualNetworkLink": ("virtualNetworkLinks", "virtualNetworkLinkName", "privateZoneName"),
    "azure-native:privatedns:PrivateRecordSet": ("A", "relativeRecordSetName", "privateZoneName"),
    "azure-native:compute:VirtualMachineExtension": ("extensions", "vmExtensionName", "vmName"),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName", None),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
        None,
    ),
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces", "workspaceName", None),
    "azure-native:operationalinsights:Table": ("tables", "tableName", "workspaceName"),
    "azure-native:monitor:ActionGroup": ("Microsoft.Insights/actionGroups", "actionGroupName", None),
    "azure-native:monitor:MetricAlert": ("Microsoft.Insights/metricAlerts", "ruleName", None),
    "azure-native:monitor:ScheduledQueryRule": ("Microsoft.Insights/scheduledQueryRules", "ruleName", None),
    "azure-native:monitor:DataCollectionRule": (
        "Microsoft.Insights/dataCollectionRules",
        "dataCollectionRuleName",
        None,
    ),
}
_EXTENSION_RESOURCES = {
    # Resources that live on another resource (their scope): type -> (scope input, ARM type, own name input).
    "azure-native:authorization:ManagementLockByScope": ("scope", "Microsoft.Authorization/locks", "lockName"),
    "azure-native:monitor:DiagnosticSetting": ("resourceUri", "Microsoft.Insights/diagnosticSettings", "name"),
    "azure-native:monitor:DataCollectionRuleAssociation": (
        "resourceUri",
        "Microsoft.Insights/dataCollectionRuleAssociations",
        "associationName",
    ),
}
_ARM_PARENT_TYPE = {
    "workspaceName": "Microsoft.OperationalInsights/workspaces",
    "virtualNetworkName": "Microsoft.Network/virtualNetworks",
    "serviceName": "Microsoft.Network/privateLinkServices",
    "privateZoneName": "Microsoft.Network/privateDnsZones",
    "vmName": "Microsoft.Compute/virtualMachines",
}


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


class AzureMocks(Mocks):
    """Answers like Azure Resource Manager, deterministically, from the state of an offline Azure."""

    def __init__(self, world: OfflineAzure, subscription: str) -> None:
        self.world = world
        self.subscription = subscription
        self.invokes: list[MockCallArgs] = []
        self.subnet_cidrs: dict[str, ipaddress.IPv4Network] = {}
        self.allocated: dict[str, int] = {}
        self.nic_ips: dict[str, str] = {}

    def _allocate(self, subnet_id: str) -> str:
        prefix = self.subnet_cidrs.get(subnet_id.lower()) or self.world.existing_subnets.get(subnet_id.lower())
        if prefix is None:
            raise AzureError("InvalidResourceReference", f"Resource {subnet_id} referenced by resource was not found.")
        net = ipaddress.IPv4Network(prefix)
        index = self.allocated.get(subnet_id.lower(), 4)  # Azure reserves the first four addresses
        self.allocated[subnet_id.lower()] = index + 1
        return str(net.network_address + index)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = inputs.get("name") or args.name
            return name, {"name": name, "outputs": dict(self.world.stack_outputs(name)), "secretOutputNames": []}
        if args.typ == "azure-native:authorization:RoleAssignment":
            assignment = inputs.get("roleAssignmentName") or str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
            return f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{assignment}", inputs
        if args.typ in _EXTENSION_RESOURCES:
            scope_key, arm_type, own_name_key = _EXTENSION_RESOURCES[args.typ]
            if args.typ.endswith(":ManagementLockByScope"):
                self.world.lock(inputs[scope_key])
            return f"{inputs[scope_key]}/providers/{arm_type}/{inputs.get(own_name_key) or args.name}", inputs
        if args.typ not in _ARM:
            return f"{args.name}-id", inputs
        arm_type, own_name_key, parent_key = _ARM[args.typ]
        # Azure-native's autonames are random; offline they are stable per stack (two stacks never share one).
        digest = hashlib.sha256(f"{pulumi.get_stack()}/{args.name}".encode()).hexdigest()[:8]
        name = inputs.get(own_name_key) or f"{args.name}{digest}"
        group = inputs.get("resourceGroupName") or name
        rid = f"/subscriptions/{self.subscription}/resourceGroups/{group}"
        if parent_key:
            rid += f"/providers/{_ARM_PARENT_TYPE[parent_key]}/{inputs[parent_key]}/{arm_type}/{name}"
        elif arm_type:
            rid += f"/providers/{arm_type}/{name}"
        state = {**inputs, "name": name, "id": rid}
        location = inputs.get("location", "westeurope")
        if "identity" in inputs:
            # Azure answers with a map of identity id -> its principal and client ids, not the list it was sent.
            identities = inputs["identity"].get("userAssignedIdentities", [])
            state["identity"] = {**inputs["identity"], "userAssignedIdentities": {i: {} for i in identities}}

        if args.typ.endswith(":Subnet"):
            self.subnet_cidrs[rid.lower()] = ipaddress.IPv4Network(inputs["addressPrefix"])
        elif args.typ.endswith(":NetworkInterface"):
            for cfg in state["ipConfigurations"]:
                cfg["privateIPAddress"] = self._allocate(cfg["subnet"]["id"])
            self.nic_ips[name] = state["ipConfigurations"][0]["privateIPAddress"]
        elif args.typ.endswith(":LoadBalancer"):
            for collection in ("frontendIPConfigurations", "backendAddressPools", "probes"):
                state[collection] = [{**c, "id": f"{rid}/{collection}/{c['name']}"} for c in inputs.get(collection, [])]
            for frontend in state["frontendIPConfigurations"]:
                frontend["privateIPAddress"] = self._allocate(frontend["subnet"]["id"])
        elif args.typ.endswith(":Vault"):
            state["properties"] = {**inputs["properties"], "vaultUri": f"https://{name}.vault.azure.net/"}
        elif args.typ.endswith(":UserAssignedIdentity"):
            state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/client"))
            state["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/principal"))
            state["tenantId"] = TENANT_ID
        elif args.typ.endswith(":Workspace"):
            state["customerId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/customer"))
        elif args.typ.endswith(":PublicIPAddress"):
            state["ipAddress"] = "203.0.113.10"
        elif args.typ.endswith(":PrivateLinkService"):
            state["alias"] = self.world.put_service(rid, {**inputs, "location": location})["alias"]
        elif args.typ.endswith(":PrivateLinkServicePrivateEndpointConnection"):
            decision = inputs["privateLinkServiceConnectionState"]
            self.world.decide(group, inputs["serviceName"], name, decision["status"], decision.get("description", ""))
        elif args.typ.endswith(":PrivateEndpoint"):
            nic_name = inputs.get("customNetworkInterfaceName") or f"{name}.nic.{digest}"
            self.nic_ips[nic_name] = self._allocate(inputs["subnet"]["id"])
            nic_id = f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers/Microsoft.Network"
            state["networkInterfaces"] = [{"id": f"{nic_id}/networkInterfaces/{nic_name}"}]
            for key, automatic in (
                ("manualPrivateLinkServiceConnections", False),
                ("privateLinkServiceConnections", True),
            ):
                state[key] = []
                for c in inputs.get(key) or []:
                    status, description = self.world.connect(
                        rid,
                        self.subscription,
                        c["privateLinkServiceId"],
                        c["name"],
                        c.get("requestMessage", ""),
                        automatic,
                    )
                    state[key].append(
                        {**c, "privateLinkServiceConnectionState": {"status": status, "description": description}}
                    )
        return rid, state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return self._answer(args), []

    def _answer(self, args: MockCallArgs) -> dict[str, Any]:
        self.invokes.append(args)
        if args.token == "azure-native:authorization:getClientConfig":
            return {"subscriptionId": self.subscription, "tenantId": TENANT_ID, "clientId": "mock", "objectId": "mock"}
        if args.token == "azure-native:network:getNetworkInterface":
            ip = self.nic_ips[args.args["networkInterfaceName"]]
            return {"ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": ip}]}
        if args.token == "azure-native:network:getPrivateLinkService":
            return self.world.get_service(args.args["resourceGroupName"], args.args["serviceName"])
        raise NotImplementedError(f"no mock for invoke {args.token}")


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


# --- the engine's part: deployments over one persistent offline Azure -----------------------------------


def input_at(inputs: Mapping[str, Any], path: str) -> Any:
    """The input at a property path such as osProfile.customData (a replaceOnChanges entry)."""
    value: Any = inputs
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def replacements(previous: Simulation | None, current: Simulation) -> list[tuple[Registration, list[str]]]:
    """Resources the engine would replace, and the inputs that force it (azure-native: name, group, location)."""
    if previous is None:
        return []
    found = []
    for resource in current.resources:
        before = previous.by_urn.get(resource.urn)
        if before is None or not resource.custom or resource.type not in _ARM:
            continue
        _, own_name_key, parent_key = _ARM[resource.type]
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


def deploy(world: OfflineAzure, stack: str, config: Mapping[str, Any]) -> Simulation:
    """`pulumi up` of `stack` against `world`: nothing changes unless the whole deployment succeeds."""
    _customer_subnets_exist(world, config)
    previous = world.deployments.get(stack)
    registrations: list[Registration] = []
    try:
        with world.transaction():
            current = simulate(stack, config, world=world)
            registrations = current.resources
            for resource, changed in replacements(previous.simulation if previous else None, current):
                if previous is not None and previous.simulation.by_urn[resource.urn].protect:
                    raise EngineError(
                        f"unable to replace resource {resource.name} as it is currently marked for protection: "
                        f"it {describe_replacement(resource, changed)}"
                    )
                old_id = previous.simulation.by_urn[resource.urn].outputs["id"] if previous else ""
                if resource.type.endswith(":PrivateLinkService"):
                    world.refuse_if_locked(old_id, "replace the Private Link Service")
                    if old_id.lower() != resource.outputs["id"].lower():
                        world.delete_service(old_id)  # replaced under another name: the old one goes first
            for scope in _locked_scopes(previous.simulation if previous else None) - _locked_scopes(current):
                world.unlock(scope)  # a lock dropped from the program goes at the end of the update
    except (EngineError, AzureError) as refused:
        raise SimulationError(refused, registrations) from refused
    world.record(stack, current)
    return current


def refresh(world: OfflineAzure, stack: str) -> Simulation:
    """`pulumi refresh` (then `up`, which changes nothing): the stack's outputs as Azure now has them."""
    return deploy(world, stack, world.deployments[stack].simulation.config)


def destroy(world: OfflineAzure, stack: str) -> None:
    """`pulumi destroy`: refused for protected resources (engine) and for a service with connections (Azure)."""
    protected = [r.name for r in world.deployments[stack].simulation.resources if r.protect]
    if protected:
        raise SimulationError(
            EngineError(f"cannot delete protected resources {', '.join(protected)}: set protectService false first"),
            [],
        )
    try:
        with world.transaction():
            world.forget(stack)
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
