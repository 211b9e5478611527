"""The project keeps its own rules: components follow the boilerplate, docs and CI agree with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from maintenance import benchmark, docs
from offline.engine import ROOT
from offline.records import Simulation
from offline.repository import RepositoryWorld
from pls.config import load_schema

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


def test_readme_and_the_project_files_config_are_generated_from_the_code() -> None:
    for path, (current, fresh) in docs.generated().items():
        assert fresh == current, f"{path.name} is stale: run python -m maintenance.docs"


def test_pulumi_yaml_declares_exactly_the_settings_models_keys() -> None:
    """The CLI applies Pulumi.yaml's types and defaults: they must be the model's, key for key, for every key whose
    type Pulumi.yaml can state (strings, integers, booleans and arrays of them; not objects)."""
    declared = yaml.safe_load(docs.PROJECT_FILE.read_text())["config"]
    schema = load_schema()
    typed = [name for name, key in schema.keys.items() if key.declared_to_the_cli]
    assert list(declared) == typed and len(typed) >= len(schema.keys) - 1
    for name in typed:
        key = schema.keys[name]
        assert declared[name].get("default") == key.default and declared[name]["type"] == key.type, name


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


ENTRY_POINTS = {"main", "run"}
PROGRAM_AND_TOOLING = [
    *(ROOT / "pls").rglob("*.py"),
    *(path for folder in ("vm", "offline", "operations", "maintenance") for path in (ROOT / folder).glob("*.py")),
]


def test_no_module_of_the_program_or_the_tooling_is_over_500_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PROGRAM_AND_TOOLING if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}, "split it by concern"


def test_each_concept_is_defined_once() -> None:
    """A class or function (a type, a rule, a helper) has one definition in the program, the components and the
    tooling: no parallel dataclass of a component's argument type, no second copy of a helper."""
    defined: dict[str, list[str]] = {}
    for path in [ROOT / "__main__.py", *(ROOT / "components").glob("*.py"), *PROGRAM_AND_TOOLING]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name not in ENTRY_POINTS:
                defined.setdefault(node.name.lstrip("_"), []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in defined.items() if len(paths) > 1} == {}


def test_output_names_the_tooling_reads_are_the_contracts_constants() -> None:
    contract_names = {"alias", "privateLinkServiceId", "connections", "verify"}
    for path in [ROOT / "__main__.py", *PROGRAM_AND_TOOLING]:
        if path.relative_to(ROOT).as_posix() in (
            "pls/contract.py",
            "offline/azure.py",
            "offline/arm_mocks.py",
            "offline/az_cli.py",
            "vm/verify_probe.py",
        ):
            continue  # Azure's own property names (an alias, a service's connections), not stack outputs
        literals = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        assert not literals & contract_names, f"{path.name} spells an output name: use pls.contract"


def test_the_benchmarks_scenarios_still_deploy() -> None:
    """The evaluation rows run the lab and a full service (100 customers in the registry): a change to the settings'
    rules that refuses them breaks the benchmark, here first."""
    from maintenance.benchmark import evaluation_rows

    rows = dict(evaluation_rows())
    assert "provider scaled (100 subscriptions, 8 NAT IPs, 9 VMs)" in rows and all(t > 0 for t in rows.values())


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--customers", "-5"]])
def test_the_benchmark_refuses_a_count_below_one_by_name(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        benchmark.main(argv)
    assert exited.value.code == 2
    assert "--customers and --rounds take a whole number of at least 1" in capsys.readouterr().err


PACKAGES = ("components", "pls", "vm", "offline", "operations", "maintenance", "tests")
MAY_IMPORT = {
    "components": {"components"},
    "vm": {"vm"},
    "pls": {"pls", "components", "vm"},
    "offline": {"offline", "pls", "components", "vm"},
    "operations": {"operations", "offline", "pls", "components", "vm"},
    "maintenance": {"maintenance", "operations", "offline", "pls", "components", "vm"},
    "tests": set(PACKAGES),
}
"""Who may import whom: the program's library never imports the tooling, the offline engine never the operator's
commands, nothing the tests."""


def _project_imports() -> dict[str, set[str]]:
    """Every module of the project and the project modules it imports, anywhere in it (TYPE_CHECKING included)."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    imports: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports[name] |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    if submodule in modules:
                        imports[name].add(submodule)
                    elif node.module in modules:
                        imports[name].add(node.module)
    return imports


def test_no_module_imports_one_that_imports_it_back() -> None:
    imports = _project_imports()

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(imports[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(imports[module])
        return seen

    assert sorted(m for m in imports if m in reaches(m)) == []


def test_each_folder_imports_only_the_layers_below_it() -> None:
    wrong = {
        f"{module} imports {imported}"
        for module, imported_modules in _project_imports().items()
        for imported in imported_modules
        if imported.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    }
    assert sorted(wrong) == []


def test_each_top_level_folder_says_what_it_is() -> None:
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    folders = sorted({ROOT / path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")})
    for folder in folders:
        readme = folder / "README.md"
        assert readme.is_file(), f"{folder.name}/ has no README.md"
        first_paragraph = readme.read_text().split("\n\n")[1]
        assert len(first_paragraph) > 100, f"{folder.name}/README.md: say in a paragraph what the folder holds"
