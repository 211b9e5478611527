"""What the offline engine records of a run of the program: each registration, with its parent, dependencies,
resource options and the state Azure answered, and the run as a whole (its resources, outputs and invokes).
Read by the engine (tooling of deployments), the preview's steps and the rollout."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime.mocks import MockCallArgs


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    dependencies: set[str]
    property_dependencies: dict[str, set[str]] = field(default_factory=dict)
    protect: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)
    provider: str = ""
    """The explicit provider's reference (<urn>::<id>), or empty for the default provider."""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Simulation:
    stack: str
    resources: list[Registration]
    outputs: dict[str, Any]
    invokes: list[MockCallArgs]
    config: dict[str, Any] = field(default_factory=dict)
    project_dir: Path | None = None
    """The checkout the program ran in (its registry is there)."""
    warnings: list[str] = field(default_factory=list)
    """What the program warned about (pulumi.log.warn), as the CLI lists it under the stack's diagnostics."""

    @functools.cached_property
    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_suffix: str, under: str = "") -> list[Registration]:
        """Custom (cloud) resources whose type token ends with `type_suffix`, e.g. "network:Subnet", and, with
        `under`, that belong to a component of that type (e.g. "CertificateVault")."""
        return [
            r
            for r in self.resources
            if r.custom and r.type.endswith(type_suffix) and (not under or f":{under}$" in r.urn.split("::")[2])
        ]

    def one(self, type_suffix: str, under: str = "") -> Registration:
        found = self.of_type(type_suffix, under)
        assert len(found) == 1, f"expected one {type_suffix}, found {[r.name for r in found]}"
        return found[0]

    def depends_on(self, dependent: Registration, dependency: Registration) -> bool:
        """True when `dependent` waits for `dependency`, directly or through other resources or its parents."""
        seen: set[str] = set()
        todo = [dependent.urn]
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            reg = self.by_urn.get(urn)
            if reg is None:  # the stack itself
                continue
            # A component's dependencies hold for its children too.
            todo.extend([*reg.dependencies, reg.parent] if reg.parent else reg.dependencies)
        return dependency.urn in seen - {dependent.urn}
