"""A stand-in for the Pulumi CLI, for the fleet runner's tests and benchmark (`offline/bin/pulumi` on PATH): it
answers the commands Pulumi's Automation API (pulumi.automation's LocalWorkspace and Stack) runs, and streams the
engine events it reads, with results from the offline engine's run of the real program (offline/engine.py).

What it imitates, of the Pulumi CLI of the SDK's own version with a self-managed file backend (offline/file_backend.py):
- `pulumi version`; `--non-interactive` before the command;
- `stack select --stack S` (`error: no stack named 'S' found` when the backend has none), `stack init S`,
  `stack output --json [--show-secrets] --stack S`, `stack history --json [--page-size N --page P] --stack S`;
- `config set KEY --plaintext|--secret --stack S -- VALUE`, written into Pulumi.S.yaml (a secret as `secure:`);
- `preview` and `up --yes --skip-preview` with `--refresh`, `--expect-no-changes` and `--policy-pack policy`: the
  program runs offline against the stack's last deployment and the offline Azure; each resource's step, the
  program's warnings, the policy pack's violations (offline/policy_pack.py, mandatory) and the summary go to the
  `--event-log` as the engine's JSON events, over gRPC (`tcp://host:port`, as CLIs after 3.205 send them) or to a
  file; a human summary goes to stdout. `up` takes the stack's lock in the backend (a second update of a locked
  stack fails as the CLI's does: "the stack is currently locked by 1 lock(s)") and keeps what it deployed only when
  all of it succeeds;
- failure: exit status 255, the engine's diagnostics on stdout, `error: …` on stderr.

What it does not imitate: any other command or flag (refused by name, exit 255), the cloud backend, the CLI's plugin
and language host processes (the program runs in this process), time: an update takes only as long as the faults
file says (`{"seconds": 30}`, the benchmark's stand-in for Azure's time). A SIGINT during that wait cancels the
update before anything is applied (`error: update canceled`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from offline.cli_args import FAILED, UPDATE_FLAGS, command_flags, project_of
from offline.file_backend import BackendError, FileBackend


def _version() -> str:
    """The version of the SDK installed here: the CLI that matches it (its metadata, without importing it)."""
    from importlib.metadata import version

    return version("pulumi")


def _config_set(args: list[str], root: Path, project: str) -> int:
    if "--" not in args[:-1]:
        raise BackendError("pulumi config set: give the value after --")
    before, value = args[: args.index("--")], args[args.index("--") + 1]
    options = command_flags("config set", before, "--stack", "--plaintext", "--secret", positional="key")
    key = options.key if ":" in options.key else f"{project}:{options.key}"
    from ruamel.yaml import YAML  # round-trips the file as the CLI does (only this command writes one)

    path = root / f"Pulumi.{options.stack}.yaml"
    yaml = YAML()
    document = yaml.load(path.read_text()) if path.exists() else None
    document = document if isinstance(document, dict) else {}
    document.setdefault("config", {})[key] = {"secure": "v1:offline"} if options.secret else value
    with open(path, "w") as out:
        yaml.dump(document, out)
    return 0


def _stack_command(sub: str, args: list[str], backend: FileBackend) -> int:
    if sub == "select":
        backend.record(command_flags("stack select", args, "--stack").stack)
    elif sub == "init":
        backend.init(
            command_flags("stack init", args, "--stack", "--no-select", "--secrets-provider", positional="name").name
        )
    elif sub == "output":
        options = command_flags("stack output", args, "--stack", "--json", "--show-secrets")
        print(json.dumps(backend.record(options.stack)["outputs"]))
    elif sub == "history":
        options = command_flags("stack history", args, "--stack", "--json", "--show-secrets", "--page-size", "--page")
        history = list(reversed(backend.record(options.stack)["history"]))
        size = int(options.page_size or len(history) or 1)
        page = int(options.page or 1)
        print(json.dumps(history[(page - 1) * size : page * size]))
    else:
        raise BackendError(f"the stand-in does not imitate `pulumi stack {sub}`")
    return 0


def _command(args: list[str]) -> str:
    """The command's name, as the calls log records it: `up`, `stack select`, `config set`."""
    return " ".join(args[:2]) if args[:1] in (["stack"], ["config"]) else " ".join(args[:1])


def _dispatch(args: list[str], root: Path) -> int:
    command, rest = (args[0], args[1:]) if args else ("", [])
    project = project_of(root)
    if command == "version":
        print(f"v{_version()}")
        return 0
    backend = FileBackend.from_environment(project)
    if command == "stack" and rest:
        return _stack_command(rest[0], rest[1:], backend)
    if command == "config" and rest[:1] == ["set"]:
        return _config_set(rest[1:], root, project)
    if command in ("preview", "up"):
        from offline.warm_engine import run_warm  # the engine, only for the commands that run the program

        command_flags(command, rest, *UPDATE_FLAGS)  # a wrong flag is refused here, at once
        return run_warm(args, root)
    raise BackendError(f"the stand-in does not imitate `pulumi {' '.join(args[:2])}`")


def _stack_flag(args: list[str]) -> str:
    return args[args.index("--stack") + 1] if "--stack" in args[:-1] else ""


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    args = [a for a in args[:cut] if a != "--non-interactive"] + args[cut:]
    root = root or Path.cwd()
    started = float(os.environ.pop("PULUMI_STANDIN_STARTED", "") or time.time())  # set by offline/bin/pulumi
    status = FAILED
    try:
        status = _dispatch(args, root)
    except BackendError as refused:
        print(f"error: {refused}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: update canceled", file=sys.stderr)
    if args[:1] != ["version"]:
        stack = _stack_flag(args) or (args[2] if args[:2] == ["stack", "init"] and len(args) > 2 else "")
        call = {"command": _command(args), "stack": stack, "start": started, "end": time.time(), "exit": status}
        with contextlib.suppress(BackendError):
            FileBackend.from_environment(project_of(root)).log_call(call)
    return status


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # as a Go binary ends: the SDK's threads and heap are not torn down one by one
