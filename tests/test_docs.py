"""The documentation a person navigates: every relative link leads to a file and heading that exist, every former
section of the README has a home reachable from it, and the README stays a door, not the house."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import pytest

from offline.engine import ROOT

FOLDER_PAGES = [page for page in ROOT.glob("*/README.md") if not page.parent.name.startswith(".")]
"""Each folder's own page; hidden folders are tools' (pytest writes .pytest_cache/README.md on its first run)."""
PAGES = sorted({ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *FOLDER_PAGES})
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
FORMER_SECTIONS = {
    "Quick start": "README.md#set-up",
    "What it builds": "docs/architecture.md#what-it-builds",
    "Configuration reference": "docs/reference/configuration.md#configuration-reference",
    "Onboarding a customer": "docs/operations/onboarding.md#onboarding-customers",
    "The customer registry": "docs/operations/registry.md#the-customer-registry",
    "For customers: the component package": "docs/customers/package.md#for-customers-the-component-package",
    "Approving connections": "docs/operations/approvals.md#approving-and-rejecting-connections",
    "PROXY protocol v2": "docs/operations/data-path.md#proxy-protocol-v2",
    "The data path: app, TLS, per-tenant limits": "docs/operations/data-path.md#the-app-tls-and-per-tenant-limits",
    "Changing the web tier": "docs/operations/rollout.md#changing-the-web-tier-zone-by-zone-without-an-outage",
    "Guard rails": "docs/operations/guard-rails.md#guard-rails",
    "Teardown": "docs/operations/offboarding.md#teardown",
    "Offboarding a customer": "docs/operations/offboarding.md#offboarding-a-customer",
    "Operations: alerts, diagnostics, access log": "docs/operations/monitoring.md",
    "Team backends, secrets and regions": "docs/operations/backends.md#state-backends-and-secrets",
    "Continuous delivery": "docs/operations/delivery.md#continuous-delivery",
    "Cost of the defaults": (
        "docs/operations/monitoring.md#cost-of-the-defaults-rough-pay-as-you-go-west-europe-per-month"
    ),
    "Troubleshooting": "docs/operations/troubleshooting.md#troubleshooting",
    "Development": "docs/development/index.md#development",
    "Benchmark": "docs/development/benchmark.md#the-benchmark",
}
"""Where each section of the README as it was (one page of 1,010 lines) lives now."""


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(FENCE.sub("", page.read_text())) if "://" not in target]


def resolve(page: Path, target: str) -> tuple[Path, str]:
    path, _, anchor = target.partition("#")
    return ((page.parent / path).resolve() if path else page), anchor


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    for target in links(page):
        path, anchor = resolve(page, target)
        assert path.exists(), f"{target}: no such file"
        assert ROOT in path.parents or path == ROOT, f"{target}: outside the repository"
        if anchor:
            assert path.suffix == ".md" and anchor in anchors(path), f"{target}: no heading #{anchor}"


def test_every_former_section_of_the_readme_is_reachable_from_it() -> None:
    reachable, todo = {ROOT / "README.md"}, deque([ROOT / "README.md"])
    while todo:
        page = todo.popleft()
        for target in links(page):
            path, _ = resolve(page, target)
            if path.is_dir():
                path = path / "README.md"
            if path.suffix == ".md" and path.is_file() and path not in reachable:
                reachable.add(path)
                todo.append(path)
    for section, home in FORMER_SECTIONS.items():
        path, anchor = resolve(ROOT / "README.md", home)
        assert path in reachable, f"{section}: {home} cannot be reached from the README"
        assert not anchor or anchor in anchors(path), f"{section}: {home} has no such heading"


def test_the_readme_is_a_door_of_a_few_screens() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
