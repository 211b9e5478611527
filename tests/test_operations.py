"""Operations under mocks: the alerts page on the right metric of the right resource, the lock guards the alias,
the diagnostics and nginx's access log reach the workspace, and each switch removes exactly its part."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import rpc

from components import _azure_metrics as azure_metrics
from offline.records import Registration, Simulation
from pls.nginx_site import ACCESS_LOG, ACCESS_LOG_COLUMNS, ACCESS_LOG_TABLE
from tests.helpers.stacks import run_stack

OPS: dict[str, Any] = {
    "alertEmails": ["oncall@saas.example.com", "platform@saas.example.com"],
    "alertWebhookUrl": "https://hooks.saas.example.com/azure-monitor?token=abc",
    "natPortUsageAlertPercent": 70,
    "connectionsAlertPercent": 90,
    "natSubnetFreeAddressesAlertBelow": 5,
    "lockService": True,
    "alerts": True,
    "diagnostics": True,
    "logAnalyticsWorkspaceId": "",
}
"""Set in full: the stack file is the user's to edit (offboarding turns lockService off for a while)."""
WORKSPACE = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/ops"
    "/providers/Microsoft.OperationalInsights/workspaces/ops-logs"
)
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"


@pytest.fixture(scope="module")
def ops() -> Simulation:
    return run_stack("provider", **OPS)


def _alert(sim: Simulation, role: str) -> Registration:
    return next(r for r in sim.of_type("monitor:MetricAlert") if r.name == f"alerts-{role}")


@pytest.mark.parametrize(
    ("role", "metric", "operator", "threshold", "split_by", "window"),
    [
        ("nat-ports", azure_metrics.NAT_PORTS_USAGE, "GreaterThan", 70, "PrivateLinkServiceIPAddress", "PT5M"),
        # A VM that stays out of the pool, not one a rollout or a patch takes out for minutes.
        ("health-probes", azure_metrics.HEALTH_PROBE_STATUS, "LessThan", 25, "BackendIPAddress", "PT15M"),
        ("data-path", azure_metrics.DATA_PATH_AVAILABILITY, "LessThan", 100, "FrontendPort", "PT5M"),
    ],
)
def test_each_metric_alert_watches_the_published_metric_of_its_resource(
    ops: Simulation,
    role: str,
    metric: azure_metrics.PlatformMetric,
    operator: str,
    threshold: int,
    split_by: str,
    window: str,
) -> None:
    assert metric in azure_metrics.METRICS
    alert = _alert(ops, role)
    owner = {
        azure_metrics.PRIVATE_LINK_SERVICE: ops.one("network:PrivateLinkService"),
        azure_metrics.LOAD_BALANCER: ops.one("network:LoadBalancer"),
    }[metric.namespace]
    assert alert.inputs["scopes"] == [owner.outputs["id"]]
    (criterion,) = alert.inputs["criteria"]["allOf"]
    assert alert.inputs["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    assert (criterion["metricNamespace"], criterion["metricName"], criterion["timeAggregation"]) == (
        metric.namespace,
        metric.name,
        metric.aggregation,
    )
    assert (criterion["operator"], criterion["threshold"]) == (operator, threshold)
    (dimension,) = criterion["dimensions"]
    assert dimension == {"name": split_by, "operator": "Include", "values": ["*"]}
    assert split_by in metric.dimensions
    assert alert.inputs["actions"] == [{"actionGroupId": ops.one("monitor:ActionGroup").outputs["id"]}]
    assert (alert.inputs["windowSize"], alert.inputs["evaluationFrequency"]) == (window, "PT1M")


def test_the_action_group_pages_every_configured_receiver(ops: Simulation) -> None:
    group = ops.one("monitor:ActionGroup")
    assert [r["emailAddress"] for r in group.inputs["emailReceivers"]] == OPS["alertEmails"]
    # The webhook URL usually carries a token: it reaches the engine as a secret, so state and logs hide it.
    webhooks = group.inputs["webhookReceivers"]
    assert webhooks[rpc._special_sig_key] == rpc._special_secret_sig
    assert [r["serviceUri"] for r in webhooks["value"]] == [OPS["alertWebhookUrl"]]
    assert all(r["useCommonAlertSchema"] for r in group.inputs["emailReceivers"] + webhooks["value"])
    assert len(group.inputs["groupShortName"]) <= 12  # Azure's limit
    nobody = run_stack("provider", alertEmails=[], alertWebhookUrl="").one("monitor:ActionGroup")
    assert nobody.inputs["emailReceivers"] == [] and nobody.inputs["webhookReceivers"] == []


def test_the_two_slos_are_resource_graph_queries_with_a_reader_identity(ops: Simulation) -> None:
    workspace = ops.one("operationalinsights:Workspace")
    service = ops.one("network:PrivateLinkService")
    nat_subnet = next(s for s in ops.of_type("network:Subnet") if s.inputs["subnetName"] == "pls-nat")
    identity = ops.one("managedidentity:UserAssignedIdentity", under="ServiceAlerts")
    grants = ops.of_type("authorization:RoleAssignment", under="ServiceAlerts")
    vnet_id = nat_subnet.outputs["id"].split("/subnets/")[0]
    assert {(g.inputs["scope"], g.inputs["roleDefinitionId"].rsplit("/", 1)[1]) for g in grants} == {
        (service.outputs["id"], READER),
        (vnet_id, READER),
        (workspace.outputs["id"], LOG_ANALYTICS_READER),
    }
    assert all(g.inputs["principalId"] == identity.outputs["principalId"] for g in grants)
    rules = {r.name: r for r in ops.of_type("monitor:ScheduledQueryRule")}
    assert set(rules) == {"alerts-connections", "alerts-nat-subnet-free"}
    for rule in rules.values():
        assert rule.inputs["kind"] == "LogAlert" and rule.inputs["scopes"] == [workspace.outputs["id"]]
        assert rule.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity.outputs["id"]]}
        assert all(ops.depends_on(rule, grant) for grant in grants), "Azure checks the query with the identity"
        (condition,) = rule.inputs["criteria"]["allOf"]
        assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == (
            "Count",
            "GreaterThan",
            0,
        )
        assert condition["query"].startswith('arg("").Resources')
        assert rule.inputs["actions"] == {"actionGroups": [ops.one("monitor:ActionGroup").outputs["id"]]}
    connections = rules["alerts-connections"].inputs["criteria"]["allOf"][0]["query"]
    assert f'id =~ "{service.outputs["id"]}"' in connections and "connections >= 900" in connections
    free = rules["alerts-nat-subnet-free"].inputs["criteria"]["allOf"][0]["query"]
    assert f'id =~ "{vnet_id}"' in free and 'subnet.name =~ "pls-nat"' in free and "free < 5" in free


def test_the_alias_is_locked_in_azure_and_the_lock_can_be_lifted(ops: Simulation) -> None:
    lock = ops.one("authorization:ManagementLockByScope")
    assert lock.inputs["scope"] == ops.one("network:PrivateLinkService").outputs["id"]
    assert lock.inputs["level"] == "CanNotDelete" and "lockService" in lock.inputs["notes"]
    assert run_stack("provider", lockService=False).of_type("ManagementLockByScope") == []


def test_diagnostics_and_the_access_log_reach_the_workspace(ops: Simulation) -> None:
    workspace = ops.one("operationalinsights:Workspace")
    assert workspace.inputs["retentionInDays"] == 30 and workspace.inputs["sku"] == {"name": "PerGB2018"}
    settings = {s.inputs["resourceUri"]: s for s in ops.of_type("monitor:DiagnosticSetting")}
    sources = {
        ops.one("network:LoadBalancer").outputs["id"]: azure_metrics.LOAD_BALANCER,
        ops.one("network:PrivateLinkService").outputs["id"]: azure_metrics.PRIVATE_LINK_SERVICE,
    }
    assert set(settings) == set(sources)
    for resource_id, resource_type in sources.items():
        setting = settings[resource_id]
        assert setting.inputs["workspaceId"] == workspace.outputs["id"]
        assert setting.inputs["metrics"] == [{"category": "AllMetrics", "enabled": True}]
        assert [log["category"] for log in setting.inputs.get("logs", [])] == list(
            azure_metrics.LOG_CATEGORIES[resource_type]
        )
    table = ops.one("operationalinsights:Table")
    columns = [(c["name"], c["type"]) for c in table.inputs["schema"]["columns"]]
    assert table.inputs["tableName"] == ACCESS_LOG_TABLE
    assert columns == [("TimeGenerated", "dateTime"), *((name, kind) for name, _, kind in ACCESS_LOG_COLUMNS)]
    rule = ops.one("monitor:DataCollectionRule")
    (source,) = rule.inputs["dataSources"]["logFiles"]
    assert source["filePatterns"] == [ACCESS_LOG] and source["format"] == "text"
    (flow,) = rule.inputs["dataFlows"]
    assert flow["outputStream"] == f"Custom-{ACCESS_LOG_TABLE}" and flow["streams"] == source["streams"]
    assert all(f"{name} = " in flow["transformKql"] for name, _, _ in ACCESS_LOG_COLUMNS)
    assert rule.inputs["destinations"]["logAnalytics"][0]["workspaceResourceId"] == workspace.outputs["id"]
    assert ops.depends_on(rule, table), "the rule's output stream is the table"
    vms = ops.of_type("compute:VirtualMachine")
    agents = [e for e in ops.of_type("VirtualMachineExtension") if e.inputs["type"] == "AzureMonitorLinuxAgent"]
    associations = ops.of_type("monitor:DataCollectionRuleAssociation")
    assert sorted(a.inputs["vmName"] for a in agents) == sorted(vm.outputs["name"] for vm in vms)
    assert sorted(a.inputs["resourceUri"] for a in associations) == sorted(vm.outputs["id"] for vm in vms)
    assert all(a.inputs["dataCollectionRuleId"] == rule.outputs["id"] for a in associations)
    assert all(vm.inputs["identity"]["type"].startswith("SystemAssigned") for vm in vms), "the agent signs in so"
    assert ops.outputs["logAnalyticsWorkspaceId"] == workspace.outputs["id"]


def _types(sim: Simulation) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in sim.resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    return counts


def _difference(more: Simulation, fewer: Simulation) -> dict[str, int]:
    base = _types(fewer)
    return {t: n - base.get(t, 0) for t, n in _types(more).items() if n != base.get(t, 0)}


def test_each_switch_removes_exactly_its_part(ops: Simulation) -> None:
    vms = len(ops.of_type("compute:VirtualMachine"))
    assert _difference(ops, run_stack("provider", **{**OPS, "alerts": False})) == {
        "pls-saas:index:ServiceAlerts": 1,
        "azure-native:monitor:ActionGroup": 1,
        "azure-native:monitor:MetricAlert": 3,
        "azure-native:monitor:ScheduledQueryRule": 2,
        "azure-native:managedidentity:UserAssignedIdentity": 1,
        "azure-native:authorization:RoleAssignment": 3,
    }
    assert _difference(ops, run_stack("provider", **{**OPS, "diagnostics": False})) == {
        "azure-native:monitor:DiagnosticSetting": 2,
        "azure-native:operationalinsights:Table": 1,
        "azure-native:monitor:DataCollectionRule": 1,
        "azure-native:compute:VirtualMachineExtension": vms,
        "azure-native:monitor:DataCollectionRuleAssociation": vms,
    }
    neither = run_stack("provider", **{**OPS, "alerts": False, "diagnostics": False})
    assert not any(
        r.type.startswith(("azure-native:monitor:", "azure-native:operationalinsights:")) for r in neither.resources
    )
    assert "logAnalyticsWorkspaceId" not in neither.outputs


def test_an_existing_workspace_is_used_and_none_is_created() -> None:
    sim = run_stack("provider", **{**OPS, "logAnalyticsWorkspaceId": WORKSPACE})
    assert sim.of_type("operationalinsights:Workspace") == []
    table = sim.one("operationalinsights:Table")
    assert (table.inputs["resourceGroupName"], table.inputs["workspaceName"]) == ("ops", "ops-logs")
    assert all(s.inputs["workspaceId"] == WORKSPACE for s in sim.of_type("monitor:DiagnosticSetting"))
    assert all(r.inputs["scopes"] == [WORKSPACE] for r in sim.of_type("monitor:ScheduledQueryRule"))
    assert sim.outputs["logAnalyticsWorkspaceId"] == WORKSPACE
