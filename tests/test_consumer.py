"""Consumer stacks: a private endpoint to the provider's alias, private DNS to its IP, a test VM."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from offline.engine import SimulationError, World, simulate
from offline.records import Registration, Simulation
from offline.repository import LAB, RepositoryWorld
from pls.config import SettingsError
from tests.helpers.stacks import PROVIDER_STACK, config_for, run_stack, world_with_provider


@pytest.fixture(scope="module")
def tradewinds(repository: RepositoryWorld) -> Simulation:
    return repository.result("consumer")


@pytest.fixture(scope="module")
def contoso(repository: RepositoryWorld) -> Simulation:
    return repository.result("consumer-contoso")


def _subnet(sim: Simulation, role: str) -> Registration:
    return next(r for r in sim.of_type("network:Subnet") if r.inputs["subnetName"] == role)


def test_manual_request_to_the_provider_alias_with_message(
    tradewinds: Simulation, provider_outputs: dict[str, Any]
) -> None:
    endpoint = tradewinds.one("network:PrivateEndpoint")
    (connection,) = endpoint.inputs["manualPrivateLinkServiceConnections"]
    assert connection["privateLinkServiceId"] == provider_outputs["alias"]
    assert connection["requestMessage"] == "Customer: Tradewinds, Order no.: 314159"
    assert connection["name"] == "tradewinds-saas-connection"
    assert "privateLinkServiceConnections" not in endpoint.inputs
    assert endpoint.inputs["subnet"]["id"] == _subnet(tradewinds, "endpoints").outputs["id"]
    assert endpoint.inputs["customNetworkInterfaceName"] == "tradewinds-saas-pe-nic"


def test_the_alias_is_read_from_the_provider_stack_before_any_resource(
    tradewinds: Simulation, provider_outputs: dict[str, Any]
) -> None:
    first, *rest = [r for r in tradewinds.resources if r.custom]
    assert first.type == "pulumi:pulumi:StackReference" and first.name == PROVIDER_STACK
    assert not [r for r in rest if r.type == "pulumi:pulumi:StackReference"]
    assert tradewinds.outputs["providerAlias"] == provider_outputs["alias"]


def test_moving_the_endpoint_to_another_subnet_is_a_declared_replacement(tradewinds: Simulation) -> None:
    endpoint = tradewinds.one("network:PrivateEndpoint")
    assert endpoint.replace_on_changes == ["subnet"]
    assert endpoint.delete_before_replace is True


def test_auto_approved_customer_requests_an_automatic_connection(
    contoso: Simulation, provider_outputs: dict[str, Any]
) -> None:
    endpoint = contoso.one("network:PrivateEndpoint")
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert connection == {"name": "contoso-saas-connection", "privateLinkServiceId": provider_outputs["alias"]}
    assert "manualPrivateLinkServiceConnections" not in endpoint.inputs


def test_subnet_policies(tradewinds: Simulation) -> None:
    endpoints, workload = _subnet(tradewinds, "endpoints"), _subnet(tradewinds, "workload")
    assert endpoints.inputs["privateEndpointNetworkPolicies"] == "Disabled"
    assert workload.inputs["networkSecurityGroup"]["id"] == tradewinds.one("network:NetworkSecurityGroup").outputs["id"]
    assert endpoints.inputs["defaultOutboundAccess"] is False and workload.inputs["defaultOutboundAccess"] is False
    assert endpoints.inputs["addressPrefix"] == "10.0.4.0/24"
    assert workload.inputs["addressPrefix"] == "10.0.5.0/24"


def test_endpoint_ip_comes_from_its_nic_and_dns_points_at_it(tradewinds: Simulation) -> None:
    ip = tradewinds.outputs["endpointIp"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.4.0/24")
    (lookup,) = [i for i in tradewinds.invokes if i.token == "azure-native:network:getNetworkInterface"]
    assert lookup.args["networkInterfaceName"] == "tradewinds-saas-pe-nic"
    record = tradewinds.one("privatedns:PrivateRecordSet")
    assert record.inputs["aRecords"] == [{"ipv4Address": ip}]
    assert (record.inputs["recordType"], record.inputs["relativeRecordSetName"]) == ("A", "api")
    assert tradewinds.depends_on(record, tradewinds.one("network:PrivateEndpoint"))
    assert tradewinds.one("privatedns:PrivateZone").inputs["privateZoneName"] == "saas.example.com"
    assert tradewinds.outputs["fqdn"] == "api.saas.example.com"


def test_zone_is_linked_to_the_vnet_without_auto_registration(tradewinds: Simulation) -> None:
    link = tradewinds.one("privatedns:VirtualNetworkLink")
    assert link.inputs["registrationEnabled"] is False
    assert link.inputs["virtualNetwork"]["id"] == tradewinds.one("network:VirtualNetwork").outputs["id"]
    assert link.inputs["privateZoneName"] == tradewinds.one("privatedns:PrivateZone").outputs["name"]


def test_test_vm_has_no_password_and_no_public_ip(tradewinds: Simulation) -> None:
    vm = tradewinds.one("compute:VirtualMachine")
    assert "adminPassword" not in vm.inputs["osProfile"]
    assert vm.inputs["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    (nic,) = tradewinds.of_type("network:NetworkInterface")
    assert nic.inputs["ipConfigurations"][0]["subnet"]["id"] == _subnet(tradewinds, "workload").outputs["id"]
    assert "publicIPAddress" not in nic.inputs["ipConfigurations"][0]
    # The only public IP is the NAT gateway's: outbound only, nothing can reach a VM through it.
    (public_ip,) = tradewinds.of_type("network:PublicIPAddress")
    assert tradewinds.one("network:NatGateway").inputs["publicIpAddresses"] == [{"id": public_ip.outputs["id"]}]


def _outbound_path(sim: Simulation) -> list[Registration]:
    return sim.of_type("network:NatGateway") + sim.of_type("network:PublicIPAddress")


def test_the_test_vm_subnet_reaches_azure_through_a_nat_gateway_for_run_command(tradewinds: Simulation) -> None:
    gateway = tradewinds.one("network:NatGateway")
    assert _subnet(tradewinds, "workload").inputs["natGateway"] == {"id": gateway.outputs["id"]}
    assert "natGateway" not in _subnet(tradewinds, "endpoints").inputs
    rules = {r["name"]: r for r in tradewinds.one("network:NetworkSecurityGroup").inputs["securityRules"]}
    azure = rules["allow-azure-https-out"]
    assert (azure["direction"], azure["access"], azure["protocol"]) == ("Outbound", "Allow", "Tcp")
    assert (azure["destinationAddressPrefix"], azure["destinationPortRange"]) == ("AzureCloud", "443")
    internet = rules["deny-internet-out"]
    assert (internet["direction"], internet["access"], internet["destinationAddressPrefix"]) == (
        "Outbound",
        "Deny",
        "Internet",
    )
    assert azure["priority"] < internet["priority"]


@pytest.mark.parametrize(
    "overrides",
    [{"testVm": False}, {"vnetHasOutbound": True}, {"testVm": False, "vnetHasOutbound": True}],
    ids=["no-test-vm", "vnet-has-outbound", "both"],
)
def test_no_outbound_path_without_a_test_vm_or_when_the_vnet_has_one(overrides: dict[str, Any]) -> None:
    sim = run_stack("consumer", world=world_with_provider(), **overrides)
    assert _outbound_path(sim) == []
    assert "natGateway" not in _subnet(sim, "workload").inputs
    assert bool(sim.of_type("compute:VirtualMachine")) == overrides.get("testVm", True)
    assert ("verify" in sim.outputs) == overrides.get("testVm", True)
    for nic in sim.of_type("network:NetworkInterface"):
        assert "publicIPAddress" not in nic.inputs["ipConfigurations"][0]


def test_exports_what_scripts_verify_needs(tradewinds: Simulation) -> None:
    out = tradewinds.outputs
    vm = tradewinds.one("compute:VirtualMachine")
    nic = tradewinds.one("network:NetworkInterface", under="LinuxVm")
    assert out["testVmId"] == vm.outputs["id"]
    assert out["connectionName"] == "tradewinds-saas-connection"
    assert out["privateEndpointId"] == tradewinds.one("network:PrivateEndpoint").outputs["id"]
    assert out["verifyCommand"] == "scripts/verify consumer"
    assert out["verify"] == {
        "resourceGroupName": out["resourceGroupName"],
        "testVmName": vm.outputs["name"],
        "testVmPrivateIp": nic.outputs["ipConfigurations"][0]["privateIPAddress"],
        "url": "http://api.saas.example.com/_pls/whoami.json",
        "endpointIp": out["endpointIp"],
        "proxyProtocol": True,
        "providerStack": PROVIDER_STACK,
        "privateEndpointId": out["privateEndpointId"],
    }
    assert out["testVmPrivateIp"] == out["verify"]["testVmPrivateIp"]


@pytest.mark.parametrize("outputs", [{}, {"alias": ""}], ids=["missing", "empty"])
def test_refuses_to_run_without_a_provider_alias(outputs: dict[str, Any]) -> None:
    world = World(LAB)
    world.extra_stack_outputs[PROVIDER_STACK] = outputs
    with pytest.raises(SimulationError) as failure:
        run_stack("consumer", world=world)
    assert isinstance(failure.value.cause, SettingsError) and failure.value.cause.keys == {"providerStack"}
    assert f"providerStack = \"{PROVIDER_STACK}\": stack {PROVIDER_STACK} has no 'alias' output" in str(failure.value)
    assert [r.type for r in failure.value.registrations if r.custom] == ["pulumi:pulumi:StackReference"]


def test_alias_given_in_the_stack_file_needs_no_stack_reference() -> None:
    sim = run_stack("consumer-fabrikam")
    assert sim.of_type("pulumi:pulumi:StackReference") == []
    (connection,) = sim.one("network:PrivateEndpoint").inputs["manualPrivateLinkServiceConnections"]
    assert connection["privateLinkServiceId"] == (
        "saas.9c3f1a52-6d1e-4b8a-9f0e-2b7c4d5e6f70.westeurope.azure.privatelinkservice"
    )


def test_verify_speaks_https_when_the_provider_serves_it_and_skips_proxy_checks_when_it_is_off() -> None:
    sim = run_stack("consumer", world=world_with_provider(), https=True, proxyProtocol=False)
    assert sim.outputs["verify"]["url"] == "https://api.saas.example.com/_pls/whoami.json"
    assert sim.outputs["verify"]["proxyProtocol"] is False


def test_a_customer_given_the_alias_has_no_provider_stack_to_read_link_ids_from() -> None:
    assert run_stack("consumer-fabrikam").outputs["verify"]["providerStack"] is None


OWN_VNET = (
    "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/tradewinds-network"
    "/providers/Microsoft.Network/virtualNetworks/hub-spoke-3"
)


def test_a_customer_attaches_to_its_own_vnet_the_stack_creates_no_network() -> None:
    world = world_with_provider()
    world.azure.existing_subnets[f"{OWN_VNET}/subnets/private-endpoints".lower()] = "10.40.8.0/27"
    world.azure.existing_subnets[f"{OWN_VNET}/subnets/apps".lower()] = "10.40.9.0/24"
    config = config_for("consumer", endpointSubnetId=f"{OWN_VNET}/subnets/private-endpoints")
    config.update(workloadSubnetId=f"{OWN_VNET}/subnets/apps", vnetHasOutbound=True)
    for key in ("consumerVnetCidr", "endpointSubnetCidr", "workloadSubnetCidr"):
        config.pop(key)
    sim = simulate("consumer", config, world=world)
    assert sim.of_type("network:VirtualNetwork") == [] and sim.of_type("network:Subnet") == []
    assert sim.of_type("network:NatGateway") == [] and sim.of_type("network:NetworkSecurityGroup") == []
    assert sim.one("resources:ResourceGroup").inputs["resourceGroupName"] == "tradewinds-rg"
    endpoint = sim.one("network:PrivateEndpoint")
    assert endpoint.inputs["subnet"] == {"id": f"{OWN_VNET}/subnets/private-endpoints"}
    assert sim.outputs["endpointIp"] == "10.40.8.4"
    assert sim.one("privatedns:VirtualNetworkLink").inputs["virtualNetwork"] == {"id": OWN_VNET}
    nic = sim.one("network:NetworkInterface", under="LinuxVm")
    assert nic.inputs["ipConfigurations"][0]["subnet"] == {"id": f"{OWN_VNET}/subnets/apps"}
    assert sim.outputs["verify"]["testVmPrivateIp"] == "10.40.9.4"


HUB_ZONE = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/connectivity-dns"
    "/providers/Microsoft.Network/privateDnsZones/saas.example.com"
)


@pytest.mark.parametrize("linked", [False, True])
def test_an_enterprise_customer_keeps_the_record_in_its_central_zone(linked: bool) -> None:
    sim = run_stack("consumer", world=world_with_provider(), dnsZoneId=HUB_ZONE, linkDnsZone=linked)
    assert sim.of_type("privatedns:PrivateZone") == []
    record = sim.one("privatedns:PrivateRecordSet")
    assert (record.inputs["resourceGroupName"], record.inputs["privateZoneName"]) == (
        "connectivity-dns",
        "saas.example.com",
    )
    assert record.inputs["aRecords"] == [{"ipv4Address": sim.outputs["endpointIp"]}]
    links = sim.of_type("privatedns:VirtualNetworkLink")
    assert len(links) == int(linked)
    assert sim.outputs["fqdn"] == "api.saas.example.com"
    assert sim.outputs["verify"]["url"] == "http://api.saas.example.com/_pls/whoami.json"
