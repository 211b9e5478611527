"""How long the program takes to evaluate under mocks, and what the checks cost with 3 and with 1,000 customers:
.venv/bin/python -m maintenance.benchmark [--customers N] [--rounds R]

Targets: provider evaluation <= 3 s, a scaled provider (100 visibility subscriptions, 8 NAT IPs, 9 VMs) < 2x the
default; with 1,000 customers (maintenance.scale: 8 services of one provider, then a second provider), each as a
ratio to the same command with the three shipped customers, measured in the same run: one customer's plan <= 1.5x,
the provider's plan <= 3x, `scripts/plan --all` <= 120 s, the test phase <= 1.3x (and <= 30 s with the shipped
ones). Each command's time is the median of R rounds (3) that alternate the two copies. Not a test: timings vary
with the machine.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maintenance import scale
from offline.engine import ROOT, World, deploy, simulate
from offline.repository import LAB, deploy_repository, deployed_config, registry_project, stack_files

SCALED_PROVIDER = {"webVmCount": 9, "natIpCount": 8, "natSubnetCidr": "10.50.2.0/27"}
SCALED_REGISTRY = tuple(
    (
        f"c{i:03d}.yaml",
        f"subscriptions: [{i:08x}-0000-4000-8000-000000000000]\napproval: {'auto' if i < 50 else 'manual'}\n",
    )
    for i in range(100)
)
"""A full service: 100 customers in the registry, half of them auto-approved."""
NOT_COPIED = (".venv", ".tools", ".git", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def evaluation_rows() -> list[tuple[str, float]]:
    provider = {**deployed_config("provider", LAB), "approvedConnections": [], "rejectedConnections": []}
    rows = [("first run, including the SDK import", timed(lambda: simulate("provider", provider, world=World(LAB))))]
    repository = deploy_repository(LAB)
    rows.append(("every lab stack file, in the README's lifecycle order", timed(lambda: deploy_repository(LAB))))
    for stack in stack_files(LAB):
        world = repository.world.fork()
        config = deployed_config(stack, LAB)
        rows.append((f"stack {stack}", timed(functools.partial(deploy, world, stack, config))))
    scaled = {**provider, **SCALED_PROVIDER}
    full = registry_project(SCALED_REGISTRY)
    rows.append(
        (
            "provider scaled (100 subscriptions, 8 NAT IPs, 9 VMs)",
            timed(lambda: simulate("provider", scaled, world=World(full))),
        )
    )
    return rows


def repository_copy(root: Path, customers: int) -> Path:
    """This repository's program and tests in `root`, with the lab's stack files and `customers` more customers."""
    skipped = shutil.ignore_patterns(*NOT_COPIED)

    def ignored(folder: str, names: list[str]) -> set[str]:
        stack_files_here = {n for n in names if n.startswith("Pulumi.") and n != "Pulumi.yaml"}
        users = stack_files_here | ({"customers"} & set(names))  # the users' stack files and registry stay behind
        return set(skipped(folder, names)) | (users if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, root, ignore=ignored, dirs_exist_ok=True)
    for shared in (".venv", ".tools"):
        if (ROOT / shared).exists():
            (root / shared).symlink_to(ROOT / shared)
    scale.generate(root, customers)
    shutil.copy(ROOT / "customers" / "README.md", root / "customers")  # the folder's own page, not a user's entry
    for git in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"]):
        subprocess.run(["git", *git], cwd=root, check=True, capture_output=True)
    return root


def scale_rows(customers: int, rounds: int) -> list[tuple[str, list[float], list[float]]]:
    """Each command with the lab's three customers and with `customers` more, in two copies of the repository:
    `rounds` rounds, each running every command once in each copy, so that a slow spell of a shared machine (or
    the heat of the command before) does not land on one side of a ratio."""
    python = ".venv/bin/python"
    commands = {
        "one customer's plan": [python, "-m", "operations.plan", "{customer}"],
        "the provider's plan": [python, "-m", "operations.plan", "provider"],
        "scripts/plan --all": [python, "-m", "operations.plan", "--all"],
        "test phase (pytest, every core)": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    }
    with tempfile.TemporaryDirectory() as few, tempfile.TemporaryDirectory() as many:
        roots = {
            "consumer": repository_copy(Path(few), 0),
            f"consumer-c{customers // 2:04d}": repository_copy(Path(many), customers),
        }
        samples: dict[str, tuple[list[float], list[float]]] = {what: ([], []) for what in commands}
        for _ in range(rounds):
            for what, command in commands.items():
                for seconds, (customer, root) in zip(samples[what], roots.items(), strict=True):
                    argv = [part.format(customer=customer) for part in command]
                    seconds.append(
                        timed(functools.partial(subprocess.run, argv, cwd=root, check=True, capture_output=True))
                    )
    return [(what, few_seconds, many_seconds) for what, (few_seconds, many_seconds) in samples.items()]


def spread(seconds: list[float]) -> str:
    """The median of the samples, and their range when there are several."""
    median = f"{statistics.median(seconds):.1f}"
    return median if len(seconds) == 1 else f"{median} ({min(seconds):.1f} to {max(seconds):.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maintenance.benchmark", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--customers", type=int, default=1000, help="customers of the large repository (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="times each command runs in each copy (3)")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.rounds < 1:
        parser.error("--customers and --rounds take a whole number of at least 1")
    print("| what | seconds |\n| --- | --- |")
    for what, seconds in evaluation_rows():
        print(f"| {what} | {seconds:.2f} |")
    print(
        f"\n| command | 3 customers (s) | {args.customers} customers (s) | ratio of the medians |\n"
        "| --- | --- | --- | --- |"
    )
    for what, few, many in scale_rows(args.customers, args.rounds):
        ratio = statistics.median(many) / statistics.median(few)
        print(f"| {what} | {spread(few)} | {spread(many)} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
