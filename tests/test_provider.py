"""The provider stack, run from Pulumi.provider.yaml: what Azure will be asked to build, and in which order."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import yaml

from pls.settings import ProviderSettings, parse
from pls.simulate import Registration, Simulation
from tests.conftest import config_for, run_stack


def _settings() -> ProviderSettings:
    """What the provider stack file asks for: expectations follow it, so a user's onboarding edit keeps them true."""
    settings = parse(config_for("provider"), stack="provider")
    assert isinstance(settings, ProviderSettings)
    return settings


def _walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", key, item
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _subnet(sim: Simulation, role: str) -> Registration:
    return next(r for r in sim.of_type("network:Subnet") if r.inputs["subnetName"] == role)


def _cloud_init(vm: Registration) -> dict[str, Any]:
    text = base64.b64decode(vm.inputs["osProfile"]["customData"]).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_load_balancer_is_standard_internal_with_nic_pool(provider: Simulation) -> None:
    lb = provider.one("network:LoadBalancer")
    assert lb.inputs["sku"]["name"] == "Standard"
    (frontend,) = lb.inputs["frontendIPConfigurations"]
    assert "publicIPAddress" not in frontend
    assert frontend["subnet"]["id"] == _subnet(provider, "backend").outputs["id"]
    (pool,) = lb.inputs["backendAddressPools"]
    assert "loadBalancerBackendAddresses" not in pool, "a Private Link Service needs a NIC-based pool"


def test_rule_wires_frontend_pool_and_probe_with_reset_and_idle_timeout(provider: Simulation) -> None:
    lb = provider.one("network:LoadBalancer")
    ids = {
        c: {item["name"]: item["id"] for item in lb.outputs[c]}
        for c in ("frontendIPConfigurations", "backendAddressPools", "probes")
    }
    (probe,) = lb.inputs["probes"]
    assert (probe["protocol"], probe["port"], probe["requestPath"]) == ("Http", 80, "/healthz")
    (rule,) = lb.inputs["loadBalancingRules"]
    assert rule["frontendIPConfiguration"]["id"] == ids["frontendIPConfigurations"]["frontend"]
    assert rule["backendAddressPool"]["id"] == ids["backendAddressPools"]["web"]
    assert rule["probe"]["id"] == ids["probes"]["http"]
    assert (rule["protocol"], rule["frontendPort"], rule["backendPort"]) == ("Tcp", 80, 80)
    assert rule["idleTimeoutInMinutes"] == 15
    assert rule["enableTcpReset"] is True


def test_one_web_vm_per_zone_ssh_key_only(provider: Simulation) -> None:
    vms = sorted(provider.of_type("compute:VirtualMachine"), key=lambda r: r.name)
    assert [vm.inputs["zones"] for vm in vms] == [["1"], ["2"], ["3"]]
    for vm in vms:
        os_profile = vm.inputs["osProfile"]
        assert "adminPassword" not in os_profile
        linux = os_profile["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        (key,) = linux["ssh"]["publicKeys"]
        assert key["path"] == "/home/azureuser/.ssh/authorized_keys"
        assert key["keyData"].startswith("ssh-ed25519 ")
        assert vm.inputs["storageProfile"]["imageReference"] == {
            "publisher": "Canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
        }
        assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_B1s"


def test_cloud_init_installs_nginx_and_names_host_and_zone(provider: Simulation) -> None:
    for vm in provider.of_type("compute:VirtualMachine"):
        config = _cloud_init(vm)
        assert "nginx" in config["packages"]
        (site,) = [f["content"] for f in config["write_files"] if f["path"].endswith("pls.conf")]
        assert "Host: $hostname" in site
        assert f"Zone: {vm.inputs['zones'][0]}" in site


def test_nics_join_pool_and_asg_without_public_ip(provider: Simulation) -> None:
    pool_id = provider.one("network:LoadBalancer").outputs["backendAddressPools"][0]["id"]
    asg_id = provider.one("network:ApplicationSecurityGroup").outputs["id"]
    nics = provider.of_type("network:NetworkInterface")
    assert len(nics) == 3
    for nic in nics:
        (ip_config,) = nic.inputs["ipConfigurations"]
        assert ip_config["loadBalancerBackendAddressPools"] == [{"id": pool_id}]
        assert ip_config["applicationSecurityGroups"] == [{"id": asg_id}]
        assert "publicIPAddress" not in ip_config


def test_the_nat_gateway_owns_the_only_public_ip(provider: Simulation) -> None:
    (public_ip,) = provider.of_type("network:PublicIPAddress")
    nat = provider.one("network:NatGateway")
    assert nat.inputs["publicIpAddresses"] == [{"id": public_ip.outputs["id"]}]
    references = [
        (r.name, path)
        for r in provider.resources
        for path, key, _ in _walk(r.inputs)
        if key in ("publicIPAddress", "publicIpAddresses", "publicIPAddresses")
    ]
    assert references == [(nat.name, ".publicIpAddresses")]


def test_subnets_outbound_and_private_link_policies(provider: Simulation) -> None:
    backend, nat_subnet = _subnet(provider, "backend"), _subnet(provider, "pls-nat")
    vnet = provider.one("network:VirtualNetwork")
    space = ipaddress.ip_network(vnet.inputs["addressSpace"]["addressPrefixes"][0])
    for subnet in (backend, nat_subnet):
        assert subnet.inputs["defaultOutboundAccess"] is False
        assert ipaddress.ip_network(subnet.inputs["addressPrefix"]).subnet_of(space)  # type: ignore[arg-type]
    assert nat_subnet.inputs["privateLinkServiceNetworkPolicies"] == "Disabled"
    assert backend.inputs["natGateway"]["id"] == provider.one("network:NatGateway").outputs["id"]
    assert backend.inputs["networkSecurityGroup"]["id"] == provider.one("network:NetworkSecurityGroup").outputs["id"]
    assert "natGateway" not in nat_subnet.inputs
    assert "subnets" not in vnet.inputs, "inline subnets would fight the Subnet resources"


def test_nsg_opens_port_80_to_the_asg_from_inside_only(provider: Simulation) -> None:
    rules = provider.one("network:NetworkSecurityGroup").inputs["securityRules"]
    asg_id = provider.one("network:ApplicationSecurityGroup").outputs["id"]
    allows = [r for r in rules if r["access"] == "Allow"]
    assert {r["sourceAddressPrefix"] for r in allows} == {"10.50.0.0/16", "AzureLoadBalancer"}
    for rule in allows:
        assert rule["direction"] == "Inbound"
        assert rule["destinationPortRange"] == "80"
        assert rule["destinationApplicationSecurityGroups"] == [{"id": asg_id}]
    (deny,) = [r for r in rules if r["access"] == "Deny"]
    assert (deny["sourceAddressPrefix"], deny["destinationPortRange"]) == ("*", "*")
    assert all(r["priority"] < deny["priority"] for r in allows)


def test_private_link_service_on_the_frontend(provider: Simulation) -> None:
    pls = provider.one("network:PrivateLinkService")
    frontend_id = provider.one("network:LoadBalancer").outputs["frontendIPConfigurations"][0]["id"]
    assert pls.inputs["loadBalancerFrontendIpConfigurations"] == [{"id": frontend_id}]
    settings = _settings()
    nat_configs = pls.inputs["ipConfigurations"]
    assert len(nat_configs) == settings.nat_ip_count
    assert [c["primary"] for c in nat_configs] == [True] + [False] * (settings.nat_ip_count - 1)
    assert {c["subnet"]["id"] for c in nat_configs} == {_subnet(provider, "pls-nat").outputs["id"]}
    assert pls.inputs["visibility"]["subscriptions"] == list(settings.visibility)
    assert pls.inputs["autoApproval"]["subscriptions"] == list(settings.auto_approval)
    assert pls.inputs["enableProxyProtocol"] is False
    assert pls.inputs["serviceName"] == "saas"


def test_alias_is_protected_and_frontend_change_is_a_replacement(provider: Simulation) -> None:
    pls = provider.one("network:PrivateLinkService")
    assert pls.protect is True
    assert pls.replace_on_changes == ["loadBalancerFrontendIpConfigurations"]
    assert pls.delete_before_replace is True
    assert run_stack("provider", protectService=False).one("network:PrivateLinkService").protect is False


def test_pls_waits_for_frontend_and_nat_subnet_but_not_for_vms(provider: Simulation) -> None:
    pls = provider.one("network:PrivateLinkService")
    assert provider.depends_on(pls, provider.one("network:LoadBalancer"))
    assert provider.depends_on(pls, _subnet(provider, "pls-nat"))
    for vm in provider.of_type("compute:VirtualMachine") + provider.of_type("network:NetworkInterface"):
        assert not provider.depends_on(pls, vm), f"the PLS must not wait for {vm.name}"


def test_vms_boot_only_after_the_subnet_has_its_nat_gateway(provider: Simulation) -> None:
    nat = provider.one("network:NatGateway")
    backend = _subnet(provider, "backend")
    for vm in provider.of_type("compute:VirtualMachine"):
        assert provider.depends_on(vm, backend)
        assert provider.depends_on(vm, nat)


def test_subnets_of_one_vnet_are_written_one_after_another(provider: Simulation) -> None:
    assert provider.depends_on(_subnet(provider, "pls-nat"), _subnet(provider, "backend"))


def test_without_nat_gateway_there_is_no_public_ip() -> None:
    sim = run_stack("provider", natGateway=False)
    assert sim.of_type("network:PublicIPAddress") == []
    assert sim.of_type("network:NatGateway") == []
    assert "natGateway" not in _subnet(sim, "backend").inputs
    assert sim.outputs["natGatewayPublicIp"] is None


def test_proxy_protocol_switches_the_service_and_nginx_together() -> None:
    for enabled in (False, True):
        sim = run_stack("provider", proxyProtocol=enabled)
        assert sim.one("network:PrivateLinkService").inputs["enableProxyProtocol"] is enabled
        assert sim.outputs["proxyProtocol"] is enabled
        for vm in sim.of_type("compute:VirtualMachine"):
            (site,) = [f["content"] for f in _cloud_init(vm)["write_files"] if f["path"].endswith("pls.conf")]
            assert ("listen 80 proxy_protocol" in site) is enabled
            assert ("set_real_ip_from 10.50.2.0/24;" in site) is enabled


def test_scaled_web_tier_spreads_round_robin_over_zones() -> None:
    sim = run_stack("provider", webVmCount=9, natIpCount=8, natSubnetCidr="10.50.2.0/27")
    zones = [vm.inputs["zones"][0] for vm in sim.of_type("compute:VirtualMachine")]
    assert sorted(zones) == ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    assert len(sim.one("network:PrivateLinkService").inputs["ipConfigurations"]) == 8


def test_every_taggable_resource_carries_project_stack_and_component(provider: Simulation) -> None:
    untagged = {"network:Subnet", "network:PrivateLinkServicePrivateEndpointConnection"}  # Azure gives them no tags
    for resource in provider.resources:
        if not resource.type.startswith("azure-native:") or any(resource.type.endswith(t) for t in untagged):
            continue
        tags = resource.inputs.get("tags", {})
        assert tags.get("project") == "pls-saas" and tags.get("stack") == "provider", resource.name
        assert resource.name.startswith(tags["component"]), resource.name


def test_exports_give_customers_what_they_need(provider: Simulation) -> None:
    pls = provider.one("network:PrivateLinkService")
    out = provider.outputs
    assert out["alias"] == pls.outputs["alias"]
    assert out["alias"].startswith("saas.") and out["alias"].endswith(".westeurope.azure.privatelinkservice")
    assert out["privateLinkServiceId"] == pls.outputs["id"]
    assert out["location"] == "westeurope"
    assert out["natSubnetCidr"] == "10.50.2.0/24"
    assert ipaddress.ip_address(out["loadBalancerFrontendIp"]) in ipaddress.ip_network("10.50.1.0/24")
    assert out["resourceGroupName"] == provider.one("resources:ResourceGroup").outputs["name"]
    assert all(c["status"] == "Pending" for c in out["pendingConnections"])
