"""What the offline engine does differently from the Pulumi SDK's own machinery to run the program fast, and only
that: the SDK work only the real engine reads is skipped, the monitor's calls are made in place, young objects are
collected in bulk, and a failed run's leftover tasks are quieted. Every SDK internal it touches is listed in
`SDK_INTERNALS` (offline/README.md says why each); tests/test_sdk.py resolves them, and tests/test_simulate.py compares
what the monitor receives with these shortcuts and without them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, TypeVarTuple

import pulumi
import pulumi._types
import pulumi.resource
import pulumi.runtime.resource
from pulumi.runtime.proto import alias_pb2, source_pb2

SDK_INTERNALS = (
    "pulumi.resource.collapse_alias_to_urn",
    "pulumi.runtime.resource._get_stack_trace",
    "pulumi.runtime.resource.prepare_aliases",
    "pulumi.runtime.resource.create_alias_spec",
    "pulumi._types.unwrap_type",
    "pulumi.runtime.settings.SETTINGS.rpc_manager",
    "pulumi.runtime.settings.SETTINGS.outputs",
    "pulumi.runtime.settings.SETTINGS.root_directory",
    "pulumi.runtime.stack.run_pulumi_func",
    "pulumi.runtime.rpc.deserialize_properties",
    "pulumi.runtime.mocks.MockMonitor.RegisterResource",
    "pulumi.runtime.mocks.MockMonitor.ReadResource",
    "pulumi.runtime.sync_await._sync_await",
    "asyncio.events._set_running_loop",
)
"""What the offline engine reaches into that is not the SDK's public API (offline/README.md says why each):
tests/test_sdk.py resolves every one first, so a Pulumi upgrade that moves one fails there by name."""

_PREPARE_ALIASES = pulumi.runtime.resource.prepare_aliases
_UNWRAP_TYPE = pulumi._types.unwrap_type
_UNWRAPPED_ONCE_PER_TYPE = functools.cache(_UNWRAP_TYPE)


async def _aliases_as_given(
    resource: pulumi.Resource, resource_options: pulumi.ResourceOptions | None, supports_alias_specs: bool
) -> list[alias_pb2.Alias]:
    """The SDK's prepare_aliases, without an Output made to resolve each alias that is given as a value: the
    same specs, as create_alias_spec makes them."""
    aliases = list(resource_options.aliases or []) if resource_options is not None else []
    given = [alias for alias in aliases if isinstance(alias, str | pulumi.Alias)]
    if not supports_alias_specs or not aliases or len(given) != len(aliases):
        return await _PREPARE_ALIASES(resource, resource_options, supports_alias_specs)
    return [
        alias_pb2.Alias(urn=alias)
        if isinstance(alias, str)
        else alias_pb2.Alias(spec=await pulumi.runtime.resource.create_alias_spec(alias))
        for alias in given
    ]


@contextlib.contextmanager
def engine_side_work_skipped() -> Iterator[None]:
    """Skip what the Python SDK computes for every resource that only the real engine would read, or computes
    the long way.

    - Alias URNs. Every azure-native resource carries ~40 API-version aliases. `Resource.__init__` turns each
      into a URN Output (pulumi/pulumi#10010) kept only for the pre-alias-spec protocol; the monitor here, like
      today's engine, announces alias specs, so the SDK sends the specs themselves and those URNs are never
      awaited. That expansion was three quarters of a simulation's time.
    - Alias specs: made from each alias directly, not through an Output per alias (a fifth of what was left).
    - Stack traces. Each registration walks the Python stack for the source position the engine shows in its
      diagnostics; offline nothing shows it.
    - Type unwrapping. Serializing each input property unwraps its annotated type (Input[T], Optional[T]) by
      typing introspection, again for every resource; a provider run makes ~1,300 lookups of ~200 distinct types.
      The answer depends on the type alone, so it is computed once per type.

    What the monitor receives is unchanged but for the missing source positions: tests/test_simulate.py compares
    it, registration by registration, with the SDK left alone.
    """
    expand = pulumi.resource.collapse_alias_to_urn
    trace = pulumi.runtime.resource._get_stack_trace
    pulumi.resource.collapse_alias_to_urn = lambda alias, *_: alias
    pulumi.runtime.resource._get_stack_trace = source_pb2.StackTrace
    pulumi.runtime.resource.prepare_aliases = _aliases_as_given
    pulumi._types.unwrap_type = _UNWRAPPED_ONCE_PER_TYPE
    try:
        yield
    finally:
        pulumi.resource.collapse_alias_to_urn = expand
        pulumi.runtime.resource._get_stack_trace = trace
        pulumi.runtime.resource.prepare_aliases = _PREPARE_ALIASES
        pulumi._types.unwrap_type = _UNWRAP_TYPE


_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


class InlineExecutorLoop(asyncio.SelectorEventLoop):
    """An event loop that runs what the SDK hands its executor at once, as a worker thread would run it.

    The SDK sends every request to the monitor from a worker thread, because a gRPC call to the real engine
    blocks until the resource exists. The offline monitor answers at once, so the thread hop (and the loop's
    wait for the thread) was only cost: a sixth of a run. The call still sees what a worker thread sees: no
    running loop, and a loop of its own for the mock monitor to serialize its answer on (run on this loop, the
    monitor's answer would re-enter it). tests/test_simulate.py compares what the monitor receives with the
    SDK's own loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._workers_loop = asyncio.new_event_loop()

    def run_in_executor(
        self, executor: concurrent.futures.Executor | None, func: Callable[[*_Args], _T], *args: *_Args
    ) -> asyncio.Future[_T]:
        answered = self.create_future()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(self._workers_loop)
        try:
            answered.set_result(func(*args))
        except Exception as error:  # the SDK awaits the future and handles the failure as it would a thread's
            answered.set_exception(error)
        finally:
            asyncio.set_event_loop(self)
            asyncio.events._set_running_loop(self)
        return answered

    def close(self) -> None:
        self._workers_loop.close()
        super().close()


@contextlib.contextmanager
def young_objects_collected_in_bulk() -> Iterator[None]:
    """A run allocates hundreds of thousands of short-lived objects (futures, tasks, outputs, callbacks). At
    Python's default of a young-generation collection every 700 allocations, the collector took a quarter of a
    run; every 50,000 it takes little, and the garbage is still collected during the run."""
    default = gc.get_threshold()
    gc.set_threshold(50_000, *default[1:])
    try:
        yield
    finally:
        gc.set_threshold(*default)


class LeftoversOfAFailedRun:
    """A run that fails (the program, Azure or the engine refused) leaves the SDK's tasks behind: some wait for
    outputs that will never resolve, some hold the same failure. asyncio would report each when it is collected
    ("Task was destroyed but it is pending!", "Task exception was never retrieved"), hundreds of lines for one
    refusal the caller already has. Once the run has failed, its loop's reports are dropped and its pending tasks
    cancelled; a run that succeeds reports anything as asyncio does."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not self.failed:
            loop.default_exception_handler(context)

    def settle(self, loop: asyncio.AbstractEventLoop) -> None:
        self.failed = True
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
