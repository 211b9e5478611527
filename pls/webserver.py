"""The web VMs' software: what reaches each VM, and how, from the web tier's settings.

No Azure here: one function renders everything from plain values, so the artefacts are checked by the tools
that consume them (cloud-init's schema, a real nginx on loopback applying the software, the demo app).

How it reaches a VM: the VM's custom data is a fixed first-boot bootstrap (install nginx and njs), and
everything else is the software a managed Run Command applies in place (vm/software.py): the script is that
program followed by what it applies. Azure runs it again whenever it changes, so a new rate limit, upstream, app
or TLS setting reaches running VMs without rebuilding them; nginx checks each new configuration before it
reloads, and a VM whose services restart is drained first. The site itself is pls/nginx_site.py's.

TLS: the certificate stays in the provider's Key Vault; the Key Vault VM extension writes it to
CERT_STORE on each VM (a full-chain `<vault>.<certificate>.pem` and a `<vault>.<certificate>.keyid`
key, both stable symlinks to the newest version). A systemd path unit runs TLS_ACTIVATE whenever
the store changes: it points nginx at those links and reloads. Until the first certificate
arrives nginx serves a self-signed placeholder, so the rendered config never changes with it.
"""

from __future__ import annotations

import ast
import hashlib
import ipaddress
import json
import re
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pls.nginx_site import (
    DEFAULT_SITE,
    DRAIN_FLAG,
    HEALTH_PATH,
    NJS_MODULE,
    NJS_PATH,
    SITE_LINK,
    SITE_PATH,
    TLS_ACTIVATE_PATH,
    TLS_LIVE_DIR,
    site_config,
)
from pls.web_server_config import WebServerConfig

DEMO_APP_PATH = "/opt/pls/demo_app.py"
CERT_STORE = "/var/lib/waagent/Microsoft.Azure.KeyVault.Store/pls"
"""Where the Key Vault VM extension puts the certificate: a folder of its own, watched by the path unit."""
DEMO_APP_UNIT = "pls-demo-app.service"
TLS_PATH_UNIT = "pls-tls.path"
SYSTEMD_DIR = "/etc/systemd/system"
STATE_FILE = "/var/lib/pls/software.json"
"""What the last run of the software applied: the files it wrote, the units it enabled, the app's revision."""
PACKAGES = ("nginx", "libnginx-mod-http-js")
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

_TLS_ACTIVATE = textwrap.dedent(
    """\
    #!/bin/sh
    # Points nginx at the newest certificate the Key Vault VM extension installed (stable symlinks
    # <vault>.<certificate>.pem and .keyid), or at a self-signed placeholder until one arrives; then reloads.
    set -eu
    store=%(store)s
    live=%(live)s
    mkdir -p "$live"
    chain=""
    for candidate in "$store"/*.pem; do
        if [ -L "$candidate" ] && [ -e "${candidate%%.pem}.keyid" ]; then chain="$candidate"; fi
    done
    if [ -n "$chain" ]; then
        ln -sfn "$chain" "$live/fullchain.pem"
        ln -sfn "${chain%%.pem}.keyid" "$live/privkey.pem"
    elif [ ! -e "$live/fullchain.pem" ]; then
        # A P-256 key is made at once; an RSA key takes a noticeable part of a second, on every first boot.
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \\
            -subj "/CN=certificate-not-yet-in-key-vault" \\
            -keyout "$live/placeholder.key" -out "$live/placeholder.pem" 2>/dev/null
        ln -sfn "$live/placeholder.pem" "$live/fullchain.pem"
        ln -sfn "$live/placeholder.key" "$live/privkey.pem"
    fi
    sh -c "${PLS_TLS_RELOAD:-%(reload)s}"
    """
)


@dataclass(frozen=True)
class RenderedWebServer:
    site_config: str
    software: dict[str, Any]
    """What the VM's Run Command applies in place (vm/software.py)."""
    software_script: str
    """The Run Command's script: vm/software.py and the software it applies."""


BOOTSTRAP = (
    "#cloud-config\n"
    "# The first boot of a web VM: nginx and njs. Its Run Command applies everything else, in place.\n"
    "package_update: true\n"
    "packages:\n" + "".join(f"  - {package}\n" for package in PACKAGES)
)
"""The web VMs' custom data: cloud-init's first boot (it needs outbound access for apt: the backend subnet's NAT
gateway). The same for every VM whatever the settings: Azure cannot change custom data, and nothing needs it to."""


def upstream_is_loopback(upstream: str) -> bool:
    host = upstream.rpartition(":")[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


APP_KEYS = ("packages", "write_files", "runcmd")
"""What the provider's cloud-config may hold: the parts the web tier applies to running VMs in place."""
FILE_KEYS = {"path", "content", "permissions", "owner", "encoding"}
ENCODINGS = ("text/plain", "b64", "base64")
PERMISSIONS_RE = re.compile(r"0?[0-7]{3,4}")
OWNER_RE = re.compile(r"[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?")


@dataclass(frozen=True)
class AppParts:
    """The provider's cloud-config, as the software applies it: packages, files and commands."""

    packages: tuple[str, ...] = ()
    files: tuple[dict[str, str], ...] = ()
    commands: tuple[Any, ...] = ()


def app_parts(document: Mapping[str, Any], ours: set[str]) -> AppParts:
    """The provider's cloud-config read as what the software applies in place, or ValueError naming what cannot be
    (a key other than packages, write_files and runcmd, a file the web tier writes, a malformed entry)."""
    other = sorted(set(document) - set(APP_KEYS))
    if other:
        raise ValueError(
            f"{', '.join(other)}: the web tier applies only {', '.join(APP_KEYS)} to running VMs (in place); do the "
            "rest from runcmd, or put your app in vmImage (appCloudConfig: none)"
        )
    packages, files, commands = (document.get(key, []) for key in APP_KEYS)
    if not isinstance(packages, list) or not all(isinstance(p, str) and p.strip() for p in packages):
        raise ValueError("packages must be a list of package names")
    if not isinstance(commands, list) or not all(
        isinstance(c, str) or (isinstance(c, list) and c and all(isinstance(part, str | int) for part in c))
        for c in commands
    ):
        raise ValueError("runcmd must be a list of commands: each a string (run by sh) or a list of arguments")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise ValueError("every write_files entry must be a mapping with a path")
    for entry in files:
        unsupported = sorted(set(entry) - FILE_KEYS)
        if (
            unsupported
            or entry.get("encoding", "text/plain") not in ENCODINGS
            or not entry["path"].startswith("/")
            or not PERMISSIONS_RE.fullmatch(str(entry.get("permissions", "0644")))
            or not OWNER_RE.fullmatch(str(entry.get("owner", "root:root")))
        ):
            raise ValueError(
                f"write_files {entry['path']}: the web tier writes path (absolute), content, permissions (octal, "
                f"e.g. '0644'), owner (user:group) and encoding ({', '.join(ENCODINGS)}) in place"
                + (f", not {', '.join(unsupported)}" if unsupported else "")
            )
    paths = [entry["path"] for entry in files]
    clashing = sorted({p for p in paths if paths.count(p) > 1 or p in ours})
    if clashing:
        raise ValueError(f"write_files writes {', '.join(clashing)}, which the web tier writes too")
    normalized = tuple(
        {key: str(value) for key, value in entry.items()} | {"content": str(entry.get("content", ""))}
        for entry in files
    )
    return AppParts(tuple(packages), normalized, tuple(commands))


def _systemd_unit(description: str, sections: Mapping[str, Mapping[str, str]]) -> str:
    text = f"[Unit]\nDescription={description}\n"
    for section, entries in sections.items():
        text += f"\n[{section}]\n" + "".join(f"{k}={v}\n" for k, v in entries.items())
    return text


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
    return {"path": path, "content": content, "permissions": permissions}


def _revision(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


VM_SOFTWARE = (Path(__file__).resolve().parents[1] / "vm" / "software.py").read_text()
"""The program each VM runs (read once: every VM of every zone gets it)."""
APPLY = "raise SystemExit(main(json.loads({})))"
"""The script's last line of Python: apply the software (a JSON document in a string literal)."""


def software_in(script: str) -> dict[str, Any]:
    """The software a Run Command's script applies (what render_web_server put in it)."""
    prefix, suffix = APPLY.split("{}")
    (line,) = [line for line in script.splitlines() if line.startswith(prefix)]
    return dict(json.loads(ast.literal_eval(line.removeprefix(prefix).removesuffix(suffix))))


def render_web_server(cfg: WebServerConfig) -> RenderedWebServer:
    site = site_config(cfg)
    reload = f"{shlex.join((*cfg.commands.nginx_check, '-q'))} && {shlex.join(cfg.commands.nginx_reload)}"
    tls_activate = _TLS_ACTIVATE % {
        "store": shlex.quote(cfg.vm(CERT_STORE)),
        "live": shlex.quote(cfg.vm(TLS_LIVE_DIR)),
        "reload": reload,
    }
    files = [_file(SITE_PATH, site), _file(NJS_PATH, NJS_MODULE)]
    services = []
    if cfg.demo_app:
        unit = f"{SYSTEMD_DIR}/{DEMO_APP_UNIT}"
        files += [
            _file(DEMO_APP_PATH, DEMO_APP),
            _file(
                unit,
                _systemd_unit(
                    "Demo app behind nginx (stand-in for the provider's app)",
                    {
                        "Service": {
                            "ExecStart": f"/usr/bin/python3 {cfg.vm(DEMO_APP_PATH)} {cfg.app_upstream}",
                            "Environment": f"PLS_ZONE={cfg.zone}",
                            "DynamicUser": "yes",
                            "Restart": "always",
                        },
                        "Install": {"WantedBy": "multi-user.target"},
                    },
                ),
            ),
        ]
        services.append({"unit": DEMO_APP_UNIT, "files": [DEMO_APP_PATH, unit], "serves": True})
    prepare = [
        ["mkdir", "-p", cfg.vm(str(Path(SITE_LINK).parent))],
        ["ln", "-sfn", cfg.vm(SITE_PATH), cfg.vm(SITE_LINK)],
        ["rm", "-f", cfg.vm(DEFAULT_SITE)],
    ]
    if cfg.tls:
        path_unit = f"{SYSTEMD_DIR}/{TLS_PATH_UNIT}"
        files += [
            _file(TLS_ACTIVATE_PATH, tls_activate, permissions="0755"),
            _file(
                path_unit,
                _systemd_unit(
                    "Watch the Key Vault certificate store",
                    {"Path": {"PathChanged": cfg.vm(CERT_STORE)}, "Install": {"WantedBy": "multi-user.target"}},
                ),
            ),
            _file(
                f"{SYSTEMD_DIR}/pls-tls.service",
                _systemd_unit(
                    "Point nginx at the newest Key Vault certificate",
                    {"Service": {"Type": "oneshot", "ExecStart": cfg.vm(TLS_ACTIVATE_PATH)}},
                ),
            ),
        ]
        services.append({"unit": TLS_PATH_UNIT, "files": [path_unit], "serves": False})
        # The certificate's links (a placeholder until Key Vault's arrives) exist before nginx checks the site.
        prepare += [["mkdir", "-p", cfg.vm(CERT_STORE)], ["env", "PLS_TLS_RELOAD=true", cfg.vm(TLS_ACTIVATE_PATH)]]
    app = app_parts(cfg.app_cloud_config, {f["path"] for f in files})
    software: dict[str, Any] = {
        "zone": cfg.zone,
        "root": cfg.root,
        "commands": {name: list(argv) for name, argv in vars(cfg.commands).items()},
        "packages": [*PACKAGES, *app.packages],
        "files": [*files, *app.files],
        "prepare": prepare,
        "services": services,
        "app_files": [f["path"] for f in app.files],
        "app_commands": list(app.commands),
        "app_revision": _revision([app.packages, app.files, app.commands]),
        "health": {
            "port": cfg.http_port,
            "path": HEALTH_PATH,
            "proxy_protocol": cfg.proxy_protocol,
            "app_upstream": cfg.app_upstream,
            "app_path": cfg.app_health_path,
            "drain_flag": DRAIN_FLAG,
            "settle_seconds": cfg.settle_seconds,
            "timeout_seconds": cfg.health_timeout_seconds,
        },
        "state_file": STATE_FILE,
    }
    software["revision"] = _revision(software)
    script = (
        "#!/bin/sh\n"
        f"# The web tier's software, revision {software['revision']}, for a VM in zone {cfg.zone}: rendered by\n"
        "# pls/webserver.py; Azure runs it again whenever it changes, and it applies the software in place.\n"
        "export DEBIAN_FRONTEND=noninteractive\n"
        "exec python3 - <<'PLS_SOFTWARE'\n"
        f"{VM_SOFTWARE}\n"
        f"{APPLY.format(json.dumps(json.dumps(software, sort_keys=True)))}\n"
        "PLS_SOFTWARE\n"
    )
    return RenderedWebServer(
        site_config=site,
        software=software,
        software_script=script,
    )
