"""scripts/approve: record the provider's decision about a customer's private endpoint in its registry entry.

A decision is keyed on the endpoint's resource id, never on the request message (which the customer writes); one per
endpoint, so a new one replaces the old. The provider's next deployment applies it once the endpoint has asked.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offline.repository import stack_settings
from operations.exits import CannotStartError, RefusedError
from operations.onboarding import round_trip
from operations.registry_files import (
    check_staged,
    current_state,
    entry_of,
    stacks_of_customers,
)
from operations.transaction import Change
from pls import azure_rules
from pls.config import ConsumerSettings, SettingsError
from pls.config.registry import MAX_REASON, customer_name_problem, entry_path


@dataclass(frozen=True)
class Approval:
    """One decision to record: about the customer's endpoint (its stack file's when endpoint_id is empty)."""

    customer: str
    reason: str
    endpoint_id: str = ""
    status: str = "Approved"


def _stack_endpoint(root: Path, customer: str) -> str:
    """The endpoint the customer's stack file here creates."""
    stacks = stacks_of_customers(root).get(customer, [])
    if len(stacks) != 1:
        which = f"{len(stacks)} stack files ({', '.join(stacks)})" if stacks else "no stack file"
        raise RefusedError(f"{customer} has {which} here: give --endpoint-id (the customer's privateEndpointId)")
    try:
        consumer = stack_settings(stacks[0], root)
    except SettingsError as error:
        raise CannotStartError(f"Pulumi.{stacks[0]}.yaml has problems; fix them first:\n{error}") from None
    assert isinstance(consumer, ConsumerSettings)
    return consumer.private_endpoint_id


def _check_arguments(approval: Approval) -> None:
    """What the user typed, refused before anything is read: a mistyped name is named as typed."""
    if customer_name_problem(approval.customer):
        raise CannotStartError(f"{approval.customer[:60]!r}: {customer_name_problem(approval.customer)}")
    reason = approval.reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise CannotStartError(
            f'--reason: say why in 1-{MAX_REASON} printable characters (e.g. "contract AC-1"); the customer '
            "sees it on its connection"
        )
    if approval.endpoint_id and not azure_rules.PRIVATE_ENDPOINT_ID_RE.fullmatch(approval.endpoint_id):
        raise CannotStartError(f"--endpoint-id {approval.endpoint_id[:80]!r} is not a private endpoint resource id")


def plan_approvals(root: Path, approvals: Sequence[Approval]) -> Change:
    """Each customer's entry with its decisions (one per endpoint: a new one replaces the old), checked once."""
    for approval in approvals:
        _check_arguments(approval)
    stacks = current_state(root)
    change = Change()
    for approval in approvals:
        entry = entry_of(root, approval.customer)
        reason = approval.reason.strip()
        endpoint_id = approval.endpoint_id or _stack_endpoint(root, approval.customer)
        path = entry_path(approval.customer)
        document = round_trip()
        data = document.load(change.files.get(path) or (root / path).read_text())
        decisions = [
            d for d in data.get("decisions") or [] if str(d.get("endpoint", "")).lower() != endpoint_id.lower()
        ]
        data["decisions"] = [*decisions, {"endpoint": endpoint_id, "status": approval.status, "reason": reason}]
        out = io.StringIO()
        document.dump(data, out)
        change.files[path] = out.getvalue()
        change.notes.append(
            f"{approval.customer}: {approval.status} {endpoint_id} ({reason}); now scripts/deploy {entry.provider}"
        )
    check_staged(root, change, stacks)
    return change
