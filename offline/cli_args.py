"""The stand-in Pulumi CLI's arguments (offline/pulumi_cli.py says what it imitates): the project it runs in, and
the flags each command takes, refused by name when the stand-in does not imitate them (the CLI refuses unknown flags
too)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from offline.file_backend import BackendError

FAILED = 255
"""The CLI's exit status when a command fails."""


def project_of(root: Path) -> str:
    """The project's name, from the Pulumi.yaml of the folder the CLI runs in (it needs one, as the CLI does)."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise BackendError(f"no Pulumi.yaml project file found in {root}")
    return str(yaml.safe_load(path.read_text())["name"])


VALUED = (
    "--stack",
    "--event-log",
    "--exec-kind",
    "--color",
    "--message",
    "--page-size",
    "--page",
    "--secrets-provider",
)
REPEATED = ("--policy-pack", "--parallel")
UPDATE_FLAGS = (
    "--stack", "--event-log", "--exec-kind", "--color", "--message", "--policy-pack", "--parallel", "--refresh",
    "--expect-no-changes", "--yes", "--skip-preview", "--diff", "--suppress-progress", "--suppress-outputs",
)  # fmt: skip


def command_flags(command: str, args: list[str], *flags: str, positional: str = "") -> argparse.Namespace:
    """`args` of `pulumi <command>`, which takes `flags` (and one `positional`): anything else is refused by name."""
    parser = argparse.ArgumentParser(prog=f"pulumi {command}", add_help=False)
    if positional:
        parser.add_argument(positional)
    for flag in flags:
        if flag in VALUED:
            parser.add_argument(flag, default="")
        elif flag in REPEATED:
            parser.add_argument(flag, action="append", default=[])
        else:
            parser.add_argument(flag, action="store_true")
    options, unknown = parser.parse_known_args(args)
    if unknown:
        raise BackendError(f"unknown flag or argument for `pulumi {command}`: {unknown[0]} (not imitated here)")
    return options
