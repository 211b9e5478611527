"""The web VMs' software: cloud-init user data, nginx site and the njs LinkID decoder.

No Azure here: one function renders everything from plain values, so the artefacts are
checked by the tools that consume them (cloud-init schema, a real nginx on loopback).

PROXY protocol is one switch. When it is on, nginx must parse the PROXY v2 header that the
Private Link Service (and every load-balancer health probe) puts in front of each connection,
trust the client address in it only from the NAT subnet, and log that address. Azure puts the
consumer's LinkID in TLV type 0xEE (PP2_TYPE_AZURE): a subtype byte 0x01, then a little-endian
uint32. nginx (>= 1.23.2) hands the TLV over only as raw bytes, so a few lines of njs turn
it into a number; on an older nginx the variable is absent and the LinkID stays empty.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import yaml

SITE_PATH = "/etc/nginx/sites-available/pls.conf"
NJS_PATH = "/etc/nginx/njs/azure_pls.js"
ACCESS_LOG = "/var/log/nginx/pls-access.log"
PACKAGES = ("nginx", "libnginx-mod-http-js")

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


@dataclass(frozen=True)
class WebServerConfig:
    proxy_protocol: bool
    trusted_proxy_cidr: str
    """Only PROXY headers from here are believed: the Private Link Service's NAT subnet."""
    zone: str
    """The availability zone shown on the page."""
    listen_port: int = 80
    njs_path: str = NJS_PATH
    access_log: str = ACCESS_LOG


@dataclass(frozen=True)
class RenderedWebServer:
    site_config: str
    njs_module: str
    cloud_init: str


def _site_config(cfg: WebServerConfig) -> str:
    proxy = " proxy_protocol" if cfg.proxy_protocol else ""
    if cfg.proxy_protocol:
        prelude = f"""\
js_import azure_pls from {cfg.njs_path};
js_set $pls_link_id azure_pls.linkId;
"""
        real_ip = f"""\
    # The client address in the PROXY header is believed only from the Private Link NAT subnet.
    set_real_ip_from {cfg.trusted_proxy_cidr};
    real_ip_header proxy_protocol;
"""
    else:
        prelude = """\
map "" $pls_link_id {
    default "";
}
"""
        real_ip = ""
    page = (
        "<!doctype html><html><head><title>Private Link Service</title></head><body>"
        "<h1>Served by $hostname</h1>"
        f"<p>Host: $hostname<br>Zone: {cfg.zone}<br>Client: $remote_addr<br>LinkID: $pls_link_id</p>"
        "</body></html>\\n"
    )
    whoami = (
        '{"host": "$hostname", "zone": "' + cfg.zone + '", "client": "$remote_addr", '
        '"connectedFrom": "$realip_remote_addr", "linkId": "$pls_link_id", '
        f'"proxyProtocol": {str(cfg.proxy_protocol).lower()}}}\\n'
    )
    return f"""\
# Rendered by pls/webserver.py. PROXY protocol: {"on" if cfg.proxy_protocol else "off"}.
{prelude}
log_format pls_access '$remote_addr connected_from=$realip_remote_addr link_id="$pls_link_id" '
                      '[$time_local] "$request" $status $body_bytes_sent';

server {{
    listen {cfg.listen_port}{proxy} default_server;
{real_ip}
    access_log {cfg.access_log} pls_access;
    default_type text/html;

    location = /healthz {{
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }}

    location = /whoami.json {{
        default_type application/json;
        return 200 '{whoami}';
    }}

    location / {{
        return 200 '{page}';
    }}
}}
"""


class _CloudConfigDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so the user data reads like the files it writes."""


_CloudConfigDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def render_web_server(cfg: WebServerConfig) -> RenderedWebServer:
    site = _site_config(cfg)
    cloud_config = {
        "package_update": True,
        "packages": list(PACKAGES),
        # write_files runs before the packages are installed: the site goes to sites-available
        # only, so it cannot clash with the package's default site while nginx first starts.
        "write_files": [
            {"path": SITE_PATH, "content": site, "permissions": "0644"},
            {"path": cfg.njs_path, "content": NJS_MODULE, "permissions": "0644"},
        ],
        "runcmd": [
            ["rm", "-f", "/etc/nginx/sites-enabled/default"],
            ["ln", "-sf", SITE_PATH, "/etc/nginx/sites-enabled/pls.conf"],
            ["nginx", "-t"],
            ["systemctl", "restart", "nginx"],
        ],
    }
    cloud_init = "#cloud-config\n" + yaml.dump(cloud_config, Dumper=_CloudConfigDumper, sort_keys=False, width=1000)
    return RenderedWebServer(site_config=site, njs_module=NJS_MODULE, cloud_init=cloud_init)
