"""What is generated from the code, so it cannot drift from it: the docs' generated sections (the configuration
reference, the diagram) and Pulumi.yaml's `config:` (read off the settings model, pls/config/).

python -m maintenance.docs          # rewrite them
python -m maintenance.docs --check  # exit 1 if either is stale (the test suite checks this too)
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

from offline.engine import ROOT
from operations.diagrams import readme_diagram
from pls.config import load_schema
from pls.config.schema import PROJECT_FILE, with_config_block

README = ROOT / "README.md"
DOCS = ROOT / "docs"


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


SECTIONS: dict[Path, dict[str, Callable[[], str]]] = {
    DOCS / "reference" / "configuration.md": {"config-reference": config_reference},
    DOCS / "architecture.md": {"diagram": diagram},
}
"""Each generated page, and the sections of it the code makes."""


def render(path: Path, text: str) -> str:
    for name, make in SECTIONS[path].items():
        match = re.search(rf"<!-- generated:{name} -->\n(.*?)<!-- end:{name} -->", text, re.S)
        if not match:
            raise ValueError(f"{path.relative_to(ROOT)} has no generated:{name} section")
        text = text[: match.start(1)] + make() + text[match.end(1) :]
    return text


def generated() -> dict[Path, tuple[str, str]]:
    """Each generated file: its text now, and what the code makes of it."""
    pages = {path: (text := path.read_text(), render(path, text)) for path in SECTIONS}
    project = PROJECT_FILE.read_text()
    return {**pages, PROJECT_FILE: (project, with_config_block(project, load_schema()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maintenance.docs")
    parser.add_argument("--check", action="store_true", help="only report whether the generated parts are current")
    args = parser.parse_args(argv)
    stale = [path for path, (current, fresh) in generated().items() if current != fresh]
    if args.check:
        for path in stale:
            print(f"{path.name} is stale: run python -m maintenance.docs")
        return 1 if stale else 0
    for path, (_, fresh) in generated().items():
        path.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
