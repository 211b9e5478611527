"""The Log Analytics workspace the diagnostics land in (created, or an existing one), and a VM text log collected
into a table of its own by the Azure Monitor agent through a data collection rule."""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import monitor, operationalinsights

from components import _azure_metrics as azure_metrics
from components._package import formerly, type_token

KQL_CONVERSIONS = {"string": "tostring", "int": "toint", "long": "tolong", "real": "toreal"}


class TextLog(TypedDict):
    """Lines `<ISO 8601 time> <JSON object>` in a file on the VMs, one column per JSON field."""

    file_pattern: str
    """The file (or glob) on each VM."""
    table_name: str
    """The workspace table, ending in _CL (a custom table)."""
    columns: list[list[str]]
    """[JSON field and column name, Log Analytics type: string, int, long or real] per column."""


class LogWorkspaceArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the workspace (when created) and the data collection rule."""
    location: pulumi.Input[str]
    """Azure region."""
    existing_workspace_id: NotRequired[str]
    """Use this workspace (same subscription and region) instead of creating one in the resource group."""
    retention_days: NotRequired[int]
    """Retention of the workspace created here (default 30)."""
    text_log: NotRequired[TextLog]
    """A log to collect from the VMs that get `data_collection_rule_id`."""
    tags: NotRequired[dict[str, str]]
    """Tags for what the component creates."""


def text_log_transform(text_log: TextLog) -> str:
    """The data collection rule's KQL: the leading time becomes TimeGenerated, each JSON field its column."""
    columns = ", ".join(f"{name} = {KQL_CONVERSIONS[kind]}(entry.{name})" for name, kind in text_log["columns"])
    return (
        "source\n"
        '| extend entry = parse_json(substring(RawData, indexof(RawData, " ") + 1))\n'
        f'| project TimeGenerated = todatetime(substring(RawData, 0, indexof(RawData, " "))), {columns}'
    )


def _table_schema(text_log: TextLog) -> operationalinsights.SchemaArgsDict:
    columns: list[operationalinsights.ColumnArgsDict] = [{"name": "TimeGenerated", "type": "dateTime"}]
    columns += [{"name": column, "type": kind} for column, kind in text_log["columns"]]
    return {"name": text_log["table_name"], "columns": columns}


class LogWorkspace(pulumi.ComponentResource):
    """A Log Analytics workspace (created, or one that exists) and a data collection rule for a text log."""

    workspace_id: pulumi.Output[str]
    data_collection_rule_id: pulumi.Output[str] | None
    """Associate a VM with it (and give it the Azure Monitor agent) to collect the text log; None without one."""

    def __init__(self, name: str, args: LogWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("LogWorkspace"), name, {}, formerly("pls:monitor:LogWorkspace", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        workspace_group: pulumi.Input[str]
        existing_workspace_id = args.get("existing_workspace_id")
        if existing_workspace_id:
            workspace_id: pulumi.Output[str] = pulumi.Output.from_input(existing_workspace_id)
            workspace_group = existing_workspace_id.split("/")[4]
            workspace_name: pulumi.Input[str] = existing_workspace_id.rsplit("/", 1)[-1]
        else:
            workspace = operationalinsights.Workspace(
                f"{name}-workspace",
                resource_group_name=args["resource_group_name"],
                location=args["location"],
                sku={"name": operationalinsights.WorkspaceSkuNameEnum.PER_GB2018},
                retention_in_days=args.get("retention_days", 30),
                tags=tags,
                opts=child,
            )
            workspace_id, workspace_group, workspace_name = workspace.id, args["resource_group_name"], workspace.name
        self.workspace_id = workspace_id
        self.data_collection_rule_id = None
        log = args.get("text_log")
        if log:
            table = operationalinsights.Table(
                f"{name}-table",
                resource_group_name=workspace_group,
                workspace_name=workspace_name,
                table_name=log["table_name"],
                schema=_table_schema(log),
                opts=child,
            )
            source_stream = f"Custom-Text-{log['table_name']}"
            rule = monitor.DataCollectionRule(
                f"{name}-collection-rule",
                resource_group_name=args["resource_group_name"],
                location=args["location"],
                kind="Linux",
                description=f"{log['file_pattern']} from the VMs into {log['table_name']}",
                stream_declarations={
                    source_stream: {
                        "columns": [
                            {"name": "TimeGenerated", "type": "datetime"},
                            {"name": "RawData", "type": "string"},
                        ]
                    }
                },
                data_sources={
                    "log_files": [
                        {
                            "name": "text-log",
                            "streams": [source_stream],
                            "file_patterns": [log["file_pattern"]],
                            "format": "text",
                            "settings": {"text": {"record_start_timestamp_format": "ISO 8601"}},
                        }
                    ]
                },
                destinations={"log_analytics": [{"name": "workspace", "workspace_resource_id": workspace_id}]},
                data_flows=[
                    {
                        "streams": [source_stream],
                        "destinations": ["workspace"],
                        "transform_kql": text_log_transform(log),
                        "output_stream": f"Custom-{log['table_name']}",
                    }
                ],
                tags=tags,
                # The rule's output stream must exist as a table first.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[table]),
            )
            self.data_collection_rule_id = rule.id
        self.register_outputs({"workspace_id": self.workspace_id})


def send_diagnostics(
    name: str,
    resource_id: pulumi.Input[str],
    resource_type: str,
    workspace_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> monitor.DiagnosticSetting:
    """A diagnostic setting sending every metric and log category Azure has for `resource_type` to the workspace."""
    return monitor.DiagnosticSetting(
        name,
        name="to-log-analytics",
        resource_uri=resource_id,
        workspace_id=workspace_id,
        log_analytics_destination_type="Dedicated",
        metrics=[{"category": "AllMetrics", "enabled": True}],
        logs=[{"category": category, "enabled": True} for category in azure_metrics.LOG_CATEGORIES[resource_type]],
        opts=pulumi.ResourceOptions(parent=parent),
    )
