"""Every Pulumi.<stack>.yaml in the repository runs under mocks, so a new customer's file is tested on arrival."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pls.settings import ConsumerSettings, ProviderSettings, parse
from pls.simulate import stack_config, stack_files
from tests.conftest import config_for, run_stack

STACKS = stack_files()


def test_the_repository_ships_a_provider_and_at_least_two_customers() -> None:
    roles = [stack_config(s)["role"] for s in STACKS]
    assert roles.count("provider") == 1
    assert roles.count("consumer") >= 3
    consumers = [s for s in STACKS if stack_config(s)["role"] == "consumer"]
    assert {stack_config(s).get("autoApproved", False) for s in consumers} == {False, True}
    assert len({stack_config(s)["consumerVnetCidr"] for s in consumers}) == len(consumers)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_deploys_offline(stack: str, provider_outputs: dict[str, Any]) -> None:
    settings = parse(config_for(stack), stack=stack)
    sim = run_stack(stack, provider_outputs=provider_outputs)
    if isinstance(settings, ProviderSettings):
        assert sim.outputs["alias"].startswith(f"{settings.service_name}.")
        assert len(sim.of_type("compute:VirtualMachine")) == settings.web_vm_count
    else:
        assert isinstance(settings, ConsumerSettings)
        endpoint_subnet = ipaddress.ip_network(settings.endpoint_subnet_cidr)
        assert ipaddress.ip_address(sim.outputs["endpointIp"]) in endpoint_subnet
        assert sim.outputs["fqdn"] == settings.fqdn
        assert sim.outputs["providerAlias"] == (settings.provider_alias or provider_outputs["alias"])
        assert sim.outputs["connectionState"] == ("Approved" if settings.auto_approved else "Pending")
