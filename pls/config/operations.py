"""The keys of operating the service: alerts, where they go, and the Log Analytics workspace."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Field

from pls import azure_rules
from pls.config.errors import shown
from pls.config.keys import Checks, Key, Model, optional, rule

EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
WEBHOOK_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?")
Percent = Field(ge=1, le=99)


def _distinct_emails(emails: list[str]) -> bool:
    return len({e.lower() for e in emails}) == len(emails)


class OperationsKeys(Model):
    """Who is paged and when (the blog post's SLOs among them), and where metrics and logs land."""

    alerts: Annotated[
        bool,
        Key(
            "provider",
            (
                "Azure Monitor alerts: NAT port usage per NAT IP, backend health probes, data path, connections "
                "against Azure's 1000 per service, free addresses in the NAT subnet. Sent to alertEmails and "
                "alertWebhookUrl."
            ),
        ),
    ] = True
    alert_emails: Annotated[
        list[
            Annotated[
                str,
                rule(
                    lambda email: len(email) <= 254 and EMAIL_RE.fullmatch(email) is not None,
                    lambda email: f"{shown(email)} is not an e-mail address",
                    "write it as name@example.com",
                ),
            ]
        ],
        Key(
            "provider",
            ("E-mail addresses the alerts go to (the action group's receivers), at most 20."),
            f"more than {azure_rules.MAX_ALERT_EMAILS} addresses",
            "send the alerts to a list address",
        ),
        Field(max_length=azure_rules.MAX_ALERT_EMAILS),
        rule(_distinct_emails, "lists an address twice", "list it once"),
    ] = []
    alert_webhook_url: Annotated[
        str,
        Key(
            "provider",
            (
                "An https URL the alerts are posted to (common alert schema), e.g. your pager's. Set it as a "
                "secret: pulumi config set --secret alertWebhookUrl <url>."
            ),
        ),
        rule(
            lambda url: not url or (len(url) <= 2048 and WEBHOOK_RE.fullmatch(url) is not None),
            "not an https URL",
            "use the https URL your pager or chat gives for incoming alerts",
        ),
    ] = ""
    nat_port_usage_alert_percent: Annotated[
        int,
        Key(
            "provider",
            (
                "Alert when a NAT IP's port usage (PLSNatPortsUsage) averages above this percentage over 5 "
                "minutes, 1-99."
            ),
            "must be a percentage between 1 and 99",
            "e.g. 80",
        ),
        Percent,
    ] = 80
    connections_alert_percent: Annotated[
        int,
        Key(
            "provider",
            (
                "Alert when the service's private endpoint connections reach this percentage of Azure's 1000 per "
                "service, 1-99."
            ),
            "must be a percentage between 1 and 99",
            "e.g. 80",
        ),
        Percent,
    ] = 80
    nat_subnet_free_addresses_alert_below: Annotated[
        int,
        Key(
            "provider",
            (
                "Alert when the NAT subnet has fewer free addresses than this (room to raise natIpCount), 1 to "
                "the subnet's usable addresses."
            ),
            f"must be between 1 and Azure's {azure_rules.MAX_CONNECTIONS} connections",
            "e.g. 2",
        ),
        Field(ge=1, le=azure_rules.MAX_CONNECTIONS),
    ] = 2
    log_analytics_workspace_id: Annotated[
        str,
        Key(
            "provider",
            (
                "Resource ID of an existing Log Analytics workspace for the diagnostics and the log alerts. "
                "Empty: the stack creates one (logRetentionDays)."
            ),
        ),
        optional(
            azure_rules.WORKSPACE_ID_RE,
            "not a Log Analytics workspace resource ID",
            "use az monitor log-analytics workspace show --query id, or leave it empty to create one",
        ),
    ] = ""
    log_retention_days: Annotated[
        int,
        Key(
            "provider",
            ("Retention of the workspace the stack creates, 30-730 days (the first 31 cost nothing beyond ingestion)."),
            f"a workspace keeps data {azure_rules.RETENTION_DAYS[0]} to {azure_rules.RETENTION_DAYS[1]} days",
            "e.g. 30",
        ),
        Field(ge=azure_rules.RETENTION_DAYS[0], le=azure_rules.RETENTION_DAYS[1]),
    ] = 30
    diagnostics: Annotated[
        bool,
        Key(
            "provider",
            (
                "Send the load balancer's and the Private Link Service's metrics and logs to the workspace, and "
                "nginx's access log (consumer address, LinkID, request, status) from every web VM through the "
                "Azure Monitor agent."
            ),
        ),
    ] = True

    @property
    def needs_workspace(self) -> bool:
        """The connection and NAT-subnet alerts query Azure Resource Graph from a workspace; diagnostics land in it."""
        return self.alerts or self.diagnostics

    @property
    def connections_alert_threshold(self) -> int:
        """Connections to the service that page: connectionsAlertPercent of Azure's 1000."""
        return azure_rules.MAX_CONNECTIONS * self.connections_alert_percent // 100


def check_operations(c: Checks) -> None:
    key = "natSubnetFreeAddressesAlertBelow"
    if c.ok(key, "natSubnetCidr"):
        usable = ipaddress.IPv4Network(c.values["natSubnetCidr"]).num_addresses - azure_rules.AZURE_RESERVED_IPS
        c.check(
            key,
            c.values[key] <= usable,
            f"must be between 1 and the NAT subnet's {usable} addresses",
            "e.g. 2",
        )
