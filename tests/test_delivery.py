"""Delivery from CI: the workflows pass GitHub's workflow schema and zizmor's audit, run only what the repository
has, hold no secret, sign in with OIDC; scripts/changed-stacks lists exactly the stacks each kind of change
touches, in deployment order, on a scratch git history."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.engine import ROOT
from operations import changed_stacks, commands
from tests.helpers.stacks import copy_lab, edit

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _jobs(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["jobs"]


def _steps(path: Path) -> list[dict[str, Any]]:
    return [step for job in _jobs(path).values() for step in job.get("steps", [])]


def test_the_workflows_are_there() -> None:
    assert {p.stem for p in WORKFLOWS} == {"preview", "deploy", "drift", "fleet"}


def test_the_workflows_pass_githubs_workflow_schema() -> None:
    checked = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_workflows_pass_zizmors_security_audit() -> None:
    audited = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", ROOT / ".github" / "workflows"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_command_a_workflow_runs_is_in_the_repository(path: Path) -> None:
    commands = " ".join(str(step.get("run", "")) for step in _steps(path))
    for script in re.findall(r"(?:scripts/[\w-]+|\.ci/run)", commands):
        assert (ROOT / script).is_file() and (ROOT / script).stat().st_mode & 0o111, script
    for step in _steps(path):
        uses = step.get("uses", "")
        if uses.startswith("./"):
            assert (ROOT / uses).is_file(), uses
        elif uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", uses), f"{uses}: pin a released version"
    for job in _jobs(path).values():
        if job.get("uses", "").startswith("./"):
            assert (ROOT / job["uses"]).is_file(), job["uses"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_no_workflow_holds_a_secret_and_azure_is_reached_with_oidc(path: Path) -> None:
    text = path.read_text()
    assert "${{ secrets." not in text and "client-secret" not in text and "ARM_CLIENT_SECRET" not in text
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text, re.IGNORECASE)
    document = yaml.safe_load(text)
    for job in document["jobs"].values():
        logs_in = any(str(step.get("uses", "")).startswith("azure/login@") for step in job.get("steps", []))
        if logs_in:
            assert job["permissions"]["id-token"] == "write"
            (login,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
            assert set(login["with"]) == {"client-id", "tenant-id", "allow-no-subscriptions"}
    if any(str(step.get("uses", "")).startswith("pulumi/actions@") for step in _steps(path)):
        assert document["env"]["ARM_USE_OIDC"] == "true"
        assert document["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / f"{name}.yml").read_text())
    return loaded


def test_pull_requests_run_the_readmes_test_command_and_preview_every_touched_stack_through_the_fleet_runner() -> None:
    jobs = _workflow("preview")["jobs"]
    assert [s["run"] for s in jobs["test"]["steps"] if "run" in s] == ["sudo .ci/run"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert set(jobs["preview"]["needs"]) == {"test", "stacks"}
    assert jobs["preview"]["uses"] == "./.github/workflows/fleet.yml"
    assert jobs["preview"]["with"] == {"command": "preview", "shards": "${{ needs.stacks.outputs.shards }}"}
    (run,) = [s["run"] for s in _workflow("fleet")["jobs"]["shard"]["steps"] if "scripts/fleet" in s.get("run", "")]
    assert 'scripts/fleet "$COMMAND" $STACKS "${args[@]}"' in run and "--policy-pack" not in run  # the pack: policy


def test_exactly_one_step_comments_on_a_pull_request_and_no_job_of_a_shard_does() -> None:
    commenting = [
        (workflow.stem, name, step.get("name"))
        for workflow in WORKFLOWS
        for name, job in _jobs(workflow).items()
        for step in job.get("steps", [])
        if "--pull-request" in str(step.get("run", "")) or "comment-on-pr" in str(step.get("with", ""))
    ]
    assert commenting == [("preview", "comment", "Comment on the pull request")]
    writers = [
        (workflow.stem, name)
        for workflow in WORKFLOWS
        for name, job in _jobs(workflow).items()
        if (job.get("permissions") or {}).get("pull-requests") == "write"
    ]
    assert writers == [("preview", "comment")]
    assert _workflow("preview")["jobs"]["comment"]["if"] == "always() && needs.stacks.outputs.any == 'true'"


def test_a_merge_deploys_providers_then_customers_then_decisions_one_deployment_at_a_time() -> None:
    deploy = _workflow("deploy")
    jobs = deploy["jobs"]
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    assert jobs["customers"]["needs"] == ["stacks", "providers"]
    assert jobs["decisions"]["needs"] == ["stacks", "customers"]
    phases = {name: jobs[name]["with"] for name in ("providers", "customers", "decisions")}
    assert {name: (w["command"], w["phase"], w.get("after", "")) for name, w in phases.items()} == {
        "providers": ("up", "providers", ""),
        "customers": ("up", "customers", "fleet-up-providers-*"),
        "decisions": ("up", "decisions", "fleet-up-*"),
    }
    # a failed provider shard does not stop the next phase: the runner skips that provider's customers only
    assert jobs["customers"]["if"].startswith("always() && needs.stacks.result == 'success'")
    assert "workflows/deploy.yml/runs?branch=main&status=success" in jobs["stacks"]["steps"][1]["run"]
    drift = _workflow("drift")["jobs"]
    assert (
        drift["drift"]["with"]["command"] == "drift" and "scripts/reconcile" in drift["reconcile"]["steps"][-2]["run"]
    )


# --- the fan-out at the size users run it ----------------------------------------------------------------------


CUSTOMERS = 1000


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab with a thousand more customers' stack files, committed; `scripts/changed-stacks` runs the real module
    on this checkout (the workflows call it by its path)."""
    root = copy_lab(tmp_path_factory.mktemp("thousand"))
    template = (root / "Pulumi.consumer.yaml").read_text()
    for n in range(CUSTOMERS):
        text = template.replace("tradewinds", f"c{n:04d}").replace("11111111-1111-4111-8111", f"{n:08d}-5555-4555-8555")
        (root / f"Pulumi.consumer-c{n:04d}.yaml").write_text(text)
    (root / "scripts").mkdir()
    shim = root / "scripts" / "changed-stacks"
    shim.write_text(
        f"#!/usr/bin/env bash\nPYTHONPATH={ROOT} exec {sys.executable} -c "
        "'import sys; from pathlib import Path; from operations import changed_stacks; "
        'sys.exit(changed_stacks.main(sys.argv[1:], Path.cwd()))\' "$@"\n'
    )
    shim.chmod(0o755)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    _git(root, "update-ref", "refs/remotes/origin/main", "HEAD")
    (root / "components").mkdir()
    (root / "components" / "web_tier.py").write_text("# a change to the program: every stack\n")
    return root


def _outputs_of(workflow: str, step_id: str, root: Path, **context: str) -> dict[str, Any]:
    """What the `stacks` job's step writes to GITHUB_OUTPUT, run as GitHub runs it (bash, the step's env)."""
    (step,) = [s for s in _workflow(workflow)["jobs"]["stacks"]["steps"] if s.get("id") == step_id]
    outputs = root / f"{workflow}-outputs"
    outputs.write_text("")
    env = {
        key: re.sub(r"\$\{\{ vars.FLEET_SHARDS \|\| '(\d+)' }}", r"\1", str(value))
        for key, value in step.get("env", {}).items()
    }
    env = {key: context.get(key, value) for key, value in env.items()}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=root,
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(outputs), "GITHUB_BASE_REF": "main", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return {
        key: json.loads(value) for key, _, value in (line.partition("=") for line in outputs.read_text().splitlines())
    }


def test_a_thousand_customers_make_at_most_twenty_jobs_a_phase_in_every_workflow(thousand: Path) -> None:
    every = {f"consumer-c{n:04d}" for n in range(CUSTOMERS)} | {"provider", "consumer", "consumer-contoso"}
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=thousand, capture_output=True, text=True).stdout.strip()
    matrices = {
        "preview": _outputs_of("preview", "changed", thousand)["shards"],
        "drift": _outputs_of("drift", "all", thousand)["shards"],
        **{
            f"deploy {phase}": shards for phase, shards in _outputs_of("deploy", "changed", thousand, BASE=base).items()
        },
    }
    for name, shards in matrices.items():
        assert len(shards) <= 20, name  # GitHub's limit is 256 jobs per matrix; the runner's, 20 per phase
    for name in ("preview", "drift", "deploy customers"):
        stacks = [stack for shard in matrices[name] for stack in shard["stacks"].split()]
        assert len(stacks) == len(set(stacks)) and set(stacks) == every - ({"provider"} if "deploy" in name else set())
        assert {len(shard["stacks"].split()) for shard in matrices[name]} <= {51, 50}
    assert [s["stacks"] for s in matrices["deploy providers"]] == ["provider"]


# --- scripts/changed-stacks on a scratch history -------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """The lab's stack files and one registered customer, committed."""
    copy_lab(tmp_path)
    (tmp_path / "README.md").write_text("docs\n")
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "web_tier.py").write_text("# the program\n")
    argv = ["onboard", "acme", "--subscription", "77777777-7777-4777-8777-777777777777"]
    assert commands.main(argv, tmp_path) == 0
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return tmp_path


def _touched(root: Path) -> list[str]:
    files = changed_stacks.changed_files("HEAD", root)
    return changed_stacks.changed_stacks(files, "HEAD", root).in_order


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def test_a_customers_stack_file_touches_that_customer(history: Path) -> None:
    edit(history / "Pulumi.consumer-contoso.yaml", **{"pls-saas:dnsRecord": "www"})
    assert _touched(history) == ["consumer-contoso"]


def test_a_registry_entry_touches_its_provider_and_its_customer(history: Path) -> None:
    _append(history / "customers" / "acme.yaml", "# contract renewed")
    assert _touched(history) == ["provider", "consumer-acme"]


def test_onboarding_and_approving_deploys_the_provider_again_after_the_customer(history: Path) -> None:
    argv = ["onboard", "globex", "--subscription", "88888888-8888-4888-8888-888888888888"]
    assert commands.main(argv, history) == 0
    assert _touched(history) == ["provider", "consumer-globex"]
    assert commands.main(["approve", "globex", "--reason", "contract GX-1"], history) == 0
    assert _touched(history) == ["provider", "consumer-globex", "provider"]


def test_the_program_touches_every_stack_that_is_ours_and_docs_none(history: Path) -> None:
    _append(history / "README.md", "more docs")
    assert _touched(history) == []
    _append(history / "components" / "web_tier.py", "# changed")
    assert _touched(history) == ["provider", "consumer", "consumer-acme", "consumer-contoso"]


def test_another_tenants_stack_file_is_never_ours_to_run(history: Path) -> None:
    edit(history / "Pulumi.consumer-fabrikam.yaml", **{"pls-saas:dnsRecord": "www"})
    assert _touched(history) == []


def test_a_removed_customer_touches_its_provider(history: Path) -> None:
    (history / "Pulumi.consumer-contoso.yaml").unlink()
    assert _touched(history) == ["provider"]


def test_the_command_prints_one_stack_per_line_or_the_phases_as_json(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert commands.main(["approve", "acme", "--reason", "contract AC-1"], history) == 0
    capsys.readouterr()
    assert changed_stacks.main(["HEAD"], history) == 0
    assert capsys.readouterr().out.split() == ["provider", "consumer-acme", "provider"]
    assert changed_stacks.main(["--json", "HEAD"], history) == 0
    phases = json.loads(capsys.readouterr().out)
    assert phases == {
        "providers": ["provider"],
        "customers": ["consumer-acme"],
        "decisions": ["provider"],
        "stacks": ["provider", "consumer-acme"],
    }
    assert changed_stacks.main(["--json", "--all"], history) == 0
    assert json.loads(capsys.readouterr().out)["stacks"] == [
        "provider",
        "consumer",
        "consumer-acme",
        "consumer-contoso",
    ]
    assert changed_stacks.main(["no-such-revision"], history) == 2
