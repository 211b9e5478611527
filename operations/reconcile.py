"""scripts/reconcile: what Azure has against what the registry says, for every Private Link Service of every provider
stack here (the nightly drift workflow runs it; run it yourself any time).

    scripts/reconcile                      every provider stack
    scripts/reconcile provider --json out.json --summary "$GITHUB_STEP_SUMMARY"

For each service, from its provider stack's outputs (through the Automation API) and Azure's own view of it
(`az network private-link-service show`), it reports, each with the command that resolves it:
- a connection no registry entry or stack file accounts for: an unknown request (its subscription, its request
  message), or a connection approved or rejected outside the code;
- a connection whose status is not the registry's decision (not applied yet, or changed by hand);
- a decision whose endpoint has gone (it was connected at the stack's last deployment, and is no more);
- a subscription in the service's visibility or auto-approval that no customer has, or a customer's missing there.
Requests of registered customers that wait for a decision, and decisions that wait for their endpoint, are listed
too; they are not findings. Exit status: 0 nothing found, 1 findings, 2 cannot start (no Pulumi CLI or az, a
provider stack not deployed, a stack file with problems: named).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from offline.engine import ROOT
from offline.repository import every_stack_settings
from operations.exits import CannotStartError, cli_output, run
from operations.fleet import pulumi_workspace, stderr_of
from operations.registry_files import provider_settings, providers, registry
from pls import contract
from pls.config import ConsumerSettings, ProviderSettings
from pls.config.registry import Customer
from pls.config.services import PublishedService

AZ_TIMEOUT = 120


@dataclass(frozen=True)
class Finding:
    provider: str
    service: str
    kind: str
    subject: str
    """The endpoint or subscription it is about."""
    detail: str
    fix: str


@dataclass
class Known:
    """What the repository says about who connects to one provider's services."""

    customer_of_subscription: dict[str, str] = field(default_factory=dict)
    customer_of_endpoint: dict[str, str] = field(default_factory=dict)


def customers_of_stack_endpoints(root: Path) -> dict[str, str]:
    """The customer of each private endpoint a consumer stack file here deploys (the first file's, by name)."""
    found: dict[str, str] = {}
    for settings in every_stack_settings(root).values():
        if isinstance(settings, ConsumerSettings) and settings.customer:
            found.setdefault(settings.private_endpoint_id.lower(), settings.customer)
    return found


def _known(provider: str, customers: tuple[Customer, ...], stack_endpoints: dict[str, str]) -> Known:
    """The registry's entries for `provider` first; an endpoint no decision names, by the stack file deploying it."""
    known = Known(customer_of_endpoint=dict(stack_endpoints))
    for customer in customers:
        if customer.provider == provider:
            known.customer_of_subscription |= {s.lower(): customer.name for s in customer.subscriptions}
            known.customer_of_endpoint |= {d.endpoint.lower(): customer.name for d in customer.decisions}
    return known


def reconcile_service(
    provider: str,
    service: PublishedService,
    live: dict[str, Any],
    known: Known,
    connected_before: frozenset[str],
) -> tuple[list[Finding], list[str]]:
    """The findings about one service (Azure's view: `live`, as az shows it), and what merely waits."""
    findings: list[Finding] = []
    waiting: list[str] = []

    def found(kind: str, subject: str, detail: str, fix: str) -> None:
        findings.append(Finding(provider, service.name, kind, subject, detail, fix))

    live_connections = {
        str(c["privateEndpoint"]["id"]).lower(): c for c in live.get("privateEndpointConnections") or []
    }
    for key, connection in sorted(live_connections.items()):
        endpoint = str(connection["privateEndpoint"]["id"])
        state = connection.get("privateLinkServiceConnectionState") or {}
        status, said = str(state.get("status", "")), str(state.get("description", ""))
        subscription = endpoint.split("/")[2].lower() if endpoint.count("/") >= 2 else ""
        customer = known.customer_of_endpoint.get(key) or known.customer_of_subscription.get(subscription)
        expected = service.fate(subscription, endpoint)
        if status == "Disconnected" or status == expected:
            if status == "Pending":
                waiting.append(f"{customer or subscription}'s request from {endpoint} waits for your decision")
            continue
        approve = _approve(customer, endpoint, status, provider, service.name, subscription)
        if customer is None:
            kind = "unknown request" if status == "Pending" else f"{status.lower()} outside the code"
            found(kind, endpoint, f"subscription {subscription}, request message: {said!r}", approve)
        elif expected == "Pending":
            found(f"{status.lower()} outside the code", endpoint, f"{customer}'s endpoint ({said!r})", approve)
        elif status == "Pending":
            found(
                "decision not applied",
                endpoint,
                f"the registry says {expected} for {customer}; Azure still has it Pending",
                f"scripts/fleet up {provider} --refresh",
            )
        else:
            found(
                "status differs from the decision",
                endpoint,
                f"Azure has {status}, the registry {expected} ({customer})",
                f"scripts/fleet up {provider} --refresh restores the registry's decision; or record Azure's: {approve}",
            )
    for decision in service.decisions:
        endpoint = decision["private_endpoint_id"]
        connection = live_connections.get(endpoint.lower())
        status = (connection or {}).get("privateLinkServiceConnectionState", {}).get("status")
        if connection is not None and status != "Disconnected":
            continue
        customer = known.customer_of_endpoint.get(endpoint.lower(), "?")
        if endpoint.lower() in connected_before:
            found(
                "endpoint gone",
                endpoint,
                f"{customer}'s endpoint was connected at the last deployment and is no more",
                f"scripts/offboard {customer} (or, if it keeps other endpoints, remove this decision from "
                f"customers/{customer}.yaml)",
            )
        else:
            waiting.append(f"the decision about {endpoint} ({customer}) waits for its endpoint to ask")
    if service.visibility != ("*",):
        findings += _subscription_lists(provider, service, live, known)
    return findings, waiting


def _approve(customer: str | None, endpoint: str, status: str, provider: str, service: str, subscription: str) -> str:
    reject = " --reject" if status == "Rejected" else ""
    approve = f'scripts/approve {customer or "<customer>"} --endpoint-id {endpoint} --reason "<why>"{reject}'
    if customer is None:
        onboard = f"scripts/onboard <customer> --subscription {subscription} --provider {provider} --service {service}"
        return f"{onboard} --no-stack, then {approve} (or --reject)"
    return approve if reject or status != "Pending" else f"{approve} (or --reject)"


def _subscription_lists(provider: str, service: PublishedService, live: dict[str, Any], known: Known) -> list[Finding]:
    findings = []
    for key, expected in (("visibility", service.visibility), ("autoApproval", service.auto_approval)):
        have = {s.lower() for s in (live.get(key) or {}).get("subscriptions") or []}
        for subscription in sorted(have - set(expected)):
            onboard = (
                f"scripts/onboard <customer> --subscription {subscription} --provider {provider} "
                f"--service {service.name} --no-stack"
            )
            findings.append(
                Finding(
                    provider,
                    service.name,
                    f"{key} without a customer",
                    subscription,
                    f"in the service's {key}, but no registry entry has it (added by hand?)",
                    f"scripts/fleet up {provider} --refresh removes it; to keep it: {onboard}",
                )
            )
        for subscription in sorted(set(expected) - have):
            customer = known.customer_of_subscription.get(subscription, "?")
            findings.append(
                Finding(
                    provider,
                    service.name,
                    f"missing from {key}",
                    subscription,
                    f"{customer}'s subscription is not in the service's {key}",
                    f"scripts/fleet up {provider} --refresh",
                )
            )
    return findings


# --- Azure's view and the stacks' outputs --------------------------------------------------------------------------


def live_service(service_id: str) -> dict[str, Any]:
    """The service as Azure has it now (`az network private-link-service show`)."""
    shown = cli_output(
        ["az", "network", "private-link-service", "show", "--ids", service_id, "--output", "json"],
        what=f"az network private-link-service show --ids {service_id}",
        install="needs the Azure CLI, logged in: https://learn.microsoft.com/cli/azure/install-azure-cli",
        timeout=AZ_TIMEOUT,
    )
    try:
        data: dict[str, Any] = json.loads(shown)
    except ValueError:
        raise CannotStartError(f"az's answer about {service_id} is not JSON") from None
    return data


def _outputs(workspace: auto.LocalWorkspace, stack: str) -> dict[str, Any]:
    try:
        return {name: output.value for name, output in workspace.stack_outputs(stack).items()}
    except auto.CommandError as error:
        said = stderr_of(error).splitlines()[-1][:300]
        raise CannotStartError(f"the outputs of stack {stack} cannot be read ({said}): is it deployed?") from None


def reconcile(root: Path, stacks: list[str]) -> tuple[list[Finding], list[str]]:
    customers = registry(root).customers
    workspace = pulumi_workspace(root)
    stack_endpoints = customers_of_stack_endpoints(root)
    findings: list[Finding] = []
    waiting: list[str] = []
    for provider in stacks:
        settings: ProviderSettings = provider_settings(provider, root)
        outputs = _outputs(workspace, provider)
        ids = outputs.get(contract.SERVICE_IDS) or {}
        connected = frozenset(
            str(c.get("privateEndpointId", "")).lower() for c in outputs.get(contract.CONNECTIONS) or []
        )
        known = _known(provider, customers, stack_endpoints)
        for service in settings.services:
            if service.name not in ids:
                missing = f"its stack's {contract.SERVICE_IDS} output has no {service.name}"
                fix = f"scripts/fleet up {provider} --refresh"
                findings.append(Finding(provider, service.name, "not deployed", service.name, missing, fix))
                continue
            more, waits = reconcile_service(provider, service, live_service(ids[service.name]), known, connected)
            findings += more
            waiting += [f"{provider}/{service.name}: {w}" for w in waits]
    return findings, waiting


def findings_markdown(findings: list[Finding], waiting: list[str], stacks: list[str]) -> str:
    lines = [f"### Reconciliation of {', '.join(stacks) or 'no provider stacks'}: {len(findings)} findings", ""]
    if findings:
        lines += ["| provider | service | finding | about | what | fix |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [
            f"| {f.provider} | {f.service} | {f.kind} | `{f.subject}` | {f.detail.replace('|', '/')} | "
            f"`{f.fix.replace('|', '/')}` |"
            for f in findings
        ]
    else:
        lines.append("Azure has what the registry says.")
    if waiting:
        lines += ["", "Waiting (not findings):", *(f"- {w}" for w in waiting)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="scripts/reconcile", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stacks", nargs="*", help="provider stacks (default: every one here)")
    parser.add_argument("--json", type=Path, help="write the findings here")
    parser.add_argument("--summary", type=Path, help="also write the report here (e.g. $GITHUB_STEP_SUMMARY)")
    args = parser.parse_args(argv)

    def check() -> int:
        every = providers(root)
        unknown = sorted(set(args.stacks) - set(every))
        if unknown:
            raise CannotStartError(f"{', '.join(unknown)}: not a provider stack here (providers: {', '.join(every)})")
        stacks = args.stacks or every
        findings, waiting = reconcile(root, stacks)
        report = findings_markdown(findings, waiting, stacks)
        print(report)
        if args.summary:
            with open(args.summary, "a", encoding="utf-8") as out:
                out.write(report)
        if args.json:
            args.json.write_text(json.dumps({"findings": [asdict(f) for f in findings], "waiting": waiting}, indent=1))
        return 1 if findings else 0

    return run(check)


if __name__ == "__main__":
    sys.exit(main())
