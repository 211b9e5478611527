"""Delivery from CI: the workflows pass GitHub's workflow schema and zizmor's audit, run only what the repository
has, hold no secret, sign in with OIDC; scripts/changed-stacks lists exactly the stacks each kind of change
touches, in deployment order, on a scratch git history."""

from __future__ import annotations

import json
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
    assert {p.stem for p in WORKFLOWS} == {"preview", "deploy", "up", "drift"}


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


def test_pull_requests_run_the_readmes_test_command_and_preview_with_the_policy_pack() -> None:
    preview = ROOT / ".github" / "workflows" / "preview.yml"
    jobs = _jobs(preview)
    assert [s["run"] for s in jobs["test"]["steps"] if "run" in s] == ["sudo .ci/run"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert set(jobs["preview"]["needs"]) == {"test", "stacks"}
    (pulumi,) = [s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True


def test_a_merge_deploys_providers_then_customers_then_decisions_one_run_per_stack() -> None:
    jobs = _jobs(ROOT / ".github" / "workflows" / "deploy.yml")
    assert jobs["customers"]["needs"] == ["stacks", "providers"]
    assert jobs["decisions"]["needs"] == ["stacks", "customers"]
    up = _jobs(ROOT / ".github" / "workflows" / "up.yml")["up"]
    assert up["concurrency"] == {"group": "pulumi-up-${{ matrix.stack }}", "cancel-in-progress": False}
    drift = _jobs(ROOT / ".github" / "workflows" / "drift.yml")["drift"]
    (pulumi,) = [s for s in drift["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["expect-no-changes"] is True and pulumi["with"]["refresh"] is True


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
