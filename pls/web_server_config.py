"""What the web VMs serve, as plain values: the ports the load balancer and the probes use, the per-tenant rate
limit, the commands the software runs on a VM, and the whole configuration pls/webserver.py renders and
pls/nginx_site.py writes the nginx site from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

HEALTH_PORT = 80
"""The load balancer probes plain HTTP here, with PROXY protocol LOCAL headers when it is on, even with HTTPS."""
LOCAL_HEALTH_PORT = 8081
"""/healthz on loopback without PROXY protocol, for what probes from inside the VM (the Application Health
extension)."""
HTTPS_PORT = 443

HttpOnTls = Literal["redirect", "off"]


@dataclass(frozen=True)
class RateLimit:
    per_second: int
    """Sustained requests per second allowed to one tenant (one LinkID)."""
    burst: int
    """Requests above the rate a tenant may send at once before it gets 429."""


@dataclass(frozen=True)
class VmCommands:
    """The commands the software runs on the VM (a test runs the same script against nginx on loopback)."""

    first_boot: tuple[str, ...] = ("cloud-init", "status", "--wait")
    """Waits until cloud-init's first boot has finished (it installs nginx)."""
    install: tuple[str, ...] = ("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "--no-upgrade")
    """Installs the packages given after it (apt-get installs nothing twice), waiting for the package manager
    while something else holds it (a patch being installed)."""
    refresh_packages: tuple[str, ...] = ("apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q")
    nginx_check: tuple[str, ...] = ("nginx", "-t")
    nginx_reload: tuple[str, ...] = ("systemctl", "reload-or-restart", "nginx")
    """A graceful reload: open connections finish on the old workers."""
    systemctl: tuple[str, ...] = ("systemctl",)


@dataclass(frozen=True)
class WebServerConfig:
    proxy_protocol: bool
    trusted_proxy_cidrs: tuple[str, ...]
    """Only PROXY headers from here are believed: the Private Link Services' NAT subnets."""
    zone: str
    """The availability zone the VM is in, shown by nginx and by the demo app."""
    app_upstream: str = "127.0.0.1:8080"
    """host:port of the provider's app on the VM; nginx forwards every request but health and whoami to it."""
    app_health_path: str = "/"
    """The app's path nginx's /healthz asks: the VM is healthy while the app answers it below 500."""
    demo_app: bool = True
    """Install the built-in demo app, listening on app_upstream."""
    app_cloud_config: Mapping[str, Any] = field(default_factory=dict)
    """The provider's own cloud-config (installs its app): its packages, write_files and runcmd, applied in place."""
    tls: bool = False
    """Serve HTTPS on https_port with the Key Vault certificate."""
    http_on_tls: HttpOnTls = "redirect"
    """With TLS: plain HTTP requests are redirected to HTTPS, or refused (only the health probe is answered)."""
    server_names: tuple[str, ...] = ()
    """The names consumers dial (the service's FQDNs); the certificate must cover them."""
    rate_limit: RateLimit = RateLimit(per_second=50, burst=100)
    http_port: int = HEALTH_PORT
    https_port: int = HTTPS_PORT
    local_health_port: int = LOCAL_HEALTH_PORT
    service_ports: tuple[tuple[int, int], ...] = ()
    """The (HTTP, HTTPS) ports of each Private Link Service after the first: the load balancer sends each service
    to ports of its own, and each is served like the first's."""
    settle_seconds: int = 15
    """How long the load balancer's probe takes to count a VM out or back in (its interval times its threshold,
    and one more interval): a change waits that long after draining a VM and after it is healthy again."""
    health_timeout_seconds: int = 600
    """How long a changed VM may take to answer /healthz before the change fails, naming the VM."""
    root: str = ""
    """Where the VM's file system is: '' on Azure; a test's directory offline (every path is under it)."""
    commands: VmCommands = VmCommands()

    def vm(self, path: str) -> str:
        """A path on the VM, as the software sees it."""
        return self.root + path
