"""CrossGuard policy pack: the project's security guard rails, enforced on any stack.

pulumi preview --policy-pack policy
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from rules import RESOURCE_RULES, STACK_RULES


def resource_policy(name: str, rule: Callable[[str, Mapping[str, Any]], list[str]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=(rule.__doc__ or name).strip(), validate=validate)


def stack_policy(name: str, rule: Callable[[Sequence[Any]], list[tuple[str, str]]]) -> StackValidationPolicy:
    """A rule over every resource of the stack, reported once per violation."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for _, message in rule(args.resources):
            report_violation(message, None)

    return StackValidationPolicy(name=name, description=(rule.__doc__ or name).strip(), validate=validate)


PolicyPack(
    name="pls-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(resource_policy(name, rule) for name, rule in RESOURCE_RULES.items()),
        *(stack_policy(name, rule) for name, rule in STACK_RULES.items()),
    ],
)
