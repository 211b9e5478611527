"""Stack configuration -> typed, validated settings.

Keys, types, defaults and roles are declared once, in the `config:` schema of Pulumi.yaml.
Everything here runs before any resource is registered: a bad value stops the program with
an error naming the key, the value and the fix, and nothing is half-created.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import importlib.util
import ipaddress
import json
import re
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pulumi.errors import RunError

from pls import azure_rules
from pls.webserver import (
    HEALTH_PORT,
    HTTPS_PORT,
    HttpOnTls,
    RateLimit,
    WebServerConfig,
    render_web_server,
    upstream_is_loopback,
)

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

Role = Literal["provider", "consumer"]
ROLES: tuple[Role, ...] = ("provider", "consumer")

MAX_NAT_IPS = 8  # Azure: NAT IP configurations per Private Link Service
MAX_SUBSCRIPTIONS = 100  # Azure: subscriptions per visibility / auto-approval list
MAX_REQUEST_MESSAGE = 140  # Azure: private endpoint connection request message
AZURE_RESERVED_IPS = 5  # Azure keeps the first four and the last address of every subnet
NAT_HEADROOM = 8  # Microsoft recommends at least eight free NAT IPs in the NAT subnet
AZURE_SMALLEST_SUBNET = 29

MAX_CUSTOM_DATA = 65535  # Azure: a VM's customData (cloud-init), in bytes before base64
MAX_RATE = 100_000
MAX_KEY_VAULT_IP_RULES = 1000  # Azure Key Vault service limits: IPv4 firewall rules per vault
MAX_CONNECTIONS = 1000  # Azure: private endpoints connected to one Private Link Service
MAX_ALERT_EMAILS = 20
RETENTION_DAYS = (30, 730)  # Log Analytics: interactive retention a workspace takes
APP_DEMO, APP_NONE = "demo", "none"
HTTP_ON_TLS: tuple[HttpOnTls, ...] = ("redirect", "off")

MAX_CUSTOMER = 40  # every name derived from the customer (autonamed VM and VNet included) then fits Azure's limits
MAX_SHOWN = 80  # characters of a bad value quoted back in an error

# Every pattern is used with fullmatch: `$` would accept a trailing newline, which would land in Azure names.
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_RE = re.compile(GUID)
ALIAS_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,79}}\.{GUID}\.[a-z0-9]+\.azure\.privatelinkservice")
PRIVATE_ENDPOINT_ID_RE = re.compile(
    rf"/subscriptions/(?P<subscription>{GUID})/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.Network/privateEndpoints/(?P<name>[^/]+)",
    re.IGNORECASE,
)
DNS_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?")
STACK_PART_RE = re.compile(r"[A-Za-z0-9_.-]+")
KEY_VAULT_OBJECT_RE = re.compile(r"[0-9A-Za-z-]{1,127}")
EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
WEBHOOK_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?")
WORKSPACE_ID_RE = re.compile(
    rf"/subscriptions/{GUID}/resourceGroups/[-\w._()]{{0,89}}[-\w_()]"
    r"/providers/Microsoft\.OperationalInsights/workspaces/[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]",
    re.IGNORECASE | re.ASCII,
)
SUBNET_ID_RE = re.compile(
    rf"(?P<vnet>/subscriptions/{GUID}/resourceGroups/[-\w._()]{{0,89}}[-\w_()]"
    r"/providers/Microsoft\.Network/virtualNetworks/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])"
    r"/subnets/[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]",
    re.IGNORECASE | re.ASCII,
)
UPSTREAM_RE = re.compile(r"(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(?P<port>[1-9][0-9]{0,4})")
VM_SIZE_RE = re.compile(r"Standard_[A-Za-z0-9_]+")
LINUX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
IMAGE_PART_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
IMAGE_VERSION_RE = re.compile(r"latest|\d+\.\d+\.\d+")
AZURE_NATIVE = "azure-native"
PULUMI_NAMESPACE = "pulumi"
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
# Azure accepts these for Linux VMs: RSA of at least 2048 bits and Ed25519; not ECDSA or DSA.
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
MIN_RSA_BITS = 2048
ED25519_KEY_BYTES = 32


def shown(value: Any) -> str:
    """A value as an error quotes it: JSON, cut short, whatever its size, depth or type."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=True)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} nested too deep to show>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class Problem:
    key: str
    """The key without the project's namespace, or `<namespace>:<key>` for another namespace."""
    value: Any
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key} = {shown(self.value)}: {self.problem}. Fix: {self.fix}."


class SettingsError(ValueError, RunError):
    """Every configuration problem of a stack, raised before any resource exists.

    A RunError: Pulumi prints its message, not a Python traceback.
    """

    def __init__(self, namespace: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {'' if ':' in p.key else namespace + ':'}{p}" for p in problems)
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
        match = re.match(r"\[(both|provider|consumer)\] ", spec["description"])
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


@cache
def azure_native_keys() -> frozenset[str]:
    """The azure-native provider's configuration keys, read from the installed SDK (never a copied list)."""
    spec = importlib.util.find_spec("pulumi_azure_native")
    assert spec is not None and spec.submodule_search_locations, "pulumi-azure-native is not installed"
    source = Path(spec.submodule_search_locations[0], "config", "vars.py").read_text()
    return frozenset(re.findall(r"__config__\.get(?:_bool|_int|_object)?\('(\w+)'\)", source))


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
class AlertSettings:
    """Where the provider is paged, and when (the blog post's SLOs among them)."""

    emails: tuple[str, ...]
    webhook_url: str | None
    nat_port_usage_percent: int
    connections_threshold: int
    """Connections to the service that page: connectionsAlertPercent of Azure's 1000."""
    nat_subnet_min_free_addresses: int


@dataclass(frozen=True)
class CommonSettings:
    project: str
    stack: str
    location: str
    vm: VmSettings
    subscription_id: str | None
    """`azure-native:subscriptionId`: the subscription the stack deploys into (required for a consumer)."""

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
    protect_service: bool
    connection_decisions: tuple[ConnectionDecision, ...]
    web_server: WebServerConfig
    """The web VMs' software (zone left empty: each VM has its own)."""
    tls_certificate_name: str | None
    """The certificate in the stack's Key Vault, once imported; None until then (or without TLS)."""
    key_vault_allowed_ip_ranges: tuple[str, ...]
    lock_service: bool
    alerts: AlertSettings | None
    """None with alerts off."""
    log_analytics_workspace_id: str | None
    """An existing workspace; None: the stack creates one when alerts or diagnostics need it."""
    log_retention_days: int
    diagnostics: bool

    role: Literal["provider"] = "provider"

    @property
    def needs_workspace(self) -> bool:
        """The connection and NAT-subnet alerts query Azure Resource Graph from a workspace; diagnostics land in it."""
        return self.alerts is not None or self.diagnostics

    @property
    def proxy_protocol(self) -> bool:
        """The Private Link Service sends PROXY headers exactly when nginx expects them: one value for both."""
        return self.web_server.proxy_protocol

    @property
    def tls(self) -> bool:
        return self.web_server.tls

    @property
    def service_ports(self) -> tuple[int, ...]:
        """The ports consumers reach through the load balancer (the probe reaches HEALTH_PORT regardless)."""
        if not self.tls:
            return (HEALTH_PORT,)
        return (HTTPS_PORT, HEALTH_PORT) if self.web_server.http_on_tls == "redirect" else (HTTPS_PORT,)

    @property
    def load_balancer_name(self) -> str:
        """Fixed by serviceName: the frontend the service (and so its alias) is attached to lives on it."""
        return f"lb-{self.service_name}"

    def connection_fate(self, subscription_id: str, private_endpoint_id: str | None = None) -> str:
        """What Azure does with a new connection from `subscription_id`: NotVisible, Approved, Rejected or Pending."""
        subscription_id = subscription_id.lower()
        if self.visibility != ("*",) and subscription_id not in self.visibility:
            return "NotVisible"
        if subscription_id in self.auto_approval:
            return "Approved"
        decided = {d.private_endpoint_id.lower(): d.status for d in self.connection_decisions}
        return decided.get((private_endpoint_id or "").lower(), "Pending")


@dataclass(frozen=True)
class ConsumerSettings(CommonSettings):
    customer: str
    provider_stack: str | None
    provider_alias: str | None
    vnet_cidr: str
    endpoint_subnet_cidr: str
    workload_subnet_cidr: str
    existing_endpoint_subnet_id: str | None
    """A subnet of the customer's own VNet: the stack then creates no network."""
    existing_workload_subnet_id: str | None
    request_message: str
    auto_approved: bool
    dns_zone: str
    dns_record: str
    https: bool
    """The provider serves HTTPS: the verify step checks its certificate for fqdn."""
    proxy_protocol: bool
    """The provider sends PROXY headers: the verify step checks the client address and LinkID it saw."""
    test_vm: bool
    vnet_has_outbound: bool
    """The workload subnet already reaches Azure on TCP 443; otherwise the test VM's subnet gets a NAT gateway."""

    role: Literal["consumer"] = "consumer"

    @property
    def service_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.fqdn}"

    @property
    def fqdn(self) -> str:
        return f"{self.dns_record}.{self.dns_zone}"

    @property
    def workload_nat_gateway(self) -> bool:
        """Run Command returns output only over outbound TCP 443: the test VM's subnet needs a path while it exists."""
        return self.test_vm and not self.vnet_has_outbound

    @property
    def resource_group_name(self) -> str:
        """Fixed, so the endpoint's id (what the provider approves) is known from the stack file alone."""
        return f"{self.customer}-rg"

    @property
    def endpoint_component_name(self) -> str:
        return f"{self.customer}-saas"

    @property
    def private_endpoint_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"
            f"/providers/Microsoft.Network/privateEndpoints/{self.endpoint_component_name}-pe"
        )


Settings = ProviderSettings | ConsumerSettings

ALIAS_CHANGES = "replaces the Private Link Service: every customer's alias changes"


@dataclass(frozen=True)
class DeployedService:
    """The Private Link Service this stack deployed last time, as Azure has it now."""

    name: str
    location: str
    alias: str
    nat_ip_count: int
    frontend_ids: tuple[str, ...]
    connection_endpoint_ids: tuple[str, ...]
    """The private endpoints that have a connection (any state) to the service."""


def check_deployed(settings: ProviderSettings, deployed: DeployedService | None) -> list[str]:
    """Refuse (SettingsError) what Azure cannot undo; return warnings for what the configuration allows.

    Shrinking natIpCount fails in Azure halfway through a deployment; a new name, region or frontend replaces
    the service, and a new service has a new alias that no customer knows.
    """
    asked = {e.lower() for e in deployed.connection_endpoint_ids} if deployed else set()
    problems = [
        Problem(
            "approvedConnections" if d.status == "Approved" else "rejectedConnections",
            f"{d.private_endpoint_id} | {d.reason}",
            f"no private endpoint {d.private_endpoint_id} has asked to connect to the service (yet, or any more)",
            "remove the entry (an offboarded customer), or wait until the customer has deployed its endpoint",
        )
        for d in settings.connection_decisions
        if d.private_endpoint_id.lower() not in asked
    ]
    if deployed is None:
        if problems:
            raise SettingsError(settings.project, problems)
        return []
    if settings.nat_ip_count < deployed.nat_ip_count:
        problems.append(
            Problem(
                "natIpCount",
                settings.nat_ip_count,
                f"the deployed service {deployed.name} has {deployed.nat_ip_count} NAT IP configurations and Azure "
                "cannot remove one",
                f"set natIpCount: {deployed.nat_ip_count} (or more)",
            )
        )
    frontend_lbs = {f.split("/loadBalancers/")[-1].split("/")[0] for f in deployed.frontend_ids}
    changes = [
        ("serviceName", settings.service_name, deployed.name, deployed.name != settings.service_name),
        ("location", settings.location, deployed.location, deployed.location != settings.location),
        (
            "serviceName",
            settings.service_name,
            deployed.name,
            bool(frontend_lbs) and frontend_lbs != {settings.load_balancer_name},
        ),
    ]
    warnings = []
    for key, value, was, changed in changes:
        if not changed:
            continue
        why = f"{ALIAS_CHANGES} (now {deployed.alias}, {len(deployed.connection_endpoint_ids)} connection(s))"
        if settings.protect_service:
            problems.append(
                Problem(key, value, why, f"keep {key}: {was}, or replace it on purpose (README, Guard rails)")
            )
        else:
            warnings.append(f"{key} {was} -> {value} {why}")
    if problems:
        raise SettingsError(settings.project, list(dict.fromkeys(problems)))
    return list(dict.fromkeys(warnings))


def _decode(key: ConfigKey, raw: Any) -> Any:
    """Config reaches a Python program as strings (arrays as JSON); defaults come typed from the schema."""
    if not isinstance(raw, str) or key.type == "string":
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, an integer past Python's digit limit, or nested too deep
        return raw  # left for the type check to report


class _Validator:
    def __init__(self, values: dict[str, Any], problems: list[Problem], mistyped: set[str]) -> None:
        self.values = values
        self.problems = problems
        self.mistyped = mistyped
        """Keys already reported for their type: checks that combine them with other keys skip them."""

    def fail(self, key: str, problem: str, fix: str, value: Any = None) -> None:
        self.problems.append(Problem(key, self.values.get(key) if value is None else value, problem, fix))

    def check(self, key: str, ok: bool, problem: str, fix: str) -> bool:
        if not ok:
            self.fail(key, problem, fix)
        return ok

    def matches(self, key: str, pattern: re.Pattern[str], problem: str, fix: str) -> bool:
        value = self.values[key]
        return self.check(key, isinstance(value, str) and pattern.fullmatch(value) is not None, problem, fix)

    def name(self, key: str, resource_type: str, name: str, what: str) -> None:
        """A name the program derives from `key`, checked against Azure's rule for its resource type."""
        problem = azure_rules.NAME_RULES[resource_type].problem(name)
        if problem:
            self.fail(key, f"makes the {what} name {name!r}: {problem}", f"shorten or simplify {key}")

    def network(self, key: str) -> ipaddress.IPv4Network | None:
        if key in self.mistyped:
            return None
        value = self.values[key]
        try:
            net = ipaddress.IPv4Network(value, strict=False)
        except (ValueError, TypeError):
            self.fail(key, "not an IPv4 CIDR", "write it as a.b.c.d/n, e.g. 10.50.1.0/24")
            return None
        if str(net) != value:
            self.fail(key, "host bits are set", f"use the network address: {net}")
            return None
        forbidden = azure_rules.forbidden_range(net)
        if forbidden:
            self.fail(key, f"overlaps {forbidden}, which Azure does not allow in a VNet", "use a private range")
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
        if key in self.mistyped:
            return None
        subs = self.values[key]
        ok = True
        for sub in subs:
            if sub == "*" and allow_star:
                continue
            if not isinstance(sub, str) or not GUID_RE.fullmatch(sub):
                self.fail(
                    key,
                    f"{shown(sub)} is not a subscription ID",
                    "use the subscription's GUID (az account show --query id)",
                )
                ok = False
        if len(subs) > MAX_SUBSCRIPTIONS:
            self.fail(
                key,
                f"{len(subs)} subscriptions, Azure allows {MAX_SUBSCRIPTIONS}",
                "split customers over more Private Link Services",
            )
            ok = False
        if ok and len({s.lower() for s in subs}) != len(subs):
            self.fail(key, "lists a subscription twice", "remove the duplicate")
            ok = False
        return [s.lower() for s in subs] if ok else None


class _Blob:
    """Reads the length-prefixed fields of an OpenSSH public key blob; ValueError when it runs short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def field(self) -> bytes:
        if self.offset + 4 > len(self.data):
            raise ValueError("truncated")
        (length,) = struct.unpack(">I", self.data[self.offset : self.offset + 4])
        start, self.offset = self.offset + 4, self.offset + 4 + length
        if self.offset > len(self.data):
            raise ValueError("truncated")
        return self.data[start : self.offset]


def ssh_key_problem(key: str) -> str | None:
    """Why Azure would refuse `key` as a Linux VM's SSH public key, or None."""
    if "PRIVATE KEY" in key:
        return "this is a PRIVATE key; it must never be in configuration"
    parts = key.split()
    if parts and parts[0].startswith(("ecdsa-sha2-", "ssh-dss", "sk-")):
        return f"Azure does not accept {parts[0]} keys for Linux VMs (only ssh-ed25519 and ssh-rsa of 2048+ bits)"
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return f"not an OpenSSH public key (expected one of {', '.join(SSH_KEY_TYPES)} followed by base64)"
    try:
        blob = _Blob(base64.b64decode(parts[1], validate=True))
        embedded_type = blob.field().decode("ascii")
        if embedded_type != parts[0]:
            return f"the key body is a {embedded_type} key, not {parts[0]}"
        if embedded_type == "ssh-ed25519":
            if len(blob.field()) != ED25519_KEY_BYTES:
                return f"an Ed25519 key body holds {ED25519_KEY_BYTES} bytes"
        else:
            blob.field()  # the public exponent
            bits = len(blob.field().lstrip(b"\0")) * 8
            if bits < MIN_RSA_BITS:
                return f"RSA key of {bits} bits; Azure needs at least {MIN_RSA_BITS}"
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return "the key body is not valid base64 OpenSSH data"
    return None


def _fqdn_ok(name: str) -> bool:
    labels = name.removesuffix(".").split(".")
    return len(labels) >= 2 and len(name) <= 253 and all(DNS_LABEL_RE.fullmatch(label) for label in labels)


def _connection_decisions(v: _Validator) -> tuple[ConnectionDecision, ...]:
    decisions: dict[str, ConnectionDecision] = {}
    endpoint_rule = azure_rules.NAME_RULES["azure-native:network:PrivateEndpoint"]
    group_rule = azure_rules.NAME_RULES["azure-native:resources:ResourceGroup"]
    for key, status in (("approvedConnections", "Approved"), ("rejectedConnections", "Rejected")):
        for entry in v.values[key]:
            endpoint_id, sep, reason = entry.partition("|")
            endpoint_id, reason = endpoint_id.strip(), reason.strip()
            match = PRIVATE_ENDPOINT_ID_RE.fullmatch(endpoint_id)
            bad_part = match and (
                group_rule.problem(match["group"]) or endpoint_rule.problem(match["name"])
                if match["group"].isascii() and match["name"].isascii()
                else "not ASCII"
            )
            if not sep or not reason:
                v.fail(key, f"{shown(entry)} has no reason", 'write "<private endpoint resource id> | <reason>"')
            elif not match or bad_part:
                v.fail(
                    key,
                    f"{shown(endpoint_id)} is not a private endpoint resource id"
                    + (f" (its names: {bad_part})" if bad_part else ""),
                    "use the consumer's endpoint id /subscriptions/<guid>/resourceGroups/<rg>/providers/"
                    "Microsoft.Network/privateEndpoints/<name> (never its request message)",
                )
            elif endpoint_id.lower() in decisions:
                v.fail(key, f"{endpoint_id} is decided twice", "keep one decision per private endpoint")
            else:
                decisions[endpoint_id.lower()] = ConnectionDecision(endpoint_id, status, reason)  # type: ignore[arg-type]
    return tuple(decisions.values())


def _common(v: _Validator, project: str, stack: str, subscription_id: str | None) -> CommonSettings | None:
    values = v.values
    if v.matches("location", re.compile(r"[a-z0-9]+"), "not an Azure region name", "use e.g. westeurope"):
        v.check(
            "location",
            values["location"] in azure_rules.ZONE_REGIONS,
            "not an Azure region with availability zones 1-3 (the web tier and its frontend are zonal)",
            f"use one of {', '.join(sorted(azure_rules.ZONE_REGIONS))}",
        )
    user = values["adminUsername"]
    if v.matches(
        "adminUsername",
        LINUX_USER_RE,
        "not a Linux user name",
        "use up to 32 lowercase letters, digits, - and _, starting with a letter",
    ):
        v.check("adminUsername", user not in RESERVED_USERNAMES, "Azure reserves this name", "choose e.g. azureuser")
    ssh_problem = ssh_key_problem(str(values["sshPublicKey"]))
    if ssh_problem:
        v.fail(
            "sshPublicKey",
            ssh_problem,
            'set the contents of your public key: pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
            value="<hidden>" if "PRIVATE KEY" in str(values["sshPublicKey"]) else None,
        )
    v.matches("vmSize", VM_SIZE_RE, "not an Azure VM size", "use a size such as Standard_B1s")
    image_parts = values["vmImage"].split(":")
    v.check(
        "vmImage",
        len(image_parts) == 4
        and all(IMAGE_PART_RE.fullmatch(part) for part in image_parts[:3])
        and IMAGE_VERSION_RE.fullmatch(image_parts[3]) is not None,
        "not an image URN",
        "write publisher:offer:sku:version (version: latest or x.y.z), e.g. Canonical:ubuntu-24_04-lts:server:latest",
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
        subscription_id=subscription_id,
    )


def _provider(v: _Validator, common: CommonSettings | None) -> ProviderSettings | None:
    values = v.values
    if v.matches(
        "serviceName",
        SERVICE_NAME_RE,
        "not a valid Private Link Service name",
        "use 1-80 letters, digits, '.', '-' or '_', starting with a letter or digit",
    ):
        v.name("serviceName", "azure-native:network:LoadBalancer", f"lb-{values['serviceName']}", "load balancer")
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
        v.check("fqdns", _fqdn_ok(fqdn), f"{shown(fqdn)} is not a DNS name", "use a name such as api.saas.example.com")
    decisions = _connection_decisions(v)
    web_server = _web_server(v)
    _key_vault(v)
    alerts = _alerts(v)
    _workspace(v)
    if v.problems or common is None or web_server is None:
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
        protect_service=values["protectService"],
        connection_decisions=decisions,
        web_server=web_server,
        tls_certificate_name=values["tlsCertificateName"] or None,
        key_vault_allowed_ip_ranges=tuple(values["keyVaultAllowedIpRanges"]),
        lock_service=values["lockService"],
        alerts=alerts,
        log_analytics_workspace_id=values["logAnalyticsWorkspaceId"] or None,
        log_retention_days=values["logRetentionDays"],
        diagnostics=values["diagnostics"],
    )


def _app_cloud_config(v: _Validator, root: Path) -> dict[str, Any] | None:
    """The provider's cloud-config file, read and parsed; None (with a problem) when it cannot be used."""
    key, value = "appCloudConfig", v.values["appCloudConfig"]
    fix = "give the path of a #cloud-config file in this repository, relative to Pulumi.yaml, or demo / none"
    if not value.strip():
        v.fail(key, "not a file path", fix)
        return None
    try:
        path = (root / value).resolve()
        if Path(value).is_absolute() or not path.is_relative_to(root.resolve()):
            v.fail(key, "outside this repository (the deployment must not depend on one machine's files)", fix)
            return None
        if not path.is_file():
            v.fail(key, "no such file", fix)
            return None
        if path.stat().st_size > MAX_CUSTOM_DATA:
            v.fail(key, f"larger than a VM's {MAX_CUSTOM_DATA} bytes of custom data", "install the app from a package")
            return None
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as error:  # ValueError: NUL, undecodable text
        v.fail(key, f"cannot be read as a YAML file ({type(error).__name__})", fix)
        return None
    if not text.startswith("#cloud-config") or not isinstance(document, dict):
        v.fail(key, "not a #cloud-config document (a YAML mapping whose first line is #cloud-config)", fix)
        return None
    return document


def _web_server(v: _Validator, root: Path = PROJECT_FILE.parent) -> WebServerConfig | None:
    values = v.values
    app = values["appCloudConfig"]
    upstream = values["appUpstream"]
    match = UPSTREAM_RE.fullmatch(upstream)
    if not match or int(match["port"]) > 65535:
        v.fail("appUpstream", "not host:port", "e.g. 127.0.0.1:8080 (the app on each web VM)")
    elif upstream_is_loopback(upstream) and int(match["port"]) in (80, 443):
        v.fail("appUpstream", "is nginx's own port on the VM: requests would loop", "use the app's port, e.g. 8080")
    elif app == APP_DEMO and not upstream_is_loopback(upstream):
        v.fail("appUpstream", "the demo app listens on the VM itself", "use 127.0.0.1:<port>, or install your app")
    app_cloud_config = _app_cloud_config(v, root) if app not in (APP_DEMO, APP_NONE) else {}
    for key, low in (("tenantRateLimit", 1), ("tenantRateBurst", 0)):
        v.check(key, low <= values[key] <= MAX_RATE, f"must be between {low} and {MAX_RATE}", "e.g. 50")
    tls = values["tls"]
    v.check(
        "fqdns",
        bool(values["fqdns"]) or not tls,
        "tls needs the names consumers dial: the certificate must be valid for them",
        "list them in fqdns, e.g. [api.saas.example.com]",
    )
    v.check(
        "httpOnTls", values["httpOnTls"] in HTTP_ON_TLS, f"must be one of {', '.join(HTTP_ON_TLS)}", "e.g. redirect"
    )
    if v.problems or app_cloud_config is None:
        return None
    config = WebServerConfig(
        proxy_protocol=values["proxyProtocol"],
        trusted_proxy_cidr=values["natSubnetCidr"],
        zone="",
        app_upstream=upstream,
        demo_app=app == APP_DEMO,
        app_cloud_config=app_cloud_config,
        tls=tls,
        http_on_tls=values["httpOnTls"],
        server_names=tuple(f.removesuffix(".") for f in values["fqdns"]),
        rate_limit=RateLimit(per_second=values["tenantRateLimit"], burst=values["tenantRateBurst"]),
    )
    try:
        size = len(render_web_server(config).cloud_init.encode())
    except ValueError as clash:  # the provider's cloud-config collides with the web tier's
        v.fail("appCloudConfig", str(clash), "leave those parts to the web tier, or use your own image (none)")
        return None
    if size > MAX_CUSTOM_DATA:
        v.fail("appCloudConfig", f"makes the VMs' cloud-init {size} bytes, Azure takes {MAX_CUSTOM_DATA}", "trim it")
        return None
    return config


def _key_vault(v: _Validator) -> None:
    values = v.values
    name = values["tlsCertificateName"]
    if name:
        v.check("tlsCertificateName", values["tls"], "is set but tls is off", "set tls: true, or remove the name")
        v.matches(
            "tlsCertificateName",
            KEY_VAULT_OBJECT_RE,
            "not a Key Vault certificate name",
            "use 1-127 letters, digits and '-', as in az keyvault certificate import --name",
        )
    if "keyVaultAllowedIpRanges" in v.mistyped:
        return
    ranges = values["keyVaultAllowedIpRanges"]
    for entry in ranges:
        try:
            net = ipaddress.IPv4Network(entry, strict=True)
            problem = None if net.is_global else "not a public address (the vault's firewall sees public ones only)"
        except ValueError:
            problem = "not an IPv4 address or CIDR with its host bits clear"
        if problem:
            v.fail(
                "keyVaultAllowedIpRanges",
                f"{shown(entry)} is {problem}",
                "your public address, e.g. 51.105.7.20, or a range such as 51.105.7.0/24",
            )
    v.check(
        "keyVaultAllowedIpRanges",
        len(ranges) <= MAX_KEY_VAULT_IP_RULES,
        f"{len(ranges)} ranges, a Key Vault takes {MAX_KEY_VAULT_IP_RULES}",
        "merge them into CIDRs",
    )


def _alerts(v: _Validator) -> AlertSettings | None:
    values = v.values
    emails = values["alertEmails"]
    for email in emails:
        v.check(
            "alertEmails",
            len(email) <= 254 and EMAIL_RE.fullmatch(email) is not None,
            f"{shown(email)} is not an e-mail address",
            "write it as name@example.com",
        )
    v.check(
        "alertEmails",
        len(emails) <= MAX_ALERT_EMAILS,
        f"{len(emails)} addresses, at most {MAX_ALERT_EMAILS}",
        "send the alerts to a list address",
    )
    v.check("alertEmails", len({e.lower() for e in emails}) == len(emails), "lists an address twice", "list it once")
    webhook = values["alertWebhookUrl"]
    if webhook:
        v.check(
            "alertWebhookUrl",
            len(webhook) <= 2048 and WEBHOOK_RE.fullmatch(webhook) is not None,
            "not an https URL",
            "use the https URL your pager or chat gives for incoming alerts",
        )
    for key in ("natPortUsageAlertPercent", "connectionsAlertPercent"):
        v.check(key, 1 <= values[key] <= 99, "must be a percentage between 1 and 99", "e.g. 80")
    free_key = "natSubnetFreeAddressesAlertBelow"
    try:  # natSubnetCidr reports its own problems
        usable = ipaddress.IPv4Network(values["natSubnetCidr"]).num_addresses - AZURE_RESERVED_IPS
    except (ValueError, TypeError):
        usable = None
    v.check(
        free_key,
        1 <= values[free_key] <= (usable or MAX_CONNECTIONS),
        f"must be between 1 and the NAT subnet's {usable or 'usable'} addresses",
        "e.g. 2",
    )
    if v.problems or not values["alerts"]:
        return None
    return AlertSettings(
        emails=tuple(emails),
        webhook_url=webhook or None,
        nat_port_usage_percent=values["natPortUsageAlertPercent"],
        connections_threshold=MAX_CONNECTIONS * values["connectionsAlertPercent"] // 100,
        nat_subnet_min_free_addresses=values[free_key],
    )


def _workspace(v: _Validator) -> None:
    workspace = v.values["logAnalyticsWorkspaceId"]
    if workspace:
        v.matches(
            "logAnalyticsWorkspaceId",
            WORKSPACE_ID_RE,
            "not a Log Analytics workspace resource ID",
            "use az monitor log-analytics workspace show --query id, or leave it empty to create one",
        )
    low, high = RETENTION_DAYS
    v.check(
        "logRetentionDays",
        low <= v.values["logRetentionDays"] <= high,
        f"a workspace keeps data {low} to {high} days",
        "e.g. 30",
    )


def _dns_zone_ok(v: _Validator) -> None:
    zone = v.values["dnsZone"]
    if not v.check("dnsZone", _fqdn_ok(zone), "not a DNS zone name", "use e.g. saas.example.com"):
        return
    labels = zone.removesuffix(".").split(".")
    v.check(
        "dnsZone",
        len(labels) <= azure_rules.MAX_DNS_ZONE_LABELS,
        f"{len(labels)} labels, a private DNS zone has at most {azure_rules.MAX_DNS_ZONE_LABELS}",
        "use a shorter name",
    )
    reserved = azure_rules.reserved_dns_zone(zone.removesuffix("."))
    v.check("dnsZone", reserved is None, f"Azure reserves {reserved} for itself", "use your own domain")


def _existing_network(v: _Validator, schema: Schema) -> tuple[str | None, str | None]:
    """The customer's own subnets (endpoint, test VM), or (None, None) when the stack creates the VNet."""
    values = v.values
    endpoint, workload = values["endpointSubnetId"], values["workloadSubnetId"]
    if not endpoint:
        v.check(
            "workloadSubnetId",
            not workload,
            "set without endpointSubnetId",
            "set endpointSubnetId too (the customer's own network), or remove workloadSubnetId",
        )
        return None, None
    if not v.matches(
        "endpointSubnetId",
        SUBNET_ID_RE,
        "not a subnet resource ID",
        "use az network vnet subnet show -g <group> --vnet-name <vnet> -n <subnet> --query id",
    ):
        return None, None
    for key in ("consumerVnetCidr", "endpointSubnetCidr", "workloadSubnetCidr"):
        v.check(
            key,
            values[key] == schema.keys[key].default,
            "set together with endpointSubnetId (the stack creates no VNet then)",
            f"remove {key}, or endpointSubnetId to let the stack create a VNet",
        )
    if workload and v.matches(
        "workloadSubnetId", SUBNET_ID_RE, "not a subnet resource ID", "use the test VM's subnet's id, or leave it empty"
    ):
        v.check(
            "workloadSubnetId",
            _vnet_of(workload) == _vnet_of(endpoint),
            "not in endpointSubnetId's VNet: the test VM would not resolve the private DNS zone linked to that VNet",
            "use a subnet of the endpoint's VNet",
        )
    v.check(
        "vnetHasOutbound",
        values["vnetHasOutbound"] or not values["testVm"],
        "is false, but the stack cannot give a subnet it does not own a NAT gateway, and Run Command (the verify "
        "step) needs the test VM to reach Azure on TCP 443",
        "set vnetHasOutbound: true if the subnet reaches Azure (e.g. through your firewall), or testVm: false",
    )
    return endpoint, workload or endpoint


def _vnet_of(subnet_id: str) -> str:
    """The VNet part of a subnet resource ID that SUBNET_ID_RE matches, in lower case (IDs are case-insensitive)."""
    match = SUBNET_ID_RE.fullmatch(subnet_id)
    return match["vnet"].lower() if match else ""


def _consumer(v: _Validator, common: CommonSettings | None, schema: Schema) -> ConsumerSettings | None:
    values = v.values
    customer = values["customer"]
    if v.check(
        "customer",
        DNS_LABEL_RE.fullmatch(customer) is not None and len(customer) <= MAX_CUSTOMER,
        "a consumer stack needs the customer's short name as a DNS label of at most "
        f"{MAX_CUSTOMER} characters (every Azure name of the stack is derived from it)",
        "set e.g. customer: tradewinds (lowercase letters, digits and -)",
    ):
        v.name("customer", "azure-native:network:PrivateEndpoint", f"{customer}-saas-pe", "private endpoint")
        v.name("customer", "azure-native:resources:ResourceGroup", f"{customer}-rg", "resource group")
    alias, stack_ref = values["providerAlias"], values["providerStack"]
    default_stack = schema.keys["providerStack"].default
    if alias:
        v.matches(
            "providerAlias",
            ALIAS_RE,
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
            len(parts) == 3 and all(STACK_PART_RE.fullmatch(p) for p in parts),
            "not a fully qualified stack name",
            "write <organization>/<project>/<stack>, e.g. organization/pls-saas/provider, or set providerAlias",
        )
    endpoint_subnet_id, workload_subnet_id = _existing_network(v, schema)
    if endpoint_subnet_id is None:
        v.subnets("consumerVnetCidr", ["endpointSubnetCidr", "workloadSubnetCidr"], {"endpointSubnetCidr": 1})
    message = values["requestMessage"] or f"Customer: {customer}"
    v.check(
        "requestMessage",
        len(message) <= MAX_REQUEST_MESSAGE and message.isprintable(),
        f"{len(message)} characters, Azure allows {MAX_REQUEST_MESSAGE} printable ones",
        "shorten it, on one line",
    )
    _dns_zone_ok(v)
    v.matches("dnsRecord", DNS_LABEL_RE, "not a DNS label", "use e.g. api")
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
        existing_endpoint_subnet_id=endpoint_subnet_id,
        existing_workload_subnet_id=workload_subnet_id,
        request_message=message,
        auto_approved=values["autoApproved"],
        dns_zone=values["dnsZone"].removesuffix("."),
        dns_record=values["dnsRecord"],
        https=values["https"],
        proxy_protocol=values["proxyProtocol"],
        test_vm=values["testVm"],
        vnet_has_outbound=values["vnetHasOutbound"],
    )


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "array": lambda x: isinstance(x, list),
}


def _split_namespaces(
    raw: Mapping[Any, Any], schema: Schema, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The project's keys (namespace removed) and azure-native's; every other key is a problem by name."""
    own: dict[str, Any] = {}
    azure: dict[str, Any] = {}
    namespaces = (schema.project, AZURE_NATIVE, PULUMI_NAMESPACE)
    for full_key, value in raw.items():
        full_key = str(full_key)
        namespace, sep, name = full_key.rpartition(":")
        if not sep or namespace == schema.project:
            own[name] = value
        elif namespace == AZURE_NATIVE:
            if name in azure_native_keys():
                azure[name] = value
            else:
                near = difflib.get_close_matches(name, sorted(azure_native_keys()), n=1) if len(name) < 100 else []
                fix = f"did you mean {AZURE_NATIVE}:{near[0]}?" if near else "remove it"
                problems.append(Problem(full_key, value, "the azure-native provider has no such key", fix))
        elif namespace != PULUMI_NAMESPACE:
            near = difflib.get_close_matches(namespace, namespaces, n=1) if len(namespace) < 100 else []
            fix = f"did you mean {near[0]}:{name}?" if near else f"use {schema.project}:{name} or remove it"
            problems.append(Problem(full_key, value, f"unknown namespace {namespace!r}", fix))
    return own, azure


def _subscription(azure: Mapping[str, Any], role: Any, stack: str, problems: list[Problem]) -> str | None:
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


def parse(raw: Mapping[Any, Any], *, stack: str, schema: Schema | None = None) -> Settings:
    """Validate `raw` and return the role's settings, or raise SettingsError naming every bad key.

    Keys are `<namespace>:<key>` as the engine passes them; a key without a namespace is the project's.
    Total: any value of any JSON type, size or depth ends as settings or as a SettingsError.
    """
    schema = schema or load_schema()
    problems: list[Problem] = []
    role = next((raw[k] for k in raw if str(k) in ("role", f"{schema.project}:role")), None)
    own, azure = _split_namespaces(raw, schema, problems)
    for name in own:
        if name not in schema.keys:
            near = difflib.get_close_matches(name, list(schema.keys), n=1) if len(name) < 100 else []
            fix = f"did you mean {near[0]}?" if near else "remove it (see the configuration reference in README.md)"
            problems.append(Problem(name, own[name], "unknown key", fix))
    if not isinstance(role, str) or role not in ROLES:
        problems.append(Problem("role", role, "the stack's role is not set", "set role: provider or role: consumer"))
        raise SettingsError(schema.project, problems)
    subscription_id = _subscription(azure, role, stack, problems)

    values: dict[str, Any] = {}
    mistyped: set[str] = set()
    for key in schema.keys.values():
        if key.name not in own:
            if key.required:
                problems.append(Problem(key.name, None, "required", f"set {key.name} in Pulumi.{stack}.yaml"))
            values[key.name] = key.default
            continue
        value = _decode(key, own[key.name])
        if not _TYPE_CHECKS[key.type](value) or (
            key.item_type is not None and not all(_TYPE_CHECKS[key.item_type](item) for item in value)
        ):
            expected = f"{key.type} of {key.item_type}" if key.item_type else key.type
            problems.append(Problem(key.name, value, f"expected {expected}", f"write a value of type {expected}"))
            mistyped.add(key.name)
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

    if any(p.key == "sshPublicKey" and p.problem == "required" for p in problems):
        raise SettingsError(schema.project, problems)
    v = _Validator(values, problems, mistyped)
    common = _common(v, schema.project, stack, subscription_id)
    settings = _provider(v, common) if role == "provider" else _consumer(v, common, schema)
    if v.problems or settings is None:
        raise SettingsError(schema.project, v.problems)
    return settings


def load() -> Settings:
    """Settings of the running stack, from every configuration key the Pulumi engine passes to the program."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    return parse({**get_config_env(), **CONFIG.get()}, stack=pulumi.get_stack())


def main(argv: list[str] | None = None) -> int:
    """python -m pls.settings check-ssh-key FILE: would Azure accept this public key for a Linux VM?"""
    parser = argparse.ArgumentParser(prog="python -m pls.settings")
    parser.add_argument("command", choices=["check-ssh-key"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    problem = ssh_key_problem(args.file.read_text())
    if problem:
        print(f"{args.file}: {problem}. Fix: ssh-keygen -t ed25519, or set SSH_PUBLIC_KEY_FILE.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
