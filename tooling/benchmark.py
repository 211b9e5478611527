"""How long the program takes to evaluate under mocks, and the whole test phase: .venv/bin/python -m tooling.benchmark

Targets: provider evaluation <= 3 s, a scaled provider (100 visibility subscriptions, 8 NAT IPs, 9 VMs)
< 2x the default, the test phase (pytest on every core) <= 30 s on 2 cores. Not a test: timings vary.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from tooling.engine import ROOT, deploy, simulate
from tooling.repository import deploy_repository, deployed_config, stack_files

SCALED_PROVIDER = {
    "webVmCount": 9,
    "natIpCount": 8,
    "natSubnetCidr": "10.50.2.0/27",
    "visibility": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(100)],
    "autoApproval": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(50)],
    "approvedConnections": [],
}


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    provider = {**deployed_config("provider"), "approvedConnections": [], "rejectedConnections": []}
    rows = [("first run, including the SDK import", timed(lambda: simulate("provider", provider)))]
    repository = deploy_repository()
    rows.append(("every stack file, in the README's lifecycle order", timed(deploy_repository)))
    for stack in stack_files():
        world = repository.world.fork()
        rows.append(
            (f"stack {stack}", timed(lambda stack=stack, world=world: deploy(world, stack, deployed_config(stack))))
        )
    rows.append(
        (
            "provider scaled (100 subscriptions, 8 NAT IPs, 9 VMs)",
            timed(lambda: simulate("provider", {**provider, **SCALED_PROVIDER})),
        )
    )
    tests = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    rows.append(
        (
            "test phase (pytest, every core)",
            timed(lambda: subprocess.run(tests, cwd=ROOT, check=True, capture_output=True)),
        )
    )
    print("| what | seconds |\n| --- | --- |")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
