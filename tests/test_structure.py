"""The project keeps its own rules: components follow the boilerplate, docs and CI agree with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tooling import docs
from tooling.simulate import ROOT, RepositoryWorld, Simulation

COMPONENT_FILES = sorted((ROOT / "components").glob("[!_]*.py"))


def _component_classes(path: Path) -> list[ast.ClassDef]:
    tree = ast.parse(path.read_text())
    return [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pulumi.ComponentResource" for b in node.bases)
    ]


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=[p.stem for p in COMPONENT_FILES])
def test_one_component_per_file_ending_with_register_outputs(path: Path) -> None:
    (component,) = _component_classes(path)
    init = next(n for n in component.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert [a.arg for a in init.args.args] == ["self", "name", "args", "opts"]
    calls = [n for n in ast.walk(init) if isinstance(n, ast.Call) and ast.unparse(n.func) == "self.register_outputs"]
    assert len(calls) == 1
    last = init.body[-1]
    assert isinstance(last, ast.Expr) and last.value is calls[0], "register_outputs must be the last statement"


def test_no_component_reads_configuration() -> None:
    for path in COMPONENT_FILES:
        assert "pulumi.Config" not in path.read_text(), path.name


@pytest.mark.parametrize("fixture", ["provider", "consumer_sim"])
def test_children_are_named_after_their_component(fixture: str, request: pytest.FixtureRequest) -> None:
    sim: Simulation = request.getfixturevalue(fixture)
    components = {r.urn: r for r in sim.resources if not r.custom}
    for resource in sim.resources:
        parent = components.get(resource.parent)
        if parent is not None:
            assert resource.name.startswith(f"{parent.name}-"), f"{resource.name} under {parent.name}"
        elif resource.custom:
            assert resource.type == "pulumi:pulumi:StackReference", f"{resource.name} has no component"


@pytest.fixture(scope="module")
def consumer_sim(repository: RepositoryWorld) -> Simulation:
    return repository.result("consumer")


def test_readme_generated_sections_are_current() -> None:
    current = docs.README.read_text()
    assert docs.render(current) == current, "README.md is stale: run python -m tooling.docs"


def test_ci_runs_the_readme_test_command() -> None:
    readme = docs.README.read_text()
    match = re.search(r"<!-- test-command -->\n```sh\n(.+?)\n```", readme)
    assert match, "README.md must show the test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in ci
    assert ci.rstrip().splitlines()[-1] == match.group(1)


def test_no_secret_or_password_in_the_shipped_files() -> None:
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    shipped = [ROOT / f for f in tracked if not f.startswith("tests/")]
    forbidden = re.compile(r"PRIVATE KEY-----|admin_?password\s*[:=]\s*\S|adminPassword\"?\s*:\s*\S", re.I)
    for path in shipped:
        if path.is_file():
            assert not forbidden.search(path.read_text(errors="ignore")), path


def test_every_argument_of_every_component_is_documented() -> None:
    """The package schema's descriptions come from these docstrings (the SDK's analyzer reads the source)."""
    for path in sorted((ROOT / "components").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "TypedDict" for b in node.bases)):
                continue
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # the class's own docstring
            for field, after in zip(body, [*body[1:], None], strict=True):
                if isinstance(field, ast.AnnAssign):
                    documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    assert documented, f"{path.name}: {node.name}.{ast.unparse(field.target)} has no docstring"
