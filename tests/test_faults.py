"""The registry's commands under faults: a run killed at any moment leaves the repository as before or as after
(once the next command has completed or discarded what it left), two runs at once never both write, and no
temporary folder outlives its process."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import operations.transaction
from offline.engine import ROOT
from operations import commands
from operations.onboarding import Onboarding, plan_onboarding
from operations.transaction import JOURNAL, LOCK, Change, commit, interrupted_change, recover
from tests.helpers.stacks import committed, copy_lab

CUSTOMERS = 120


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK and ".git" not in p.parts
    }


def _subscription(n: int) -> str:
    return f"{n:08d}-7777-4777-8777-777777777777"


def _csv(path: Path, count: int = CUSTOMERS) -> Path:
    rows = [f"c{n:03d},{_subscription(n)},{'auto' if n % 3 == 0 else 'manual'}" for n in range(count)]
    path.write_text("customer,subscriptions,approval\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def before_and_after(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """The lab, and what onboarding the CSV's customers makes of it (the files before, and after)."""
    lab = committed(copy_lab(tmp_path_factory.mktemp("lab")))
    done = tmp_path_factory.mktemp("done") / "repo"
    shutil.copytree(lab, done)
    assert commands.main(["onboard", "--from", str(_csv(done.parent / "customers.csv"))], done) == 0
    return lab, _files(lab), _files(done)


def _copy(lab: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(lab, root)
    return root


def _change(root: Path) -> Change:
    rows = [Onboarding(f"c{n:03d}", [_subscription(n)], auto_approve=n % 3 == 0) for n in range(CUSTOMERS)]
    return plan_onboarding(root, rows)


CRASHES = {
    "staging the first file": ("fsync", 1, False),
    "staging the hundredth": ("fsync", 100, False),
    "renaming the manifest (the commit point)": ("replace", 1, False),
    "moving the first file": ("replace", 2, True),
    "moving half of them": ("replace", CUSTOMERS + 1, True),
    "moving the last": ("replace", 2 * CUSTOMERS + 1, True),
}
"""Where the machine goes away: the nth flush of a staged file, or the nth rename (the first renames the manifest
into place), and whether the change had reached its commit point by then."""


@pytest.mark.parametrize("crash", CRASHES)
def test_a_change_interrupted_at_any_step_ends_as_before_or_as_after(
    before_and_after: tuple[Path, dict[str, bytes], dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash: str,
) -> None:
    """A crash while the files are staged (before the commit point), or while they are moved into place (after
    it): the next command discards the one and completes the other; until then a reader is told."""
    lab, before, after = before_and_after
    root = _copy(lab, tmp_path)
    change = _change(root)
    what, at, committed_already = CRASHES[crash]
    owner, name = (operations.transaction, "_fsync") if what == "fsync" else (operations.transaction.os, "replace")
    original, calls = getattr(owner, name), [0]

    def crashing(*args: object) -> None:
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt("the machine went away")
        original(*args)

    monkeypatch.setattr(owner, name, crashing)
    with pytest.raises(KeyboardInterrupt):
        commit(root, change)
    monkeypatch.undo()
    assert (interrupted_change(root) is not None) == committed_already
    said = recover(root)
    assert said is not None and ("completed" if committed_already else "discarded") in said
    assert _files(root) == (after if committed_already else before)
    assert not (root / JOURNAL).exists()


def test_onboarding_killed_at_random_moments_leaves_the_repository_as_before_or_as_after(
    before_and_after: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path
) -> None:
    """scripts/onboard --from, killed with SIGKILL at several moments of its run: then scripts/onboard --recover
    (any registry command starts with it) leaves the files as before or as after, and no temporary folder stays."""
    lab, before, after = before_and_after
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environment = {"PATH": "/usr/bin:/bin", "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
    python = [
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from operations import commands; "
        "sys.exit(commands.main(sys.argv[2:], Path(sys.argv[1])))",
    ]
    started = time.monotonic()
    whole = subprocess.run(
        [*python, str(_copy(lab, tmp_path / "timed")), "onboard", "--from", str(_csv(tmp_path / "timed.csv"))],
        env=environment,
        capture_output=True,
        timeout=120,
    )
    assert whole.returncode == 0, whole.stderr
    duration = time.monotonic() - started
    outcomes = set()
    for n, fraction in enumerate((0.5, 0.8, 0.9, 0.95, 0.99)):
        root = _copy(lab, tmp_path / f"kill{n}")
        run = subprocess.Popen(
            [*python, str(root), "onboard", "--from", str(_csv(tmp_path / f"kill{n}.csv"))],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(duration * fraction)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        recovered = subprocess.run(
            [*python, str(root), "onboard", "--recover"], env=environment, capture_output=True, text=True, timeout=120
        )
        assert recovered.returncode == 0, recovered.stderr
        files = _files(root)
        assert files in (before, after), f"killed at {fraction:.0%}: the repository is between before and after"
        outcomes.add("after" if files == after else "before")
    assert sorted(p.name for p in scratch.iterdir()) == [], "every temporary folder is removed"
    assert outcomes, "the kills landed"


def _onboard(root: Path, customer: str, subscription: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from pathlib import Path; from operations import commands; "
        "sys.exit(commands.main(sys.argv[2:], Path(sys.argv[1])))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(root), "onboard", customer, "--subscription", subscription, "--no-stack"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("round_", range(3))
def test_two_onboardings_of_one_subscription_at_once_never_both_succeed(
    before_and_after: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path, round_: int
) -> None:
    lab, _, _ = before_and_after
    root = _copy(lab, tmp_path)
    both = [_onboard(root, name, _subscription(900 + round_)) for name in ("acme", "globex")]
    results = [(run.wait(timeout=120), run.communicate()[1]) for run in both]
    assert sorted(status for status, _ in results) == [0, 1], results
    (refusal,) = [said for status, said in results if status == 1]
    assert f"subscription {_subscription(900 + round_)} is onboarded already" in refusal
    written = [name for name in ("acme", "globex") if (root / "customers" / f"{name}.yaml").exists()]
    assert len(written) == 1, written


def test_offboarding_racing_an_approval_leaves_an_entry_with_its_stack_file_or_neither(
    before_and_after: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path
) -> None:
    lab, _, _ = before_and_after
    root = _copy(lab, tmp_path)
    code = (
        "import sys; from pathlib import Path; from operations import commands; "
        "sys.exit(commands.main(sys.argv[2:], Path(sys.argv[1])))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), *argv],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in (["offboard", "contoso"], ["approve", "contoso", "--reason", "contract CO-1"])
    ]
    statuses = [run.wait(timeout=120) for run in runs]
    assert statuses[0] == 0 and statuses[1] in (0, 1), [run.communicate()[1] for run in runs]
    entry, stack = (root / "customers" / "contoso.yaml").exists(), (root / "Pulumi.consumer-contoso.yaml").exists()
    assert entry == stack == False  # noqa: E712 (offboarding won, whenever the approval ran)
