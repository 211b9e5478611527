"""The scenarios a team lives, through the fleet runner and the stand-in Pulumi CLI: one pull request that onboards
and approves a customer previews clean and deploys in one merge (providers, customers, decisions), and a customer in
another tenant that deletes its endpoint never stops the provider from deploying."""

from __future__ import annotations

from pathlib import Path

from offline.file_backend import FileBackend
from operations import commands
from operations.fleet_report import markdown
from tests.helpers.fleet import (
    another_tenant_approved,
    commit_all,
    connection,
    endpoint_of,
    phases_and_stacks,
    run_fleet,
    updates,
)
from tests.helpers.stacks import edit

ACME = "77777777-7777-4777-8777-777777777777"


# --- the scenarios --------------------------------------------------------------------------------------------------


def test_one_pull_request_onboards_and_approves_a_customer_previews_clean_and_deploys_in_one_merge(
    fleet_lab: tuple[Path, FileBackend],
) -> None:
    root, backend = fleet_lab
    assert commands.main(["onboard", "acme", "--subscription", ACME, "--contract", "AC-1"], root) == 0
    assert commands.main(["approve", "acme", "--reason", "contract AC-1"], root) == 0
    endpoint = endpoint_of(root, "consumer-acme")

    status, preview = run_fleet(root, "preview", "--changed", "HEAD")  # the pull request
    assert status == 0, markdown(preview)
    assert phases_and_stacks(preview) == [("providers", "provider"), ("customers", "consumer-acme")]
    provider = preview.results[0]
    assert provider.verdict == "changes" and provider.changes.get("update") == 1  # acme joins the visibility
    assert any(f"waits for {endpoint}" in warning for warning in provider.warnings)

    commit_all(root, "onboard and approve acme")
    status, merge = run_fleet(root, "up", "--changed", "HEAD~1")  # the merge
    assert status == 0, markdown(merge)
    assert phases_and_stacks(merge) == [
        ("providers", "provider"),
        ("customers", "consumer-acme"),
        ("decisions", "provider"),
    ]
    assert [r.verdict for r in merge.results] == ["changes", "changes", "changes"]
    first, customer, decision = updates(backend)
    assert [c["stack"] for c in (first, customer, decision)] == ["provider", "consumer-acme", "provider"]
    assert float(str(first["end"])) <= float(str(customer["start"]))
    assert float(str(customer["end"])) <= float(str(decision["start"]))
    assert connection(backend, root, endpoint) == ("Approved", "contract AC-1")


def test_a_customer_in_another_tenant_deleting_its_endpoint_never_stops_the_provider(
    fleet_lab: tuple[Path, FileBackend],
) -> None:
    root, backend = fleet_lab
    endpoint = another_tenant_approved(root, backend)
    status, run = run_fleet(root, "up", "--changed", "HEAD~1")
    assert status == 0 and phases_and_stacks(run) == [("providers", "provider")], markdown(run)
    assert connection(backend, root, endpoint) == ("Approved", "FB-2718")

    with backend.world(root, writing=True) as world:  # ... and deletes it
        world.azure.delete_endpoint(endpoint)
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:tenantRateLimit": 20})
    commit_all(root)
    status, run = run_fleet(root, "up", "--changed", "HEAD~1")
    (provider,) = run.results
    assert status == 0 and provider.verdict == "changes", markdown(run)
    assert any("scripts/offboard fabrikam" in warning for warning in provider.warnings), provider.warnings
