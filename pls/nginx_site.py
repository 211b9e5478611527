"""nginx in front of the provider's app on each web VM: the site, the njs module, and the VM's health.

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

Health: /healthz answers 200 only while nginx is up, the VM is not draining and the app answers (its
appHealthPath, with any status below 500); the load balancer probes it on the service port (with PROXY protocol's
LOCAL header when it is on), and the Application Health extension on a loopback listener without PROXY protocol.
"""

from __future__ import annotations

import textwrap

from pls.web_server_config import WebServerConfig

SITE_PATH = "/etc/nginx/sites-available/pls.conf"
SITE_LINK = "/etc/nginx/sites-enabled/pls.conf"
DEFAULT_SITE = "/etc/nginx/sites-enabled/default"
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
TLS_ACTIVATE_PATH = "/usr/local/sbin/pls-tls-activate"
TLS_LIVE_DIR = "/etc/nginx/pls-tls"
DRAIN_FLAG = "/run/pls/draining"
"""While it exists /healthz answers 503: the load balancer sends this VM no new connections."""
HEALTH_PATH = "/healthz"
APP_HEALTH_LOCATION = "/_pls/app-health"
"""nginx's internal location that asks the app for its health (the app's appHealthPath)."""
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

    // The VM is healthy while the app answers its health path: a 5xx is the app saying it is not, or nginx
    // finding nothing there (502, 504).
    async function health(r) {
        const app = await r.subrequest('%(app_health)s');
        if (app.status < 500) {
            r.return(200, 'ok\\n');
        } else {
            r.return(503, 'app answered ' + app.status + '\\n');
        }
    }

    export default {linkId, decodeLinkId, health};
    """
) % {"app_health": APP_HEALTH_LOCATION}


def _proxy_headers() -> str:
    return "".join(f'        proxy_set_header {name} "{value}";\n' for name, value in FORWARDED_HEADERS.items())


def _health_locations(cfg: WebServerConfig) -> str:
    """/healthz, in every server: 503 while the VM drains, else what the app's health says (njs)."""
    return f"""\
    location = {HEALTH_PATH} {{
        access_log off;
        default_type text/plain;
        if (-f {cfg.vm(DRAIN_FLAG)}) {{
            return 503 "draining\\n";
        }}
        js_content azure_pls.health;
    }}

    location = {APP_HEALTH_LOCATION} {{
        internal;
        proxy_pass http://pls_app{cfg.app_health_path};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 2s;
        proxy_read_timeout 5s;
    }}
"""


def site_config(cfg: WebServerConfig) -> str:
    proxy = " proxy_protocol" if cfg.proxy_protocol else ""
    if cfg.proxy_protocol:
        trusted = "".join(f"    set_real_ip_from {cidr};\n" for cidr in cfg.trusted_proxy_cidrs)
        link_id = "js_set $pls_link_id azure_pls.linkId;\n"
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
{real_ip}    access_log {cfg.vm(ACCESS_LOG)} pls_access;
    limit_req_status 429;

{_health_locations(cfg)}"""
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
    plain = {
        "redirect": "    location / {\n        return 308 https://$host$request_uri;\n    }\n",
        "off": "    location / {\n        return 404;\n    }\n",
    }[cfg.http_on_tls]
    # Plain HTTP serves consumers, or with TLS only redirects (or refuses) them: the probe's /healthz stays.
    servers = f"""\
server {{
    listen {cfg.http_port}{proxy} default_server;
{more_http}    server_name {names};
{common}
{plain if cfg.tls else served}}}
"""
    if cfg.tls:
        tls_live = cfg.vm(TLS_LIVE_DIR)
        servers += f"""
server {{
    listen {cfg.https_port} ssl{proxy} default_server;
{more_https}    server_name {names};
    # Links kept by {TLS_ACTIVATE_PATH}: the Key Vault certificate, or a placeholder until it arrives.
    ssl_certificate {tls_live}/fullchain.pem;
    ssl_certificate_key {tls_live}/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:pls_tls:10m;
{common}
{served}}}
"""
    fields = (f'"{name}":"{var}"' if kind == "string" else f'"{name}":{var}' for name, var, kind in ACCESS_LOG_COLUMNS)
    access_log_json = "{" + ",".join(fields) + "}"
    return f"""\
# Rendered by pls/nginx_site.py. PROXY protocol: {"on" if cfg.proxy_protocol else "off"}. \
TLS: {f"on, HTTP {cfg.http_on_tls}" if cfg.tls else "off"}.
js_import azure_pls from {cfg.vm(NJS_PATH)};
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

{servers}
# What probes from inside the VM (the Application Health extension) asks: the same health, without PROXY protocol.
server {{
    listen 127.0.0.1:{cfg.local_health_port};
    server_name localhost;
    access_log off;

{_health_locations(cfg)}
    location / {{
        return 404;
    }}
}}
"""
