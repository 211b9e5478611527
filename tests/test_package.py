"""The component package customers add with `pulumi package add`: the schema their SDK is generated from, served
as the Pulumi CLI asks for it, held to the recorded contract; and the URNs of stacks deployed before it."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components import _package
from components.__main__ import SERVED
from maintenance import package
from offline.engine import ROOT, World, deploy
from offline.records import Registration
from offline.steps import aliases, engine_urn
from tests.helpers.plugin_process import serving

PLUGIN = ROOT / "components"
RECORDED = json.loads(package.SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """GetSchema from the plugin started the way the CLI starts it: its __main__.py, its folder the only path."""
    command = [sys.executable, str(PLUGIN / "__main__.py"), "127.0.0.1:1"]  # an engine address it never needs here
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with serving(command, cwd=tmp_path_factory.mktemp("elsewhere"), env=env) as channel:
        answer = provider_pb2_grpc.ResourceProviderStub(channel).GetSchema(provider_pb2.GetSchemaRequest())
    schema: dict[str, Any] = json.loads(answer.schema)
    return schema


def test_the_plugin_serves_exactly_the_recorded_schema(served_schema: dict[str, Any]) -> None:
    assert served_schema == RECORDED, "the package schema changed: run python -m maintenance.package --write"


def test_the_schema_names_every_served_component_with_typed_documented_inputs_and_outputs() -> None:
    assert RECORDED["name"] == _package.PACKAGE and RECORDED["version"] == _package.VERSION
    assert set(RECORDED["resources"]) == {_package.type_token(c.__name__) for c in SERVED}
    for token, resource in RECORDED["resources"].items():
        assert resource["isComponent"] is True and resource["description"], token
        assert resource["inputProperties"] and resource["properties"], token
        for name, prop in {**resource["inputProperties"], **resource["properties"]}.items():
            assert prop.get("description"), f"{token}.{name} has no description"
            assert "type" in prop or "$ref" in prop, f"{token}.{name} has no type"
    for token, kind in RECORDED["types"].items():
        for name, prop in kind["properties"].items():
            assert prop.get("description") and ("type" in prop or "$ref" in prop), f"{token}.{name}"


def test_a_customer_needs_only_the_alias_its_network_and_a_name() -> None:
    access = RECORDED["resources"][_package.type_token("PrivateServiceAccess")]
    assert sorted(access["requiredInputs"]) == [
        "alias",
        "dnsRecord",
        "dnsZone",
        "location",
        "resourceGroupName",
        "subnetId",
        "vnetId",
    ]
    assert {"autoApproved", "requestMessage", "testVm", "tags", "dnsZoneId", "linkDnsZone"} <= set(
        access["inputProperties"]
    )
    assert access["inputProperties"]["alias"]["type"] == "string"
    assert "plain" not in access["inputProperties"]["subnetId"], "an Output (the customer's subnet) must be accepted"
    assert sorted(access["properties"]) == [
        "connectionName",
        "connectionState",
        "endpointId",
        "fqdn",
        "privateIp",
        "testVmId",
        "testVmName",
        "testVmPrivateIp",
    ]
    assert set(access["required"]) == {"connectionName", "connectionState", "endpointId", "fqdn", "privateIp"}


def _edited(edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(RECORDED)
    edit(schema)
    return schema


ACCESS = _package.type_token("PrivateServiceAccess")


@pytest.mark.parametrize(
    ("edit", "reported"),
    [
        (lambda s: s["resources"][ACCESS]["inputProperties"].pop("requestMessage"), "input: requestMessage removed"),
        (
            lambda s: s["resources"][ACCESS]["inputProperties"]["alias"].update(type="integer"),
            "input: alias changed from",
        ),
        (lambda s: s["resources"][ACCESS]["requiredInputs"].append("testVm"), "input: testVm is now required"),
        (lambda s: s["resources"][ACCESS]["properties"].pop("privateIp"), "output: privateIp removed"),
        (lambda s: s["resources"].pop(ACCESS), "component removed"),
        (lambda s: s["types"].pop(_package.type_token("VmProfile")), "type removed"),
        (
            lambda s: s["resources"][ACCESS]["inputProperties"]["autoApproved"].pop("plain"),
            "input: autoApproved changed from",
        ),
    ],
    ids=[
        "removed-input",
        "retyped-input",
        "newly-required",
        "removed-output",
        "removed-component",
        "removed-type",
        "plain",
    ],
)
def test_a_change_that_breaks_customers_needs_a_new_major_version(edit: Any, reported: str) -> None:
    current = _edited(edit)
    (change,) = package.breaking_changes(RECORDED, current)
    assert reported in change
    problems = package.record(current, RECORDED)
    assert problems[-1].startswith("these break customers' programs: raise the major version above")
    assert package.record({**current, "version": "2.0.0"}, {**RECORDED, "version": "1.4.0"}) == []


def test_additions_are_not_breaking() -> None:
    def add(schema: dict[str, Any]) -> None:
        schema["resources"][ACCESS]["inputProperties"]["ttlSeconds"] = {"type": "integer", "description": "TTL."}
        schema["resources"][ACCESS]["properties"]["zoneId"] = {"type": "string", "description": "Zone."}
        schema["resources"]["pls-saas:index:Another"] = {"isComponent": True}

    assert package.breaking_changes(RECORDED, _edited(add)) == []


def test_one_version_everywhere_and_the_programs_dependency_pins() -> None:
    plugin = yaml.safe_load((PLUGIN / "PulumiPlugin.yaml").read_text())
    assert (plugin["name"], plugin["version"]) == (_package.PACKAGE, _package.VERSION)
    assert plugin["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    pins = dict(
        line.split("==")
        for line in (PLUGIN / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pins == {"pulumi": locked["pulumi"], "pulumi-azure-native": locked["pulumi-azure-native"]}


# --- stacks deployed before keep every URN ------------------------------------------------------------------------

REPLAYS = {
    # Before the component package: components had pls:<module>:<Class> types.
    "before-package": "tests/fixtures/urns-before-package.json",
    # Before the program built its consumers from PrivateServiceAccess: their parts sat at the stack's top level.
    "before-access": "tests/fixtures/urns-before-access.json",
}
NEW_SINCE = {
    "pls-saas:index:PrivateServiceAccess",
    # Each web VM's software, applied in place, and its Application Health extension (the rollout's).
    "azure-native:compute:VirtualMachineRunCommandByVirtualMachine",
    "app-health",
}
"""What did not exist in those stacks (by type, or by role for a type they had): it is created, nothing of theirs
is replaced."""


def _kind(resource: Registration) -> str:
    return "app-health" if resource.name.endswith("-app-health") else resource.type


@pytest.mark.parametrize("fixture", REPLAYS.values(), ids=REPLAYS.keys())
def test_every_resource_of_a_stack_deployed_before_keeps_its_urn_through_aliases(fixture: str, tmp_path: Path) -> None:
    """Redeploying what live stacks were deployed with (from a checkout of that time: their stack files listed the
    customers, there was no registry), every URN they hold is claimed by exactly one resource of today's program,
    through the aliases the engine resolves (offline.steps.aliases), and no other resource is new but the new
    component types: the engine updates everything in place and replaces nothing."""
    before = json.loads((ROOT / fixture).read_text())["stacks"]
    world = World(tmp_path)
    for stack in sorted(before, key=lambda s: before[s]["config"]["role"] != "provider"):
        sim = deploy(world, stack, before[stack]["config"])
        live = {engine_urn(urn) for urn in before[stack]["urns"]}
        claims = {urn: answers & live for urn, answers in aliases(sim).items()}
        assert all(len(claimed) <= 1 for claimed in claims.values()), stack
        assert sorted(u for claimed in claims.values() for u in claimed) == sorted(live), stack
        new = {_kind(sim.by_urn[urn]) for urn, claimed in claims.items() if not claimed}
        assert new <= NEW_SINCE, stack


def test_the_replay_finds_a_missing_alias(tmp_path: Path) -> None:
    """Without the alias that moves a part under PrivateServiceAccess, the live endpoint would be replaced."""
    before = json.loads((ROOT / REPLAYS["before-access"]).read_text())["stacks"]["consumer"]
    provider = json.loads((ROOT / REPLAYS["before-access"]).read_text())["stacks"]["provider"]
    world = World(tmp_path)
    deploy(world, "provider", provider["config"])
    sim = deploy(world, "consumer", before["config"])
    for resource in sim.resources:
        if resource.type == "pls-saas:index:PrivateEndpoint":
            resource.aliases = [a for a in resource.aliases if "noParent" not in a["spec"]]
    claimed = {u for answers in aliases(sim).values() for u in answers}
    assert engine_urn(next(u for u in before["urns"] if u.endswith("PrivateEndpoint::tradewinds-saas"))) not in claimed


# --- the customers' examples use only what the schema has --------------------------------------------------------

EXAMPLES = ROOT / "examples"


def test_the_yaml_example_uses_only_schema_names() -> None:
    program = yaml.safe_load((EXAMPLES / "customer-yaml" / "Pulumi.yaml").read_text())
    assert program["runtime"] == "yaml"
    used = 0
    for name, resource in program["resources"].items():
        package_name, _, component = resource["type"].partition(":")
        if package_name != _package.PACKAGE:
            continue
        used += 1
        schema = RECORDED["resources"][_package.type_token(component.removeprefix("index:"))]
        assert set(resource["properties"]) <= set(schema["inputProperties"]), name
        assert set(schema["requiredInputs"]) <= set(resource["properties"]), name
        for reference in re.findall(
            rf"\$\{{{re.escape(name)}\.(\w+)\}}", (EXAMPLES / "customer-yaml" / "Pulumi.yaml").read_text()
        ):
            assert reference in schema["properties"], reference
    assert used


def _object_keys(source: str, start: int) -> list[str]:
    """The top-level keys of the object literal that opens at source[start] ('{')."""
    depth, keys, token = 0, [], ""
    for char in source[start:]:
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and char == ":" and re.fullmatch(r"\s*\w+\s*", token):
            keys.append(token.strip())
        if depth == 1 and char in ",{\n":
            token = ""
        elif depth == 1:
            token += char
    return keys


def test_the_typescript_example_uses_only_schema_names() -> None:
    source = (EXAMPLES / "customer-typescript" / "index.ts").read_text()
    constructions = list(re.finditer(r"const (\w+) = new plsSaas\.(\w+)\(\s*\"[^\"]+\",\s*\{", source))
    assert constructions
    for construction in constructions:
        variable, component = construction.groups()
        schema = RECORDED["resources"][_package.type_token(component)]
        keys = _object_keys(source, construction.end() - 1)
        assert set(keys) <= set(schema["inputProperties"]), keys
        assert set(schema["requiredInputs"]) <= set(keys), keys
        for output in re.findall(rf"\b{variable}\.(\w+)", source):
            assert output in schema["properties"], output
    package_json = json.loads((EXAMPLES / "customer-typescript" / "package.json").read_text())
    assert "@pulumi/pulumi" in package_json["dependencies"]


def test_examples_name_the_package_as_pulumi_package_add_records_it() -> None:
    for project in (EXAMPLES / "customer-yaml" / "Pulumi.yaml", EXAMPLES / "customer-typescript" / "Pulumi.yaml"):
        packages = yaml.safe_load(project.read_text())["packages"]
        assert list(packages) == [_package.PACKAGE]
        assert re.fullmatch(r"\S+\.git/components@\d+\.\d+\.\d+", str(packages[_package.PACKAGE])), packages


def test_no_component_depends_on_the_project() -> None:
    """The package's folder is all a customer's CLI runs: nothing of pls/ or tooling/ may be imported from it."""
    for path in sorted(PLUGIN.glob("*.py")):
        imported = re.findall(r"^\s*(?:from|import) (\w+)", path.read_text(), re.MULTILINE)
        assert set(imported) <= {"components", "pulumi", "pulumi_azure_native", *sys.stdlib_module_names}, path.name


def test_the_recorded_schema_is_current_in_process_and_written_as_write_writes_it() -> None:
    assert package.main([]) == 0  # compares components/schema.json with schema_text(the current schema)
