"""What the fleet runner says about a run: one result per stack, as a JSON file (merged across a workflow's shards)
and as Markdown, one table a person reads on a pull request or in a run's summary.

A pull request's comment has room for 65,536 characters; a run over a thousand stacks would not fit one row each.
The table lists every stack that needs a look (failed, refused, drifted, skipped, not started) and every one with
changes; the stacks with nothing to do are counted in one line, and the table stops, saying how many rows it left
out, before the comment's limit (each stack's full result and log are in the run's artifacts).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from operations.exits import CannotStartError
from pls.config.files import FileRefusedError, load_yaml, read_text

OK, CHANGES, DRIFTED, FAILED, REFUSED, SKIPPED, NOT_STARTED = (
    "ok", "changes", "drifted", "failed", "refused", "skipped", "not started",
)  # fmt: skip
PHASES = ("providers", "customers", "decisions")
"""The deployment order: providers, customers, then the providers deciding about those customers' endpoints."""
VERDICTS = (FAILED, REFUSED, DRIFTED, SKIPPED, NOT_STARTED, CHANGES, OK)
"""Worst first: the order of the table."""
FINE = (OK, CHANGES)
"""Verdicts that let the run (and the stacks that depend on the stack) go on."""
COMMENT_LIMIT = 60_000
"""Characters of Markdown a pull-request comment takes here (GitHub's limit is 65,536)."""
MARKER = "<!-- pls-fleet-report -->"
"""The first line of the runner's pull-request comment: how the comment step finds it to update it in place."""
OPS = (("create", "+"), ("update", "~"), ("replace", "+-"), ("delete", "-"))
MAX_RESULTS_BYTES = 16 * 1024 * 1024


@dataclass
class StackResult:
    """One stack's outcome in one run of the fleet runner."""

    stack: str
    phase: str
    verdict: str
    changes: dict[str, int] = field(default_factory=dict)
    """Resources by the engine's step: create, update, replace, delete, same."""
    policy: list[str] = field(default_factory=list)
    """Each policy violation: `<policy>: <message>`."""
    error: str = ""
    """The error's first lines."""
    warnings: list[str] = field(default_factory=list)
    """What the program warned about (a decision waiting for its endpoint, one whose endpoint has gone)."""
    notes: list[str] = field(default_factory=list)
    """A provider's capacity, as its plan prints it."""
    seconds: float = 0.0
    attempts: int = 0
    log: str = ""
    """The file with the stack's full output (an artifact in a workflow)."""

    @property
    def changed(self) -> bool:
        return any(self.changes.get(op) for op, _ in OPS)


@dataclass
class Run:
    command: str
    results: list[StackResult]
    seconds: float = 0.0
    interrupted: bool = False

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "results": [asdict(r) for r in self.results]}, indent=1)

    @property
    def fine(self) -> bool:
        return not self.interrupted and all(r.verdict in FINE for r in self.results)


def read_runs(paths: Iterable[Path]) -> list[Run]:
    """The runs the JSON files hold (a folder: every *.json in it), refused by name when one is not a result."""
    files = [f for p in paths for f in (sorted(p.glob("**/*.json")) if p.is_dir() else [p])]
    runs = []
    for path in files:
        try:
            data = load_yaml(read_text(path, where=str(path), limit=MAX_RESULTS_BYTES), where=str(path))
            results = [StackResult(**r) for r in data["results"]]
            runs.append(Run(str(data["command"]), results, float(data["seconds"]), bool(data["interrupted"])))
        except FileRefusedError as refused:
            raise CannotStartError(str(refused.problem)) from None
        except (TypeError, KeyError, ValueError):
            raise CannotStartError(f"{path}: is not a result of scripts/fleet (--json)") from None
    return runs


def merged(runs: Sequence[Run]) -> Run:
    """The shards' runs as one: every result, the longest shard's seconds, interrupted if any was."""
    command = runs[0].command if runs else ""
    return Run(
        command,
        [r for run in runs for r in run.results],
        max((run.seconds for run in runs), default=0.0),
        any(run.interrupted for run in runs),
    )


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())[:300]


def _row(result: StackResult) -> str:
    counts = " ".join(f"{symbol}{result.changes[op]}" for op, symbol in OPS if result.changes.get(op))
    said = "; ".join([*result.policy, *([result.error] if result.error else []), *result.warnings])
    retried = f" ({result.attempts} attempts)" if result.attempts > 1 else ""
    return (
        f"| `{result.stack}` | {result.phase} | {result.verdict}{retried} | {counts or '-'} | "
        f"{result.seconds:.0f} | {_cell(said) or '-'} |"
    )


def markdown(run: Run, title: str = "", limit: int = COMMENT_LIMIT) -> str:
    """The run as one Markdown table (worst first), within `limit` characters."""
    tally = Counter(r.verdict for r in run.results)
    counts = ", ".join(f"{tally[v]} {v}" for v in VERDICTS if tally[v])
    lines = [
        MARKER,
        f"### {title or f'scripts/fleet {run.command}'}: {len(run.results)} stacks ({counts or 'none'})",
        "",
    ]
    if run.interrupted:
        lines += ["**Interrupted**: stacks not started are listed as such; nothing was left half-done.", ""]
    shown = sorted(
        (r for r in run.results if r.verdict != OK or r.changed or r.warnings),
        key=lambda r: (VERDICTS.index(r.verdict), PHASES.index(r.phase) if r.phase in PHASES else 0, r.stack),
    )
    quiet = len(run.results) - len(shown)
    footer = [f"\n{quiet} {'more ' if shown else ''}stacks: nothing to change." if quiet else ""]
    capacity = _capacity(run.results)
    if shown:
        lines += [
            "| stack | phase | verdict | resources | s | what it says |",
            "| --- | --- | --- | --- | ---: | --- |",
        ]
    used = sum(len(line) + 1 for line in [*lines, *footer, *capacity]) + 200
    for index, result in enumerate(shown):
        row = _row(result)
        if used + len(row) + 1 > limit:
            lines.append(f"\n... and {len(shown) - index} more rows: see the run's artifacts (fleet-results, logs).")
            break
        lines.append(row)
        used += len(row) + 1
    return "\n".join([*lines, *footer, *capacity]).strip() + "\n"


def _capacity(results: Sequence[StackResult]) -> list[str]:
    """Each provider's capacity, as its plan prints it (once per provider, from its last phase)."""
    notes = {r.stack: r.notes for r in results if r.notes and r.notes[0].startswith("capacity")}
    return [line for stack, lines in sorted(notes.items()) for line in ["", f"**{stack}**", "```", *lines, "```"]]
