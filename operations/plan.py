"""Offline plan of a stack: what `pulumi up` would register, in which order, as text and as a mermaid diagram.

    scripts/plan provider                 (or: .venv/bin/python -m operations.plan provider)
    scripts/plan consumer-contoso --mermaid contoso.mmd

Runs the real program under Pulumi mocks over an offline Azure in which every stack file of the
repository is deployed as the README's lifecycle deploys them: no credentials, no Pulumi CLI. For a
customer it says what will happen to its connection; against a git revision (default HEAD, i.e. what
was deployed) it lists, resource by resource, what the change creates, updates (which inputs), replaces (why)
and deletes, or what Azure and Pulumi would refuse. Exit status: 0, 1 when the change would be refused, 2 when
the stack file itself is invalid: a CI can gate on it.
"""

from __future__ import annotations

import argparse
import functools
import io
import ipaddress
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from offline.engine import PLACEHOLDER_NETWORK, ROOT, SimulationError, deploy
from offline.records import Registration, Simulation
from offline.repository import (
    RepositoryWorld,
    deploy_for,
    deployed_config,
    every_stack_settings,
    expected_connection,
    one_line,
    provider_file_of,
    settings_or_problem,
    stack_files,
    stack_settings,
    verdicts,
)
from offline.rollout import rollout
from offline.steps import custom_dependencies, describe_deletion, describe_replacement, input_at, steps
from operations import exits
from operations.capacity import capacity_notes
from operations.diagrams import stack_diagram
from operations.exits import CannotStartError
from operations.transaction import interrupted_change, locked
from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, Settings, SettingsError
from pls.config.registry import entry_path

PROVIDER_STACK_FILE = "provider"
FATES = {
    "NotVisible": "Azure refuses the private endpoint: the subscription is not in the provider's visibility "
    "(onboarding step 2, or scripts/onboard)",
    "Pending": "Pending until the provider declares a decision (scripts/approve <customer>, or approvedConnections)",
    "Approved": "Approved",
    "Rejected": "Rejected by the provider",
}
KEY_PROPERTIES = (
    "location",
    "addressPrefix",
    "addressSpace.addressPrefixes",
    "zones",
    "sku.name",
    "hardwareProfile.vmSize",
    "serviceName",
    "enableProxyProtocol",
    "visibility.subscriptions",
    "autoApproval.subscriptions",
    "privateLinkServiceNetworkPolicies",
    "privateEndpointNetworkPolicies",
    "privateZoneName",
    "relativeRecordSetName",
    "registrationEnabled",
)


def run(stack: str, root: Path = ROOT) -> RepositoryWorld:
    """The stack's offline deployment, with what it depends on deployed (offline.repository.deploy_for)."""
    return deploy_for(stack, root)


def placeholder_note(value: object) -> str:
    """Offline, a customer's own subnets get ranges from 198.18.0.0/15: an address from there is not real."""
    try:
        placeholder = isinstance(value, str) and ipaddress.ip_address(value) in PLACEHOLDER_NETWORK
    except ValueError:
        placeholder = False
    return "  (placeholder: the customer's own subnet's range is not known offline)" if placeholder else ""


def decision_notes(provider: ProviderSettings, root: Path = ROOT) -> list[str]:
    """Each decision's endpoint: a customer's stack file here, or assumed to have asked (another tenant), with a
    warning when its id looks like one of this repository's customers' but no stack file has that customer."""
    customers = {}
    for stack in stack_files(root):
        try:
            consumer = stack_settings(stack, root)
        except SettingsError:
            continue
        if isinstance(consumer, ConsumerSettings):
            customers[consumer.private_endpoint_id.lower()] = stack
    lines = []
    for decision in provider.connection_decisions:
        endpoint_id = decision["private_endpoint_id"]
        customer_stack = customers.get(endpoint_id.lower())
        if customer_stack:
            lines.append(f"decision: {decision['status']} {endpoint_id} (stack {customer_stack})")
            continue
        lines.append(f"decision: {decision['status']} {endpoint_id} (assumed: no stack file here creates it)")
        look_alike = LOOK_ALIKE.fullmatch(endpoint_id)
        if look_alike and look_alike["group"] == look_alike["customer"]:
            lines.append(
                f"warning: {endpoint_id} looks like the endpoint of a customer {look_alike['customer']!r} of this "
                f"repository, but no stack file of the {len(customers)} here has it: a mistyped or offboarded id? "
                "Fix the id, or remove the decision"
            )
    return lines or ["decisions: none (no registry entry of this provider records one: scripts/approve <customer>)"]


LOOK_ALIKE = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)-rg/providers/Microsoft\.Network/privateEndpoints/"
    r"(?P<customer>[^/]+)-saas-pe",
    re.IGNORECASE,
)
"""The id a consumer stack of this repository gives its endpoint: <customer>-rg/.../<customer>-saas-pe."""


def connection_forecast(consumer: ConsumerSettings, root: Path = ROOT) -> list[str]:
    """What happens to the customer's connection, from the provider's stack file when it is in the repository."""
    provider_stack = provider_file_of(consumer, root)
    provider = settings_or_problem(provider_stack, root) if provider_stack else None
    fate = expected_connection(consumer, provider)
    if fate is None:
        return ["connection: decided by a provider outside this repository (providerAlias); Pending until it acts"]
    lines = [f"connection: {FATES[fate]}"]
    assert isinstance(provider, ProviderSettings) and consumer.subscription_id is not None
    if consumer.auto_approved and consumer.subscription_id not in provider.service(consumer.service).auto_approval:
        lines.append(
            f"warning: autoApproved is true, but {provider_stack} does not auto-approve {consumer.subscription_id}: "
            "the request waits as Pending (add it to the provider's autoApproval, or set autoApproved: false)"
        )
    if consumer.https != provider.tls:
        lines.append(
            f"warning: https is {str(consumer.https).lower()} but {provider_stack} has tls "
            f"{str(provider.tls).lower()}: the verify command would speak the wrong protocol (set https: "
            f"{str(provider.tls).lower()})"
        )
    if consumer.proxy_protocol != provider.proxy_protocol:
        lines.append(
            f"warning: proxyProtocol is {str(consumer.proxy_protocol).lower()} but {provider_stack} has "
            f"{str(provider.proxy_protocol).lower()}: scripts/verify would expect the wrong client address and LinkID "
            f"(set proxyProtocol: {str(provider.proxy_protocol).lower()})"
        )
    if provider.tls and consumer.fqdn not in provider.web_server.server_names:
        lines.append(
            f"warning: {consumer.fqdn} is not in {provider_stack}'s fqdns, so not on its TLS certificate: HTTPS to "
            "it fails verification (use one of the provider's fqdns as dnsRecord.dnsZone)"
        )
    return lines


SYMBOLS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
"""How `pulumi preview` marks each step."""


@dataclass(frozen=True)
class Preview:
    """What `pulumi up` of the stack would do to what is deployed, resource by resource."""

    lines: list[str]
    refused: bool
    """Azure, the engine or the program would refuse the change: nothing would change at all."""


DEPLOYED_FILES = (":(glob)Pulumi.*.yaml", ":(glob)customers/*.yaml")
"""What a revision says is deployed: the stack files and the customer registry (the program is this one)."""


def preview_against(stack: str, revision: str, root: Path = ROOT, planned: RepositoryWorld | None = None) -> Preview:
    """Deploy the repository as of `revision` (what is deployed), then this stack's file as it is now: each
    resource's step, and the inputs that make it. `planned` is this stack's deployment from the files as they
    are now (deploy_for): when no stack file or registry entry differs from the revision's, it is what is
    deployed, and nothing is deployed twice."""
    if planned is not None and stack in planned.deployed and not _changed_since(revision, root):
        previous = current = planned.deployed[stack]
    else:
        with tempfile.TemporaryDirectory() as old_root:
            # The stack files and the registry as of `revision`, in one call each however many there are (a
            # revision without a registry has none: that archive fails and extracts nothing).
            for files in DEPLOYED_FILES:
                archive = subprocess.run(
                    ["git", "archive", "--format=tar", revision, "--", files], cwd=root, capture_output=True
                )
                if archive.returncode == 0:
                    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as extracted:
                        extracted.extractall(old_root, filter="data")
            if not Path(old_root, f"Pulumi.{stack}.yaml").exists():
                return Preview([f"new stack (Pulumi.{stack}.yaml is not in {revision}): everything is created"], False)
            before = deploy_for(stack, Path(old_root))
            if stack not in before.deployed:
                return Preview([f"not deployed as of {revision}: {before.failed[stack]}"], False)
            previous = before.deployed[stack]
            try:
                current = deploy(before.world, stack, deployed_config(stack, root), project_dir=root)
            except SimulationError as refused:
                return Preview([f"refused before any change: {refused.cause}"], True)
    found = steps(previous, current)
    counts = {op: sum(1 for step in found if step.op == op) for op in (*SYMBOLS, "same")}
    summary = ", ".join(f"{counts[op]} to {op}" for op in SYMBOLS) + f", {counts['same']} unchanged"
    lines = [summary]
    for step in found:
        if step.op == "same":
            continue
        what = f"{step.resource.name} ({step.resource.type.rsplit(':', 1)[-1]})"
        if step.op == "replace":
            what += f": {describe_replacement(step.resource, list(step.changed))}"
        elif step.op == "delete" and (beyond := describe_deletion(step.resource, previous)):
            what += f": {beyond}"
        elif step.changed:
            what += f": {', '.join(step.changed)}"
        lines.append(f"  {SYMBOLS[step.op]:<2} {step.op:<7} {what}")
    lines += [f"  note: {warning}" for warning in current.warnings]
    return Preview(lines + rollout(previous, current, found).lines(), False)


def _summary(resource: Registration) -> str:
    shown = []
    for key in KEY_PROPERTIES:
        value = input_at(resource.inputs, key)
        if value not in (None, [], ""):
            shown.append(f"{key.split('.')[0]}={value}")
    return " ".join(shown)


def resource_tree(sim: Simulation) -> list[str]:
    children: dict[str, list[Registration]] = {}
    for resource in sim.resources:
        children.setdefault(resource.parent, []).append(resource)
    roots = [r for r in sim.resources if r.parent not in sim.by_urn]
    lines: list[str] = []

    def walk(resource: Registration, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└── " if last else "├── ")
        details = _summary(resource) if resource.custom else "(component)"
        lines.append(f"{prefix}{branch}{resource.name}  {resource.type}  {details}".rstrip())
        kids = sorted(children.get(resource.urn, []), key=lambda r: (r.custom, r.name))
        extension = "" if depth == 0 else ("    " if last else "│   ")
        for index, kid in enumerate(kids):
            walk(kid, prefix + extension, index == len(kids) - 1, depth + 1)

    for root in sorted(roots, key=lambda r: r.name):
        walk(root, "", True, 0)
    return lines


def critical_path(sim: Simulation) -> list[Registration]:
    """The longest chain of resources that must be created one after another."""
    deps = custom_dependencies(sim)

    @functools.cache
    def longest(urn: str) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for dep in sorted(deps[urn]):
            chain = longest(dep)
            if len(chain) > len(best):
                best = chain
        return (*best, urn)

    chain = max((longest(urn) for urn in sorted(deps)), key=len, default=())
    return [sim.by_urn[urn] for urn in chain]


def _known_revision(revision: str, root: Path) -> str:
    """`revision`, when git knows it as a commit; refused by name otherwise (a typo would plan against nothing)."""
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=root, capture_output=True
    )
    if known.returncode != 0:
        raise CannotStartError(f"--against {revision[:80]!r}: git knows no such revision here (try HEAD, origin/main)")
    return revision


def _changed_since(revision: str, root: Path) -> frozenset[str]:
    """Every stack file and registry entry that differs from `revision`'s, or is new since."""
    changed = subprocess.run(
        ["git", "diff", "--name-only", revision, "--", *DEPLOYED_FILES], cwd=root, capture_output=True, text=True
    )
    added = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", *DEPLOYED_FILES],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return frozenset([*changed.stdout.split(), *added.stdout.split()])


def _read_by(stack: str, settings: Settings, root: Path) -> set[str] | None:
    """The files a stack's deployment reads: a customer's stack file, its entry and its provider's stack file; None
    for a provider (its registry and every customer's request: all of them)."""
    if isinstance(settings, ProviderSettings):
        return None
    assert isinstance(settings, ConsumerSettings)
    provider = provider_file_of(settings, root)
    return {f"Pulumi.{stack}.yaml", entry_path(settings.customer), *([f"Pulumi.{provider}.yaml"] if provider else [])}


@dataclass(frozen=True)
class Verdict:
    """A stack's plan, as its exit status says it: 0 it holds, 1 it would be refused, 2 its stack file is invalid."""

    status: int
    reason: str = ""

    @property
    def row(self) -> str:
        words = {0: "ok", 1: "refused", 2: "invalid"}[self.status]
        return words if not self.reason else f"{words}: {self.reason.replace('|', '/')}"


def _compared(stack: str, settings: Settings, revision: str, root: Path, changed: frozenset[str]) -> Verdict:
    """What the comparison with `revision` says (the preview), when a file the stack reads differs from it."""
    read = _read_by(stack, settings, root)
    if (read is not None and not read & changed) or not changed:
        return Verdict(0)  # deployed from the same files: nothing changes
    preview = preview_against(stack, revision, root)
    return Verdict(1, preview.lines[0]) if preview.refused else Verdict(0)


def plan_all(root: Path = ROOT, revision: str = "") -> tuple[list[str], dict[str, Verdict]]:
    """Every stack file's verdict, exactly as its own plan gives it (`scripts/plan <stack>`, compared with
    `revision` unless ''): the stack files checked, every provider's own plan, the customers deployed in parts over
    the machine's cores (each part after its provider: what a customer's own plan deploys), and each stack compared
    with `revision` when its own files differ from it. One row per stack."""
    refused = verdicts(root)
    settings = every_stack_settings(root)
    changed = _changed_since(revision, root) if revision else frozenset()
    rows = ["| stack | role | verdict | connection |", "| --- | --- | --- | --- |"]
    found: dict[str, Verdict] = {}
    for stack, these in sorted(settings.items(), key=lambda item: (not isinstance(item[1], ProviderSettings), item[0])):
        if isinstance(these, SettingsError):
            found[stack] = Verdict(2, one_line(these))
            rows.append(f"| {stack} | ? | {found[stack].row} | |")
            continue
        if stack in refused:
            found[stack] = Verdict(1, refused[stack])
        else:
            found[stack] = _compared(stack, these, revision, root, changed) if revision else Verdict(0)
        connection = ""
        if isinstance(these, ConsumerSettings):
            provider = settings.get(provider_file_of(these, root) or "")
            connection = expected_connection(these, provider) or "decided by a provider elsewhere"
        rows.append(f"| {stack} | {these.role} | {found[stack].row} | {connection} |")
    return rows, found


def plan_one(stack: str, revision: str, mermaid: Path | None = None, root: Path = ROOT) -> Verdict:
    """`scripts/plan <stack>`: everything the offline deployment shows, then the comparison with `revision`."""
    try:
        settings = stack_settings(stack, root)
    except SettingsError as invalid:
        print(invalid, file=sys.stderr)
        return Verdict(2, one_line(invalid))
    planned = run(stack, root)
    if stack in planned.failed:
        cause = planned.failed[stack].cause
        print(cause, file=sys.stderr)
        return Verdict(1, one_line(cause))
    sim = planned.deployed[stack]
    customs = [r for r in sim.resources if r.custom]
    print(f"Stack {stack}: pulumi up would register {len(customs)} resources.\n")
    print("\n".join(resource_tree(sim)))
    path = critical_path(sim)
    print(f"\nCritical path ({len(path)} resources created one after another):")
    print("  " + "\n  -> ".join(f"{r.name} ({r.type.rsplit(':', 1)[-1]})" for r in path))
    print("\nOutputs:")
    for name, value in sim.outputs.items():
        print(f"  {name}: {value}{placeholder_note(value)}")
    if isinstance(settings, ProviderSettings):
        print("\n" + "\n".join([*decision_notes(settings, root), *(f"note: {w}" for w in sim.warnings)]))
        print("\n" + "\n".join(capacity_notes(settings, sim.outputs[contract.CONNECTIONS])))
    if isinstance(settings, ConsumerSettings):
        print("\n" + "\n".join(connection_forecast(settings, root)))
    if mermaid:
        mermaid.write_text(stack_diagram(sim))
        print(f"\nDiagram written to {mermaid}")
    if not revision:
        return Verdict(0)
    preview = preview_against(stack, revision, root, planned)
    print(f"\nAgainst {revision}: " + "\n".join(preview.lines))
    return Verdict(1, preview.lines[0]) if preview.refused else Verdict(0)


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="scripts/plan", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stack", nargs="?", help="stack file Pulumi.<stack>.yaml")
    parser.add_argument("--all", action="store_true", help="every stack file, one verdict each (a CI gate)")
    parser.add_argument("--mermaid", type=Path, help="write the stack's resource diagram to this file")
    parser.add_argument(
        "--against", default="HEAD", help="git revision taken as deployed (default HEAD); '' to skip the comparison"
    )
    args = parser.parse_args(argv)
    if bool(args.stack) == args.all:
        parser.error("name a stack, or --all")

    def plan() -> int:
        with locked(root, exclusive=False):
            interrupted = interrupted_change(root)
            if interrupted:
                raise CannotStartError(interrupted)
            revision = _known_revision(args.against, root) if args.against else ""
            if args.all:
                rows, found = plan_all(root, revision)
                print("\n".join(rows))
                return max((verdict.status for verdict in found.values()), default=0)
            if args.stack not in (stacks := stack_files(root)):
                shown = ", ".join(stacks[:10]) + (f" and {len(stacks) - 10} more" if len(stacks) > 10 else "")
                raise CannotStartError(f"no stack file Pulumi.{args.stack[:80]}.yaml here (stacks: {shown})")
            return plan_one(args.stack, revision, args.mermaid, root).status

    return exits.run(plan)


if __name__ == "__main__":
    raise SystemExit(main())
