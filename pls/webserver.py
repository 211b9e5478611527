"""The web VMs' software: nginx in front of the provider's app, with the consumer's identity, TLS and per-tenant limits.

No Azure here: one function renders everything from plain values, so the artefacts are
checked by the tools that consume them (cloud-init schema, a real nginx on loopback, the demo app).

PROXY protocol is one switch. When it is on, nginx must parse the PROXY v2 header that the
Private Link Service (and every load-balancer health probe) puts in front of each connection,
trust the client address in it only from the NAT subnet, and log that address. Azure puts the
consumer's LinkID in TLV type 0xEE (PP2_TYPE_AZURE): a subtype byte 0x01, then a little-endian
uint32. nginx (>= 1.23.2) hands the TLV over only as raw bytes, so a few lines of njs turn
it into a number; on an older nginx the variable is absent and the LinkID stays empty.

What the blog post's incident teaches: every tenant arrives from the same NAT IPs, so nothing
may be keyed on the connection's source address. nginx forwards the consumer's address and
LinkID to the app as headers it sets itself (whatever the client sent under those names is
dropped), and the rate limit is per LinkID: one private endpoint, one tenant.

TLS: the certificate stays in the provider's Key Vault; the Key Vault VM extension writes it to
CERT_STORE on each VM (a full-chain `<vault>.<certificate>.pem` and a `<vault>.<certificate>.keyid`
key, both stable symlinks to the newest version). A systemd path unit runs TLS_ACTIVATE whenever
the store changes: it points nginx at those links and reloads. Until the first certificate
arrives nginx serves a self-signed placeholder, so the rendered config never changes with it.
"""

from __future__ import annotations

import ipaddress
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

SITE_PATH = "/etc/nginx/sites-available/pls.conf"
NJS_PATH = "/etc/nginx/njs/azure_pls.js"
ACCESS_LOG = "/var/log/nginx/pls-access.log"
ACCESS_LOG_TABLE = "PlsNginxAccess_CL"
ACCESS_LOG_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (field and Log Analytics column, nginx variable, Log Analytics type): who, from where, how much.
    ("Client", "$remote_addr", "string"),
    ("ConnectedFrom", "$realip_remote_addr", "string"),
    ("LinkId", "$pls_link_id", "string"),
    ("Server", "$hostname", "string"),
    ("Host", "$host", "string"),
    ("Request", "$request", "string"),
    ("Status", "$status", "int"),
    ("Bytes", "$body_bytes_sent", "long"),
    ("RequestTime", "$request_time", "real"),
)
"""Each access log line is `<ISO 8601 time> <JSON object of these fields>`: the Azure Monitor agent splits records
on the leading timestamp, and the data collection rule's transformation parses the JSON into these columns."""
DEMO_APP_PATH = "/opt/pls/demo_app.py"
TLS_ACTIVATE_PATH = "/usr/local/sbin/pls-tls-activate"
TLS_LIVE_DIR = "/etc/nginx/pls-tls"
CERT_STORE = "/var/lib/waagent/Microsoft.Azure.KeyVault.Store/pls"
"""Where the Key Vault VM extension puts the certificate: a folder of its own, watched by the path unit."""
PACKAGES = ("nginx", "libnginx-mod-http-js")
HEALTH_PATH = "/healthz"
HEALTH_PORT = 80
"""The load balancer probes plain HTTP here, with PROXY protocol LOCAL headers when it is on, even with HTTPS."""
HTTPS_PORT = 443
WHOAMI_PATH = "/_pls/whoami.json"
"""Answered by nginx itself, whatever the app: what the verify step reads."""

FORWARDED_HEADERS = {
    "X-Forwarded-For": "$remote_addr",
    "X-Real-IP": "$remote_addr",
    "X-Forwarded-Proto": "$scheme",
    "X-Forwarded-Host": "$host",
    "X-Azure-Private-Link-Id": "$pls_link_id",
    # An empty value drops the header: a client's own Forwarded must not reach the app either.
    "Forwarded": "",
}
"""What the app receives about the consumer. nginx sets each one, so a client's header of the same name never passes."""

NJS_MODULE = textwrap.dedent(
    """\
    // Decodes the Azure Private Link TLV (type 0xEE) of a PROXY protocol v2 header:
    // subtype 0x01, then the private endpoint's LinkID as a little-endian uint32.
    function decodeLinkId(tlv) {
        if (!tlv || tlv.length !== 5 || tlv[0] !== 0x01) {
            return '';
        }
        return String((tlv[1] | (tlv[2] << 8) | (tlv[3] << 16) | (tlv[4] << 24)) >>> 0);
    }

    function linkId(r) {
        return decodeLinkId(r.rawVariables.proxy_protocol_tlv_0xee);
    }

    export default {linkId, decodeLinkId};
    """
)

DEMO_APP = textwrap.dedent(
    '''\
    """Stand-in for the provider's app: answers every GET with what it was told about the consumer, as JSON."""

    import json
    import os
    import socket
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(
                {
                    "app": "pls-demo",
                    "host": socket.gethostname(),
                    "zone": os.environ.get("PLS_ZONE", ""),
                    "path": self.path,
                    "client": self.headers.get("X-Real-IP", ""),
                    "linkId": self.headers.get("X-Azure-Private-Link-Id", ""),
                    "proto": self.headers.get("X-Forwarded-Proto", ""),
                    "headers": [[name, value] for name, value in self.headers.items()],
                },
                indent=2,
            ).encode() + b"\\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass  # nginx's access log has every request, with the consumer's address and LinkID


    host, _, port = sys.argv[1].rpartition(":")
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
    '''
)

TLS_ACTIVATE = textwrap.dedent(
    """\
    #!/bin/sh
    # Points nginx at the newest certificate the Key Vault VM extension installed (stable symlinks
    # <vault>.<certificate>.pem and .keyid), or at a self-signed placeholder until one arrives; then reloads.
    set -eu
    store="${PLS_TLS_STORE:-%(store)s}"
    live="${PLS_TLS_LIVE:-%(live)s}"
    mkdir -p "$live"
    chain=""
    for candidate in "$store"/*.pem; do
        if [ -L "$candidate" ] && [ -e "${candidate%%.pem}.keyid" ]; then chain="$candidate"; fi
    done
    if [ -n "$chain" ]; then
        ln -sfn "$chain" "$live/fullchain.pem"
        ln -sfn "${chain%%.pem}.keyid" "$live/privkey.pem"
    elif [ ! -e "$live/fullchain.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=certificate-not-yet-in-key-vault" \\
            -keyout "$live/placeholder.key" -out "$live/placeholder.pem" 2>/dev/null
        ln -sfn "$live/placeholder.pem" "$live/fullchain.pem"
        ln -sfn "$live/placeholder.key" "$live/privkey.pem"
    fi
    sh -c "${PLS_TLS_RELOAD:-nginx -t -q && systemctl reload nginx}"
    """
) % {"store": CERT_STORE, "live": TLS_LIVE_DIR}

HttpOnTls = Literal["redirect", "off"]


@dataclass(frozen=True)
class RateLimit:
    per_second: int
    """Sustained requests per second allowed to one tenant (one LinkID)."""
    burst: int
    """Requests above the rate a tenant may send at once before it gets 429."""


@dataclass(frozen=True)
class WebServerConfig:
    proxy_protocol: bool
    trusted_proxy_cidrs: tuple[str, ...]
    """Only PROXY headers from here are believed: the Private Link Services' NAT subnets."""
    zone: str
    """The availability zone the VM is in, shown by nginx and by the demo app."""
    app_upstream: str = "127.0.0.1:8080"
    """host:port of the provider's app on the VM; nginx forwards every request but health and whoami to it."""
    demo_app: bool = True
    """Install the built-in demo app, listening on app_upstream."""
    app_cloud_config: Mapping[str, Any] = field(default_factory=dict)
    """The provider's own cloud-config (installs its app), merged with ours."""
    tls: bool = False
    """Serve HTTPS on https_port with the Key Vault certificate."""
    http_on_tls: HttpOnTls = "redirect"
    """With TLS: plain HTTP requests are redirected to HTTPS, or refused (only the health probe is answered)."""
    server_names: tuple[str, ...] = ()
    """The names consumers dial (the service's FQDNs); the certificate must cover them."""
    rate_limit: RateLimit = RateLimit(per_second=50, burst=100)
    http_port: int = HEALTH_PORT
    https_port: int = HTTPS_PORT
    njs_path: str = NJS_PATH
    access_log: str = ACCESS_LOG
    tls_live_dir: str = TLS_LIVE_DIR
    service_ports: tuple[tuple[int, int], ...] = ()
    """The (HTTP, HTTPS) ports of each Private Link Service after the first: the load balancer sends each service
    to ports of its own, and each is served like the first's."""


@dataclass(frozen=True)
class RenderedWebServer:
    site_config: str
    njs_module: str
    demo_app: str
    tls_activate: str
    cloud_init: str


def upstream_is_loopback(upstream: str) -> bool:
    host = upstream.rpartition(":")[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _proxy_headers() -> str:
    return "".join(f'        proxy_set_header {name} "{value}";\n' for name, value in FORWARDED_HEADERS.items())


def _site_config(cfg: WebServerConfig) -> str:
    proxy = " proxy_protocol" if cfg.proxy_protocol else ""
    if cfg.proxy_protocol:
        trusted = "".join(f"    set_real_ip_from {cidr};\n" for cidr in cfg.trusted_proxy_cidrs)
        link_id = f"""\
js_import azure_pls from {cfg.njs_path};
js_set $pls_link_id azure_pls.linkId;
"""
        real_ip = f"""\
    # The client address in the PROXY header is believed only from the Private Link NAT subnet.
{trusted}    real_ip_header proxy_protocol;
"""
    else:
        link_id = """\
map "" $pls_link_id {
    default "";
}
"""
        real_ip = ""
    whoami = (
        '{"host": "$hostname", "zone": "' + cfg.zone + '", "client": "$remote_addr", '
        '"connectedFrom": "$realip_remote_addr", "linkId": "$pls_link_id", "tenant": "$pls_tenant", '
        '"scheme": "$scheme", "serverName": "$ssl_server_name", '
        f'"proxyProtocol": {str(cfg.proxy_protocol).lower()}}}\\n'
    )
    limit = f"limit_req zone=pls_tenants burst={cfg.rate_limit.burst} nodelay;"
    common = f"""\
{real_ip}    access_log {cfg.access_log} pls_access;
    limit_req_status 429;

    location = {HEALTH_PATH} {{
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }}
"""
    served = f"""\
    location = {WHOAMI_PATH} {{
        {limit}
        default_type application/json;
        return 200 '{whoami}';
    }}

    location / {{
        {limit}
        proxy_pass http://pls_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
{_proxy_headers()}    }}
"""
    names = " ".join(cfg.server_names) or "_"
    more_http = "".join(f"    listen {http}{proxy} default_server;\n" for http, _ in cfg.service_ports)
    more_https = "".join(f"    listen {https} ssl{proxy} default_server;\n" for _, https in cfg.service_ports)
    if not cfg.tls:
        servers = f"""\
server {{
    listen {cfg.http_port}{proxy} default_server;
{more_http}    server_name {names};
{common}
{served}}}
"""
    else:
        plain = (
            "    location / {\n        return 308 https://$host$request_uri;\n    }\n"
            if cfg.http_on_tls == "redirect"
            else "    location / {\n        return 404;\n    }\n"
        )
        servers = f"""\
server {{
    listen {cfg.http_port}{proxy} default_server;
{more_http}    server_name {names};
{common}
{plain}}}

server {{
    listen {cfg.https_port} ssl{proxy} default_server;
{more_https}    server_name {names};
    # Links kept by {TLS_ACTIVATE_PATH}: the Key Vault certificate, or a placeholder until it arrives.
    ssl_certificate {cfg.tls_live_dir}/fullchain.pem;
    ssl_certificate_key {cfg.tls_live_dir}/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:pls_tls:10m;
{common}
{served}}}
"""
    fields = (f'"{name}":"{var}"' if kind == "string" else f'"{name}":{var}' for name, var, kind in ACCESS_LOG_COLUMNS)
    access_log_json = "{" + ",".join(fields) + "}"
    return f"""\
# Rendered by pls/webserver.py. PROXY protocol: {"on" if cfg.proxy_protocol else "off"}. \
TLS: {f"on, HTTP {cfg.http_on_tls}" if cfg.tls else "off"}.
{link_id}
# One tenant is one private endpoint (its LinkID); without a LinkID, the client address.
map $pls_link_id $pls_tenant {{
    ""      $remote_addr;
    default $pls_link_id;
}}
limit_req_zone $pls_tenant zone=pls_tenants:10m rate={cfg.rate_limit.per_second}r/s;

log_format pls_access escape=json '$time_iso8601 {access_log_json}';

upstream pls_app {{
    server {cfg.app_upstream};
    keepalive 16;
}}

{servers}"""


class _CloudConfigDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes multi-line strings as literal blocks, so the user data reads like the files it writes (with
    libyaml's emitter where PyYAML has it: the same text, a tenth of the time)."""


_CloudConfigDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)

MERGED_LISTS = ("packages", "write_files", "runcmd", "bootcmd")
"""Keys whose lists add up when the provider's cloud-config is merged with ours; any other shared key is a conflict."""


def merge_cloud_config(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Ours, then the provider's: lists of MERGED_LISTS concatenated, other keys must not collide.

    Raises ValueError naming the conflict (a key both set differently, or a file both write).
    """
    merged = dict(ours)
    for key, value in theirs.items():
        if key in MERGED_LISTS:
            if not isinstance(value, list):
                raise ValueError(f"{key} must be a list")
            merged[key] = [*merged.get(key, []), *value]
        elif key in merged and merged[key] != value:
            raise ValueError(f"{key} is set by the web tier's own cloud-config ({json.dumps(merged[key])})")
        else:
            merged[key] = value
    files = merged.get("write_files", [])
    if not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise ValueError("every write_files entry must be a mapping with a path")
    paths: list[str] = [f["path"] for f in files]
    clashing = sorted({p for p in paths if paths.count(p) > 1})
    if clashing:
        raise ValueError(f"write_files writes {', '.join(clashing)}, which the web tier writes too")
    return merged


def _systemd_unit(description: str, sections: Mapping[str, Mapping[str, str]]) -> str:
    text = f"[Unit]\nDescription={description}\n"
    for section, entries in sections.items():
        text += f"\n[{section}]\n" + "".join(f"{k}={v}\n" for k, v in entries.items())
    return text


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
    return {"path": path, "content": content, "permissions": permissions}


def render_web_server(cfg: WebServerConfig) -> RenderedWebServer:
    site = _site_config(cfg)
    files = [_file(SITE_PATH, site), _file(cfg.njs_path, NJS_MODULE)]
    # write_files runs before the packages are installed: the site goes to sites-available
    # only, so it cannot clash with the package's default site while nginx first starts.
    runcmd: list[list[str]] = [
        ["rm", "-f", "/etc/nginx/sites-enabled/default"],
        ["ln", "-sf", SITE_PATH, "/etc/nginx/sites-enabled/pls.conf"],
    ]
    if cfg.demo_app:
        files += [
            _file(DEMO_APP_PATH, DEMO_APP),
            _file(
                "/etc/systemd/system/pls-demo-app.service",
                _systemd_unit(
                    "Demo app behind nginx (stand-in for the provider's app)",
                    {
                        "Service": {
                            "ExecStart": f"/usr/bin/python3 {DEMO_APP_PATH} {cfg.app_upstream}",
                            "Environment": f"PLS_ZONE={cfg.zone}",
                            "DynamicUser": "yes",
                            "Restart": "always",
                        },
                        "Install": {"WantedBy": "multi-user.target"},
                    },
                ),
            ),
        ]
        runcmd += [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "pls-demo-app.service"]]
    if cfg.tls:
        files += [
            _file(TLS_ACTIVATE_PATH, TLS_ACTIVATE, permissions="0755"),
            _file(
                "/etc/systemd/system/pls-tls.path",
                _systemd_unit(
                    "Watch the Key Vault certificate store",
                    {"Path": {"PathChanged": CERT_STORE}, "Install": {"WantedBy": "multi-user.target"}},
                ),
            ),
            _file(
                "/etc/systemd/system/pls-tls.service",
                _systemd_unit(
                    "Point nginx at the newest Key Vault certificate",
                    {"Service": {"Type": "oneshot", "ExecStart": TLS_ACTIVATE_PATH}},
                ),
            ),
        ]
        runcmd += [
            ["mkdir", "-p", CERT_STORE],
            ["env", "PLS_TLS_RELOAD=true", TLS_ACTIVATE_PATH],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "pls-tls.path"],
        ]
    runcmd += [["nginx", "-t"], ["systemctl", "restart", "nginx"]]
    ours = {"package_update": True, "packages": list(PACKAGES), "write_files": files, "runcmd": runcmd}
    cloud_config = merge_cloud_config(ours, cfg.app_cloud_config)
    cloud_init = "#cloud-config\n" + yaml.dump(cloud_config, Dumper=_CloudConfigDumper, sort_keys=False, width=1000)
    return RenderedWebServer(
        site_config=site,
        njs_module=NJS_MODULE,
        demo_app=DEMO_APP,
        tls_activate=TLS_ACTIVATE,
        cloud_init=cloud_init,
    )
