"""The one private part of the Pulumi SDK the program uses, behind a name of its own.

The provider's guard rails must read its own last outputs and the live service *before* any resource is registered
(a refusal must leave nothing half-created), and a consumer must read its alias from the provider's outputs before
it registers its endpoint. The SDK has no public way to wait for an Output there: its synchronous invokes wait with
the private `pulumi.runtime.sync_await._sync_await`, which pumps the SDK's event loop until the awaitable is done.
`wait_for` is that function; tests/test_sdk.py fails first if an SDK upgrade renames it, changes its signature or
stops it from returning a value awaited inside a running program.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from pulumi.runtime.sync_await import _sync_await

T = TypeVar("T")


def wait_for(awaitable: Awaitable[T]) -> T:
    """The awaitable's result, waited for on the SDK's event loop before the program goes on (as a synchronous
    invoke waits)."""
    return _sync_await(awaitable)
