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
    """`opts` plus an alias to the type token the component had before the package (pls:<module>:<Class>), here
    and wherever `opts`'s own aliases say it was: each alias is one place the engine looks, so a component that
    has moved and been renamed since needs the former type at its former place too.

    Live stacks registered it, and everything under it, with that type in their URNs: without the alias the
    engine would replace the component's resources (a customer's private endpoint, the provider's alias).
    Children inherit their parent's aliases, so one on the component covers its whole tree.
    """
    given = [a for a in (opts.aliases if opts and opts.aliases else []) if isinstance(a, pulumi.Alias)]
    former = [pulumi.Alias(type_=former_type)]
    former += [
        pulumi.Alias(name=a.name, type_=former_type, parent=a.parent, stack=a.stack, project=a.project) for a in given
    ]
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=former))
