"""The policy pack served as the Pulumi CLI serves it: `python __main__.py` prints a port, then the analyzer gRPC
protocol (GetAnalyzerInfo, Analyze, AnalyzeStack) is driven with every stack's resources."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.engine import ROOT
from offline.records import Registration, Simulation
from offline.repository import LAB, RepositoryWorld, stack_files
from policy import rules
from tests.helpers.plugin_process import serving
from tests.helpers.stacks import run_stack

MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    with serving([sys.executable, "__main__.py"], cwd=ROOT / "policy") as channel:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(props, message)
    return message


def _analyze(stub: analyzer_pb2_grpc.AnalyzerStub, sim: Simulation, resources: list[Registration]) -> list[Any]:
    diagnostics = []
    custom = [r for r in resources if r.custom]
    for r in custom:
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name)
        diagnostics += stub.Analyze(request, timeout=20).diagnostics
    stack = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                parent=r.parent,
                dependencies=sorted(r.dependencies),
                propertyDependencies={
                    key: analyzer_pb2.AnalyzerPropertyDependencies(urns=sorted(urns))
                    for key, urns in r.property_dependencies.items()
                },
            )
            for r in custom
        ]
    )
    diagnostics += stub.AnalyzeStack(stack, timeout=20).diagnostics
    return diagnostics


def test_the_pack_describes_its_mandatory_policies(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=20)
    assert info.name == "pls-guardrails"
    names = {p.name for p in info.policies}
    assert names == {*rules.RESOURCE_RULES, *rules.STACK_RULES}
    assert {p.enforcementLevel for p in info.policies} == {MANDATORY}


@pytest.mark.parametrize("stack", stack_files(LAB))
def test_every_shipped_stack_is_clean(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, repository: RepositoryWorld, stack: str
) -> None:
    sim = repository.result(stack)
    assert _analyze(analyzer, sim, sim.resources) == []


def test_a_deliberately_broken_provider_is_refused_by_the_named_policies(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, provider: Simulation
) -> None:
    broken = copy.deepcopy([r for r in provider.resources if r.custom])
    by_type = {r.type: r for r in broken}
    by_type[rules.NIC].inputs["ipConfigurations"][0]["publicIPAddress"] = {"id": "pip"}
    by_type[rules.NSG].inputs["securityRules"][0]["sourceAddressPrefix"] = "Internet"
    nat_subnet = next(r for r in broken if r.type == rules.SUBNET and r.inputs["subnetName"] == "pls-nat")
    nat_subnet.inputs["privateLinkServiceNetworkPolicies"] = "Enabled"
    vm = by_type[rules.VIRTUAL_MACHINE]
    vm.inputs["osProfile"]["adminPassword"] = "Microhack2021"
    diagnostics = _analyze(analyzer, provider, broken)
    assert {d.policyName for d in diagnostics} == {
        "no-public-ip",
        "no-internet-http-or-ssh",
        "pls-nat-subnet-policies-disabled",
        "linux-vm-ssh-key-only",
    }
    assert {d.enforcementLevel for d in diagnostics} == {MANDATORY}
    assert all(d.policyPackName == "pls-guardrails" for d in diagnostics)


def test_services_of_one_load_balancer_that_disagree_on_proxy_protocol_are_refused(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    sim = run_stack("provider", additionalServices=["saas-2"])
    assert _analyze(analyzer, sim, sim.resources) == []
    broken = copy.deepcopy([r for r in sim.resources if r.custom])
    second = next(r for r in broken if r.type == rules.PRIVATE_LINK_SERVICE and r.inputs["serviceName"] == "saas-2")
    second.inputs["enableProxyProtocol"] = False
    (diagnostic,) = _analyze(analyzer, sim, broken)
    assert diagnostic.policyName == "pls-services-share-a-load-balancer-as-azure-allows"
    assert "disagree on PROXY protocol" in diagnostic.message
