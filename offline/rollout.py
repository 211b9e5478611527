"""A change of the web tier played offline, wave by wave: which web VMs serve (are in the load balancer's pool and
answer its probe) while the engine carries the change out.

The engine: a resource's step starts once every resource it waits for has finished (offline.steps'
custom_dependencies: the web tier's batches wait for the previous zone's VMs), steps with nothing between them run
at once, deletions come last. Azure, for each web VM: a replaced VM leaves the pool and comes back only when its
software (its managed Run Command) has applied and checked its health; a resized one too (it restarts); a new one
joins when its software has run; a deleted one leaves. The software's own run drains the VM (it leaves the pool
while it runs) exactly when vm/software.py would, judged by the same function from the software before and
after; otherwise nginx reloads in place and the VM never leaves.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import yaml

from offline.records import Registration, Simulation
from offline.steps import Step, custom_dependencies, steps
from pls.webserver import software_in
from vm.software import Files, applied_state, changes, wanted

VM = "azure-native:compute:VirtualMachine"
SOFTWARE = "azure-native:compute:VirtualMachineRunCommandByVirtualMachine"
RESTARTING = ("hardwareProfile",)
"""A VM's inputs whose change restarts it in place (a resize)."""


@dataclass(frozen=True)
class Wave:
    """Steps the engine runs at once, and the web VMs that serve while they run."""

    steps: tuple[str, ...]
    """`<resource> <op>` of each step of the web tier in the wave."""
    serving: frozenset[str]
    """Web VMs (by host name) in the pool and healthy during the whole wave."""
    out: dict[str, str]
    """Web VMs out of the pool during the wave, and why."""


@dataclass(frozen=True)
class Rollout:
    waves: tuple[Wave, ...]
    zones: dict[str, str]
    """Every web VM before or after the change (host name), and its zone."""
    before: frozenset[str]
    after: frozenset[str]
    """The web VMs before and after the change."""
    serving_after: frozenset[str]
    """The web VMs serving once the change is done."""

    @property
    def fewest_serving(self) -> int:
        return min((len(wave.serving) for wave in self.waves), default=len(self.before))

    @property
    def most_zones_out(self) -> int:
        """The most zones with no VM serving at once (of those that have one before and after)."""
        kept = {self.zones[vm] for vm in self.before & self.after}
        return max((len(kept - {self.zones[vm] for vm in wave.serving}) for wave in self.waves), default=0)

    @property
    def allowed_out(self) -> int:
        """How many VMs a change may take out at once: a zone's share, ⌈count / zones⌉ (one with one zone)."""
        count = min(len(self.before), len(self.after))
        return math.ceil(count / max(1, len(set(self.zones.values())))) if count else 0

    def lines(self) -> list[str]:
        """The rollout, as the plan shows it."""
        changed = [wave for wave in self.waves if wave.out or wave.steps]
        if not self.zones:
            return []
        if not changed:
            return ["web tier: unchanged, every VM serving"]
        lines = [
            f"web tier, a zone at a time ({len(self.before)} -> {len(self.after)} VMs; each batch starts when the "
            f"previous one answers its health probe): never fewer than {self.fewest_serving} serving"
        ]
        for number, wave in enumerate(changed, 1):
            out = "; ".join(f"{vm} out ({why})" for vm, why in sorted(wave.out.items())) or "every VM serving"
            lines.append(f"  {number}. {', '.join(wave.steps)}: {out}")
        return lines


def _host(vm: Registration) -> str:
    return str(vm.inputs.get("osProfile", {}).get("computerName") or vm.name)


def _zone(vm: Registration) -> str:
    return str((vm.inputs.get("zones") or ["-"])[0])


def _first_boot_files(vm: Registration) -> Files:
    """What a VM's first boot wrote (its custom data's write_files): what the software finds on a VM that had
    none before it."""
    document = yaml.safe_load(base64.b64decode(vm.inputs["osProfile"].get("customData", "")).decode() or "{}")
    return wanted({"files": document.get("write_files", [])})


def _drains(vm: Registration, software_before: Registration | None, software: Registration) -> bool:
    """Whether the software's run takes its (serving) VM out of the pool: what vm/software.py decides there,
    from what the VM has, by the same function."""
    new = software_in(software.inputs["source"]["script"])
    if software_before is None:  # the software's first run on a VM that served without it
        return changes(new, _first_boot_files(vm), {}).drains
    old = software_in(software_before.inputs["source"]["script"])
    return changes(new, wanted(old), applied_state(old)).drains


def rollout(previous: Simulation, current: Simulation, found: list[Step] | None = None) -> Rollout:
    """The change from `previous` (deployed) to `current`, wave by wave, for the web VMs (`found`: its steps, when
    the caller has them)."""
    found = steps(previous, current) if found is None else found
    by_urn = {step.resource.urn: step for step in found if step.op != "delete"}
    waits = custom_dependencies(current)
    level: dict[str, int] = {}
    for resource in (r for r in current.resources if r.custom):  # registered in dependency order
        start = max((level[urn] for urn in waits[resource.urn] if urn in level), default=0)
        level[resource.urn] = start + (by_urn[resource.urn].op != "same")
    last = max(level.values(), default=0)
    deleted = [step for step in found if step.op == "delete"]

    def web_vms(sim: Simulation) -> dict[str, Registration]:
        """The web tier's VMs, by their LinuxVm component (which their software shares)."""
        return {vm.parent: vm for vm in sim.of_type(":VirtualMachine") if ":WebTier$" in vm.parent}

    old_vms, new_vms = web_vms(previous), web_vms(current)
    zones = {_host(vm): _zone(vm) for vm in [*old_vms.values(), *new_vms.values()]}
    previous_software = {_host(old_vms[r.parent]): r for r in previous.of_type("RunCommandByVirtualMachine")}
    old_by_host = {_host(vm): vm for vm in old_vms.values()}
    waves = []
    serving = {_host(vm) for vm in old_vms.values()}
    present = set(serving)
    for wave in range(1, last + 2):
        here: list[Step] = [by_urn[urn] for urn, at in level.items() if at == wave and by_urn[urn].op != "same"] + (
            deleted if wave == last + 1 else []
        )
        out: dict[str, str] = {}
        joins: set[str] = set()
        names = []
        for step in here:
            resource = step.resource
            vm = old_vms.get(resource.parent) if step.op == "delete" else new_vms.get(resource.parent)
            if vm is None:
                continue  # not a web VM's
            host = _host(vm)
            names.append(f"{resource.name} {step.op}")
            if resource.type == VM and step.op == "delete":
                out[host] = "deleted"
            elif resource.type == VM and (step.op in ("create", "replace") or set(step.changed) & set(RESTARTING)):
                out[host] = {"create": "new", "replace": "replaced", "update": "restarting"}[step.op]
            elif resource.type == SOFTWARE and step.op != "delete":
                if host in serving and _drains(old_by_host[host], previous_software.get(host), resource):
                    out[host] = "drained while its software changes"
                joins.add(host)
        serving -= set(out)
        present |= set(out)
        waiting = {host: "waits for its software" for host in present - serving - set(out)}
        waves.append(Wave(tuple(sorted(names)), frozenset(serving), {**waiting, **out}))
        serving |= joins
        present -= {host for host, why in out.items() if why == "deleted"}
    return Rollout(
        tuple(waves),
        zones,
        frozenset(_host(vm) for vm in old_vms.values()),
        frozenset(_host(vm) for vm in new_vms.values()),
        frozenset(serving),
    )
