"""CrossGuard policy pack: the project's security guard rails, enforced on any stack.

pulumi preview --policy-pack policy
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from rules import RESOURCE_RULES, pls_nat_subnet_policies_disabled


def resource_policy(name: str, rule: Callable[[str, Mapping[str, Any]], list[str]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=(rule.__doc__ or name).strip(), validate=validate)


def validate_nat_subnets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for _, message in pls_nat_subnet_policies_disabled(args.resources):
        report_violation(message, None)


PolicyPack(
    name="pls-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(resource_policy(name, rule) for name, rule in RESOURCE_RULES.items()),
        StackValidationPolicy(
            name="pls-nat-subnet-policies-disabled",
            description=(pls_nat_subnet_policies_disabled.__doc__ or "").strip(),
            validate=validate_nat_subnets,
        ),
    ],
)
