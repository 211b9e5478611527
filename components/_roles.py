"""Granting an Azure built-in role to a managed identity: one way for every component that needs it."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization


def grant_built_in_role(
    name: str,
    *,
    scope: pulumi.Input[str],
    role_id: str,
    principal_id: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> authorization.RoleAssignment:
    """Assign the built-in role `role_id` (its GUID) on `scope` to a service principal (a managed identity)."""
    return authorization.RoleAssignment(
        name,
        scope=scope,
        role_definition_id=pulumi.Output.concat(
            "/subscriptions/", subscription_id, f"/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
        ),
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        opts=pulumi.ResourceOptions(parent=parent),
    )
