"""What the provider stack promises its consumers and the tooling: the names of the outputs they read."""

from __future__ import annotations

import pulumi

from pls.azure_rules import ALIAS_RE

ALIAS = "alias"
"""The provider's alias: what every consumer's private endpoint connects to."""
SERVICE_ID = "privateLinkServiceId"
"""The provider's Private Link Service: the program looks it up live before any change."""
CONNECTIONS = "connections"
"""The provider's connections, each with its private endpoint and linkIdentifier (scripts/verify compares it)."""
VERIFY = "verify"
"""A consumer's test VM and what it must find: what scripts/verify reads."""


def checked_alias(alias: object, provider_stack: str) -> str:
    if not alias:
        raise ValueError(
            f"providerStack: stack {provider_stack} has no '{ALIAS}' output. Deploy the provider stack first "
            "(pulumi up -s provider), or set providerAlias to the alias the provider gave you."
        )
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise ValueError(f"providerStack: stack {provider_stack} exports '{ALIAS}' = {alias!r}, which is not an alias.")
    return alias


def provider_alias(provider_stack: str | None, given_alias: str | None) -> pulumi.Output[str]:
    """The alias from the stack file, or read from the provider stack's outputs (never retyped)."""
    if given_alias:
        return pulumi.Output.from_input(given_alias)
    assert provider_stack, "settings guarantee exactly one of providerStack and providerAlias"
    reference = pulumi.StackReference(provider_stack)
    return reference.get_output(ALIAS).apply(lambda alias: checked_alias(alias, provider_stack))
