"""Stack configuration -> typed, validated settings.

Keys, types, defaults and roles are declared once, in the `config:` schema of Pulumi.yaml.
Everything here runs before any resource is registered: a bad value stops the program with
an error naming the key, the value and the fix, and nothing is half-created.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

Role = Literal["provider", "consumer"]
ROLES: tuple[Role, ...] = ("provider", "consumer")

MAX_NAT_IPS = 8  # Azure: NAT IP configurations per Private Link Service
MAX_SUBSCRIPTIONS = 100  # Azure: subscriptions per visibility / auto-approval list
MAX_REQUEST_MESSAGE = 140  # Azure: private endpoint connection request message
AZURE_RESERVED_IPS = 5  # Azure keeps the first four and the last address of every subnet
NAT_HEADROOM = 8  # Microsoft recommends at least eight free NAT IPs in the NAT subnet
AZURE_SMALLEST_SUBNET = 29

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_RE = re.compile(f"^{GUID}$")
ALIAS_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,79}}\.{GUID}\.[a-z0-9]+\.azure\.privatelinkservice$")
PRIVATE_ENDPOINT_ID_RE = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/[-\w.()]+/providers/Microsoft\.Network/privateEndpoints/[-\w.]+$",
    re.IGNORECASE,
)
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
STACK_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
LOCATION_RE = re.compile(r"^[a-z]+[a-z0-9]*$")
VM_SIZE_RE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
LINUX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Azure refuses these as Linux admin user names.
RESERVED_USERNAMES = frozenset(
    [
        "administrator",
        "admin",
        "user",
        "user1",
        "test",
        "user2",
        "test1",
        "user3",
        "admin1",
        "1",
        "123",
        "a",
        "actuser",
        "adm",
        "admin2",
        "aspnet",
        "backup",
        "console",
        "david",
        "guest",
        "john",
        "owner",
        "root",
        "server",
        "sql",
        "support",
        "support_388945a0",
        "sys",
        "test2",
        "test3",
        "user4",
        "user5",
    ]
)
SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key} = {json.dumps(self.value)}: {self.problem}. Fix: {self.fix}."


class SettingsError(ValueError):
    """Every configuration problem of a stack, raised before any resource exists."""

    def __init__(self, namespace: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {namespace}:{p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")

    @property
    def keys(self) -> set[str]:
        return {p.key for p in self.problems}


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str
    roles: tuple[Role, ...]
    description: str
    default: Any = None
    required: bool = False
    item_type: str | None = None
    """The type of an array's items."""


@dataclass(frozen=True)
class Schema:
    project: str
    keys: Mapping[str, ConfigKey]

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.keys.values() if not k.required}


@cache
def load_schema(path: Path = PROJECT_FILE) -> Schema:
    project = yaml.safe_load(path.read_text())
    keys: dict[str, ConfigKey] = {}
    for name, spec in project["config"].items():
        match = re.match(r"^\[(both|provider|consumer)\] ", spec["description"])
        if not match:
            raise ValueError(f"{path}: description of {name} must start with [both], [provider] or [consumer]")
        roles: tuple[Role, ...] = ROLES if match.group(1) == "both" else (match.group(1),)  # type: ignore[assignment]
        keys[name] = ConfigKey(
            name=name,
            type=spec["type"],
            roles=roles,
            description=spec["description"][match.end() :],
            default=spec.get("default"),
            required="default" not in spec,
            item_type=spec.get("items", {}).get("type"),
        )
    return Schema(project=project["name"], keys=keys)


@dataclass(frozen=True)
class ImageReference:
    publisher: str
    offer: str
    sku: str
    version: str


@dataclass(frozen=True)
class VmSettings:
    size: str
    image: ImageReference
    admin_username: str
    ssh_public_key: str


@dataclass(frozen=True)
class ConnectionDecision:
    """The provider's decision on one private endpoint connection, keyed on the endpoint's resource id."""

    private_endpoint_id: str
    status: Literal["Approved", "Rejected"]
    reason: str


@dataclass(frozen=True)
class CommonSettings:
    project: str
    stack: str
    location: str
    vm: VmSettings

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack}


@dataclass(frozen=True)
class ProviderSettings(CommonSettings):
    service_name: str
    vnet_cidr: str
    backend_subnet_cidr: str
    nat_subnet_cidr: str
    web_vm_count: int
    zones: tuple[int, ...]
    nat_gateway: bool
    lb_idle_timeout_minutes: int
    nat_ip_count: int
    visibility: tuple[str, ...]
    auto_approval: tuple[str, ...]
    fqdns: tuple[str, ...]
    proxy_protocol: bool
    protect_service: bool
    connection_decisions: tuple[ConnectionDecision, ...]

    role: Literal["provider"] = "provider"


@dataclass(frozen=True)
class ConsumerSettings(CommonSettings):
    customer: str
    provider_stack: str | None
    provider_alias: str | None
    vnet_cidr: str
    endpoint_subnet_cidr: str
    workload_subnet_cidr: str
    request_message: str
    auto_approved: bool
    dns_zone: str
    dns_record: str

    role: Literal["consumer"] = "consumer"

    @property
    def fqdn(self) -> str:
        return f"{self.dns_record}.{self.dns_zone}"


Settings = ProviderSettings | ConsumerSettings


def _decode(key: ConfigKey, raw: Any) -> Any:
    """Config reaches a Python program as strings (arrays as JSON); defaults come typed from the schema."""
    if not isinstance(raw, str) or key.type == "string":
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # left for the type check to report


class _Validator:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.problems: list[Problem] = []

    def fail(self, key: str, problem: str, fix: str, value: Any = None) -> None:
        self.problems.append(Problem(key, self.values.get(key) if value is None else value, problem, fix))

    def check(self, key: str, ok: bool, problem: str, fix: str) -> bool:
        if not ok:
            self.fail(key, problem, fix)
        return ok

    def network(self, key: str) -> ipaddress.IPv4Network | None:
        value = self.values[key]
        try:
            net = ipaddress.IPv4Network(value, strict=False)
        except (ValueError, TypeError):
            self.fail(key, "not an IPv4 CIDR", "write it as a.b.c.d/n, e.g. 10.50.1.0/24")
            return None
        if str(net) != value:
            self.fail(key, "host bits are set", f"use the network address: {net}")
            return None
        return net

    def subnets(self, vnet_key: str, subnet_keys: list[str], min_free: Mapping[str, int]) -> None:
        vnet = self.network(vnet_key)
        nets = {k: self.network(k) for k in subnet_keys}
        if vnet is None:
            return
        for key, net in nets.items():
            if net is None:
                continue
            if not net.subnet_of(vnet):
                self.fail(key, f"not inside {vnet_key} {vnet}", f"choose a range inside {vnet}")
            elif net.prefixlen > AZURE_SMALLEST_SUBNET:
                self.fail(key, f"smaller than Azure's smallest subnet /{AZURE_SMALLEST_SUBNET}", "use a larger range")
            elif key in min_free and net.num_addresses - AZURE_RESERVED_IPS < min_free[key]:
                self.fail(
                    key,
                    f"has {net.num_addresses - AZURE_RESERVED_IPS} usable addresses but needs {min_free[key]}",
                    "use a larger range (a shorter prefix)",
                )
        checked = [(k, n) for k, n in nets.items() if n is not None]
        for i, (key_a, a) in enumerate(checked):
            for key_b, b in checked[i + 1 :]:
                if a.overlaps(b):
                    self.fail(key_b, f"overlaps {key_a} {a}", "give every subnet its own range")

    def subscriptions(self, key: str, allow_star: bool = False) -> list[str] | None:
        """The lowercased subscription IDs, or None when the list itself is invalid."""
        subs = self.values[key]
        ok = True
        for sub in subs:
            if sub == "*" and allow_star:
                continue
            if not isinstance(sub, str) or not GUID_RE.match(sub):
                self.fail(
                    key, f"{sub!r} is not a subscription ID", "use the subscription's GUID (az account show --query id)"
                )
                ok = False
        if len(subs) > MAX_SUBSCRIPTIONS:
            self.fail(
                key,
                f"{len(subs)} subscriptions, Azure allows {MAX_SUBSCRIPTIONS}",
                "split customers over more Private Link Services",
            )
        if len({str(s).lower() for s in subs}) != len(subs):
            self.fail(key, "lists a subscription twice", "remove the duplicate")
        return [s.lower() for s in subs] if ok else None


def _ssh_key_problem(key: str) -> str | None:
    if "PRIVATE KEY" in key:
        return "this is a PRIVATE key; it must never be in configuration"
    parts = key.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return f"not an OpenSSH public key (expected one of {', '.join(SSH_KEY_TYPES)} followed by base64)"
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (type_length,) = struct.unpack(">I", blob[:4])
        embedded_type = blob[4 : 4 + type_length].decode()
    except (ValueError, struct.error, UnicodeDecodeError):
        return "the key body is not valid base64 OpenSSH data"
    if embedded_type != parts[0]:
        return f"the key body is a {embedded_type} key, not {parts[0]}"
    if embedded_type == "ssh-rsa":
        offset = 4 + type_length
        (e_len,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4 + e_len
        (n_len,) = struct.unpack(">I", blob[offset : offset + 4])
        modulus = blob[offset + 4 : offset + 4 + n_len].lstrip(b"\0")
        if len(modulus) * 8 < MIN_RSA_BITS:
            return f"RSA key of {len(modulus) * 8} bits; Azure needs at least {MIN_RSA_BITS}"
    return None


def _fqdn_ok(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(labels) >= 2 and len(name) <= 253 and all(DNS_LABEL_RE.match(label) for label in labels)


def _connection_decisions(v: _Validator) -> tuple[ConnectionDecision, ...]:
    decisions: dict[str, ConnectionDecision] = {}
    for key, status in (("approvedConnections", "Approved"), ("rejectedConnections", "Rejected")):
        for entry in v.values[key]:
            endpoint_id, sep, reason = str(entry).partition("|")
            endpoint_id, reason = endpoint_id.strip(), reason.strip()
            if not sep or not reason:
                v.fail(key, f"{entry!r} has no reason", 'write "<private endpoint resource id> | <reason>"')
            elif not PRIVATE_ENDPOINT_ID_RE.match(endpoint_id):
                v.fail(
                    key,
                    f"{endpoint_id!r} is not a private endpoint resource id",
                    "use the consumer's endpoint id /subscriptions/<guid>/resourceGroups/<rg>/providers/"
                    "Microsoft.Network/privateEndpoints/<name> (never its request message)",
                )
            elif endpoint_id.lower() in decisions:
                v.fail(key, f"{endpoint_id} is decided twice", "keep one decision per private endpoint")
            else:
                decisions[endpoint_id.lower()] = ConnectionDecision(endpoint_id, status, reason)  # type: ignore[arg-type]
    return tuple(decisions.values())


def _common(v: _Validator, project: str, stack: str) -> CommonSettings | None:
    values = v.values
    v.check(
        "location",
        isinstance(values["location"], str) and bool(LOCATION_RE.match(values["location"])),
        "not an Azure region name",
        "use the short lowercase name, e.g. westeurope or swedencentral",
    )
    user = values["adminUsername"]
    if v.check(
        "adminUsername",
        isinstance(user, str) and bool(LINUX_USER_RE.match(user)),
        "not a Linux user name",
        "use lowercase letters, digits, - and _, starting with a letter",
    ):
        v.check(
            "adminUsername",
            user not in RESERVED_USERNAMES,
            "Azure reserves this name",
            "choose another, e.g. azureuser",
        )
    ssh_problem = _ssh_key_problem(str(values["sshPublicKey"]))
    if ssh_problem:
        v.fail(
            "sshPublicKey",
            ssh_problem,
            'set the contents of your public key: pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
            value="<hidden>" if "PRIVATE KEY" in str(values["sshPublicKey"]) else None,
        )
    v.check(
        "vmSize",
        isinstance(values["vmSize"], str) and bool(VM_SIZE_RE.match(values["vmSize"])),
        "not an Azure VM size",
        "use a size such as Standard_B1s",
    )
    image_parts = str(values["vmImage"]).split(":")
    v.check(
        "vmImage",
        len(image_parts) == 4 and all(image_parts),
        "not an image URN",
        "write publisher:offer:sku:version, e.g. Canonical:ubuntu-24_04-lts:server:latest",
    )
    if v.problems:
        return None
    return CommonSettings(
        project=project,
        stack=stack,
        location=values["location"],
        vm=VmSettings(
            size=values["vmSize"],
            image=ImageReference(*image_parts),
            admin_username=user,
            ssh_public_key=values["sshPublicKey"].strip(),
        ),
    )


def _provider(v: _Validator, common: CommonSettings | None) -> ProviderSettings | None:
    values = v.values
    v.check(
        "serviceName",
        bool(SERVICE_NAME_RE.match(values["serviceName"])),
        "not a valid Private Link Service name",
        "use 1-80 letters, digits, '.', '-' or '_', starting with a letter or digit",
    )
    count_ok = v.check(
        "webVmCount", 1 <= values["webVmCount"] <= 100, "must be between 1 and 100", "set at least one web VM"
    )
    zones = values["zones"]
    v.check(
        "zones",
        bool(zones) and all(z in (1, 2, 3) for z in zones) and len(set(zones)) == len(zones),
        "zones must be distinct values among 1, 2, 3",
        "e.g. [1, 2, 3]",
    )
    v.check(
        "lbIdleTimeoutMinutes", 4 <= values["lbIdleTimeoutMinutes"] <= 100, "Azure accepts 4 to 100 minutes", "e.g. 15"
    )
    nat_ips_ok = v.check(
        "natIpCount",
        1 <= values["natIpCount"] <= MAX_NAT_IPS,
        f"a Private Link Service has 1 to {MAX_NAT_IPS} NAT IP configurations",
        f"choose 1..{MAX_NAT_IPS} (and remember NAT IPs cannot be removed once added)",
    )
    min_free = {}
    if nat_ips_ok:
        min_free["natSubnetCidr"] = values["natIpCount"] + NAT_HEADROOM
    if count_ok:
        min_free["backendSubnetCidr"] = values["webVmCount"] + 1  # the load balancer frontend
    v.subnets("providerVnetCidr", ["backendSubnetCidr", "natSubnetCidr"], min_free)

    visibility = v.subscriptions("visibility", allow_star=True)
    auto_approval = v.subscriptions("autoApproval")
    if visibility is not None and "*" in visibility:
        if v.check("visibility", visibility == ["*"], "'*' cannot be combined with subscriptions", 'use ["*"] alone'):
            v.check(
                "visibility",
                values["allowAnyoneWithAlias"],
                "'*' lets anyone with the alias request a connection",
                "set allowAnyoneWithAlias: true to opt in, or list the customers' subscription IDs",
            )
    elif visibility is not None and values["allowAnyoneWithAlias"]:
        v.fail(
            "allowAnyoneWithAlias",
            'is true but visibility is not ["*"]',
            'set visibility: ["*"] or remove allowAnyoneWithAlias',
        )
    elif visibility is not None and auto_approval is not None:
        outside = [s for s in auto_approval if s not in visibility]
        v.check(
            "autoApproval",
            not outside,
            f"{', '.join(outside)} not in visibility (auto-approval must be a subset of visibility)",
            "add them to visibility too",
        )
    for fqdn in values["fqdns"]:
        v.check("fqdns", _fqdn_ok(str(fqdn)), f"{fqdn!r} is not a DNS name", "use a name such as api.saas.example.com")
    decisions = _connection_decisions(v)
    if v.problems or common is None:
        return None
    return ProviderSettings(
        **common.__dict__,
        service_name=values["serviceName"],
        vnet_cidr=values["providerVnetCidr"],
        backend_subnet_cidr=values["backendSubnetCidr"],
        nat_subnet_cidr=values["natSubnetCidr"],
        web_vm_count=values["webVmCount"],
        zones=tuple(zones),
        nat_gateway=values["natGateway"],
        lb_idle_timeout_minutes=values["lbIdleTimeoutMinutes"],
        nat_ip_count=values["natIpCount"],
        visibility=tuple(visibility or ()),
        auto_approval=tuple(auto_approval or ()),
        fqdns=tuple(values["fqdns"]),
        proxy_protocol=values["proxyProtocol"],
        protect_service=values["protectService"],
        connection_decisions=decisions,
    )


def _consumer(v: _Validator, common: CommonSettings | None, schema: Schema) -> ConsumerSettings | None:
    values = v.values
    customer = values["customer"]
    v.check(
        "customer",
        bool(DNS_LABEL_RE.match(customer)),
        "a consumer stack needs the customer's short name as a DNS label",
        "set e.g. customer: tradewinds (lowercase letters, digits and -)",
    )
    alias, stack_ref = values["providerAlias"], values["providerStack"]
    default_stack = schema.keys["providerStack"].default
    if alias:
        v.check(
            "providerAlias",
            bool(ALIAS_RE.match(alias)),
            "not a Private Link Service alias",
            "copy the provider's alias output: <prefix>.<guid>.<region>.azure.privatelinkservice",
        )
        v.check(
            "providerStack",
            stack_ref == default_stack,
            "set together with providerAlias",
            "set exactly one of providerAlias and providerStack",
        )
    else:
        parts = stack_ref.split("/")
        v.check(
            "providerStack",
            len(parts) == 3 and all(STACK_PART_RE.match(p) for p in parts),
            "not a fully qualified stack name",
            "write <organization>/<project>/<stack>, e.g. organization/pls-saas/provider, or set providerAlias",
        )
    v.subnets("consumerVnetCidr", ["endpointSubnetCidr", "workloadSubnetCidr"], {"endpointSubnetCidr": 1})
    message = values["requestMessage"] or f"Customer: {customer}"
    v.check(
        "requestMessage",
        len(message) <= MAX_REQUEST_MESSAGE,
        f"{len(message)} characters, Azure allows {MAX_REQUEST_MESSAGE}",
        "shorten it",
    )
    v.check("dnsZone", _fqdn_ok(values["dnsZone"]), "not a DNS zone name", "use e.g. saas.example.com")
    v.check("dnsRecord", bool(DNS_LABEL_RE.match(values["dnsRecord"])), "not a DNS label", "use e.g. api")
    if v.problems or common is None:
        return None
    return ConsumerSettings(
        **common.__dict__,
        customer=customer,
        provider_stack=None if alias else stack_ref,
        provider_alias=alias or None,
        vnet_cidr=values["consumerVnetCidr"],
        endpoint_subnet_cidr=values["endpointSubnetCidr"],
        workload_subnet_cidr=values["workloadSubnetCidr"],
        request_message=message,
        auto_approved=values["autoApproved"],
        dns_zone=values["dnsZone"].rstrip("."),
        dns_record=values["dnsRecord"],
    )


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "array": lambda x: isinstance(x, list),
}


def parse(raw: Mapping[str, Any], *, stack: str, schema: Schema | None = None) -> Settings:
    """Validate `raw` (keys without the project namespace) and return the role's settings."""
    schema = schema or load_schema()
    problems: list[Problem] = []
    for name in raw:
        if name not in schema.keys:
            near = difflib.get_close_matches(name, list(schema.keys), n=1)
            fix = f"did you mean {near[0]}?" if near else "remove it (see the configuration reference in README.md)"
            problems.append(Problem(name, raw[name], "unknown key", fix))
    role = raw.get("role")
    if role not in ROLES:
        problems.append(Problem("role", role, "the stack's role is not set", "set role: provider or role: consumer"))
        raise SettingsError(schema.project, problems)

    values: dict[str, Any] = {}
    for key in schema.keys.values():
        if key.name not in raw:
            if key.required:
                problems.append(Problem(key.name, None, "required", f"set {key.name} in Pulumi.{stack}.yaml"))
            values[key.name] = key.default
            continue
        value = _decode(key, raw[key.name])
        if not _TYPE_CHECKS[key.type](value) or (
            key.item_type is not None and not all(_TYPE_CHECKS[key.item_type](item) for item in value)
        ):
            expected = f"{key.type} of {key.item_type}" if key.item_type else key.type
            problems.append(Problem(key.name, value, f"expected {expected}", f"write a {expected} value"))
            values[key.name] = key.default
            continue
        if role not in key.roles and value != key.default:
            problems.append(
                Problem(
                    key.name,
                    value,
                    f"is a {key.roles[0]} setting; a {role} stack does not read it",
                    f"remove it from Pulumi.{stack}.yaml",
                )
            )
        values[key.name] = value

    v = _Validator(values)
    v.problems = problems
    if any(p.key in ("sshPublicKey", "role") and p.problem == "required" for p in problems):
        raise SettingsError(schema.project, problems)
    common = _common(v, schema.project, stack)
    settings = _provider(v, common) if role == "provider" else _consumer(v, common, schema)
    if v.problems or settings is None:
        raise SettingsError(schema.project, v.problems)
    return settings


def load() -> Settings:
    """Settings of the running stack, from the configuration the Pulumi engine passes to the program."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    schema = load_schema()
    prefix = f"{schema.project}:"
    config = {**get_config_env(), **CONFIG.get()}
    raw = {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}
    return parse(raw, stack=pulumi.get_stack(), schema=schema)
