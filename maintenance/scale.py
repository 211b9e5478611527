"""A repository of many customers, onboarded the way the README does it (scripts/onboard, scripts/approve): for
the benchmark and the tests that prove a check's cost does not grow with the number of customers.

The lab's stack files first; then each customer gets a registry entry and a stack file. The lab's provider
declares services as they fill (100 subscriptions each, 8 per load balancer); when all 8 are full, the next
provider stack is started the README's way (a copy of the lab's provider with its own serviceName and no
customers of its own). Every fourth customer is auto-approved, every other manual one approved by its
endpoint's id, the rest Pending.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from offline.repository import LAB
from operations.approvals import Approval, plan_approvals
from operations.exits import RefusedError
from operations.onboarding import Onboarding, plan_onboarding
from operations.transaction import commit

BATCH = 100


def provider_stack(index: int) -> str:
    return "provider" if index == 0 else f"provider-{index + 1}"


def subscription_of(number: int) -> str:
    return f"{number:08d}-5555-4555-8555-555555555555"


def generate(root: Path, customers: int) -> list[str]:
    """Write the lab's stack files and registry, then onboard `customers` more customers into `root`; their stack
    names."""
    for lab_file in LAB.glob("Pulumi.*.yaml"):
        shutil.copy(lab_file, root / lab_file.name)
    shutil.copytree(LAB / "customers", root / "customers", dirs_exist_ok=True)
    providers = 1
    for start in range(0, customers, BATCH):
        batch = [
            Onboarding(f"c{n:04d}", [subscription_of(n)], auto_approve=n % 4 == 0, contract=f"C-{n}")
            for n in range(start, min(customers, start + BATCH))
        ]
        while True:
            try:
                commit(root, plan_onboarding(root, batch))
                break
            except RefusedError as refusal:
                if "every service is full" not in str(refusal):
                    raise
                providers += 1
                _start_provider(root, provider_stack(providers - 1), f"saas{providers}")
    approvals = [Approval(f"c{n:04d}", f"contract C-{n}") for n in range(customers) if n % 4 != 0 and n % 2 == 1]
    if approvals:
        commit(root, plan_approvals(root, approvals))
    return [f"consumer-c{n:04d}" for n in range(customers)]


def _start_provider(root: Path, stack: str, service_name: str) -> None:
    """Another provider stack, as docs/operations/capacity.md starts one: the first's stack file with its own
    serviceName (its customers are the registry's entries that name it)."""
    config = yaml.safe_load((LAB / "Pulumi.provider.yaml").read_text())["config"]
    config.update(
        {
            "pls-saas:serviceName": service_name,
        }
    )
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
