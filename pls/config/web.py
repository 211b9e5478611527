"""The keys of the web tier's software: the provider's app, per-tenant limits and TLS."""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field

from pls import azure_rules
from pls.config.errors import refuse, shown
from pls.config.keys import Checks, Key, Model, matching, optional
from pls.web_server_config import HttpOnTls
from pls.webserver import upstream_is_loopback

REPOSITORY = Path(__file__).resolve().parents[2]
APP_DEMO, APP_NONE = "demo", "none"
MAX_RATE = 100_000
UPSTREAM_RE = re.compile(r"(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(?P<port>[1-9][0-9]{0,4})")
HEALTH_PATH_RE = re.compile(r"/(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2}){0,199}")
"""A URL path (RFC 3986: a % starts an escape of two hex digits) nginx takes verbatim in proxy_pass: no query, no
spaces, nothing nginx reads as syntax ($ ; { } ')."""
_CLOUD_CONFIG_FIX = "give the path of a #cloud-config file in this repository, relative to Pulumi.yaml, or demo / none"


def _upstream(upstream: str) -> str:
    match = UPSTREAM_RE.fullmatch(upstream)
    if not match or int(match["port"]) > 65535:
        raise refuse("not host:port", "e.g. 127.0.0.1:8080 (the app on each web VM)")
    if upstream_is_loopback(upstream) and int(match["port"]) in (80, 443):
        raise refuse("is nginx's own port on the VM: requests would loop", "use the app's port, e.g. 8080")
    return upstream


@cache
def app_cloud_config(value: str) -> dict[str, Any]:
    """The provider's #cloud-config document that `appCloudConfig` names ({} for demo and none)."""
    if value in (APP_DEMO, APP_NONE):
        return {}
    if not value.strip():
        raise refuse("not a file path", _CLOUD_CONFIG_FIX)
    try:
        path = (REPOSITORY / value).resolve()
        if Path(value).is_absolute() or not path.is_relative_to(REPOSITORY):
            raise refuse(
                "outside this repository (the deployment must not depend on one machine's files)", _CLOUD_CONFIG_FIX
            )
        if not path.is_file():
            raise refuse("no such file", _CLOUD_CONFIG_FIX)
        if path.stat().st_size > azure_rules.MAX_APP_CLOUD_CONFIG:
            raise refuse(
                f"larger than {azure_rules.MAX_APP_CLOUD_CONFIG} bytes (it travels in every web VM's Run Command)",
                "install the app from a package",
            )
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as error:  # ValueError: NUL, undecodable text
        raise refuse(f"cannot be read as a YAML file ({type(error).__name__})", _CLOUD_CONFIG_FIX) from None
    if not text.startswith("#cloud-config") or not isinstance(document, dict):
        raise refuse(
            "not a #cloud-config document (a YAML mapping whose first line is #cloud-config)", _CLOUD_CONFIG_FIX
        )
    return document


def _cloud_config_file(value: str) -> str:
    app_cloud_config(value)
    return value


def _key_vault_range(entry: str) -> str:
    try:
        net = ipaddress.IPv4Network(entry, strict=True)
        problem = None if net.is_global else "not a public address (the vault's firewall sees public ones only)"
    except ValueError:
        problem = "not an IPv4 address or CIDR with its host bits clear"
    if problem:
        raise refuse(
            f"{shown(entry)} is {problem}", "your public address, e.g. 51.105.7.20, or a range such as 51.105.7.0/24"
        )
    return entry


class WebTierKeys(Model):
    """The web VMs' software. With PROXY protocol and the NAT subnet, it renders nginx and cloud-init."""

    app_upstream: Annotated[
        str,
        Key(
            "provider",
            (
                "host:port of the provider's app as each web VM reaches it; nginx forwards every request (but "
                "/healthz and /_pls/whoami.json) there with X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, "
                "X-Forwarded-Host and X-Azure-Private-Link-Id set by nginx (a client's own are dropped). With "
                "the demo app it must be a loopback address."
            ),
        ),
        AfterValidator(_upstream),
    ] = "127.0.0.1:8080"
    app_health_path: Annotated[
        str,
        Key(
            "provider",
            (
                "Path on appUpstream that nginx's /healthz asks: a web VM is healthy (in the load balancer's pool, "
                "and for Azure's patching) while nginx is up and the app answers this path with any status below "
                "500. Point it at the app's own health endpoint (e.g. /health), which answers 503 when the app "
                "cannot serve."
            ),
        ),
        matching(
            HEALTH_PATH_RE,
            "not a URL path nginx can ask",
            "e.g. / or /health (letters, digits, . _ ~ - /, and %XX escapes)",
        ),
    ] = "/"
    app_cloud_config: Annotated[
        str,
        Key(
            "provider",
            (
                "How the app gets onto the web VMs: `demo` (a built-in app that shows what it received), `none` "
                "(your app is in vmImage), or the path, inside this repository, of a #cloud-config file that "
                "installs it with packages, write_files and runcmd. It is applied to running VMs in place, zone by "
                "zone: a change installs the packages, writes the files and runs runcmd again (so runcmd must be "
                "safe to run twice), with each VM drained while its app restarts."
            ),
        ),
        AfterValidator(_cloud_config_file),
    ] = APP_DEMO
    tenant_rate_limit: Annotated[
        int,
        Key(
            "provider",
            (
                "Requests per second each tenant may send, 1-100000. A tenant is a private endpoint (its "
                "LinkID); over the limit it gets 429 and no other tenant is slowed. Without PROXY protocol the "
                "key falls back to the client address (a NAT IP)."
            ),
            f"must be between 1 and {MAX_RATE}",
            "e.g. 50",
        ),
        Field(ge=1, le=MAX_RATE),
    ] = 50
    tenant_rate_burst: Annotated[
        int,
        Key(
            "provider",
            ("Requests above tenantRateLimit a tenant may send at once before it gets 429, 0-100000."),
            f"must be between 0 and {MAX_RATE}",
            "e.g. 100",
        ),
        Field(ge=0, le=MAX_RATE),
    ] = 100
    tls: Annotated[
        bool,
        Key(
            "provider",
            (
                "Serve HTTPS on 443 for `fqdns` (required then) with a certificate from the provider's Key "
                "Vault, which the stack creates (RBAC, purge protection, firewall) with an identity the web VMs "
                "read it with. Until tlsCertificateName is set nginx serves a self-signed placeholder. Turning "
                "it on or off reconfigures the web VMs in place, zone by zone."
            ),
        ),
    ] = False
    tls_certificate_name: Annotated[
        str,
        Key(
            "provider",
            (
                "Name of the certificate in the stack's Key Vault (import it first: docs/operations/data-path.md). "
                "Set, the Key Vault VM extension installs it on every web VM and follows its renewals; nginx reloads "
                "on each. Needs tls."
            ),
        ),
        optional(
            azure_rules.KEY_VAULT_OBJECT_RE,
            "not a Key Vault certificate name",
            "use 1-127 letters, digits and '-', as in az keyvault certificate import --name",
        ),
    ] = ""
    http_on_tls: Annotated[
        HttpOnTls,
        Key(
            "provider",
            (
                "With tls: `redirect` plain HTTP to HTTPS (308), or `off` (no load-balancing rule for port 80; "
                "only the health probe reaches it)."
            ),
            "must be one of redirect, off",
            "e.g. redirect",
        ),
    ] = "redirect"
    key_vault_allowed_ip_ranges: Annotated[
        list[Annotated[str, AfterValidator(_key_vault_range)]],
        Key(
            "provider",
            (
                "Public IPv4 addresses or CIDRs (yours, to import certificates) let through the Key Vault's "
                "firewall, at most 1000. Everything else is denied but the backend subnet (service endpoint) and "
                "trusted Azure services."
            ),
            f"more than {azure_rules.MAX_KEY_VAULT_IP_RULES} ranges, what a Key Vault takes",
            "merge them into CIDRs",
        ),
        Field(max_length=azure_rules.MAX_KEY_VAULT_IP_RULES),
    ] = []


def check_web_tier(c: Checks) -> None:
    values = c.values
    if c.ok("appUpstream", "appCloudConfig") and values["appCloudConfig"] == APP_DEMO:
        c.check(
            "appUpstream",
            upstream_is_loopback(values["appUpstream"]),
            "the demo app listens on the VM itself",
            "use 127.0.0.1:<port>, or install your app",
        )
    if c.ok("tls", "fqdns"):
        c.check(
            "fqdns",
            bool(values["fqdns"]) or not values["tls"],
            "tls needs the names consumers dial: the certificate must be valid for them",
            "list them in fqdns, e.g. [api.saas.example.com]",
        )
    if c.ok("tls", "tlsCertificateName") and values["tlsCertificateName"]:
        c.check("tlsCertificateName", values["tls"], "is set but tls is off", "set tls: true, or remove the name")
