"""scripts/fleet: many stacks at once, on Pulumi's Automation API (pulumi.automation), in the deployment order.

    scripts/fleet preview --changed origin/main       what a pull request previews (with the policy pack)
    scripts/fleet up --changed <last deployed commit>  what a merge deploys
    scripts/fleet drift --all                          the nightly check: refreshed, and no change expected
    scripts/fleet up provider consumer-acme            named stacks
    scripts/fleet up --phase customers a b --after results/   one shard of a workflow's phase
    scripts/fleet report results/                      the shards' results as one table

The stacks run in the deployment order: providers, then customers, then the providers that decide about those
customers' endpoints (Azure takes a decision only about an endpoint that has asked), up to --parallel at once within
a phase. Each gets one result: its verdict, the resources it creates, updates, replaces and deletes, its policy
violations, the error's first lines, its seconds. A stack that fails stops nothing of its phase; in `up`, the
customers of a provider that failed are skipped (they would read an alias it did not deploy), and so is its
decisions phase. A stack whose backend lock is held, or that Azure throttles, is tried again after a growing pause.
Interrupted (SIGINT, SIGTERM, a cancelled job), it starts no new stack, waits for the running ones (an update
stopped halfway would leave its lock), and lists the rest as not started.

The Markdown summary goes to stdout (and --summary FILE), the results to --json FILE, each stack's output to
--logs DIR. Exit status: 0 when every stack is fine, 1 when one failed, was refused, drifted or was skipped, 2 when
the runner cannot start, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pulumi import automation as auto

from offline.engine import ROOT
from offline.repository import provider_of, role_of, settings_or_problem, stack_config, stack_files
from offline.scratch import scratch_folder
from operations.capacity import capacity_notes
from operations.changed_stacks import (
    EVERY_STACK,
    Phases,
    changed_files,
    changed_stacks,
    ours,
    phases_of,
    stack_of_path,
)
from operations.exits import INTERRUPTED, CannotStartError, run
from operations.fleet_report import (
    CHANGES,
    DRIFTED,
    FAILED,
    FINE,
    NOT_STARTED,
    OK,
    PHASES,
    REFUSED,
    SKIPPED,
    Run,
    StackResult,
    markdown,
    merged,
    read_runs,
)
from operations.pull_request import publish
from pls import contract
from pls.config import ProviderSettings, SettingsError
from pls.ssh_keys import UnreadableKeyFileError, public_key_file, read_public_key, ssh_key_problem

COMMANDS = ("preview", "up", "drift")
STACK_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
"""What Pulumi takes as a stack name (and what a shard's list, split on spaces, can carry)."""
RETRYABLE_RE = re.compile(r"TooManyRequests|\b429\b|throttl|the stack is currently locked by", re.IGNORECASE)
"""Azure Resource Manager's throttling and the backend's lock: both pass; trying again later is the fix."""
MAX_ERROR_LINES, MAX_ERROR_CHARS = 6, 600
MAX_PARALLEL = 64


@dataclass(frozen=True)
class Options:
    command: str
    parallel: int = 8
    retries: int = 3
    """Further attempts of a stack whose lock is held or that Azure throttles."""
    refresh: bool = False
    """Read each stack's resources from Azure first (`pulumi up --refresh`): what was changed by hand is seen."""
    backoff: float = 10.0
    """Seconds before the first retry; each later one waits twice as long (with a fifth of jitter)."""
    policy_pack: str = "policy"
    logs: Path | None = None
    ssh_public_key: str = ""
    """Set as sshPublicKey in each stack file that has none (what scripts/deploy does from ~/.ssh)."""


@dataclass
class _Attempt:
    """What one run of the CLI for a stack reported: its events and its stderr."""

    changes: dict[str, int] = field(default_factory=dict)
    policy: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def event(self, event: auto.EngineEvent) -> None:
        if event.summary_event is not None:
            self.changes = {str(op): int(n) for op, n in event.summary_event.resource_changes.items()}
        if event.policy_event is not None:
            self.policy.append(f"{event.policy_event.policy_name}: {event.policy_event.message}")
        if event.diagnostic_event is not None and event.diagnostic_event.severity in ("error", "warning"):
            said = self.errors if event.diagnostic_event.severity == "error" else self.warnings
            said.append(event.diagnostic_event.message.strip())


def stderr_of(error: auto.CommandError) -> str:
    """What the CLI said on stderr (the Automation API keeps it only inside the error's text)."""
    return str(error).split(" stderr: ", 1)[-1].strip()


def _first_lines(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()][:MAX_ERROR_LINES]
    return "\n".join(lines)[:MAX_ERROR_CHARS]


class Fleet:
    """One run over a set of stacks: phases in order, up to `parallel` stacks at once within each."""

    def __init__(self, root: Path, options: Options, workspace: auto.LocalWorkspace, stop: threading.Event) -> None:
        self.root = root
        self.options = options
        self.workspace = workspace
        self.stop = stop
        self.not_fine: dict[str, str] = {}
        """Stacks whose result (here or in an earlier shard's --after results) lets nothing depend on them."""

    def run(self, phases: Sequence[tuple[str, Sequence[str]]]) -> list[StackResult]:
        results: list[StackResult] = []
        with ThreadPoolExecutor(max_workers=self.options.parallel, thread_name_prefix="stack") as pool:
            for phase, stacks in phases:
                for future in [pool.submit(self.one, stack, phase) for stack in stacks]:
                    while not future.done():
                        # Only the main thread runs a signal's handler, and the kernel may hand the signal to any
                        # thread: waking every tenth of a second, it sets the stop before the next stack starts.
                        wait([future], timeout=0.1)
                    result = future.result()
                    results.append(result)
                    if result.verdict not in FINE:
                        self.not_fine[result.stack] = result.verdict
        return results

    def _waits_for(self, stack: str, phase: str) -> str:
        """The stack this one's update needs deployed first, if it is not: a customer's provider, a provider's own
        first phase (an update only: a preview or drift check reads what is deployed, not what failed now)."""
        if self.options.command != "up":
            return ""
        needed = provider_of(stack, self.root) if phase == "customers" else stack if phase == "decisions" else None
        return needed if needed in self.not_fine else ""

    def one(self, stack: str, phase: str) -> StackResult:
        if self.stop.is_set():
            return StackResult(stack, phase, NOT_STARTED)
        if needed := self._waits_for(stack, phase):
            why = f"{needed} did not deploy ({self.not_fine[needed]}): this stack waits for it"
            return StackResult(stack, phase, SKIPPED, error=why)
        log = self.options.logs / f"{stack}.{phase}.log" if self.options.logs else None
        started = time.monotonic()
        result = StackResult(stack, phase, FAILED, log=str(log or ""))
        with open(log or os.devnull, "a", encoding="utf-8") as sink:
            try:
                while True:
                    result.attempts += 1
                    attempt, retryable = self._attempt(stack, sink.write)
                    self._judge(result, attempt)
                    if not retryable or result.attempts > self.options.retries or self._stopped_waiting(result):
                        break
                    sink.write(f"\n--- attempt {result.attempts}: {result.error[:200]}; trying again\n")
            except Exception as unexpected:  # one stack's failure, however odd, never stops the others
                result.verdict, result.error = FAILED, _first_lines(f"{type(unexpected).__name__}: {unexpected}")
                sink.write(f"\n--- {result.error}\n")
        if result.verdict != FAILED:
            result.notes = self._capacity(stack)
        result.seconds = round(time.monotonic() - started, 2)
        return result

    def _stopped_waiting(self, result: StackResult) -> bool:
        """Waits before the next attempt; True when a stop came meanwhile (the stack keeps its last verdict)."""
        pause = self.options.backoff * 2 ** (result.attempts - 1) * random.uniform(0.8, 1.2)
        return self.stop.wait(pause)

    def _attempt(self, name: str, write: Callable[[str], object]) -> tuple[_Attempt, bool]:
        """One run of the CLI for the stack: what it reported, and whether trying again may help."""
        attempt = _Attempt()

        def line(text: str) -> None:
            write(text + "\n")

        def error_line(text: str) -> None:
            attempt.stderr.append(text)
            line(text)

        packs = [str(self.root / self.options.policy_pack)] if self.options.policy_pack else []
        drift = self.options.command == "drift" or None
        try:
            stack = (auto.Stack.select if drift else auto.Stack.create_or_select)(name, self.workspace)
            self._set_ssh_key(name, stack)
            if self.options.command == "up":
                stack.up(
                    policy_packs=packs,
                    refresh=self.options.refresh or None,
                    on_event=attempt.event,
                    on_output=line,
                    on_error=error_line,
                    color="never",
                )
            else:
                stack.preview(
                    policy_packs=packs,
                    refresh=drift or self.options.refresh or None,
                    expect_no_changes=drift,
                    on_event=attempt.event,
                    on_output=line,
                    on_error=error_line,
                    color="never",
                )
        except auto.CommandError as failed:
            said = "\n".join(attempt.errors) or "\n".join(attempt.stderr) or stderr_of(failed)
            attempt.errors = [_first_lines(said)]
            return attempt, bool(RETRYABLE_RE.search(f"{said}\n{failed}"))
        return attempt, False

    def _judge(self, result: StackResult, attempt: _Attempt) -> None:
        result.changes = attempt.changes
        result.policy = attempt.policy
        result.warnings = attempt.warnings
        result.error = "\n".join(attempt.errors)
        changed = any(n for op, n in attempt.changes.items() if op != "same")
        if attempt.policy:
            result.verdict = REFUSED
        elif result.error and "no changes were expected" in result.error:
            result.verdict, result.error = DRIFTED, "differs from its stack file and code, or Azure from its state"
        elif result.error:
            result.verdict = FAILED
        else:
            result.verdict = CHANGES if changed else OK

    def _set_ssh_key(self, name: str, stack: auto.Stack) -> None:
        """The key, in a stack file that has none (one the engine cannot read: its own run names the problem)."""
        try:
            missing = "sshPublicKey" not in stack_config(name, self.root)
        except SettingsError:
            return
        if self.options.ssh_public_key and missing:
            stack.set_config("sshPublicKey", auto.ConfigValue(self.options.ssh_public_key))

    def _capacity(self, stack: str) -> list[str]:
        """A provider's capacity as its plan prints it, from its stack file and the connections it has now (none
        when its outputs cannot be read: the result says what it can)."""
        settings = settings_or_problem(stack, self.root)
        if not isinstance(settings, ProviderSettings):
            return []
        try:
            outputs = self.workspace.stack_outputs(stack)
        except auto.CommandError:
            return []
        connections = outputs[contract.CONNECTIONS].value if contract.CONNECTIONS in outputs else []
        return capacity_notes(settings, connections)


# --- which stacks, in which phases ---------------------------------------------------------------------------------


Phased = list[tuple[str, list[str]]]


def _phases(args: argparse.Namespace, root: Path) -> tuple[Phased, list[StackResult]]:
    """The stacks to run, by phase, and a failed result for each stack file considered that cannot be read (its own
    problem, named: nothing can run it)."""
    for name in args.stacks:
        if not STACK_NAME_RE.fullmatch(name):
            raise CannotStartError(f"{name[:60]!r} is not a stack name (letters, digits, - _ .)")
        if not (root / f"Pulumi.{name}.yaml").is_file():
            raise CannotStartError(f"{name}: no stack file Pulumi.{name}.yaml here")
    if args.phase:
        return [(args.phase, list(dict.fromkeys(args.stacks)))], []
    if args.changed:
        try:
            files = changed_files(args.changed, root)
        except subprocess.CalledProcessError as error:
            raise CannotStartError(f"git cannot compare with {args.changed}: {error.stderr.strip()}") from None
        considered = [s for f in files if (s := stack_of_path(f)) and (root / f).is_file()]
        return _ordered(changed_stacks(files, args.changed, root), args.command), _unreadable(considered, root)
    if args.all:
        phases = changed_stacks(list(EVERY_STACK), "HEAD", root)
        return _ordered(phases, args.command), _unreadable(stack_files(root), root)
    broken = _unreadable(args.stacks, root)
    if broken:
        raise CannotStartError("\n".join(f"Pulumi.{r.stack}.yaml: {r.error}" for r in broken))
    theirs = sorted(set(args.stacks) - ours(root))
    if theirs:
        raise CannotStartError(f"{', '.join(theirs)}: another tenant's stack (providerAlias): it runs its own side")
    return _ordered(phases_of(args.stacks, root), args.command), []


def _unreadable(stacks: Iterable[str], root: Path) -> list[StackResult]:
    found = []
    for stack in dict.fromkeys(stacks):
        if role_of(stack, root) is None:
            problem = settings_or_problem(stack, root)
            said = str(problem) if isinstance(problem, SettingsError) else "has no role: set role: provider or consumer"
            found.append(StackResult(stack, "stack file", FAILED, error=_first_lines(said)))
    return found


def _ordered(phases: Phases, command: str) -> Phased:
    """The phases to run: a preview or drift check reads what is deployed, so a provider's decisions phase would
    show what its first did (it is an update's only)."""
    decisions = phases.decisions if command == "up" else []
    return [("providers", phases.providers), ("customers", phases.customers), ("decisions", decisions)]


# --- the command ---------------------------------------------------------------------------------------------------


def _fleet_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/fleet", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=[*COMMANDS, "report"])
    parser.add_argument("stacks", nargs="*", help="stack names; with report: result files or folders")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--changed", metavar="BASE", help="the stacks a change since this git revision touches")
    chosen.add_argument("--all", action="store_true", help="every stack that is ours to run")
    parser.add_argument("--phase", choices=PHASES, help="run the named stacks as this one phase (a workflow's shard)")
    parser.add_argument("--after", type=Path, action="append", default=[], help="earlier phases' --json results")
    parser.add_argument("--parallel", type=int, default=8, help=f"stacks at once within a phase (1-{MAX_PARALLEL})")
    parser.add_argument("--refresh", action="store_true", help="read the resources from Azure first (preview, up)")
    parser.add_argument("--retries", type=int, default=3, help="further attempts when locked or throttled (0-10)")
    parser.add_argument("--backoff", type=float, default=10.0, help="seconds before the first retry (0-600)")
    parser.add_argument("--policy-pack", default="policy", help="the policy pack's folder ('' for none)")
    parser.add_argument("--logs", type=Path, help="a folder for each stack's full output")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--summary", type=Path, help="also write the Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("--title", default="", help="the summary's title")
    parser.add_argument(
        "--pull-request",
        type=int,
        help="report: the summary as this pull request's one comment (needs gh)",
    )
    parser.add_argument(
        "--repository", default=os.environ.get("GITHUB_REPOSITORY", ""), help="owner/name (default: $GITHUB_REPOSITORY)"
    )
    return parser


def _arguments_checked(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not 1 <= args.parallel <= MAX_PARALLEL:
        parser.error(f"--parallel takes 1 to {MAX_PARALLEL}")
    if not 0 <= args.retries <= 10 or not 0 <= args.backoff <= 600:
        parser.error("--retries takes 0 to 10, --backoff 0 to 600 seconds")
    if args.command == "report":
        if not args.stacks or args.changed or args.all or args.phase:
            parser.error("report takes result files or folders, nothing else")
        if args.pull_request and not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository):
            parser.error("--pull-request needs --repository owner/name (or $GITHUB_REPOSITORY)")
    elif args.pull_request:
        parser.error("--pull-request is report's: the shards' results become one comment")
    elif args.phase and (args.changed or args.all or not args.stacks):
        parser.error("--phase runs the stacks named after it")
    elif bool(args.stacks) + bool(args.changed) + args.all != 1:
        parser.error("name stacks, or give --changed BASE or --all")


def _key_from_environment() -> str:
    """The VMs' SSH public key for stack files without one, found as scripts/deploy finds it: $SSH_PUBLIC_KEY (a
    workflow's variable), else the file $SSH_PUBLIC_KEY_FILE, ~/.ssh/id_ed25519.pub or ~/.ssh/id_rsa.pub; none: ''
    (a stack that needs one then says so). A key Azure would refuse, or a key file that cannot be read, stops the
    run before any stack starts."""
    key, where = os.environ.get("SSH_PUBLIC_KEY", "").strip(), "SSH_PUBLIC_KEY"
    if not key:
        found = public_key_file()
        if found is None:
            return ""
        try:
            key, where = read_public_key(found), str(found)
        except UnreadableKeyFileError as unreadable:
            raise CannotStartError(f"{found}: {unreadable}") from None
    problem = ssh_key_problem(key)
    if problem:
        raise CannotStartError(f"{where}: {problem}")
    return key


def pulumi_workspace(root: Path) -> auto.LocalWorkspace:
    """The project's workspace: a stack it creates encrypts its secrets with $PULUMI_SECRETS_PROVIDER when that is
    set (e.g. a Key Vault key), as `pulumi stack init --secrets-provider` does."""
    secrets = os.environ.get("PULUMI_SECRETS_PROVIDER") or None
    try:
        return auto.LocalWorkspace(work_dir=str(root), secrets_provider=secrets)
    except FileNotFoundError:
        raise CannotStartError(
            "needs the Pulumi CLI on PATH: https://www.pulumi.com/docs/iac/download-install/"
        ) from None


def _stop_on_signals(stop: threading.Event) -> dict[int, object]:
    def stopping(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            print(
                f"{signal.Signals(signum).name}: no new stack starts; waiting for the running ones to finish",
                file=sys.stderr,
            )
        stop.set()

    return {s: signal.signal(s, stopping) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def _write(run_: Run, args: argparse.Namespace) -> None:
    summary = markdown(run_, args.title)
    print(summary)
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as out:
            out.write(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(run_.to_json())
    if args.pull_request:
        body = scratch_folder("comment") / "comment.md"
        body.write_text(summary)
        done = publish(args.repository, args.pull_request, body)
        print(f"{done} the comment on pull request #{args.pull_request}", file=sys.stderr)


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = _fleet_parser()
    args = parser.parse_intermixed_args(argv)
    _arguments_checked(args, parser)
    if args.command == "report":
        return run(lambda: _merge_reports(args))

    def fleet() -> int:
        key = _key_from_environment()
        options = Options(
            command=args.command,
            parallel=args.parallel,
            retries=args.retries,
            refresh=args.refresh,
            backoff=args.backoff,
            policy_pack=args.policy_pack,
            logs=args.logs,
            ssh_public_key=key,
        )
        phases, unreadable = _phases(args, root)
        earlier = merged(read_runs(args.after)).results if args.after else []
        workspace = pulumi_workspace(root)
        if options.logs:
            options.logs.mkdir(parents=True, exist_ok=True)
        stop = threading.Event()
        previous = _stop_on_signals(stop)
        started = time.monotonic()
        try:
            runner = Fleet(root, options, workspace, stop)
            runner.not_fine.update({r.stack: r.verdict for r in earlier if r.verdict not in FINE})
            results = unreadable + runner.run(phases)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        run_ = Run(args.command, results, round(time.monotonic() - started, 2), stop.is_set())
        _write(run_, args)
        return INTERRUPTED if run_.interrupted else 0 if run_.fine else 1

    return run(fleet)


def _merge_reports(args: argparse.Namespace) -> int:
    runs = read_runs([Path(p) for p in args.stacks])
    if not runs:
        raise CannotStartError("no results: give the --json files (or their folder) of scripts/fleet runs")
    combined = merged(runs)
    _write(combined, args)
    return 0 if combined.fine else 1


if __name__ == "__main__":
    sys.exit(main())
