"""What `pulumi preview` shows, offline: each resource of a deployment matched to its previous state by URN or
alias as the engine matches it, and its step (create, update with the inputs that change, replace and why,
delete, or nothing). Used by offline.engine's deploy and by the plan.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offline.arm_mocks import ARM
from offline.records import Registration, Simulation
from pls.contract import CONNECTIONS
from pls.deployed import ALIAS_CHANGES


def input_at(inputs: Mapping[str, Any], path: str) -> Any:
    """The input at a property path such as osProfile.customData (a replaceOnChanges entry)."""
    value: Any = inputs
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def keep_ignored_changes(was: dict[str, Registration], current: Simulation) -> None:
    """What the engine does with ignoreChanges: an ignored input keeps the value of the resource's previous state
    (which is what Azure has), so it neither updates nor replaces anything."""
    for resource in current.resources:
        before = was.get(resource.urn)
        for path in resource.ignore_changes if before is not None else ():
            *parents, leaf = path.split(".")
            holder: Any = resource.inputs
            for part in parents:
                holder = holder.setdefault(part, {}) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                continue
            kept = input_at(before.inputs, path)  # type: ignore[union-attr]
            if kept is None:
                holder.pop(leaf, None)
            else:
                holder[leaf] = kept


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _split(urn: str) -> tuple[str, str, str]:
    """The URN's prefix (urn:pulumi:<stack>::<project>), qualified type and name."""
    prefix, project, qualified_type, name = urn.split("::", 3)
    return f"{prefix}::{project}", qualified_type, name


def engine_urn(urn: str) -> str:
    """The URN as the engine writes it: a resource whose parent is the stack has no parent type in its URN (the
    mocks' monitor writes `pulumi:pulumi:Stack$` there)."""
    prefix, qualified_type, name = _split(urn)
    return f"{prefix}::{qualified_type.removeprefix(ROOT_STACK_TYPE + '$')}::{name}"


def _urn_under(parent: str | None, prefix: str, type_: str, name: str) -> str:
    parent_type = _split(parent)[1].split("$")[-1] if parent else ROOT_STACK_TYPE
    return f"{prefix}::{'' if parent_type == ROOT_STACK_TYPE else parent_type + '$'}{type_}::{name}"


def aliases(simulation: Simulation) -> dict[str, set[str]]:
    """Every URN each resource answers to (engine form): its own, one per alias spec (a name, type or parent it
    had), and each of those under every URN its parent answers to, a name that starts with the parent's name
    renamed with it (`<parent>-<role>`). The engine matches a resource to its previous state by these."""
    answers: dict[str, set[str]] = {}
    for resource in simulation.resources:  # registered parents first
        prefix = _split(resource.urn)[0]
        candidates: list[tuple[str, str, str | None]] = [(resource.name, resource.type, resource.parent)]
        for alias in resource.aliases:
            spec = alias.get("spec", {})
            parent = None if spec.get("noParent") else spec.get("parentUrn") or resource.parent
            candidates.append((spec.get("name") or resource.name, spec.get("type") or resource.type, parent))
        urns = {_urn_under(parent, prefix, type_, name) for name, type_, parent in candidates}
        parent_resource = simulation.by_urn.get(resource.parent)
        for parent_alias in answers.get(resource.parent, set()) - {engine_urn(resource.parent)}:
            assert parent_resource is not None
            renamed = _split(parent_alias)[2]
            for name, type_, _ in candidates:
                if name.startswith(parent_resource.name):
                    name = renamed + name[len(parent_resource.name) :]
                urns.add(_urn_under(parent_alias, prefix, type_, name))
        answers[resource.urn] = urns
    return answers


def matched(previous: Simulation, current: Simulation) -> dict[str, Registration]:
    """Each current resource's previous state as the engine finds it: by its own URN, else by an alias (worked
    out only when some resource's own URN is not in the previous state)."""
    before = {engine_urn(r.urn): r for r in previous.resources}
    found = {}
    answers: dict[str, set[str]] | None = None
    for resource in current.resources:
        match = before.get(engine_urn(resource.urn))
        if match is None:
            answers = aliases(current) if answers is None else answers
            match = next((before[a] for a in sorted(answers[resource.urn]) if a in before), None)
        if match is not None:
            found[resource.urn] = match
    return found


def replacements(previous: Simulation | None, current: Simulation) -> list[tuple[Registration, list[str]]]:
    """Resources the engine would replace, and the inputs that force it (azure-native: name, group, location)."""
    return replacements_of(matched(previous, current), current) if previous else []


def _replace_keys(resource: Registration) -> list[str]:
    """The inputs azure-native cannot change in place: the name, group and location, the ARM parent, and the
    program's replaceOnChanges."""
    _, own_name_key, parent_key = ARM[resource.type]
    keys = [*resource.replace_on_changes, "location", "resourceGroupName", own_name_key]
    return list(dict.fromkeys(keys + ([parent_key] if parent_key else [])))


def replacements_of(was: dict[str, Registration], current: Simulation) -> list[tuple[Registration, list[str]]]:
    """Each resource the engine replaces, with the inputs that force it: its own, or one that comes from a resource
    that is replaced (its outputs are new: a VM's extension goes with the VM, and comes back on the new one)."""
    found: list[tuple[Registration, list[str]]] = []
    replaced: set[str] = set()
    for resource in current.resources:  # registered in dependency order: a replaced dependency comes first
        before = was.get(resource.urn)
        if before is None or not resource.custom or resource.type not in ARM:
            continue
        keys = _replace_keys(resource)
        changed = [k for k in keys if input_at(before.inputs, k) != input_at(resource.inputs, k)]
        changed += [k for k in keys if k not in changed and resource.property_dependencies.get(k, set()) & replaced]
        if changed:
            found.append((resource, changed))
            replaced.add(resource.urn)
    return found


@dataclass(frozen=True)
class Step:
    """What the engine would do to one resource: create, update, replace, delete or nothing (same)."""

    op: str
    resource: Registration
    changed: tuple[str, ...] = ()
    """The inputs that differ (update), or that force the replacement (replace)."""


def steps(previous: Simulation | None, current: Simulation) -> list[Step]:
    """Every cloud resource's step from `previous` (what is deployed) to `current`, as `pulumi preview` lists
    them: matched by URN or alias; replaced when an input Azure cannot change differs; updated when another
    does; deleted when no resource of the program claims it any more."""
    was = matched(previous, current) if previous else {}
    replaced = {r.urn: changed for r, changed in replacements_of(was, current)}
    found = []
    for resource in (r for r in current.resources if r.custom):
        before = was.get(resource.urn)
        if before is None:
            found.append(Step("create", resource))
        elif resource.urn in replaced:
            found.append(Step("replace", resource, tuple(replaced[resource.urn])))
        else:
            differ = tuple(
                k for k in sorted({*before.inputs, *resource.inputs}) if before.inputs.get(k) != resource.inputs.get(k)
            )
            found.append(Step("update", resource, differ) if differ else Step("same", resource))
    return found + [Step("delete", r) for r in deleted(previous, was)]


def deleted(previous: Simulation | None, was: Mapping[str, Registration]) -> list[Registration]:
    """The cloud resources of `previous` that no resource of the program claims any more (`was`: each current
    resource's previous state, as `matched` finds it): the engine deletes them at the end of the update."""
    claimed = {engine_urn(before.urn) for before in was.values()}
    return [r for r in previous.resources if r.custom and engine_urn(r.urn) not in claimed] if previous else []


def describe_deletion(resource: Registration, previous: Simulation) -> str:
    """What deleting `resource` does beyond itself on Azure, for the types where it does ('' otherwise)."""
    if not resource.type.endswith(":PrivateLinkServicePrivateEndpointConnection"):
        return ""
    name = resource.inputs.get("peConnectionName")
    connections = previous.outputs.get(CONNECTIONS) or []
    endpoint = next((c["privateEndpointId"] for c in connections if c.get("name") == name), f"connection {name}")
    return (
        f"Azure removes the connection of {endpoint}: the customer's endpoint is Disconnected until it is created "
        "again (refused while the service's lock is on: lift lockService first)"
    )


def describe_replacement(resource: Registration, changed: list[str]) -> str:
    what = ALIAS_CHANGES if resource.type.endswith(":PrivateLinkService") else f"replaces {resource.name}"
    return f"{what} (changed: {', '.join(changed)})"


def custom_dependencies(sim: Simulation) -> dict[str, set[str]]:
    """What each cloud resource waits for: the cloud resources it depends on, its components' dependencies
    included (a dependency on a component is one on every resource in it), as the engine orders its steps."""
    children: dict[str, list[Registration]] = {}
    for resource in sim.resources:
        children.setdefault(resource.parent, []).append(resource)

    @functools.cache
    def customs_under(urn: str) -> frozenset[str]:
        found = {urn} if sim.by_urn[urn].custom else set()
        for child in children.get(urn, []):
            found |= customs_under(child.urn)
        return frozenset(found)

    result: dict[str, set[str]] = {}
    for resource in sim.resources:
        if not resource.custom:
            continue
        waits: set[str] = set()
        holder: Registration | None = resource
        while holder is not None:
            waits |= {
                urn
                for dependency in holder.dependencies
                if dependency in sim.by_urn
                for urn in customs_under(dependency)
            }
            holder = sim.by_urn.get(holder.parent)
        result[resource.urn] = waits
    return result
