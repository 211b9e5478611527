"""What the provider stack promises its consumers and the tooling: the names of the outputs they read."""

from __future__ import annotations

from typing import Any

import pulumi

from pls.azure_rules import ALIAS_RE
from pls.config.errors import Problem, SettingsError
from pls.sdk import wait_for

ALIAS = "alias"
"""The alias of the provider's first Private Link Service: what every consumer's private endpoint connected to
before a provider had several services, and still does unless it names another."""
ALIASES = "aliases"
"""Every Private Link Service's alias, by the service's name (serviceName first, then additionalServices)."""
SERVICE_ID = "privateLinkServiceId"
"""The provider's first Private Link Service: the program looks it up live before any change."""
SERVICE_IDS = "privateLinkServiceIds"
"""Every Private Link Service's resource id, by the service's name: each is looked up live before any change."""
CONNECTIONS = "connections"
"""The provider's connections, each with its service, private endpoint and linkIdentifier (scripts/verify
compares it)."""
VERIFY = "verify"
"""A consumer's test VM and what it must find: what scripts/verify reads."""


def checked_alias(alias: object, provider_stack: str, service: str = "") -> str:
    """The alias a provider stack exports, or a SettingsError naming the key that leads there and the fix."""
    output = f"'{ALIASES}' output for service {service!r}" if service else f"'{ALIAS}' output"
    if not alias:
        problem = f"stack {provider_stack} has no {output}"
        fix = (
            "deploy the provider stack first (pulumi up -s provider), check the stack name, or set providerAlias "
            "to the alias the provider gave you"
        )
        if service:
            fix = "name one of the provider's services (serviceName or additionalServices), or " + fix
        raise SettingsError(pulumi.get_project(), [Problem("providerStack", provider_stack, problem, fix)])
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise SettingsError(
            pulumi.get_project(),
            [
                Problem(
                    "providerStack",
                    provider_stack,
                    f"its {output} is {alias!r}, which is not an alias",
                    "deploy the provider stack with this version of the program",
                )
            ],
        )
    return alias


def provider_alias(provider_stack: str | None, given_alias: str | None, service: str = "") -> str:
    """The alias from the stack file, or read from the provider stack's outputs (never retyped).

    Read before any resource is registered, as a synchronous invoke is: a consumer whose provider stack is not
    there (or has no such service) stops with the reason and leaves nothing half-created.
    """
    if given_alias:
        return given_alias
    assert provider_stack, "settings guarantee exactly one of providerStack and providerAlias"
    reference = pulumi.StackReference(provider_stack)
    if not service:
        return checked_alias(_output(reference, ALIAS), provider_stack)
    aliases = _output(reference, ALIASES)
    return checked_alias(aliases.get(service) if isinstance(aliases, dict) else None, provider_stack, service)


def _output(reference: pulumi.StackReference, name: str) -> Any:
    details = wait_for(reference.get_output_details(name))
    return details.value if details.value is not None else details.secret_value
