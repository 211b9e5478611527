"""The fleet runner at the size users run it: `scripts/fleet preview` of one workflow shard of a repository of
1,000 customers, against the stand-in Pulumi CLI taking --seconds (30) per stack as Azure and the engine would.

    .venv/bin/python -m maintenance.fleet_benchmark [--customers 1000] [--seconds 30] [--shards 20] [--parallel 8]

The repository is onboarded the README's way (maintenance.scale) and deployed once offline (the stand-in's backend
is seeded with it); a change to components/ touches every stack, and `scripts/changed-stacks --shards` splits them
as preview.yml does. The largest shard is previewed as its job would preview it, on this machine; then every shard
(with the stand-in answering at once), and their results merged into the pull request's one summary. In CI every
shard is a job of its own and all run at once (fleet.yml allows 64), so the preview's wall time is the slowest
shard's (plus each job's set-up, which GitHub's runners decide). The runner's own overhead per stack is the stack's
time in the runner less the stand-in CLI's own time for it (each call's, from the calls log). Targets: the shard
within 10 minutes; the overhead at most 1 s a stack. Not a test: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from maintenance.benchmark import repository_copy
from offline.engine import ROOT
from offline.file_backend import FileBackend
from offline.repository import deploy_repository, offline_ssh_public_key
from operations.changed_stacks import EVERY_STACK, changed_stacks
from operations.fleet_report import markdown, merged, read_runs
from pls.config import load_schema


def _seeded(root: Path, backend: Path) -> tuple[float, int]:
    """Every stack of `root` deployed offline, as the stand-in's backend (seconds taken, stacks)."""
    started = time.monotonic()
    repository = deploy_repository(root)
    stacks = {stack: json.loads(json.dumps(sim.outputs, default=str)) for stack, sim in repository.deployed.items()}
    FileBackend(backend, load_schema().project).seed(repository.world, stacks)
    return time.monotonic() - started, len(stacks)


def _previewed(stacks: list[str], results: Path, root: Path, environment: dict[str, str], parallel: int) -> float:
    """`scripts/fleet preview` of `stacks` as a workflow job runs it (its own process), its wall time."""
    command = [sys.executable, "-m", "operations.fleet", "preview", *stacks, "--parallel", str(parallel)]
    started = time.monotonic()
    done = subprocess.run([*command, "--json", str(results)], cwd=root, env=environment, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"the preview failed:\n{done.stdout.decode()[-3000:]}\n{done.stderr.decode()[-3000:]}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maintenance.fleet_benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="the stand-in's time per preview (30)")
    parser.add_argument("--shards", type=int, default=20, help="the workflow's FLEET_SHARDS (20)")
    parser.add_argument("--parallel", type=int, default=8, help="stacks at once in a shard, as fleet.yml runs it (8)")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.shards < 1 or args.parallel < 1 or args.seconds < 0:
        parser.error("--customers, --shards and --parallel take a whole number of at least 1, --seconds 0 or more")
    with tempfile.TemporaryDirectory() as scratch:
        root = repository_copy(Path(scratch) / "repo", args.customers)
        backend = FileBackend(Path(scratch) / "backend", load_schema().project)
        seeded, stacks = _seeded(root, backend.directory)
        shards = changed_stacks(list(EVERY_STACK), "HEAD", root).shards(args.shards)["stacks"]
        largest = max(shards, key=lambda shard: len(shard["stacks"].split()))["stacks"].split()
        environment = {
            **os.environ,
            "PATH": f"{ROOT / 'offline' / 'bin'}:{os.environ['PATH']}",
            "PULUMI_BACKEND_URL": f"file://{backend.directory}",
            "SSH_PUBLIC_KEY": offline_ssh_public_key(),
            "PYTHONPATH": str(ROOT),
        }
        # The largest shard, the stand-in taking --seconds a stack: the preview's wall time in CI.
        backend.set_faults({"seconds": args.seconds})
        wall = _previewed(largest, Path(scratch) / "largest.json", root, environment, args.parallel)
        (run,) = read_runs([Path(scratch) / "largest.json"])
        own: dict[str, float] = defaultdict(float)
        for call in backend.calls():
            own[str(call["stack"])] += float(call["end"]) - float(call["start"])
        overhead = [r.seconds - own[r.stack] for r in run.results]
        # Every shard, one job after another here (at once in CI), then the one summary the comment step makes.
        backend.set_faults({"seconds": 0})
        every = Path(scratch) / "every"
        walls = [
            _previewed(shard["stacks"].split(), every / f"{shard['id']}.json", root, environment, args.parallel)
            for shard in shards
        ]
        summary = markdown(merged(read_runs([every])))
    print("| what | value |\n| --- | --- |")
    print(f"| stacks in the repository (seeded offline in {seeded:.0f} s) | {stacks} |")
    print(f"| shards (preview.yml, FLEET_SHARDS={args.shards}) | {len(shards)}, the largest {len(largest)} stacks |")
    print(f"| the stand-in's time per preview | {args.seconds:.0f} s |")
    print(f"| the largest shard's wall time, --parallel {args.parallel} | {wall:.0f} s ({wall / 60:.1f} min) |")
    median, most = statistics.median(overhead), max(overhead)
    print(f"| the runner's overhead per stack, median (max) | {median:.2f} s ({most:.2f} s) |")
    print(f"| the runner's start (imports, the stacks' phases, the workspace) | {wall - run.seconds:.1f} s |")
    print(f"| every shard with the stand-in at 0 s, slowest (sum) | {max(walls):.0f} s ({sum(walls):.0f} s) |")
    print(f"| their one summary ({len(summary)} characters) | {summary.splitlines()[1].removeprefix('### ')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
