"""Offline plan of a stack: what `pulumi up` would register, in which order, as text and as a mermaid diagram.

    python -m pls.plan provider
    python -m pls.plan consumer-contoso --mermaid contoso.mmd

Runs the real program under Pulumi mocks: no credentials, no Pulumi CLI. A consumer stack
reads the provider's outputs from an offline run of the provider stack. Useful in review of a
new customer's stack file.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pls.settings import SettingsError
from pls.simulate import Registration, Simulation, SimulationError, deployed_config, simulate, stack_files

PROVIDER_STACK_FILE = "provider"
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


def run(stack: str) -> Simulation:
    """The stack's offline deployment; a consumer stack sees the provider stack file's outputs."""
    config = deployed_config(stack)
    stack_outputs = {}
    if config.get("role") == "consumer" and not config.get("providerAlias"):
        provider = run(PROVIDER_STACK_FILE)
        stack_outputs[config["providerStack"]] = provider.outputs
    return simulate(stack, config, stack_outputs=stack_outputs)


def _lookup(inputs: dict[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _summary(resource: Registration) -> str:
    shown = []
    for key in KEY_PROPERTIES:
        value = _lookup(resource.inputs, key)
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


def _custom_dependencies(sim: Simulation) -> dict[str, set[str]]:
    """Direct dependencies between cloud resources: a dependency on a component means all of its resources."""
    by_urn = sim.by_urn

    def customs_under(urn: str) -> set[str]:
        found = {urn} if by_urn[urn].custom else set()
        for r in sim.resources:
            if r.parent == urn:
                found |= customs_under(r.urn)
        return found

    def inherited(resource: Registration) -> set[str]:
        deps = set(resource.dependencies)
        parent = by_urn.get(resource.parent)
        while parent is not None:
            deps |= parent.dependencies
            parent = by_urn.get(parent.parent)
        return deps

    result: dict[str, set[str]] = {}
    for resource in sim.resources:
        if resource.custom:
            result[resource.urn] = set().union(*(customs_under(d) for d in inherited(resource) if d in by_urn))
    return result


def critical_path(sim: Simulation) -> list[Registration]:
    """The longest chain of resources that must be created one after another."""
    deps = _custom_dependencies(sim)

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
        for urn, deps in _custom_dependencies(sim).items()
        for d in deps
    }
    lines.extend(f"  r_{a} --> r_{b}" for a, b in sorted(edges))
    return "\n".join(lines) + "\n"


def architecture_diagram(provider: Simulation, consumers: Iterable[Simulation]) -> str:
    """Provider and customers at the level of components, and the alias that joins them."""
    lines = ["flowchart LR"]

    def component_graph(sim: Simulation, prefix: str, title: str) -> dict[str, str]:
        owners = {urn: top.urn for urn, top in _top_level(sim).items()}
        tops = [r for r in sorted(sim.resources, key=lambda r: r.name) if r.parent not in sim.by_urn and not r.custom]
        nodes = {t.urn: f"{prefix}_{_ident(t.name)}" for t in tops}
        lines.append(f'  subgraph {prefix}["{title}"]')
        lines.extend(f'    {nodes[t.urn]}["{_label(t)}"]' for t in tops)
        lines.append("  end")
        edges = set()
        for urn, deps in _custom_dependencies(sim).items():
            for dep in deps:
                a, b = owners[dep], owners[urn]
                if a in nodes and b in nodes and a != b:
                    edges.add((nodes[a], nodes[b]))
        lines.extend(f"  {a} --> {b}" for a, b in sorted(edges))
        return {t.type.rsplit(":", 1)[-1]: nodes[t.urn] for t in tops}

    provider_nodes = component_graph(provider, "provider", f"provider stack ({provider.stack})")
    for sim in consumers:
        nodes = component_graph(sim, sim.stack.replace("-", "_"), f"consumer stack ({sim.stack})")
        lines.append(
            f'  {provider_nodes["PrivateLinkService"]} -. "alias, Private Link" .-> {nodes["PrivateEndpoint"]}'
        )
    return "\n".join(lines) + "\n"


def readme_diagram() -> str:
    """The diagram README.md shows: the provider stack file and the default consumer stack file."""
    return architecture_diagram(run(PROVIDER_STACK_FILE), [run("consumer")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pls.plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=stack_files(), help="stack file Pulumi.<stack>.yaml")
    parser.add_argument("--mermaid", type=Path, help="write the stack's resource diagram to this file")
    args = parser.parse_args(argv)
    try:
        sim = run(args.stack)
    except SimulationError as failure:
        if isinstance(failure.cause, SettingsError):
            print(failure.cause, file=sys.stderr)
            return 2
        raise
    customs = [r for r in sim.resources if r.custom]
    print(f"Stack {args.stack}: pulumi up would register {len(customs)} resources.\n")
    print("\n".join(resource_tree(sim)))
    path = critical_path(sim)
    print(f"\nCritical path ({len(path)} resources created one after another):")
    print("  " + "\n  -> ".join(f"{r.name} ({r.type.rsplit(':', 1)[-1]})" for r in path))
    print("\nOutputs:")
    for name, value in sim.outputs.items():
        print(f"  {name}: {value}")
    if args.mermaid:
        args.mermaid.write_text(stack_diagram(sim))
        print(f"\nDiagram written to {args.mermaid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
