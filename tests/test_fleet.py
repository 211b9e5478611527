"""The fleet runner (operations/fleet.py) driving the stand-in Pulumi CLI through the Automation API: the bound on
stacks at once, a failed provider skipping only its own customers (in one run, and across a workflow's phases),
retries when the lock is held or Azure throttles, an interruption that starts nothing new, refusals by name, drift,
and the summary. The scenarios a team lives are in test_fleet_scenarios.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from offline.engine import ROOT
from offline.file_backend import ORGANIZATION, FileBackend
from operations import commands, fleet
from operations.fleet_report import MARKER, Run, StackResult, markdown, merged, read_runs
from tests.helpers.fleet import (
    STAND_INS,
    checkout,
    commit_all,
    most_at_once,
    run_fleet,
    updates,
)
from tests.helpers.stacks import edit

ACME = "77777777-7777-4777-8777-777777777777"


# --- what the runner promises ---------------------------------------------------------------------------------------


def _second_provider(root: Path) -> None:
    """provider-2 (service saas-2) with two customers of its own, deployed and committed."""
    (root / "Pulumi.provider-2.yaml").write_text((root / "Pulumi.provider.yaml").read_text())
    edit(root / "Pulumi.provider-2.yaml", **{"pls-saas:serviceName": "saas-2"})
    for n in (1, 2):
        argv = ["onboard", f"second{n}", "--subscription", f"{n:08d}-8888-4888-8888-888888888888"]
        assert commands.main([*argv, "--provider", "provider-2", "--auto-approve"], root) == 0
    status, run = run_fleet(root, "up", "provider-2", "consumer-second1", "consumer-second2")
    assert status == 0, markdown(run)
    commit_all(root)


def test_a_provider_that_fails_skips_its_own_customers_and_no_one_elses(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    _second_provider(root)
    edit(root / "Pulumi.provider-2.yaml", **{"pls-saas:natIpCount": 0})  # a change its program refuses
    (root / "components").mkdir(exist_ok=True)
    (root / "components" / "change.py").write_text("# a change to the program: every stack\n")
    before = len(backend.calls())
    status, run = run_fleet(root, "up", "--changed", "HEAD")
    verdicts = {(r.phase, r.stack): r.verdict for r in run.results}
    assert status == 1
    assert verdicts == {
        ("providers", "provider"): "ok",
        ("providers", "provider-2"): "failed",
        ("customers", "consumer"): "ok",
        ("customers", "consumer-contoso"): "ok",
        ("customers", "consumer-second1"): "skipped",
        ("customers", "consumer-second2"): "skipped",
    }
    failed = next(r for r in run.results if r.stack == "provider-2")
    assert "natIpCount" in failed.error
    skipped = next(r for r in run.results if r.stack == "consumer-second1")
    assert skipped.error == "provider-2 did not deploy (failed): this stack waits for it"
    ran = {c["stack"] for c in updates(backend, since=before)}
    assert ran == {"provider", "provider-2", "consumer", "consumer-contoso"}

    # A workflow runs each phase in jobs of their own: a customers' shard reads the providers' results
    earlier = root.parent / "providers.json"
    earlier.write_text(Run("up", [r for r in run.results if r.phase == "providers"]).to_json())
    status, shard = run_fleet(
        root, "up", "--phase", "customers", "consumer", "consumer-second1", "--after", str(earlier)
    )
    assert {r.stack: r.verdict for r in shard.results} == {"consumer": "ok", "consumer-second1": "skipped"}


def test_no_more_stacks_run_at_once_than_asked(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    rows = [f"wide{n},{n:08d}-6666-4666-8666-666666666666,auto" for n in range(4)]
    (root.parent / "wide.csv").write_text("customer,subscriptions,approval\n" + "\n".join(rows) + "\n")
    assert commands.main(["onboard", "--from", str(root.parent / "wide.csv")], root) == 0
    backend.set_faults({"seconds": 0.5})
    stacks = [f"consumer-wide{n}" for n in range(4)]
    status, run = run_fleet(root, "preview", "--phase", "customers", *stacks, "--parallel", "2")
    assert status == 0, markdown(run)
    previews = updates(backend, "preview")
    assert len(previews) == 4 and most_at_once(previews) == 2


def test_a_held_lock_and_azure_throttling_are_waited_out(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    held = backend.state / "locks" / ORGANIZATION / "pls-saas" / "provider" / "another-run.json"
    held.parent.mkdir(parents=True, exist_ok=True)
    held.write_text(json.dumps({"pid": 1, "username": "ci", "hostname": "runner", "timestamp": "now"}))

    def the_other_run_ends() -> None:  # once the runner has met the lock
        deadline = time.monotonic() + 60
        while not any(c["exit"] == 255 for c in updates(backend)) and time.monotonic() < deadline:
            time.sleep(0.05)
        held.unlink()

    threading.Thread(target=the_other_run_ends, daemon=True).start()
    backend.set_faults({"throttled": {"consumer": 2}})
    status, run = run_fleet(root, "up", "provider", "consumer", "--retries", "3")
    assert status == 0, markdown(run)
    attempts = {r.stack: r.attempts for r in run.results}
    assert attempts["consumer"] == 3 and attempts["provider"] >= 2
    assert [c["exit"] for c in updates(backend) if c["stack"] == "consumer"] == [255, 255, 0]


def test_retries_run_out_and_the_stack_fails_with_azures_words(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    backend.set_faults({"throttled": {"consumer": 5}})
    status, run = run_fleet(root, "up", "consumer", "--retries", "1")
    (consumer,) = run.results
    assert status == 1 and consumer.verdict == "failed" and consumer.attempts == 2
    assert "TooManyRequests" in consumer.error


def test_interrupted_it_starts_nothing_new_and_waits_for_what_runs(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    backend.set_faults({"seconds": 2})
    stacks = ["provider", "consumer", "consumer-contoso"]
    results = root.parent / "interrupted.json"
    script = (
        "import sys; from pathlib import Path; from operations import fleet; "
        f"sys.exit(fleet.main(['preview', '--phase', 'customers', *{stacks!r}, '--parallel', '1', "
        f"'--json', {str(results)!r}, '--logs', {str(root.parent / 'logs')!r}], Path({str(root)!r})))"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (root.parent / "logs" / "provider.customers.log").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.send_signal(signal.SIGINT)
    _, stderr = runner.communicate(timeout=60)
    (run,) = read_runs([results])
    verdicts = [r.verdict for r in run.results]
    assert runner.returncode == 130 and run.interrupted, stderr
    assert b"no new stack starts; waiting for the running ones" in stderr
    assert verdicts == ["ok", "not started", "not started"]
    assert [(c["stack"], c["exit"]) for c in updates(backend, "preview")] == [("provider", 0)]


def test_a_stack_that_is_not_ours_or_not_there_is_refused_by_name(
    fleet_lab: tuple[Path, FileBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = fleet_lab
    assert fleet.main(["up", "consumer-fabrikam"], root) == 2
    assert "consumer-fabrikam: another tenant's stack (providerAlias)" in capsys.readouterr().err
    assert fleet.main(["up", "consumer-nobody"], root) == 2
    assert "consumer-nobody: no stack file Pulumi.consumer-nobody.yaml here" in capsys.readouterr().err
    assert fleet.main(["up", "../x"], root) == 2
    assert "'../x' is not a stack name" in capsys.readouterr().err
    assert fleet.main(["up", "--changed", "no-such-revision"], root) == 2
    assert "git cannot compare with no-such-revision" in capsys.readouterr().err


def test_a_stack_file_nobody_can_read_is_a_failed_row_or_refused_by_name(
    fleet_lab: tuple[Path, FileBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    root, backend = fleet_lab
    (root / "Pulumi.consumer-broken.yaml").write_text("config: [\n")
    status, run = run_fleet(root, "preview", "--changed", "HEAD")
    assert status == 1 and [(r.phase, r.stack, r.verdict) for r in run.results] == [
        ("stack file", "consumer-broken", "failed")
    ]
    assert "Pulumi.consumer-broken.yaml: is not valid YAML" in run.results[0].error
    capsys.readouterr()
    assert fleet.main(["preview", "consumer-broken"], root) == 2
    assert "Pulumi.consumer-broken.yaml: " in capsys.readouterr().err and backend.calls() == []


def test_without_a_pulumi_cli_it_says_where_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = checkout(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))  # no key of the machine's user either: none is needed to say so
    assert fleet.main(["preview", "provider"], root) == 2
    assert "needs the Pulumi CLI on PATH" in capsys.readouterr().err


def test_a_bad_ssh_key_is_refused_before_any_stack_runs(
    fleet_lab: tuple[Path, FileBackend], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, backend = fleet_lab
    monkeypatch.setenv("SSH_PUBLIC_KEY", "ecdsa-sha2-nistp256 AAAA")
    assert fleet.main(["up", "provider"], root) == 2
    assert "SSH_PUBLIC_KEY: Azure does not accept ecdsa-sha2-nistp256 keys" in capsys.readouterr().err
    # without the variable, the key is found where scripts/deploy finds it, and checked the same way
    monkeypatch.delenv("SSH_PUBLIC_KEY")
    monkeypatch.setenv("HOME", str(root.parent))
    (root.parent / ".ssh").mkdir()
    (root.parent / ".ssh" / "id_ed25519.pub").write_text("ssh-dss AAAAB3NzaC1kc3M= old@laptop\n")
    assert fleet.main(["up", "provider"], root) == 2
    assert f"{root.parent}/.ssh/id_ed25519.pub: Azure does not accept ssh-dss keys" in capsys.readouterr().err
    monkeypatch.setenv("SSH_PUBLIC_KEY_FILE", str(root.parent / "typo.pub"))  # named, so not passed over
    assert fleet.main(["up", "provider"], root) == 2
    assert f"{root.parent}/typo.pub: No such file or directory" in capsys.readouterr().err
    assert backend.calls() == []


def test_drift_is_found_and_named(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, _ = fleet_lab
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:tenantRateLimit": 20})  # changed, never deployed
    status, run = run_fleet(root, "drift", "--all")
    verdicts = {r.stack: r.verdict for r in run.results}
    assert status == 1 and verdicts == {"provider": "drifted", "consumer": "ok", "consumer-contoso": "ok"}
    (provider,) = [r for r in run.results if r.stack == "provider"]
    assert provider.changes.get("update") and "differs from its stack file and code" in provider.error


# --- the summary ----------------------------------------------------------------------------------------------------


def test_the_summary_of_thousands_of_stacks_fits_one_comment_and_accounts_for_every_stack() -> None:
    results = [StackResult(f"consumer-c{n:04d}", "customers", "ok", {"same": 14}) for n in range(1000)]
    results += [
        StackResult(f"consumer-d{n:04d}", "customers", "changes", {"update": 1, "same": 13}) for n in range(1500)
    ]
    results += [StackResult("provider", "providers", "failed", error="natIpCount: a Private Link Service has 1 to 8")]
    shards = [Run("preview", results[i::3], seconds=10.0 + i) for i in range(3)]
    text = markdown(merged(shards))
    assert len(text) <= 60_000
    assert text.splitlines()[1] == "### scripts/fleet preview: 2501 stacks (1 failed, 1500 changes, 1000 ok)"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `provider` | providers | failed |")
    left_out = int(text.split("... and ")[1].split()[0])
    assert len(rows) + left_out == 1501 and "1000 more stacks: nothing to change." in text
    assert merged(shards).seconds == 12.0


def test_the_summary_names_the_verdict_changes_and_what_each_stack_says() -> None:
    run = Run(
        "up",
        [
            StackResult("provider", "providers", "refused", policy=["no-public-ip: NIC nic has a public IP address"]),
            StackResult("consumer", "customers", "skipped", error="provider did not deploy (refused)"),
            StackResult("consumer-b", "customers", "changes", {"create": 14}, seconds=31.4, attempts=2),
        ],
    )
    rows = [line for line in markdown(run).splitlines() if line.startswith("| `")]
    assert rows == [
        "| `provider` | providers | refused | - | 0 | no-public-ip: NIC nic has a public IP address |",
        "| `consumer` | customers | skipped | - | 0 | provider did not deploy (refused) |",
        "| `consumer-b` | customers | changes (2 attempts) | +14 | 31 | - |",
    ]


def test_a_result_file_that_is_not_a_result_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.json").write_text('{"results": "x"}')
    assert fleet.main(["report", str(tmp_path)], tmp_path) == 2
    assert f"{tmp_path / 'a.json'}: is not a result of scripts/fleet (--json)" in capsys.readouterr().err


def test_the_stand_in_answers_the_version_the_sdk_expects() -> None:
    from pulumi._version import version

    shown = subprocess.run([str(ROOT / "offline" / "bin" / "pulumi"), "version"], capture_output=True, text=True)
    assert shown.stdout.strip() == f"v{version}"


def test_a_pull_request_has_one_comment_updated_in_place_and_a_persons_quote_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comments = tmp_path / "comments.json"
    people = [{"id": n, "body": f"review {n}", "user": {"login": "reviewer"}} for n in range(64)]
    people.append({"id": 64, "body": f"{MARKER}\nquoted by a person", "user": {"login": "reviewer"}})
    comments.write_text(json.dumps(people))  # three pages of GitHub's thirty
    monkeypatch.setenv("PATH", f"{STAND_INS}:{os.environ['PATH']}")
    monkeypatch.setenv("GH_STANDIN_COMMENTS", str(comments))
    results = tmp_path / "shard-1.json"
    for verdict in ("failed", "ok"):  # two pushes
        results.write_text(Run("preview", [StackResult("provider", "providers", verdict)]).to_json())
        argv = ["report", str(results), "--pull-request", "7", "--repository", "contoso/pls"]
        assert fleet.main(argv, tmp_path) == (1 if verdict == "failed" else 0)
    ours = [c for c in json.loads(comments.read_text()) if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and "1 stacks (1 ok)" in ours[0]["body"] and ours[0]["body"].startswith(MARKER)
    assert json.loads(comments.read_text())[64]["body"] == f"{MARKER}\nquoted by a person"
