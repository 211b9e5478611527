"""`pulumi preview` and `pulumi up` of the stand-in CLI (offline/pulumi_cli.py says what it imitates): the program
run by the offline engine against the stack's last deployment and the offline Azure, reported as the engine's events,
the CLI's text and its exit status. Imported only for these two commands: the others answer without the engine."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.cli_args import FAILED, UPDATE_FLAGS, command_flags, project_of
from offline.engine import SimulationError, deploy, refresh
from offline.file_backend import BackendError, FileBackend, now
from offline.policy_pack import PACK, Violation, views, violations
from offline.records import Simulation
from offline.repository import stack_config
from offline.steps import Step, steps
from pls.config import SettingsError, load_schema

THROTTLED = (
    "RESPONSE 429: 429 Too Many Requests\nERROR CODE: TooManyRequests\n"
    "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00"
)
"""What azure-native reports when Azure Resource Manager throttles a request (the SDK's ResponseError)."""
SYMBOLS = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "same": " "}


# --- the engine's events ----------------------------------------------------------------------------------------


@dataclass
class EventLog:
    """The events of one command, in order, sent to `--event-log` when it ends."""

    target: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, kind: str, body: dict[str, Any]) -> None:
        self.events.append({"sequence": len(self.events), "timestamp": int(time.time()), kind: body})

    def send(self) -> None:
        if not self.target:
            return
        lines = [json.dumps(event, default=str) for event in [*self.events, *self._end()]]
        if self.target.startswith("tcp://"):
            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc

            with grpc.insecure_channel(self.target.removeprefix("tcp://")) as channel:
                stub = events_pb2_grpc.EventsStub(channel)
                stub.StreamEvents(iter([events_pb2.EventRequest(event=line) for line in lines]), timeout=30)
        else:
            with open(self.target, "a", encoding="utf-8") as log:
                log.write("".join(f"{line}\n" for line in lines))

    def _end(self) -> list[dict[str, Any]]:
        return [{"sequence": len(self.events), "timestamp": int(time.time()), "cancelEvent": {}}]


def _step_event(step: Step, preview: bool) -> dict[str, Any]:
    resource = step.resource
    state = {
        "type": resource.type,
        "urn": resource.urn,
        "parent": resource.parent,
        "custom": resource.custom,
        "protect": resource.protect,
    }
    return {
        "metadata": {
            "op": step.op,
            "urn": resource.urn,
            "type": resource.type,
            "provider": resource.provider,
            "old": None if step.op == "create" else state,
            "new": None if step.op == "delete" else state,
            "diffs": list(step.changed),
            "logical": True,
        },
        "planning": preview,
    }


# --- preview and up -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    steps: list[Step] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    deployed: Simulation | None = None

    @property
    def changes(self) -> dict[str, int]:
        return dict(Counter(step.op for step in self.steps))


def _update(options: argparse.Namespace, root: Path, backend: FileBackend, preview: bool) -> Outcome:
    """The program's run for the stack, on a copy of the world; `up` keeps the copy when all of it succeeds."""
    with backend.world(root, writing=not preview) as world:
        trial = world.fork()
        trial.azure.previewing = preview
        try:
            config = stack_config(options.stack, root)
        except SettingsError as invalid:
            return Outcome(error=str(invalid))
        if options.refresh and options.stack in trial.deployments:
            with contextlib.suppress(SimulationError):  # a refresh that fails leaves the state as it was
                refresh(trial, options.stack)
        previous = trial.deployments.get(options.stack)
        try:
            current = deploy(trial, options.stack, config, project_dir=root)
        except SimulationError as failed:
            return Outcome(error=str(failed.cause))
        outcome = Outcome(steps(previous, current), [], list(current.warnings), deployed=current)
        if options.policy_pack:
            outcome.violations = violations(views(current))
        if not preview and not outcome.violations:
            world.azure, world.deployments = trial.azure, trial.deployments
    return outcome


def _emit(options: argparse.Namespace, outcome: Outcome, events: EventLog, preview: bool, seconds: float) -> None:
    """The engine's events of one update, in the order the engine sends them."""
    for step in outcome.steps:
        events.emit("resourcePreEvent", _step_event(step, preview))
    stack_urn = f"pulumi:pulumi:Stack::{load_schema().project}-{options.stack}"
    diagnostics = [("warning", w) for w in outcome.warnings] + ([("error", outcome.error)] if outcome.error else [])
    for severity, message in diagnostics:
        events.emit(
            "diagnosticEvent",
            {"urn": stack_urn, "prefix": f"{severity}: ", "message": message, "color": "never", "severity": severity},
        )
    for violation in outcome.violations:
        events.emit(
            "policyEvent",
            {
                "resourceUrn": violation.urn,
                "message": violation.message,
                "color": "never",
                "policyName": violation.policy,
                "policyPackName": PACK,
                "policyPackVersion": "",
                "policyPackVersionTag": "",
                "enforcementLevel": "mandatory",
            },
        )
    events.emit(
        "summaryEvent",
        {
            "maybeCorrupt": False,
            "durationSeconds": int(seconds),
            "resourceChanges": outcome.changes,
            "PolicyPacks": {PACK: ""} if options.policy_pack else {},
        },
    )


def _print(options: argparse.Namespace, outcome: Outcome, preview: bool, seconds: float) -> None:
    """What the CLI shows a person: the steps, the diagnostics, the policy violations, the totals."""
    print(f"{'Previewing update' if preview else 'Updating'} ({options.stack}):\n")
    for step in outcome.steps:
        if step.op != "same":
            changed = f" [diff: {', '.join(step.changed)}]" if step.changed else ""
            print(f" {SYMBOLS[step.op]:>2} {step.resource.type} {step.resource.name} {step.op}{changed}")
    if outcome.warnings or outcome.error:
        print("\nDiagnostics:\n  pulumi:pulumi:Stack:")
        for warning in outcome.warnings:
            print(f"    warning: {warning}")
        if outcome.error:
            print(f"    error: {outcome.error}")
    if outcome.violations:
        print(f"\nPolicies:\n    {PACK} (local: policy)")
        for violation in outcome.violations:
            print(f"        - [mandatory]  {violation.policy}  ({violation.resource})\n          {violation.message}")
    print("\nResources:")
    for op, count in sorted(outcome.changes.items()):
        print(f"    {SYMBOLS[op].strip() or ' '} {count} {op}")
    print(f"\nDuration: {seconds:.0f}s")


def _finish(options: argparse.Namespace, outcome: Outcome, events: EventLog, preview: bool, seconds: float) -> int:
    """The events, stdout and exit status of one update."""
    _print(options, outcome, preview, seconds)
    _emit(options, outcome, events, preview, seconds)
    events.send()
    if outcome.error or outcome.violations:
        print("error: preview failed" if preview else "error: update failed", file=sys.stderr)
        return FAILED
    if options.expect_no_changes and any(step.op != "same" for step in outcome.steps):
        print("error: no changes were expected but changes were proposed", file=sys.stderr)
        return FAILED
    return 0


def _waited(backend: FileBackend) -> float:
    """The time an update of Azure takes, as the faults file says (the benchmark's 30 s); a SIGINT cancels it (the
    CLI's KeyboardInterrupt) before anything is applied."""
    seconds = float(backend.faults().get("seconds", 0))
    time.sleep(seconds)
    return seconds


def run_update(command: str, options: argparse.Namespace, backend: FileBackend, root: Path) -> int:
    preview = command == "preview"
    record = backend.record(options.stack)
    events = EventLog(options.event_log)
    events.emit("preludeEvent", {"config": {}})
    started = now()
    lock = contextlib.nullcontext() if preview else backend.update_lock(options.stack)
    with lock:
        seconds = _waited(backend)
        if not preview and backend.take_throttling(options.stack):
            outcome = Outcome(error=THROTTLED)
        else:
            outcome = _update(options, root, backend, preview)
        status = _finish(options, outcome, events, preview, seconds)
        if not preview:
            _record_update(backend, options.stack, record, outcome, started, status)
    return status


def _record_update(
    backend: FileBackend, stack: str, record: dict[str, Any], outcome: Outcome, started: str, status: int
) -> None:
    succeeded = status == 0 and outcome.deployed is not None
    if succeeded:
        assert outcome.deployed is not None
        record["outputs"] = json.loads(json.dumps(outcome.deployed.outputs, default=str))
    record["history"].append(
        {
            "version": len(record["history"]) + 1,
            "kind": "update",
            "startTime": started,
            "endTime": now(),
            "message": "",
            "environment": {"exec.kind": "auto.local"},
            "config": {},
            "result": "succeeded" if succeeded else "failed",
            "resourceChanges": outcome.changes,
        }
    )
    backend.write_record(stack, record)


def run_here(args: list[str], root: Path) -> int:
    """`pulumi preview` or `pulumi up`, in this process (the warm engine's fork): the program runs offline."""
    try:
        backend = FileBackend.from_environment(project_of(root))
        return run_update(args[0], command_flags(args[0], args[1:], *UPDATE_FLAGS), backend, root)
    except BackendError as refused:
        print(f"error: {refused}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: update canceled", file=sys.stderr)
    return FAILED
