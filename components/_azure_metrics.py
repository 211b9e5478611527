"""The Azure Monitor platform metrics the alerts and diagnostics use, exactly as Microsoft publishes them.

Source: "Supported metrics" reference, learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
(microsoft-network-privatelinkservices-metrics, -loadbalancers-metrics, -natgateways-metrics; generated from
Azure's metric definitions, MicrosoftDocs/azure-reference-other), read 2026-11-24. A misspelt metric name,
namespace or dimension deploys without complaint and never fires: every alert is built from, and tested
against, this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformMetric:
    namespace: str
    """The resource type, which is the metric namespace of a platform metric."""
    name: str
    """The name in the REST API (not the portal's display name)."""
    unit: str
    aggregation: str
    """The aggregation Microsoft lists for it."""
    dimensions: tuple[str, ...]


PRIVATE_LINK_SERVICE = "Microsoft.Network/privateLinkServices"
LOAD_BALANCER = "Microsoft.Network/loadBalancers"

NAT_PORTS_USAGE = PlatformMetric(
    PRIVATE_LINK_SERVICE,
    "PLSNatPortsUsage",
    "Percent",
    "Average",
    ("PrivateLinkServiceId", "PrivateLinkServiceIPAddress"),
)
HEALTH_PROBE_STATUS = PlatformMetric(
    LOAD_BALANCER,
    "DipAvailability",
    "Count",
    "Average",
    ("ProtocolType", "BackendPort", "FrontendIPAddress", "FrontendPort", "BackendIPAddress"),
)
DATA_PATH_AVAILABILITY = PlatformMetric(
    LOAD_BALANCER, "VipAvailability", "Count", "Average", ("FrontendIPAddress", "FrontendPort")
)

METRICS = (NAT_PORTS_USAGE, HEALTH_PROBE_STATUS, DATA_PATH_AVAILABILITY)

# "Supported logs" and "Supported metrics" references (same source and date): both resource types export all
# their metrics through a diagnostic setting; the load balancer has one log category, a Private Link Service none.
# (A NAT gateway's metrics cannot be exported by a diagnostic setting at all: they stay in Azure Monitor metrics.)
LOG_CATEGORIES = {LOAD_BALANCER: ("LoadBalancerHealthEvent",), PRIVATE_LINK_SERVICE: ()}
