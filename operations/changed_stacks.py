"""scripts/changed-stacks <base-ref>: the stacks a change between <base-ref> and the working tree touches, in
deployment order, one per line: what a pull request previews and a merge deploys.

- a customer's stack file: that customer; its registry entry (customers/<name>.yaml): its provider (whose lists
  and decisions come from it) and the customer;
- a provider's stack file: that provider;
- the program (Pulumi.yaml, __main__.py, components/, pls/, the lock file) or the policy pack: every stack;
- anything else (docs, tests, tooling, workflows): none.

Providers come first, then customers; a provider that decides about a listed customer's endpoint comes again
after it (Azure takes a decision only about an endpoint that has asked). A removed stack file is not listed:
its stack is destroyed by hand first (docs/operations/offboarding.md), and its provider is listed. A customer's stack
file that gives the alias (providerAlias) is another tenant's to run, never listed. --json prints the three
phases (providers, customers, decisions) for a workflow's matrices, and `stacks`: each touched stack once; with
--shards N, also each of them split into at most N shards (a job each); --all: every stack that is ours to run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from offline.engine import ROOT
from offline.repository import MAX_STACK_FILE_BYTES, role_of, settings_or_problem, stack_config, stack_files
from operations.exits import CannotStartError, run
from operations.transaction import interrupted_change, locked
from pls.config import ConsumerSettings, ProviderSettings, load_schema
from pls.config.files import FileRefusedError, load_yaml, read_text
from pls.config.registry import Customer

EVERY_STACK = ("Pulumi.yaml", "__main__.py", "components/", "pls/", "policy/", "pyproject.toml", "uv.lock")
REGISTRY = "customers/"


def changed_files(base: str, root: Path = ROOT) -> list[str]:
    """Files that differ between `base` and the working tree, untracked ones included."""

    def git(*args: str) -> list[str]:
        out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line]

    return sorted({*git("diff", "--name-only", base, "--"), *git("ls-files", "--others", "--exclude-standard")})


def stack_of_path(path: str) -> str | None:
    """The stack whose file `path` is (Pulumi.<stack>.yaml at the top of the repository), or None."""
    name = Path(path).name
    if "/" in path or not name.startswith("Pulumi.") or name == "Pulumi.yaml" or not name.endswith(".yaml"):
        return None
    return name[len("Pulumi.") : -len(".yaml")]


def _at_revision(path: str, base: str, root: Path) -> str | None:
    """The file's text as of `base`; None when it was not there."""
    shown = subprocess.run(["git", "show", f"{base}:{path}"], cwd=root, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def _entry_provider(path: str, base: str, root: Path) -> set[str]:
    """The provider stacks a registry entry names, now and at `base` (an entry may move)."""
    now = _readable(root / path, path)
    default = str(Customer.model_fields["provider"].default)
    providers = set()
    for text in (now, _at_revision(path, base, root)):
        entry = _plain_data(text, path)
        if text is not None:
            providers.add(str(entry.get("provider", default)) if isinstance(entry, dict) else default)
    return providers


def _readable(path: Path, where: str) -> str | None:
    """The file's text (bounded), or None when it is gone or cannot be read (its own check names why)."""
    try:
        return read_text(path, where=where, limit=MAX_STACK_FILE_BYTES) if path.exists() else None
    except FileRefusedError:
        return None


def _plain_data(text: str | None, where: str) -> object:
    """The YAML document in `text`, or None (no text, or not YAML a program could use: its check names why)."""
    try:
        return load_yaml(text, where=where) if text is not None else None
    except FileRefusedError:
        return None


@dataclass(frozen=True)
class Phases:
    """The touched stacks in the order they deploy: each phase after the one before, its stacks in parallel."""

    providers: list[str]
    customers: list[str]
    decisions: list[str]
    """Providers again: they decide about a listed customer's endpoint, which must have asked first."""

    @property
    def in_order(self) -> list[str]:
        return [*self.providers, *self.customers, *self.decisions]

    def shards(self, count: int) -> dict[str, list[dict[str, str]]]:
        """Each phase, and every touched stack once (`stacks`: what a preview or the drift check runs), split into
        at most `count` shards of near-equal size: one workflow job each, whatever the number of stacks."""
        lists = {**dataclasses.asdict(self), "stacks": list(dict.fromkeys(self.in_order))}
        return {phase: _in_shards(phase, stacks, count) for phase, stacks in lists.items()}


MAX_SHARDS = 64
"""Per phase: a workflow's three phases stay within GitHub's 256 jobs per matrix, with room for the jobs around them."""


def _in_shards(phase: str, stacks: list[str], count: int) -> list[dict[str, str]]:
    """`stacks` in at most `count` contiguous parts whose sizes differ by one at most, as a matrix's entries."""
    parts = min(count, len(stacks))
    size, extra = divmod(len(stacks), parts) if parts else (0, 0)
    shards, start = [], 0
    for index in range(parts):
        end = start + size + (index < extra)
        shards.append(
            {
                "id": f"{phase}-{index + 1}",
                "name": f"{phase} {index + 1}/{parts}",
                "stacks": " ".join(stacks[start:end]),
            }
        )
        start = end
    return shards


def ours(root: Path = ROOT) -> set[str]:
    """The stack files this repository runs: all but other tenants' customers (they set providerAlias) and files
    the engine could not read (their plan names the problem)."""
    return {s for s in stack_files(root) if role_of(s, root) and not stack_config(s, root).get("providerAlias")}


def changed_stacks(files: Iterable[str], base: str, root: Path = ROOT) -> Phases:
    """The stacks `files` touch, in deployment order (a provider may come twice: before and after its customers)."""
    return phases_of(_touched(files, base, root), root)


def phases_of(touched: Iterable[str], root: Path = ROOT) -> Phases:
    """`touched` stacks in deployment order: providers, customers, then the providers deciding about them again."""
    roles = {stack: role_of(stack, root) for stack in touched}
    providers = sorted(s for s, role in roles.items() if role == "provider")
    customers = sorted(s for s, role in roles.items() if role == "consumer")
    return Phases(providers, customers, _deciding_about(providers, customers, root))


def _touched(files: Iterable[str], base: str, root: Path) -> set[str]:
    """Every stack of ours that one of `files` touches."""
    existing = ours(root)
    customers = _stacks_by_customer(root, existing)
    touched: set[str] = set()
    for path in files:
        if any(path == prefix or path.startswith(prefix) for prefix in EVERY_STACK):
            return existing
        if path.startswith(REGISTRY) and path.endswith(".yaml"):
            touched |= _entry_provider(path, base, root)
            touched |= set(customers.get(Path(path).stem, []))
        elif (stack := stack_of_path(path)) in existing:
            touched.add(stack)
        elif stack is not None and (provider := _deleted_customers_provider(path, base, root)) is not None:
            touched.add(provider)
    return touched & existing


def _stacks_by_customer(root: Path, stacks: set[str]) -> dict[str, list[str]]:
    """The stack files of each customer (by their `customer` key: Pulumi.consumer.yaml is tradewinds')."""
    found: dict[str, list[str]] = {}
    for stack in sorted(stacks):
        customer = stack_config(stack, root).get("customer") if role_of(stack, root) == "consumer" else None
        if isinstance(customer, str):
            found.setdefault(customer, []).append(stack)
    return found


def _deciding_about(providers: list[str], customers: list[str], root: Path) -> list[str]:
    """The providers that decide about one of `customers`' endpoints: they deploy again after them (Azure takes a
    decision only about an endpoint that has asked)."""
    endpoints = set()
    for customer in customers:
        settings = settings_or_problem(customer, root)  # one with a problem: its plan names it; it is still listed
        if isinstance(settings, ConsumerSettings):
            endpoints.add(settings.private_endpoint_id.lower())
    again = []
    for provider in providers:
        settings = settings_or_problem(provider, root)
        if isinstance(settings, ProviderSettings) and any(
            d["private_endpoint_id"].lower() in endpoints for d in settings.connection_decisions
        ):
            again.append(provider)
    return again


def _deleted_customers_provider(path: str, base: str, root: Path) -> str | None:
    """The provider stack a removed customer's stack file named (its lists and decisions change with it)."""
    text = _at_revision(path, base, root)
    if text is None:
        return None
    schema = load_schema()
    document = _plain_data(text, path)
    config = (document.get("config") if isinstance(document, dict) else None) or {}
    if not isinstance(config, dict):
        return None
    reference = str(config.get(f"{schema.project}:providerStack", schema.defaults()["providerStack"]))
    return None if config.get(f"{schema.project}:providerAlias") else reference.rsplit("/", 1)[-1]


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="scripts/changed-stacks", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("base", nargs="?", help="git revision the change is compared with, e.g. origin/main")
    parser.add_argument("--all", action="store_true", help="every stack that is ours to run (the drift check)")
    parser.add_argument("--json", action="store_true", help="the phases as JSON, for a workflow's matrices")
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help=f"with --json: each phase split into at most this many jobs (1-{MAX_SHARDS})",
    )
    args = parser.parse_args(argv)
    if bool(args.base) == args.all:
        parser.error("give a base revision, or --all")
    if args.shards and not (args.json and 1 <= args.shards <= MAX_SHARDS):
        parser.error(f"--shards takes 1 to {MAX_SHARDS}, with --json")

    def list_them() -> int:
        with locked(root, exclusive=False):
            interrupted = interrupted_change(root)
            if interrupted:
                raise CannotStartError(interrupted)
            try:
                files = list(EVERY_STACK) if args.all else changed_files(args.base, root)
            except subprocess.CalledProcessError as error:
                raise CannotStartError(f"git cannot compare with {args.base}: {error.stderr.strip()}") from None
            phases = changed_stacks(files, args.base or "HEAD", root)
        if args.json:
            listed: dict[str, object] = {**dataclasses.asdict(phases), "stacks": list(dict.fromkeys(phases.in_order))}
            print(json.dumps({**listed, "shards": phases.shards(args.shards)} if args.shards else listed))
        elif phases.in_order:
            print("\n".join(phases.in_order))
        return 0

    return run(list_them)


if __name__ == "__main__":
    raise SystemExit(main())
