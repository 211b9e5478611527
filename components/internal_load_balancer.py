"""A Standard internal load balancer: the frontend a Private Link Service attaches to."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import authorization, network

from components import _azure_metrics as azure_metrics
from components._package import formerly, type_token
from components.log_workspace import send_diagnostics

FRONTEND = "frontend"
BACKEND_POOL = "web"
PROBE = "http"
PROBE_INTERVAL_SECONDS = 5
PROBE_THRESHOLD = 2
"""Consecutive probes that count a backend out, or back in."""
RULE_NAMES = {80: "http", 443: "https"}


class AdditionalFrontend(TypedDict):
    """Another private frontend on the same balancer and backend pool: one per further Private Link Service."""

    name: str
    """Name of the frontend IP configuration; its rules are <name>-<rule>."""
    backend_port_offset: int
    """Added to each port on the backend side: Azure refuses two rules to one backend port of a pool (without
    floating IP), so each frontend reaches the VMs on ports of its own."""


class InternalLoadBalancerArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the load balancer."""
    location: pulumi.Input[str]
    """Azure region, with availability zones (the frontend is zone-redundant)."""
    load_balancer_name: str
    """Azure name of the load balancer. Explicit, because the rules name the frontend, pool and probe by id before
    the balancer exists."""
    subnet_id: pulumi.Input[str]
    """Subnet of the private frontend (a Private Link Service can publish it)."""
    idle_timeout_minutes: NotRequired[int]
    """TCP idle timeout of the rules, 4-100 minutes (default 15)."""
    ports: NotRequired[list[int]]
    """One TCP rule per port, frontend port = backend port (default [80])."""
    probe_port: NotRequired[int]
    """The HTTP health probe's port (default 80): it stays on plain HTTP when consumers get HTTPS only."""
    probe_path: NotRequired[str]
    """The path the HTTP probe asks for (default /); a 200 answer means the VM is healthy."""
    additional_frontends: NotRequired[list[AdditionalFrontend]]
    """More frontends (Azure allows 8 Private Link Services per balancer, one frontend each), each with the same
    rules; the first frontend and its rules never change with them."""
    diagnostics_workspace_id: NotRequired[pulumi.Input[str]]
    """A Log Analytics workspace to send the balancer's metrics and health events to."""
    tags: NotRequired[dict[str, str]]
    """Tags for the load balancer."""


class InternalLoadBalancer(pulumi.ComponentResource):
    """A Standard internal load balancer ready to be published by a Private Link Service: a zone-redundant private
    frontend, a NIC-based backend pool, an HTTP probe and a TCP rule per port with TCP reset."""

    load_balancer_id: pulumi.Output[str]
    """Resource id of the load balancer."""
    frontend_ip_configuration_id: pulumi.Output[str]
    """Resource id of its frontend: what a Private Link Service publishes (a new frontend means a new alias)."""
    frontend_private_ip: pulumi.Output[str]
    """The frontend's private IP."""
    frontend_ip_configuration_ids: pulumi.Output[dict[str, str]]
    """Every frontend's resource id by its name (the first is "frontend")."""
    frontend_private_ips: pulumi.Output[dict[str, str]]
    """Every frontend's private IP by its name."""
    backend_pool_id: pulumi.Output[str]
    """Resource id of the NIC-based backend pool."""

    def __init__(self, name: str, args: InternalLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            type_token("InternalLoadBalancer"), name, {}, formerly("pls:provider:InternalLoadBalancer", opts)
        )
        diagnostics_workspace_id = args.get("diagnostics_workspace_id")
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        lb_id = pulumi.Output.concat(
            "/subscriptions/",
            client.subscription_id,
            "/resourceGroups/",
            args["resource_group_name"],
            "/providers/Microsoft.Network/loadBalancers/",
            args["load_balancer_name"],
        )

        def child_id(collection: str, child_name: str) -> pulumi.Output[str]:
            return pulumi.Output.concat(lb_id, f"/{collection}/{child_name}")

        # (frontend, rule name prefix, backend port offset): the first keeps the names it always had.
        frontends = [(FRONTEND, "", 0)] + [
            (extra["name"], f"{extra['name']}-", extra["backend_port_offset"])
            for extra in args.get("additional_frontends", [])
        ]

        lb = network.LoadBalancer(
            f"{name}-lb",
            load_balancer_name=args["load_balancer_name"],
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            sku={"name": "Standard", "tier": "Regional"},
            frontend_ip_configurations=[
                {
                    "name": frontend,
                    "private_ip_allocation_method": "Dynamic",
                    "private_ip_address_version": "IPv4",
                    "subnet": {"id": args["subnet_id"]},
                    # Zone-redundant: the frontend survives the loss of any one zone.
                    "zones": ["1", "2", "3"],
                }
                for frontend, _, _ in frontends
            ],
            # The pool is filled by the web VMs' NICs: a Private Link Service needs a NIC-based pool.
            backend_address_pools=[{"name": BACKEND_POOL}],
            probes=[
                {
                    "name": PROBE,
                    "protocol": "Http",
                    "port": args.get("probe_port", 80),
                    "request_path": args.get("probe_path", "/"),
                    "interval_in_seconds": PROBE_INTERVAL_SECONDS,
                    "probe_threshold": PROBE_THRESHOLD,
                }
            ],
            # Rules come and go with the ports; the frontend (and so the service's alias) never changes with them.
            load_balancing_rules=[
                {
                    "name": f"{prefix}{RULE_NAMES.get(port, f'tcp-{port}')}",
                    "protocol": "Tcp",
                    "frontend_port": port,
                    "backend_port": port + offset,
                    "frontend_ip_configuration": {"id": child_id("frontendIPConfigurations", frontend)},
                    "backend_address_pool": {"id": child_id("backendAddressPools", BACKEND_POOL)},
                    "probe": {"id": child_id("probes", PROBE)},
                    "idle_timeout_in_minutes": args.get("idle_timeout_minutes", 15),
                    "enable_tcp_reset": True,
                    "enable_floating_ip": False,
                    "load_distribution": "Default",
                }
                for frontend, prefix, offset in frontends
                for port in args.get("ports", [80])
            ],
            tags={**args.get("tags", {}), "component": name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if diagnostics_workspace_id is not None:
            send_diagnostics(f"{name}-diagnostics", lb.id, azure_metrics.LOAD_BALANCER, diagnostics_workspace_id, self)
        self.load_balancer_id = lb.id
        self.frontend_ip_configuration_id = lb.frontend_ip_configurations.apply(lambda fes: (fes or [])[0].id or "")
        self.frontend_private_ip = lb.frontend_ip_configurations.apply(
            lambda fes: (fes or [])[0].private_ip_address or ""
        )
        self.frontend_ip_configuration_ids = lb.frontend_ip_configurations.apply(
            lambda fes: {fe.name or "": fe.id or "" for fe in fes or []}
        )
        self.frontend_private_ips = lb.frontend_ip_configurations.apply(
            lambda fes: {fe.name or "": fe.private_ip_address or "" for fe in fes or []}
        )
        self.backend_pool_id = lb.backend_address_pools.apply(lambda pools: (pools or [])[0].id or "")
        self.register_outputs(
            {
                "load_balancer_id": self.load_balancer_id,
                "frontend_ip_configuration_id": self.frontend_ip_configuration_id,
                "frontend_private_ip": self.frontend_private_ip,
                "frontend_ip_configuration_ids": self.frontend_ip_configuration_ids,
                "frontend_private_ips": self.frontend_private_ips,
                "backend_pool_id": self.backend_pool_id,
            }
        )
