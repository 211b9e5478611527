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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from offline.engine import PLACEHOLDER_NETWORK, ROOT, SimulationError, deploy
from offline.records import Registration, Simulation
from offline.repository import (
    LAB,
    RepositoryWorld,
    deploy_for,
    deploy_repository,
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
from operations.capacity import capacity_notes
from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, SettingsError

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


@functools.cache
def repository(root: Path = ROOT) -> RepositoryWorld:
    return deploy_repository(root)


def run(stack: str) -> RepositoryWorld:
    """The stack's offline deployment, with what it depends on deployed (offline.repository.deploy_for)."""
    return deploy_for(stack)


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
    return lines or ["decisions: none (approvedConnections and rejectedConnections are empty)"]


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


def _deployed_files_unchanged(revision: str, root: Path) -> bool:
    """No stack file or registry entry differs from the revision's: none changed, removed or added since."""
    changed = subprocess.run(["git", "diff", "--quiet", revision, "--", *DEPLOYED_FILES], cwd=root, capture_output=True)
    added = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", *DEPLOYED_FILES],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return changed.returncode == 0 and added.returncode == 0 and not added.stdout.strip()


def preview_against(stack: str, revision: str, root: Path = ROOT, planned: RepositoryWorld | None = None) -> Preview:
    """Deploy the repository as of `revision` (what is deployed), then this stack's file as it is now: each
    resource's step, and the inputs that make it. `planned` is this stack's deployment from the files as they
    are now (deploy_for): when no stack file or registry entry differs from the revision's, it is what is
    deployed, and nothing is deployed twice."""
    if planned is not None and stack in planned.deployed and _deployed_files_unchanged(revision, root):
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


def _ident(text: str) -> str:
    """A mermaid node id made from a resource name."""
    return "".join(c if c.isalnum() else "_" for c in text)


def _label(resource: Registration) -> str:
    return f"{resource.name}<br/><small>{resource.type.rsplit(':', 1)[-1]}</small>"


def _top_level(sim: Simulation) -> dict[str, Registration]:
    """Each resource's outermost ancestor below the stack (itself, for a top-level resource)."""
    owners = {}
    for resource in sim.resources:
        top = resource
        while top.parent in sim.by_urn:
            top = sim.by_urn[top.parent]
        owners[resource.urn] = top
    return owners


def stack_diagram(sim: Simulation) -> str:
    """Every cloud resource, grouped by its top-level component, with an arrow from each dependency."""
    owners = _top_level(sim)
    lines = ["flowchart LR"]
    groups: dict[str, list[Registration]] = {}
    for resource in sorted(sim.resources, key=lambda r: r.name):
        if resource.custom:
            groups.setdefault(owners[resource.urn].name, []).append(resource)
    for group, members in sorted(groups.items()):
        lines.append(f'  subgraph g_{_ident(group)}["{group}"]')
        lines.extend(f'    r_{_ident(r.name)}["{_label(r)}"]' for r in members)
        lines.append("  end")
    edges = {
        (_ident(sim.by_urn[d].name), _ident(sim.by_urn[urn].name))
        for urn, deps in custom_dependencies(sim).items()
        for d in deps
    }
    lines.extend(f"  r_{a} --> r_{b}" for a, b in sorted(edges))
    return "\n".join(lines) + "\n"


def _parts(sim: Simulation) -> dict[str, Registration]:
    """Each resource's part in the architecture: its outermost component below the stack, or, inside a component
    made only of components (PrivateServiceAccess), the one of those it belongs to."""
    composites = {r.urn for r in sim.resources if not r.custom and r.parent not in sim.by_urn}
    composites -= {r.parent for r in sim.resources if r.custom}
    parts = {}
    for resource in sim.resources:
        part = resource
        while part.parent in sim.by_urn and part.parent not in composites:
            part = sim.by_urn[part.parent]
        parts[resource.urn] = part
    return parts


def architecture_diagram(provider: Simulation, consumers: Iterable[Simulation]) -> str:
    """Provider and customers at the level of components, and the alias that joins them."""
    lines = ["flowchart LR"]

    def component_graph(sim: Simulation, prefix: str, title: str) -> dict[str, str]:
        parts = _parts(sim)
        shown = sorted({p.urn: p for p in parts.values() if not p.custom}.values(), key=lambda r: r.name)
        wholes = {t.parent for t in shown if t.parent in sim.by_urn}
        shown = [t for t in shown if t.urn not in wholes]
        nodes = {t.urn: f"{prefix}_{_ident(t.name)}_{t.type.rsplit(':', 1)[-1]}" for t in shown}
        lines.append(f'  subgraph {prefix}["{title}"]')
        for composite in sorted(wholes):
            whole = sim.by_urn[composite]
            lines.append(
                f'    subgraph {prefix}_{_ident(whole.name)}_{whole.type.rsplit(":", 1)[-1]}["{_label(whole)}"]'
            )
            lines.extend(f'      {nodes[t.urn]}["{_label(t)}"]' for t in shown if t.parent == composite)
            lines.append("    end")
        lines.extend(f'    {nodes[t.urn]}["{_label(t)}"]' for t in shown if t.parent not in sim.by_urn)
        lines.append("  end")
        edges = set()
        for urn, deps in custom_dependencies(sim).items():
            for dep in deps:
                a, b = parts[dep].urn, parts[urn].urn
                if a in nodes and b in nodes and a != b:
                    edges.add((nodes[a], nodes[b]))
        lines.extend(f"  {a} --> {b}" for a, b in sorted(edges))
        by_type: dict[str, str] = {}
        for t in shown:  # by name: the first service ("pls") is the one a customer without a registry entry reaches
            by_type.setdefault(t.type.rsplit(":", 1)[-1], nodes[t.urn])
        return by_type

    provider_nodes = component_graph(provider, "provider", f"provider stack ({provider.stack})")
    for sim in consumers:
        nodes = component_graph(sim, sim.stack.replace("-", "_"), f"consumer stack ({sim.stack})")
        lines.append(
            f'  {provider_nodes["PrivateLinkService"]} -. "alias, Private Link" .-> {nodes["PrivateEndpoint"]}'
        )
    return "\n".join(lines) + "\n"


DIAGRAM_SERVICES = ["saas-2"]
"""The README's provider has a second service on its load balancer, as scripts/onboard declares it."""


def readme_diagram() -> str:
    """The diagram README.md shows: the lab's provider, with a second service, and its first customer, as
    shipped (not as a user's stack files have it since, so an edit of theirs never makes the README stale)."""
    lab = repository(LAB)
    config = {**deployed_config(PROVIDER_STACK_FILE, LAB), "additionalServices": DIAGRAM_SERVICES}
    provider = deploy(lab.world.fork(), PROVIDER_STACK_FILE, config)  # the cached lab stays as it was
    return architecture_diagram(provider, [lab.result("consumer")])


def plan_all(root: Path = ROOT) -> tuple[list[str], bool]:
    """Every stack file, deployed once in the README's order (each provider's work shared by its customers):
    one row per stack with its verdict, and whether any was refused."""
    refused = verdicts(root)
    settings = every_stack_settings(root)
    rows = ["| stack | role | verdict | connection |", "| --- | --- | --- | --- |"]
    for stack, these in sorted(settings.items(), key=lambda item: (not isinstance(item[1], ProviderSettings), item[0])):
        if isinstance(these, SettingsError):
            rows.append(f"| {stack} | ? | invalid: {one_line(these).replace('|', '/')} | |")
            continue
        verdict = f"refused: {refused[stack].replace('|', '/')}" if stack in refused else "ok"
        connection = ""
        if isinstance(these, ConsumerSettings):
            provider = settings.get(provider_file_of(these, root) or "")
            connection = expected_connection(these, provider) or "decided by a provider elsewhere"
        rows.append(f"| {stack} | {these.role} | {verdict} | {connection} |")
    return rows, bool(refused) or any(isinstance(these, SettingsError) for these in settings.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/plan", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stack", nargs="?", choices=stack_files(), help="stack file Pulumi.<stack>.yaml")
    parser.add_argument("--all", action="store_true", help="every stack file, one verdict each (a CI gate)")
    parser.add_argument("--mermaid", type=Path, help="write the stack's resource diagram to this file")
    parser.add_argument(
        "--against", default="HEAD", help="git revision taken as deployed (default HEAD); '' to skip the comparison"
    )
    args = parser.parse_args(argv)
    if args.all:
        rows, refused = plan_all()
        print("\n".join(rows))
        return 1 if refused else 0
    if args.stack is None:
        parser.error("name a stack, or --all")
    try:
        settings = stack_settings(args.stack)
        planned = run(args.stack)
        sim = planned.result(args.stack)
    except (SettingsError, SimulationError) as failure:
        print(getattr(failure, "cause", failure), file=sys.stderr)
        return 2
    customs = [r for r in sim.resources if r.custom]
    print(f"Stack {args.stack}: pulumi up would register {len(customs)} resources.\n")
    print("\n".join(resource_tree(sim)))
    path = critical_path(sim)
    print(f"\nCritical path ({len(path)} resources created one after another):")
    print("  " + "\n  -> ".join(f"{r.name} ({r.type.rsplit(':', 1)[-1]})" for r in path))
    print("\nOutputs:")
    for name, value in sim.outputs.items():
        print(f"  {name}: {value}{placeholder_note(value)}")
    if isinstance(settings, ProviderSettings):
        print("\n" + "\n".join(decision_notes(settings)))
        print("\n" + "\n".join(capacity_notes(settings, sim.outputs[contract.CONNECTIONS])))
    if isinstance(settings, ConsumerSettings):
        print("\n" + "\n".join(connection_forecast(settings)))
    if args.mermaid:
        args.mermaid.write_text(stack_diagram(sim))
        print(f"\nDiagram written to {args.mermaid}")
    if args.against:
        preview = preview_against(args.stack, args.against, planned=planned)
        print(f"\nAgainst {args.against}: " + "\n".join(preview.lines))
        if preview.refused:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
