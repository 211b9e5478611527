"""The policy pack as the Pulumi CLI runs it (`--policy-pack policy`): every rule of policy/rules.py over the
resources a run registers, each resource seen as CrossGuard's PolicyResource shows it (type, name, inputs, and the
resources each input depends on). The pack's enforcement level is mandatory: any violation refuses the run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offline.records import Simulation
from policy import rules

PACK = "pls-guardrails"
"""The pack's name, as policy/__main__.py declares it."""


@dataclass
class View:
    """A resource as a rule sees it (pulumi_policy's PolicyResource)."""

    resource_type: str
    name: str
    props: Mapping[str, Any]
    property_dependencies: Mapping[str, Sequence[View]] = field(default_factory=dict)
    urn: str = ""


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    """The resource's name, as the CLI names it."""
    message: str
    urn: str = ""


def views(sim: Simulation) -> list[View]:
    """Every cloud resource of the run, with its inputs' dependencies resolved to the other views."""
    by_urn = {r.urn: View(r.type, r.name, r.inputs, urn=r.urn) for r in sim.resources if r.custom}
    for r in sim.resources:
        if r.custom:
            by_urn[r.urn].property_dependencies = {
                key: [by_urn[u] for u in urns if u in by_urn] for key, urns in r.property_dependencies.items()
            }
    return list(by_urn.values())


def violations(resources: Sequence[View]) -> list[Violation]:
    """What the pack reports: each resource rule on each resource, then each stack rule once."""
    by_name = {r.name: r for r in resources}
    found = [
        Violation(name, r.name, message, r.urn)
        for r in resources
        for name, rule in rules.RESOURCE_RULES.items()
        for message in rule(r.resource_type, r.props)
    ]
    found += [
        Violation(name, resource, message, getattr(by_name.get(resource), "urn", ""))
        for name, rule in rules.STACK_RULES.items()
        for resource, message in rule(resources)
    ]
    return found
