"""README.md sections generated from the code, so the documentation cannot drift from it.

python -m tooling.docs          # rewrite the generated sections of README.md
python -m tooling.docs --check  # exit 1 if README.md is stale (the test suite checks this too)
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable

from pls.settings import load_schema
from tooling.plan import readme_diagram
from tooling.simulate import ROOT

README = ROOT / "README.md"


def config_reference() -> str:
    schema = load_schema()
    rows = ["| key | role | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for key in schema.keys.values():
        role = "both" if len(key.roles) == 2 else key.roles[0]
        default = "**required**" if key.required else f"`{json.dumps(key.default)}`"
        meaning = key.description.replace("|", "\\|")
        rows.append(f"| `{schema.project}:{key.name}` | {role} | {key.type} | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def diagram() -> str:
    return f"```mermaid\n{readme_diagram()}```\n"


SECTIONS: dict[str, Callable[[], str]] = {"config-reference": config_reference, "diagram": diagram}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        match = re.search(rf"<!-- generated:{name} -->\n(.*?)<!-- end:{name} -->", text, re.S)
        if not match:
            raise ValueError(f"README.md has no generated:{name} section")
        text = text[: match.start(1)] + make() + text[match.end(1) :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.docs")
    parser.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python -m tooling.docs")
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
