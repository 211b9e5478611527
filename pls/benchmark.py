"""How long the program takes to evaluate under mocks, and the whole test suite: python -m pls.benchmark

Targets: provider evaluation <= 3 s, a scaled provider (100 visibility subscriptions, 8 NAT IPs,
9 VMs) < 2x the default, the whole suite <= 60 s on 2 cores. Not a test: timings vary by machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from pls.plan import run
from pls.simulate import ROOT, deployed_config, simulate, stack_files

SCALED_PROVIDER = {
    "webVmCount": 9,
    "natIpCount": 8,
    "natSubnetCidr": "10.50.2.0/27",
    "visibility": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(100)],
    "autoApproval": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(50)],
}


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    rows = [("first run, including the SDK import", timed(lambda: run("provider")))]
    rows += [(f"stack {stack}", timed(lambda stack=stack: run(stack))) for stack in stack_files()]
    config = {**deployed_config("provider"), **SCALED_PROVIDER}
    rows.append(("provider scaled (100 subscriptions, 8 NAT IPs, 9 VMs)", timed(lambda: simulate("provider", config))))
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    rows.append(("whole test suite", timed(lambda: subprocess.run(suite, cwd=ROOT, check=True, capture_output=True))))
    print("| what | seconds |\n| --- | --- |")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
