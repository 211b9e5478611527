"""The package every component belongs to, and how a component keeps the URNs of stacks deployed before it."""

import pulumi

PACKAGE = "pls-saas"
"""The Pulumi package name customers add (components/PulumiPlugin.yaml); every type token is <PACKAGE>:index:<Class>."""
VERSION = "1.0.0"
"""Semantic version of the package's schema (tag the release v<VERSION>). A change that breaks customers' programs
(an input or output removed or retyped, an input made required) needs the next major version."""


def type_token(component: str) -> str:
    return f"{PACKAGE}:index:{component}"


def formerly(former_type: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """`opts` plus an alias to the type token the component had before the package (pls:<module>:<Class>).

    Live stacks registered it, and everything under it, with that type in their URNs: without the alias the
    engine would replace the component's resources (a customer's private endpoint, the provider's alias).
    Children inherit their parent's aliases, so one on the component covers its whole tree.
    """
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=former_type)]))
