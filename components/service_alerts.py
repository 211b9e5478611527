"""What pages the provider: NAT port pressure, dead backends, and the two SLOs Azure has no metric for.

The blog post's incident: provider-side exhaustion looks to a customer exactly like its own outage. The connection
count and the NAT subnet's free addresses are read from Azure Resource Graph by log search alerts (a workspace is
their scope, a user-assigned identity their reader); the rest are platform metric alerts from azure_metrics.
"""

from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import authorization, managedidentity, monitor

from components import _azure_metrics as azure_metrics
from components._azure_metrics import PlatformMetric
from components._package import formerly, type_token
from components._roles import grant_built_in_role
from components.virtual_network import vnet_of

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
# Azure Resource Graph is refreshed within minutes and the counts move slowly: every 15 minutes is the cheapest
# frequency of a log search alert and soon enough to act before the limit.
QUERY_FREQUENCY = "PT15M"


class WatchedService(TypedDict):
    """A further Private Link Service on the same load balancer, watched like the first."""

    name: str
    """Names its alerts: <component>-<name>-nat-ports, -connections and -nat-subnet-free."""
    private_link_service_id: pulumi.Input[str]
    """The service watched (NAT port usage, connections)."""
    nat_subnet_id: NotRequired[pulumi.Input[str]]
    """Its own NAT subnet, when it does not share the first service's."""


class ServiceAlertsArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the alerts, the action group and the query identity."""
    location: pulumi.Input[str]
    """Region of the log search alerts and their identity (metric alerts and the action group are global)."""
    private_link_service_id: pulumi.Input[str]
    """The service watched (NAT port usage, connections)."""
    load_balancer_id: pulumi.Input[str]
    """The load balancer watched (health probes, data path)."""
    nat_subnet_id: pulumi.Input[str]
    """The subnet the service's NAT IPs come from."""
    workspace_id: pulumi.Input[str]
    """The Log Analytics workspace the Resource Graph queries run from."""
    additional_services: NotRequired[list[WatchedService]]
    """More Private Link Services of the same load balancer: NAT ports, connections and their own NAT subnets."""
    emails: list[str]
    """Who is paged by e-mail."""
    webhook_url: NotRequired[pulumi.Input[str]]
    """An https endpoint the alerts are posted to (common alert schema)."""
    nat_port_usage_percent: int
    """Page when a NAT IP's port usage averages above this over 5 minutes."""
    connections_threshold: int
    """Page when the service has this many private endpoint connections (Azure allows 1000)."""
    nat_subnet_min_free_addresses: int
    """Page when the NAT subnet has fewer free addresses than this."""
    tags: NotRequired[dict[str, str]]
    """Tags for what the component creates."""


STAYS_UNHEALTHY_PERCENT = 25
"""A backend that passed fewer of the last 15 minutes' probes than this is down, not rolling or rebooting."""


@dataclass(frozen=True)
class _MetricRule:
    role: str
    metric: PlatformMetric
    operator: str
    threshold: float
    split_by: str
    severity: int
    description: str
    window: str = "PT5M"
    """How far back each evaluation looks (ISO 8601)."""


def connections_query(service_id: str, threshold: int) -> str:
    """Rows (the service) when it has `threshold` private endpoint connections or more."""
    return (
        'arg("").Resources\n'
        '| where type =~ "microsoft.network/privatelinkservices"'
        f' and id =~ "{service_id}"\n'
        "| extend connections = array_length(properties.privateEndpointConnections)\n"
        f"| where connections >= {threshold}\n"
        "| project id, connections"
    )


def nat_subnet_query(nat_subnet_id: str, min_free: int) -> str:
    """Rows (the subnet) when fewer than `min_free` of its addresses are free (Azure keeps five of every subnet)."""
    vnet_id, subnet_name = vnet_of(nat_subnet_id), nat_subnet_id.rsplit("/", 1)[-1]
    return (
        'arg("").Resources\n'
        f'| where type =~ "microsoft.network/virtualnetworks" and id =~ "{vnet_id}"\n'
        "| mv-expand subnet = properties.subnets\n"
        f'| where subnet.name =~ "{subnet_name}"\n'
        "| extend prefix = toint(split(tostring(subnet.properties.addressPrefix), '/')[1])\n"
        "| extend free = toint(pow(2, 32 - prefix)) - 5 - array_length(subnet.properties.ipConfigurations)\n"
        f"| where free < {min_free}\n"
        "| project id = tostring(subnet.id), free"
    )


def _metric_criteria(rule: _MetricRule) -> monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs:
    # An Args class, not a dict: `criteria` is a union of three types, and the SDK renames the keys of a plain
    # dict only when it knows its type (Azure would get all_of and odata_type, and refuse the rule).
    return monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
        odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
        all_of=[
            monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name=rule.role,
                metric_namespace=rule.metric.namespace,
                metric_name=rule.metric.name,
                time_aggregation=rule.metric.aggregation,
                operator=rule.operator,
                threshold=rule.threshold,
                # One alert per NAT IP, backend or port: the page says which one.
                dimensions=[monitor.MetricDimensionArgs(name=rule.split_by, operator="Include", values=["*"])],
            )
        ],
    )


def _query_criteria(query: pulumi.Input[str]) -> monitor.ScheduledQueryRuleCriteriaArgsDict:
    """Fires when the query returns any row (it filters on the threshold itself)."""
    return {
        "all_of": [
            {
                "query": query,
                "time_aggregation": "Count",
                # The ARM API's operator names (the SDK's ConditionOperator enum carries another API's values).
                "operator": "GreaterThan",
                "threshold": 0,
                "failing_periods": {"number_of_evaluation_periods": 1, "min_failing_periods_to_alert": 1},
            }
        ]
    }


class ServiceAlerts(pulumi.ComponentResource):
    """Azure Monitor alerts for a Private Link Service and its load balancer, sent to an action group."""

    action_group_id: pulumi.Output[str]
    alert_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ServiceAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("ServiceAlerts"), name, {}, formerly("pls:monitor:ServiceAlerts", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        action_group = monitor.ActionGroup(
            f"{name}-action-group",
            resource_group_name=args["resource_group_name"],
            location="Global",
            group_short_name="pls-alerts",
            enabled=True,
            email_receivers=[
                {"name": f"email-{index + 1}", "email_address": email, "use_common_alert_schema": True}
                for index, email in enumerate(args["emails"])
            ],
            webhook_receivers=[{"name": "webhook", "service_uri": args["webhook_url"], "use_common_alert_schema": True}]
            if "webhook_url" in args
            else [],
            tags=tags,
            opts=child,
        )
        actions: list[monitor.MetricAlertActionArgsDict] = [{"action_group_id": action_group.id}]
        rules = [
            _MetricRule(
                "nat-ports",
                azure_metrics.NAT_PORTS_USAGE,
                "GreaterThan",
                args["nat_port_usage_percent"],
                "PrivateLinkServiceIPAddress",
                2,
                "A NAT IP of the Private Link Service is running out of ports: raise natIpCount.",
            ),
            _MetricRule(
                "health-probes",
                azure_metrics.HEALTH_PROBE_STATUS,
                "LessThan",
                # Out of the pool for most of 15 minutes: nginx or the app stays down on that VM. A rollout, a
                # patch or a restart takes a VM out for minutes, and must not page anyone.
                STAYS_UNHEALTHY_PERCENT,
                "BackendIPAddress",
                1,
                "A web VM has failed the load balancer's health probe for most of the last 15 minutes: it stays out "
                "of the pool (nginx or the app is down on it).",
                window="PT15M",
            ),
            _MetricRule(
                "data-path",
                azure_metrics.DATA_PATH_AVAILABILITY,
                "LessThan",
                100,
                "FrontendPort",
                1,
                "The load balancer frontend the service publishes was not reachable in the last 5 minutes.",
            ),
        ]
        scopes = {
            azure_metrics.PRIVATE_LINK_SERVICE: args["private_link_service_id"],
            azure_metrics.LOAD_BALANCER: args["load_balancer_id"],
        }
        more = args.get("additional_services", [])
        # (resource name, rule, scope): the first service's keep the names they always had.
        metric_alerts = [(f"{name}-{rule.role}", rule, scopes[rule.metric.namespace]) for rule in rules] + [
            (f"{name}-{watched['name']}-{rules[0].role}", rules[0], watched["private_link_service_id"])
            for watched in more
        ]
        alerts: list[pulumi.CustomResource] = [
            monitor.MetricAlert(
                alert_name,
                resource_group_name=args["resource_group_name"],
                location="global",
                description=rule.description,
                severity=rule.severity,
                enabled=True,
                scopes=[scope],
                evaluation_frequency="PT1M",
                window_size=rule.window,
                auto_mitigate=True,
                criteria=_metric_criteria(rule),
                actions=actions,
                tags=tags,
                opts=child,
            )
            for alert_name, rule, scope in metric_alerts
        ]

        identity = managedidentity.UserAssignedIdentity(
            f"{name}-query-identity",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            tags=tags,
            opts=child,
        )
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        vnet_id = pulumi.Output.from_input(args["nat_subnet_id"]).apply(vnet_of)
        grants = [
            grant_built_in_role(
                f"{name}-query-{role}",
                scope=scope,
                role_id=guid,
                principal_id=identity.principal_id,
                subscription_id=client.subscription_id,
                parent=self,
            )
            for role, scope, guid in (
                ("reads-service", args["private_link_service_id"], READER),
                ("reads-network", vnet_id, READER),
                ("reads-workspace", args["workspace_id"], LOG_ANALYTICS_READER),
                *((f"reads-{watched['name']}", watched["private_link_service_id"], READER) for watched in more),
            )
        ]
        queries = [
            query
            for prefix, service_id, nat_subnet_id in [
                (name, args["private_link_service_id"], args["nat_subnet_id"]),
                *((f"{name}-{w['name']}", w["private_link_service_id"], w.get("nat_subnet_id")) for w in more),
            ]
            for query in self._queries(prefix, service_id, nat_subnet_id, args)
        ]
        alerts += [
            monitor.ScheduledQueryRule(
                rule_name,
                resource_group_name=args["resource_group_name"],
                location=args["location"],
                kind="LogAlert",
                description=description,
                severity=2,
                enabled=True,
                scopes=[args["workspace_id"]],
                evaluation_frequency=QUERY_FREQUENCY,
                window_size=QUERY_FREQUENCY,
                identity={"type": monitor.IdentityType.USER_ASSIGNED, "user_assigned_identities": [identity.id]},
                criteria=_query_criteria(query),
                actions={"action_groups": [action_group.id]},
                auto_mitigate=True,
                tags=tags,
                # Azure validates the query with the identity when the rule is created.
                opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
            )
            for rule_name, query, description in queries
        ]
        self.action_group_id = action_group.id
        self.alert_ids = pulumi.Output.all(*[alert.id for alert in alerts])
        self.register_outputs({"action_group_id": self.action_group_id, "alert_ids": self.alert_ids})

    @staticmethod
    def _queries(
        prefix: str,
        service_id: pulumi.Input[str],
        nat_subnet_id: pulumi.Input[str] | None,
        args: ServiceAlertsArgs,
    ) -> list[tuple[str, pulumi.Output[str], str]]:
        """A service's Resource Graph alerts (name, query, description): its connections, and its NAT subnet's
        free addresses when the subnet is its own (a shared one is watched once)."""
        queries = [
            (
                f"{prefix}-connections",
                pulumi.Output.from_input(service_id).apply(
                    lambda service: connections_query(service, args["connections_threshold"])
                ),
                f"The Private Link Service has {args['connections_threshold']} or more private endpoint connections "
                "(Azure allows 1000): assign new customers to another service (scripts/onboard picks one).",
            )
        ]
        if nat_subnet_id is not None:
            queries.append(
                (
                    f"{prefix}-nat-subnet-free",
                    pulumi.Output.from_input(nat_subnet_id).apply(
                        lambda subnet: nat_subnet_query(subnet, args["nat_subnet_min_free_addresses"])
                    ),
                    # Word for word as deployed alerts have it: a new text would update every provider's rule.
                    f"The NAT subnet has fewer than {args['nat_subnet_min_free_addresses']} free addresses: "
                    "natIpCount cannot grow; move to a larger NAT subnet (README, Troubleshooting).",
                )
            )
        return queries
