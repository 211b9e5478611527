"""The diagrams the plan draws from a run of the real program: a stack's resources with their dependencies
(`scripts/plan <stack> --mermaid FILE`), and the architecture docs/architecture.md shows (provider and customer at
the level of components, joined by the alias)."""

from __future__ import annotations

from collections.abc import Iterable

from offline.engine import deploy
from offline.records import Registration, Simulation
from offline.repository import LAB, deployed_config, deployed_once
from offline.steps import custom_dependencies

PROVIDER_STACK_FILE = "provider"


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
    lab = deployed_once(LAB)
    config = {**deployed_config(PROVIDER_STACK_FILE, LAB), "additionalServices": DIAGRAM_SERVICES}
    provider = deploy(lab.world.fork(), PROVIDER_STACK_FILE, config)  # the cached lab stays as it was
    return architecture_diagram(provider, [lab.result("consumer")])
