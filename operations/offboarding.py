"""scripts/offboard: remove a customer's registry entry and its stack files, and say in which order to deploy."""

from __future__ import annotations

from pathlib import Path

from operations.registry_files import (
    check_staged,
    current_state,
    entry_of,
    stacks_of_customers,
)
from operations.transaction import Change
from pls.config.registry import entry_path


def plan_offboarding(root: Path, customer: str) -> Change:
    stacks = current_state(root)
    entry = entry_of(root, customer)
    stacks = stacks_of_customers(root).get(customer, [])
    change = Change(removed=[entry_path(customer), *(f"Pulumi.{stack}.yaml" for stack in stacks)])
    check_staged(root, change, stacks)
    provider = entry.provider
    unlock = f"pulumi config set lockService false -s {provider} && scripts/deploy {provider}"
    endpoint = (
        " ".join(f"pulumi destroy -s {stack};" for stack in stacks)
        if stacks
        else f"{customer} deletes its private endpoint in its own tenant (agree the time: the lock must be off);"
    )
    change.notes.append(
        f"{customer} leaves {provider} service {entry.service or 'its first'}. Deploy in this order "
        f"(docs/operations/offboarding.md): {unlock}; {endpoint} then this change and scripts/deploy {provider} "
        f"(still unlocked: dropping a decision deletes its connection, which the lock refuses); then "
        f"pulumi config rm lockService -s {provider} && scripts/deploy {provider}"
    )
    return change
