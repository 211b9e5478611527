"""Validation is total: any value of any key, of any JSON type, size or depth, in any stack file, ends as typed
settings or as a SettingsError that names the key (or a key it is checked together with), never a crash.

Seeded (derandomize) and bounded (max_examples), so CI runs the same examples every time.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline.arm_mocks import ARM
from offline.records import Simulation
from offline.repository import LAB, RepositoryWorld, deployed_config, stack_files
from pls.azure_rules import AUTONAME_SUFFIX, NAME_RULES
from pls.config import SettingsError, load_schema, parse
from tests.helpers.stacks import run_stack, world_with_provider

STACKS = stack_files(LAB)
KEYS = [k for k in load_schema().keys if k != "role"] + [
    "azure-native:subscriptionId",
    "azure-native:location",
    "pls-sass:dnsZone",
]
# A problem may be reported on a key checked together with the changed one (a subnet against its VNet, ...).
CHECKED_WITH = {
    "providerVnetCidr": {"backendSubnetCidr", "natSubnetCidr"},
    "backendSubnetCidr": {"natSubnetCidr"},
    "natIpCount": {"natSubnetCidr"},
    "webVmCount": {"backendSubnetCidr"},
    "consumerVnetCidr": {"endpointSubnetCidr", "workloadSubnetCidr"},
    "endpointSubnetCidr": {"workloadSubnetCidr"},
    "visibility": {"autoApproval", "allowAnyoneWithAlias"},
    "allowAnyoneWithAlias": {"visibility"},
    "autoApproval": {"autoApproval"},
    "approvedConnections": {"rejectedConnections"},
    "customer": {"requestMessage"},
    "providerAlias": {"providerStack"},
    "providerStack": {"providerStack"},
    "tls": {"fqdns", "tlsCertificateName"},
    "endpointSubnetId": {
        "consumerVnetCidr",
        "endpointSubnetCidr",
        "workloadSubnetCidr",
        "workloadSubnetId",
        "vnetHasOutbound",
    },
    "workloadSubnetId": {"vnetHasOutbound"},
    "testVm": {"vnetHasOutbound"},  # HTTPS needs the names its certificate covers
}


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


SPECIAL = [
    "",
    "*",
    "\n",
    "\x00",
    "9" * 5000,
    "[" * 3000 + "]" * 3000,
    "[]",
    '["*"]',
    "[1, 2, 3]",
    "true",
    "null",
    "0.0.0.0/0",
    "10.50.0.0/16\n",
    "westeurope\n",
    "saas.example.com.",
    "a" * 300,
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=200),
    st.sampled_from(SPECIAL),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
hostile = st.one_of(
    json_values,
    json_values.map(lambda v: json.dumps(v)),  # what the engine hands the program: text
    st.integers(min_value=1, max_value=3000).map(_nested),
)


def _affected(changed: set[str]) -> set[str]:
    return changed.union(*(CHECKED_WITH.get(k, set()) for k in changed))


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    stack=st.sampled_from(STACKS),
    changes=st.dictionaries(st.sampled_from(KEYS), hostile, min_size=1, max_size=3),
)
def test_any_value_is_settings_or_an_error_naming_its_key(stack: str, changes: dict[str, Any]) -> None:
    config = {**deployed_config(stack, LAB), **changes}
    try:
        parse(config, stack=stack, project_dir=LAB)
    except SettingsError as error:
        assert error.keys, "an error names at least one key"
        assert error.keys <= _affected(set(changes)), (error.keys, set(changes))
        for problem in error.problems:
            assert "Fix: " in str(problem) and len(str(problem)) < 1500


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw=st.dictionaries(st.text(max_size=30) | st.integers(), hostile, max_size=6))
def test_any_mapping_at_all_is_refused_by_name(raw: dict[Any, Any]) -> None:
    try:
        parse(raw, stack="fuzz", project_dir=LAB)
    except SettingsError as error:
        assert error.keys


def _registered_names(sim: Simulation) -> list[tuple[str, str]]:
    """(type, name) of every Azure resource as Azure will see it: explicit, or azure-native's autoname."""
    names = []
    for resource in sim.resources:
        if resource.type not in NAME_RULES:
            continue
        own_name_key = ARM[resource.type][1]
        explicit = resource.inputs.get(own_name_key)
        names.append((resource.type, explicit or resource.name + "x" * AUTONAME_SUFFIX))
        computer = (resource.inputs.get("osProfile") or {}).get("computerName")
        if computer:
            names.append(("azure-native:compute:VirtualMachine", computer))
    return names


def test_every_name_the_shipped_stacks_register_meets_azures_rules(repository: RepositoryWorld) -> None:
    for stack, sim in repository.deployed.items():
        for resource_type, name in _registered_names(sim):
            assert NAME_RULES[resource_type].problem(name) is None, (stack, resource_type, name)


def test_names_derived_from_the_longest_values_allowed_still_fit() -> None:
    longest = [
        run_stack("consumer", world=world_with_provider(), customer="c" * 40, dnsRecord="r" * 63),
        run_stack("provider", serviceName="s" * 77),
    ]
    for sim in longest:
        for resource_type, name in _registered_names(sim):
            assert NAME_RULES[resource_type].problem(name) is None, (resource_type, name)
