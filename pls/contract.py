"""What the provider stack promises its consumers: the names of the outputs a consumer reads."""

from __future__ import annotations

import pulumi

from pls.settings import ALIAS_RE

ALIAS = "alias"


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
