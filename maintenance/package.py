"""The component package's schema: what every customer's generated SDK is made from, and what would break it.

`python -m maintenance.package --write` records the schema the SDK's analyzer derives from the served components in
components/schema.json, the package's contract. It refuses a change that breaks customers' programs (a component,
input or output removed or retyped, an input newly required) unless the major version went up first
(components/_package.py VERSION and PulumiPlugin.yaml). tests/test_package.py holds the recorded schema to the
one the plugin serves.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pulumi.provider.experimental.component import ComponentProvider

from components import _package
from components.__main__ import SERVED

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "components" / "schema.json"


def current_schema() -> dict[str, Any]:
    """The schema the plugin serves, from the same analyzer the Pulumi CLI's GetSchema call runs."""
    provider = ComponentProvider(SERVED, _package.PACKAGE, None, _package.VERSION)
    assert provider.schema is not None
    schema: dict[str, Any] = json.loads(provider.schema)
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    """components/schema.json as --write records it: sorted, indented, so its history reads as a changelog."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _shape(prop: dict[str, Any]) -> Any:
    """What a property is to a generated SDK: its type (items, map values, reference) and whether it is plain."""
    return {k: _shape(v) if isinstance(v, dict) else v for k, v in prop.items() if k != "description"}


def _property_changes(
    where: str, old: dict[str, Any], new: dict[str, Any], properties: str, required: str, *, inputs: bool
) -> list[str]:
    old_props, new_props = old.get(properties, {}), new.get(properties, {})
    changes = []
    for name, prop in old_props.items():
        if name not in new_props:
            changes.append(f"{where}: {name} removed")
        elif _shape(prop) != _shape(new_props[name]):
            changes.append(f"{where}: {name} changed from {_shape(prop)} to {_shape(new_props[name])}")
    if inputs:  # a program that leaves it out no longer compiles (or runs)
        changes += [
            f"{where}: {name} is now required"
            for name in sorted(set(new.get(required, [])) - set(old.get(required, [])))
        ]
    return changes


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What would break a customer's program written against `old`, one line each."""
    changes: list[str] = []
    for token, resource in old.get("resources", {}).items():
        current = new.get("resources", {}).get(token)
        if current is None:
            changes.append(f"{token}: component removed")
            continue
        changes += _property_changes(
            f"{token} input", resource, current, "inputProperties", "requiredInputs", inputs=True
        )
        changes += _property_changes(f"{token} output", resource, current, "properties", "required", inputs=False)
    for token, kind in old.get("types", {}).items():
        current = new.get("types", {}).get(token)
        if current is None:
            changes.append(f"{token}: type removed")
            continue
        changes += _property_changes(f"{token} property", kind, current, "properties", "required", inputs=True)
    return changes


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


def record(schema: dict[str, Any], recorded: dict[str, Any] | None) -> list[str]:
    """Problems that stop `schema` from replacing `recorded` as the package's contract (none: it may)."""
    if recorded is None:
        return []
    broken = breaking_changes(recorded, schema)
    if broken and major(schema["version"]) <= major(recorded["version"]):
        return [*broken, f"these break customers' programs: raise the major version above {recorded['version']}"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maintenance.package", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the current schema in components/schema.json")
    args = parser.parse_args(argv)
    schema = current_schema()
    recorded_text = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else None
    recorded = json.loads(recorded_text) if recorded_text is not None else None
    problems = record(schema, recorded)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    if args.write:
        SCHEMA_FILE.write_text(schema_text(schema))
    elif schema_text(schema) != recorded_text:
        print(
            "the schema differs from components/schema.json: run python -m maintenance.package --write", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
