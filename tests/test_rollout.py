"""Changing the web tier without an outage: each kind of change deployed over the offline Azure, then played wave by
wave (offline/rollout.py) to see which web VMs serve while the engine carries it out; and a provider deployed before
the web tier's software moved to Run Command, moving to it with its Private Link Service and alias untouched.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from offline.engine import ROOT, World, deploy
from offline.records import Registration, Simulation
from offline.repository import LAB, deploy_for
from offline.rollout import rollout
from offline.steps import steps
from operations.plan import preview_against
from tests.helpers.stacks import FIRST_DEPLOYMENT, committed, config_for, edit, repo_with

CHANGES: dict[str, dict[str, Any]] = {
    "rate limit": {"tenantRateLimit": 80, "tenantRateBurst": 160},
    "upstream": {"appUpstream": "127.0.0.1:9090"},
    "app config": {"appCloudConfig": "examples/app-cloud-config.yaml", "appUpstream": "127.0.0.1:3000"},
    "TLS on": {"tls": True, "fqdns": ["api.saas.example.com"], "keyVaultAllowedIpRanges": ["51.105.7.20"]},
    "image": {"vmImage": "Canonical:ubuntu-24_04-lts:server:24.04.202501140"},
    "size": {"vmSize": "Standard_B2s"},
    "health path": {"appHealthPath": "/health"},
}
IN_PLACE = {"rate limit", "TLS on", "health path"}
"""nginx alone changes: it reloads, and no VM ever leaves the pool."""
TIERS = {"3 VMs over 3 zones": (3, [1, 2, 3]), "6 over 3": (6, [1, 2, 3]), "4 over 2": (4, [1, 2])}


def _provider(count: int, zones: list[int], **overrides: Any) -> dict[str, Any]:
    return config_for("provider", **FIRST_DEPLOYMENT, webVmCount=count, zones=zones, **overrides)


@functools.cache
def _deployed(count: int, zones: tuple[int, ...]) -> tuple[World, Simulation]:
    world = World(LAB)
    return world, deploy(world, "provider", _provider(count, list(zones)))


def _changed(count: int, zones: list[int], change: dict[str, Any]) -> tuple[Simulation, Simulation]:
    """The tier deployed (once per process), then changed in a copy of its world."""
    world, before = _deployed(count, tuple(zones))
    return before, deploy(world.fork(), "provider", _provider(count, zones, **change))


@pytest.mark.parametrize("tier", TIERS.values(), ids=TIERS.keys())
@pytest.mark.parametrize("what", CHANGES)
def test_no_change_of_the_web_tier_takes_more_than_one_zone_out_of_the_pool(
    what: str, tier: tuple[int, list[int]]
) -> None:
    count, zones = tier
    played = rollout(*_changed(count, zones, CHANGES[what]))
    per_zone = math.ceil(count / len(zones))
    assert played.allowed_out == per_zone
    assert played.fewest_serving >= count - per_zone, played.lines()
    assert played.most_zones_out <= 1, played.lines()
    assert played.serving_after == played.after == played.before, "every VM serves again at the end"
    if what in IN_PLACE:
        assert played.fewest_serving == count and all(not wave.out for wave in played.waves), played.lines()
    else:
        assert played.fewest_serving == count - per_zone, "each zone's VMs change together"


def test_a_zone_starts_only_when_the_previous_one_serves_again() -> None:
    played = rollout(*_changed(6, [1, 2, 3], CHANGES["image"]))
    replaced = [[step.split("-vm")[0] for step in wave.steps if step.endswith("-vm replace")] for wave in played.waves]
    assert [batch for batch in replaced if batch] == [["web-1", "web-4"], ["web-2", "web-5"], ["web-3", "web-6"]]
    zone_of = played.zones
    for wave in played.waves:
        assert len({zone_of[vm] for vm in wave.out}) <= 1, wave


def test_a_tenant_rate_limit_is_applied_in_place_and_the_plan_says_so(tmp_path: Path) -> None:
    """The issue's case: scripts/plan provider for a tenantRateLimit change names no replacement of the backends."""
    root = committed(repo_with(tmp_path, tenantRateLimit=50))
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:tenantRateLimit": 80})
    preview = preview_against("provider", "HEAD", root, deploy_for("provider", root))
    assert not preview.refused
    assert preview.lines[0].startswith("0 to create, 3 to update, 0 to replace, 0 to delete")
    assert [line.split()[2] for line in preview.lines[1:4]] == ["web-1-software", "web-2-software", "web-3-software"]
    assert "a zone at a time (3 -> 3 VMs" in preview.lines[4] and "never fewer than 3 serving" in preview.lines[4]
    assert preview.lines[5:] == [
        "  1. web-1-software update: every VM serving",
        "  2. web-2-software update: every VM serving",
        "  3. web-3-software update: every VM serving",
    ]


def test_a_count_change_adds_vms_zone_by_zone_and_removes_them_last() -> None:
    world = World(LAB)
    three = deploy(world, "provider", _provider(3, [1, 2, 3]))
    six = deploy(world, "provider", _provider(6, [1, 2, 3]))
    grown = rollout(three, six)
    assert grown.fewest_serving == 3 and grown.serving_after == grown.after and len(grown.after) == 6
    shrunk = rollout(six, deploy(world, "provider", _provider(3, [1, 2, 3])))
    assert shrunk.fewest_serving == 3 and shrunk.serving_after == shrunk.after and len(shrunk.after) == 3
    (last,) = [wave for wave in shrunk.waves if wave.out]
    assert last.out == {"web-4": "deleted", "web-5": "deleted", "web-6": "deleted"}


# --- a provider deployed before: its VMs keep serving, its service and alias stay -------------------------------

BEFORE = json.loads((ROOT / "tests" / "fixtures" / "provider-before-rollout.json").read_text())


def _deployed_before(project: Path) -> tuple[World, Simulation]:
    """The fixture's state, as the engine and Azure hold it: the stack's last deployment, its service alive, from
    a checkout of that time (`project`: its stack file listed the customers; it had no registry)."""
    resources = [Registration(**r, dependencies=set()) for r in BEFORE["resources"]]
    simulation = Simulation("provider", resources, BEFORE["outputs"], [], BEFORE["config"])
    world = World(project)
    world.deployments["provider"] = simulation
    (service,) = simulation.of_type("network:PrivateLinkService")
    world.azure.put_service(service.outputs["id"], service.inputs)
    return world, simulation


def test_a_provider_deployed_before_moves_to_the_software_in_place_with_its_alias_untouched(tmp_path: Path) -> None:
    world, before = _deployed_before(tmp_path)
    assert world.azure.service_by_alias(BEFORE["outputs"]["alias"]) is not None
    after = deploy(world, "provider", {**config_for("provider", **FIRST_DEPLOYMENT), **BEFORE["config"]})
    assert after.outputs["alias"] == before.outputs["alias"]
    found = {(step.op, step.resource.name): step.changed for step in steps(before, after)}
    assert ("same", "pls-service") in found and ("same", "ilb-lb") in found and ("same", "pls-lock") in found
    assert not [name for op, name in found if op in ("replace", "delete")], "nothing is rebuilt or removed"
    for index in (1, 2, 3):
        # The VM keeps its custom data (ignored), gets Azure's patching and a NIC it detaches; nothing restarts it.
        assert found[("update", f"web-{index}-vm")] == ("networkProfile", "osProfile")
        assert ("create", f"web-{index}-software") in found and ("create", f"web-{index}-app-health") in found
    played = rollout(before, after)
    assert played.fewest_serving == 3, played.lines()  # the same site, a health that asks the app: reloads only
    assert played.serving_after == played.after == played.before
