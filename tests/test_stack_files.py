"""The stack files: each of the repository's own (the users') by one cheap check, and the lab's deployed offline
as the README's lifecycle deploys them.

The repository's Pulumi.<stack>.yaml are the users' to edit, hundreds of them: each is parsed and validated, and
a customer's connection planned against its provider's file, without deploying anything (its cost does not grow
with the number of customers). Expectations come from the stack file being tested, never from example data, so
a customer onboarded, approved or offboarded the README's way keeps this green, and a stack file that Azure
would refuse (a subscription outside visibility, autoApproved without the provider's auto-approval) fails here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from offline.engine import ROOT
from offline.repository import (
    LAB,
    RepositoryWorld,
    every_stack_settings,
    expected_connection,
    provider_file_of,
    settings_or_problem,
    stack_config,
    stack_files,
    stack_settings,
)
from pls.config import ConsumerSettings, ProviderSettings, Settings, SettingsError

STACKS = stack_files()


def test_the_repository_has_a_provider() -> None:
    assert any(stack_config(s)["role"] == "provider" for s in STACKS)


def planned_connection(stack: str, settings: ConsumerSettings, provider: Settings | SettingsError | None) -> str | None:
    """The customer's connection as its provider's stack file decides it (None: a provider outside this
    repository): never refused as not visible, and approved on arrival when the customer says it will be."""
    fate = expected_connection(settings, provider)
    assert fate != "NotVisible", f"{stack}: add {settings.subscription_id} to the provider's visibility (onboarding)"
    if settings.auto_approved and fate is not None:
        assert fate == "Approved", f"{stack}: autoApproved, but the provider does not auto-approve its subscription"
    return fate


def test_every_stack_file_is_valid_and_its_connection_can_be_made() -> None:
    """One check over every file, in one pass (a test per file costs more than the check with a thousand), that
    names every file with a problem at once, each with the key and the fix."""
    problems = []
    every = every_stack_settings(ROOT)
    for stack, settings in every.items():
        try:
            if isinstance(settings, SettingsError):
                raise settings
            if isinstance(settings, ConsumerSettings):
                planned_connection(stack, settings, every.get(provider_file_of(settings, ROOT) or ""))
        except (SettingsError, AssertionError) as problem:
            problems.append(f"Pulumi.{stack}.yaml: {problem}")
    assert not problems, "\n".join(problems)


def check_stack_file(repository: RepositoryWorld, stack: str, root: Path) -> None:
    """What a stack file promises, checked against its deployment in the repository's offline world."""
    settings = stack_settings(stack, root)
    sim = repository.result(stack)
    if isinstance(settings, ProviderSettings):
        assert sim.outputs["alias"].startswith(f"{settings.service_name}.")
        assert len(sim.of_type("compute:VirtualMachine")) == settings.web_vm_count
        assert sim.outputs["aliases"][settings.service_name] == sim.outputs["alias"]
        for published in settings.services:
            service = repository.world.azure.service_by_alias(sim.outputs["aliases"][published.name])
            assert service is not None and service.nat_ip_count == published.nat_ip_count
            assert service.visibility == list(published.visibility)
            for decision in published.decisions:  # applied to a connection that exists; else it waits for it
                endpoint_id = decision["private_endpoint_id"]
                connection = service.connections.get(endpoint_id.lower())
                if connection is None:
                    assert any(f"waits for {endpoint_id}" in warning for warning in sim.warnings), sim.warnings
                else:
                    assert connection.status == decision["status"]
        return
    assert isinstance(settings, ConsumerSettings)
    endpoint = sim.one("network:PrivateEndpoint")
    if settings.own_subnets:  # the customer's own VNet: the stack creates none
        assert endpoint.inputs["subnet"]["id"] == settings.own_subnets[0]
        assert sim.of_type("network:VirtualNetwork") == []
    else:
        assert ipaddress.ip_address(sim.outputs["endpointIp"]) in ipaddress.ip_network(settings.endpoint_subnet_cidr)
    assert sim.outputs["fqdn"] == settings.fqdn
    assert sim.outputs["privateEndpointId"] == settings.private_endpoint_id
    # The test VM, and the outbound path Run Command needs to answer scripts/verify, only while the file wants them.
    assert len(sim.of_type("compute:VirtualMachine")) == ("verify" in sim.outputs) == settings.test_vm
    assert bool(sim.of_type("network:NatGateway")) == settings.workload_nat_gateway
    provider_file = provider_file_of(settings, root)
    fate = planned_connection(stack, settings, settings_or_problem(provider_file, root) if provider_file else None)
    if fate is None:  # a provider outside this repository: the alias is given
        assert sim.outputs["providerAlias"] == settings.provider_alias
    else:
        assert sim.outputs["connectionState"] == fate


@pytest.mark.parametrize("stack", stack_files(LAB))
def test_the_labs_stack_file_deploys_offline(stack: str, repository: RepositoryWorld) -> None:
    check_stack_file(repository, stack, LAB)
