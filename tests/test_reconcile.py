"""Reconciliation (operations/reconcile.py): the deployed lab's Azure, as the stand-in `az` shows it, against the
registry. A connection approved by hand, a request nobody registered, a subscription added to the visibility by hand
and a decision whose endpoint has gone are each found, with the command that resolves them; what merely waits is
listed, not failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from offline.file_backend import FileBackend
from operations import commands, reconcile
from operations.exits import CannotStartError
from tests.helpers.fleet import another_tenant_approved, endpoint_of, run_fleet

STRANGER = "99999999-9999-4999-8999-999999999999"
STRANGER_ENDPOINT = f"/subscriptions/{STRANGER}/resourceGroups/globex/providers/Microsoft.Network/privateEndpoints/pe"


def _reconciled(root: Path) -> tuple[int, list[dict[str, str]], list[str]]:
    out = root.parent / "findings.json"
    status = reconcile.main(["--json", str(out)], root)
    found = json.loads(out.read_text()) if out.exists() else {"findings": [], "waiting": []}
    return status, found["findings"], found["waiting"]


def test_a_deployed_lab_matches_its_registry_and_lists_what_waits(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, _ = fleet_lab
    status, findings, waiting = _reconciled(root)
    assert status == 0 and findings == []
    assert waiting == [
        f"provider/saas: tradewinds's request from {endpoint_of(root, 'consumer')} waits for your decision"
    ]


def test_a_hand_approval_and_a_stranger_let_in_by_hand_are_found_with_their_fixes(
    fleet_lab: tuple[Path, FileBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    root, backend = fleet_lab
    tradewinds = endpoint_of(root, "consumer")
    with backend.world(root, writing=True) as world:  # the portal: an approval, and a subscription let in by hand
        (service,) = world.azure.state.services.values()
        name = service.connections[tradewinds.lower()].name
        world.azure.decide(service.resource_group, service.name, name, "Approved", "ok by phone")
        service.visibility.append(STRANGER)
        world.azure.add_connection(service, STRANGER_ENDPOINT, "Globex, trial please")
    status, findings, _ = _reconciled(root)
    assert status == 1
    assert [(f["kind"], f["subject"]) for f in findings] == [
        ("approved outside the code", tradewinds),
        ("unknown request", STRANGER_ENDPOINT),
        ("visibility without a customer", STRANGER),
    ]
    approved, unknown, visible = findings
    assert approved["fix"] == f'scripts/approve tradewinds --endpoint-id {tradewinds} --reason "<why>"'
    assert unknown["detail"] == f"subscription {STRANGER}, request message: 'Globex, trial please'"
    assert unknown["fix"].startswith(f"scripts/onboard <customer> --subscription {STRANGER} --provider provider")
    assert visible["fix"].startswith("scripts/fleet up provider --refresh removes it")
    assert "| provider | saas | approved outside the code |" in capsys.readouterr().out

    # fixed as they say: the approval recorded, the visibility deployed again from the registry
    assert commands.main(["approve", "tradewinds", "--reason", "ok by phone"], root) == 0
    assert run_fleet(root, "up", "provider", "--refresh")[0] == 0
    status, findings, _ = _reconciled(root)
    assert [f["kind"] for f in findings] == ["unknown request"]  # Azure keeps a request when the list shrinks


def test_a_decision_whose_endpoint_has_gone_names_the_offboarding(fleet_lab: tuple[Path, FileBackend]) -> None:
    root, backend = fleet_lab
    fabrikam = another_tenant_approved(root, backend)
    assert run_fleet(root, "up", "provider")[0] == 0
    with backend.world(root, writing=True) as world:  # ... and deletes it
        world.azure.delete_endpoint(fabrikam)
    status, findings, _ = _reconciled(root)
    assert status == 1 and [(f["kind"], f["subject"]) for f in findings] == [("endpoint gone", fabrikam)]
    assert findings[0]["fix"].startswith("scripts/offboard fabrikam")


def test_without_the_azure_cli_or_a_deployed_provider_it_cannot_start(
    fleet_lab: tuple[Path, FileBackend], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, backend = fleet_lab
    assert reconcile.main(["nobody"], root) == 2
    assert "nobody: not a provider stack here (providers: provider)" in capsys.readouterr().err
    (backend.state / "stacks" / "pls-saas" / "provider.json").unlink()
    assert reconcile.main([], root) == 2
    assert "the outputs of stack provider cannot be read (error: no stack named 'provider' found)" in (
        capsys.readouterr().err
    )


def test_what_az_cannot_answer_stops_it_by_name_and_nothing_waits_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = "/subscriptions/x/resourceGroups/saas/providers/Microsoft.Network/privateLinkServices/pls"
    sleep = shutil.which("sleep")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CannotStartError, match="needs the Azure CLI, logged in"):
        reconcile.live_service(service)
    az = tmp_path / "az"
    az.write_text("#!/bin/sh\necho 'ERROR: (AuthorizationFailed) no read access' >&2\nexit 1\n")
    az.chmod(0o755)
    with pytest.raises(CannotStartError) as failed:
        reconcile.live_service(service)
    assert str(failed.value) == (
        f"az network private-link-service show --ids {service}: ERROR: (AuthorizationFailed) no read access"
    )
    az.write_text("#!/bin/sh\necho 'Please run az login'\n")
    with pytest.raises(CannotStartError, match=f"az's answer about {service} is not JSON"):
        reconcile.live_service(service)
    az.write_text(f"#!/bin/sh\nexec {sleep} 30\n")
    monkeypatch.setattr(reconcile, "AZ_TIMEOUT", 1)
    with pytest.raises(CannotStartError, match=r"private-link-service show --ids \S+ did not answer within 1 s"):
        reconcile.live_service(service)
