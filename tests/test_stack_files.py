"""Every Pulumi.<stack>.yaml in the repository, deployed offline as the README's lifecycle deploys them.

Expectations come from the stack file being tested (never from example data a user edits), so a customer
onboarded, approved or offboarded the README's way keeps this green, and a stack file that Azure would
refuse (a subscription outside visibility, autoApproved without the provider's auto-approval) fails here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pls.config import ConsumerSettings, ProviderSettings, parse
from tooling.engine import ROOT
from tooling.repository import RepositoryWorld, deployed_config, expected_connection, stack_config, stack_files

STACKS = stack_files()


def test_the_repository_has_a_provider() -> None:
    assert any(stack_config(s)["role"] == "provider" for s in STACKS)


def check_stack_file(repository: RepositoryWorld, stack: str, root: Path = ROOT) -> None:
    """What a stack file promises, checked against its deployment in the repository's offline world."""
    settings = parse(deployed_config(stack, root), stack=stack)
    sim = repository.result(stack)
    if isinstance(settings, ProviderSettings):
        assert sim.outputs["alias"].startswith(f"{settings.service_name}.")
        assert len(sim.of_type("compute:VirtualMachine")) == settings.web_vm_count
        service = repository.world.azure.service_by_alias(sim.outputs["alias"])
        assert service is not None and service.nat_ip_count == settings.nat_ip_count
        for decision in settings.connection_decisions:
            assert service.connections[decision["private_endpoint_id"].lower()].status == decision["status"]
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
    fate = expected_connection(settings, root)
    assert fate != "NotVisible", f"{stack}: add {settings.subscription_id} to the provider's visibility (onboarding)"
    if fate is None:  # a provider outside this repository: the alias is given
        assert sim.outputs["providerAlias"] == settings.provider_alias
        return
    assert sim.outputs["connectionState"] == fate
    if settings.auto_approved:
        assert fate == "Approved", f"{stack}: autoApproved, but the provider does not auto-approve its subscription"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_deploys_offline(stack: str, repository: RepositoryWorld) -> None:
    check_stack_file(repository, stack)
