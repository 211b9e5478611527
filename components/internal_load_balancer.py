"""A Standard internal load balancer: the frontend a Private Link Service attaches to."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, network

from components import _azure_metrics as azure_metrics
from components.log_workspace import send_diagnostics

FRONTEND = "frontend"
BACKEND_POOL = "web"
PROBE = "http"
RULE_NAMES = {80: "http", 443: "https"}


@dataclass(frozen=True)
class InternalLoadBalancerArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    load_balancer_name: str
    """Explicit, because the rule must name the frontend, pool and probe by id before the balancer exists."""
    subnet_id: pulumi.Input[str]
    idle_timeout_minutes: int
    ports: tuple[int, ...] = (80,)
    """One TCP rule per port, frontend port = backend port (80 for HTTP, 443 for HTTPS)."""
    probe_port: int = 80
    """The health probe's port (HTTP): it stays on plain HTTP when consumers get HTTPS only."""
    probe_path: str = "/"
    """The path the HTTP probe asks for; a 200 answer means the VM is healthy."""
    diagnostics_workspace_id: pulumi.Input[str] | None = None
    """A Log Analytics workspace to send the balancer's metrics and health events to, or None."""
    tags: dict[str, str] = field(default_factory=dict)


class InternalLoadBalancer(pulumi.ComponentResource):
    load_balancer_id: pulumi.Output[str]
    frontend_ip_configuration_id: pulumi.Output[str]
    frontend_private_ip: pulumi.Output[str]
    backend_pool_id: pulumi.Output[str]

    def __init__(self, name: str, args: InternalLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:provider:InternalLoadBalancer", name, {}, opts)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        lb_id = pulumi.Output.concat(
            "/subscriptions/",
            client.subscription_id,
            "/resourceGroups/",
            args.resource_group_name,
            "/providers/Microsoft.Network/loadBalancers/",
            args.load_balancer_name,
        )

        def child_id(collection: str, child_name: str) -> pulumi.Output[str]:
            return pulumi.Output.concat(lb_id, f"/{collection}/{child_name}")

        lb = network.LoadBalancer(
            f"{name}-lb",
            load_balancer_name=args.load_balancer_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": "Standard", "tier": "Regional"},
            frontend_ip_configurations=[
                {
                    "name": FRONTEND,
                    "private_ip_allocation_method": "Dynamic",
                    "private_ip_address_version": "IPv4",
                    "subnet": {"id": args.subnet_id},
                    # Zone-redundant: the frontend survives the loss of any one zone.
                    "zones": ["1", "2", "3"],
                }
            ],
            # The pool is filled by the web VMs' NICs: a Private Link Service needs a NIC-based pool.
            backend_address_pools=[{"name": BACKEND_POOL}],
            probes=[
                {
                    "name": PROBE,
                    "protocol": "Http",
                    "port": args.probe_port,
                    "request_path": args.probe_path,
                    "interval_in_seconds": 5,
                    "probe_threshold": 2,
                }
            ],
            # Rules come and go with the ports; the frontend (and so the service's alias) never changes with them.
            load_balancing_rules=[
                {
                    "name": RULE_NAMES.get(port, f"tcp-{port}"),
                    "protocol": "Tcp",
                    "frontend_port": port,
                    "backend_port": port,
                    "frontend_ip_configuration": {"id": child_id("frontendIPConfigurations", FRONTEND)},
                    "backend_address_pool": {"id": child_id("backendAddressPools", BACKEND_POOL)},
                    "probe": {"id": child_id("probes", PROBE)},
                    "idle_timeout_in_minutes": args.idle_timeout_minutes,
                    "enable_tcp_reset": True,
                    "enable_floating_ip": False,
                    "load_distribution": "Default",
                }
                for port in args.ports
            ],
            tags={**args.tags, "component": name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.diagnostics_workspace_id is not None:
            send_diagnostics(
                f"{name}-diagnostics", lb.id, azure_metrics.LOAD_BALANCER, args.diagnostics_workspace_id, self
            )
        self.load_balancer_id = lb.id
        self.frontend_ip_configuration_id = lb.frontend_ip_configurations.apply(lambda fes: (fes or [])[0].id or "")
        self.frontend_private_ip = lb.frontend_ip_configurations.apply(
            lambda fes: (fes or [])[0].private_ip_address or ""
        )
        self.backend_pool_id = lb.backend_address_pools.apply(lambda pools: (pools or [])[0].id or "")
        self.register_outputs(
            {
                "load_balancer_id": self.load_balancer_id,
                "frontend_ip_configuration_id": self.frontend_ip_configuration_id,
                "frontend_private_ip": self.frontend_private_ip,
                "backend_pool_id": self.backend_pool_id,
            }
        )
