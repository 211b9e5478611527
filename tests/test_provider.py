"""The provider stack, run from Pulumi.provider.yaml: what Azure will be asked to build, and in which order."""

from __future__ import annotations

import base64
import importlib
import inspect
import ipaddress
import re
import subprocess
from typing import Any

from offline.engine import ROOT
from offline.records import Registration, Simulation
from offline.repository import LAB, RepositoryWorld
from pls.config import ProviderSettings, parse
from pls.webserver import BOOTSTRAP, software_in
from tests.helpers.real_nginx import need
from tests.helpers.stacks import config_for, run_stack


def _settings() -> ProviderSettings:
    """What the provider stack file asks for: expectations follow it, so a user's onboarding edit keeps them true."""
    settings = parse(config_for("provider"), stack="provider", project_dir=LAB)
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


def _run_command(sim: Simulation, vm: Registration) -> Registration:
    """The VM's managed Run Command (its LinuxVm component's)."""
    (run_command,) = [
        r for r in sim.of_type("compute:VirtualMachineRunCommandByVirtualMachine") if r.parent == vm.parent
    ]
    return run_command


def _software(sim: Simulation, vm: Registration) -> dict[str, Any]:
    """What the VM's Run Command applies to it."""
    return software_in(_run_command(sim, vm).inputs["source"]["script"])


def _files(sim: Simulation, vm: Registration) -> dict[str, str]:
    return {f["path"]: f["content"] for f in _software(sim, vm)["files"]}


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
    rules = lb.inputs["loadBalancingRules"]
    assert [(r["protocol"], r["frontendPort"], r["backendPort"]) for r in rules] == [
        ("Tcp", port, port) for port in _settings().service_ports
    ]
    for rule in rules:
        assert rule["frontendIPConfiguration"]["id"] == ids["frontendIPConfigurations"]["frontend"]
        assert rule["backendAddressPool"]["id"] == ids["backendAddressPools"]["web"]
        assert rule["probe"]["id"] == ids["probes"]["http"]
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


def test_each_web_vm_boots_nginx_and_its_software_names_its_zone(provider: Simulation) -> None:
    for vm in provider.of_type("compute:VirtualMachine"):
        assert base64.b64decode(vm.inputs["osProfile"]["customData"]).decode() == BOOTSTRAP
        assert "nginx" in _software(provider, vm)["packages"]
        files = _files(provider, vm)
        site = files["/etc/nginx/sites-available/pls.conf"]
        assert f'"zone": "{vm.inputs["zones"][0]}"' in site and '"host": "$hostname"' in site
        assert f"server {_settings().web_server.app_upstream};" in site
        demo_unit = files["/etc/systemd/system/pls-demo-app.service"]
        assert f"Environment=PLS_ZONE={vm.inputs['zones'][0]}" in demo_unit


def test_a_web_vm_is_replaced_only_for_a_new_image_or_zone_and_its_software_changes_in_place(
    provider: Simulation,
) -> None:
    for vm in provider.of_type("compute:VirtualMachine"):
        assert vm.replace_on_changes == ["storageProfile.imageReference", "zones"] and vm.delete_before_replace
        assert vm.ignore_changes == ["osProfile.customData"]
        software = _run_command(provider, vm)
        assert software.inputs["treatFailureAsDeploymentFailure"] is True and software.inputs["asyncExecution"] is False
        assert provider.depends_on(software, vm)


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


def test_nsg_opens_the_service_ports_to_the_asg_from_inside_only(provider: Simulation) -> None:
    rules = provider.one("network:NetworkSecurityGroup").inputs["securityRules"]
    asg_id = provider.one("network:ApplicationSecurityGroup").outputs["id"]
    allows = {r["sourceAddressPrefix"]: r for r in rules if r["access"] == "Allow"}
    assert set(allows) == {"10.50.0.0/16", "AzureLoadBalancer"}
    assert allows["10.50.0.0/16"]["destinationPortRanges"] == [str(p) for p in _settings().service_ports]
    assert allows["AzureLoadBalancer"]["destinationPortRange"] == "80"
    for rule in allows.values():
        assert rule["direction"] == "Inbound"
        assert rule["destinationApplicationSecurityGroups"] == [{"id": asg_id}]
    (deny,) = [r for r in rules if r["access"] == "Deny"]
    assert (deny["sourceAddressPrefix"], deny["destinationPortRange"]) == ("*", "*")
    assert all(r["priority"] < deny["priority"] for r in allows.values())


def test_private_link_service_on_the_frontend(provider: Simulation) -> None:
    pls = provider.one("network:PrivateLinkService")
    frontend_id = provider.one("network:LoadBalancer").outputs["frontendIPConfigurations"][0]["id"]
    assert pls.inputs["loadBalancerFrontendIpConfigurations"] == [{"id": frontend_id}]
    settings = _settings()
    nat_configs = pls.inputs["ipConfigurations"]
    assert len(nat_configs) == settings.nat_ip_count
    assert [c["primary"] for c in nat_configs] == [True] + [False] * (settings.nat_ip_count - 1)
    assert {c["subnet"]["id"] for c in nat_configs} == {_subnet(provider, "pls-nat").outputs["id"]}
    assert pls.inputs["visibility"]["subscriptions"] == list(settings.service().visibility)
    assert pls.inputs["autoApproval"]["subscriptions"] == list(settings.service().auto_approval)
    assert pls.inputs["enableProxyProtocol"] is settings.proxy_protocol
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
            site = _files(sim, vm)["/etc/nginx/sites-available/pls.conf"]
            assert ("listen 80 proxy_protocol" in site) is enabled
            assert ("set_real_ip_from 10.50.2.0/24;" in site) is enabled


def test_scaled_web_tier_spreads_round_robin_over_zones() -> None:
    sim = run_stack("provider", webVmCount=9, natIpCount=8, natSubnetCidr="10.50.2.0/27")
    zones = [vm.inputs["zones"][0] for vm in sim.of_type("compute:VirtualMachine")]
    assert sorted(zones) == ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    assert len(sim.one("network:PrivateLinkService").inputs["ipConfigurations"]) == 8


def _takes_tags(type_token: str) -> bool:
    """Whether the azure-native class of this resource type has a tags argument (Azure gives some types none)."""
    _, module, name = type_token.split(":")
    resource_class = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_every_taggable_resource_carries_project_stack_and_component(provider: Simulation) -> None:
    assert _takes_tags("azure-native:network:PrivateLinkService") and not _takes_tags("azure-native:network:Subnet")
    for resource in provider.resources:
        if not resource.type.startswith("azure-native:") or not _takes_tags(resource.type):
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


# --- TLS: the certificate stays in Key Vault; the VMs fetch it with their identity ---------------------------

TLS: dict[str, Any] = {"tls": True, "fqdns": ["api.saas.example.com"], "keyVaultAllowedIpRanges": ["51.105.7.20"]}


def _everything(sim: Simulation) -> str:
    return repr([(r.inputs, r.outputs) for r in sim.resources]) + repr(sim.outputs)


def test_tls_wires_vault_identity_role_and_extension_with_no_secret_anywhere() -> None:
    sim = run_stack("provider", **TLS, tlsCertificateName="saas-tls")
    vault = sim.one("keyvault:Vault")
    properties = vault.inputs["properties"]
    assert properties["enableRbacAuthorization"] is True and properties["enablePurgeProtection"] is True
    assert properties["sku"] == {"family": "A", "name": "standard"}
    backend = _subnet(sim, "backend")
    assert properties["networkAcls"] == {
        "defaultAction": "Deny",
        "bypass": "AzureServices",
        "ipRules": [{"value": "51.105.7.20"}],
        "virtualNetworkRules": [{"id": backend.outputs["id"]}],
    }
    assert backend.inputs["serviceEndpoints"] == [{"service": "Microsoft.KeyVault"}]
    identity = sim.one("managedidentity:UserAssignedIdentity", under="CertificateVault")
    grant = sim.one("authorization:RoleAssignment", under="CertificateVault")
    assert grant.inputs["scope"] == vault.outputs["id"]
    assert grant.inputs["roleDefinitionId"].endswith("/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6")
    assert (grant.inputs["principalId"], grant.inputs["principalType"]) == (
        identity.outputs["principalId"],
        "ServicePrincipal",
    )
    vms = sim.of_type("compute:VirtualMachine")
    extensions = _key_vault_extensions(sim)
    assert sorted(e.inputs["vmName"] for e in extensions) == sorted(vm.outputs["name"] for vm in vms)
    for vm in vms:
        # The Azure Monitor agent signs in with the VM's own identity; the extension with the vault reader's.
        assert vm.inputs["identity"] == {
            "type": "SystemAssigned, UserAssigned",
            "userAssignedIdentities": [identity.outputs["id"]],
        }
    for extension in extensions:
        assert (extension.inputs["publisher"], extension.inputs["type"]) == (
            "Microsoft.Azure.KeyVault",
            "KeyVaultForLinux",
        )
        assert extension.inputs["typeHandlerVersion"] == "4.0"
        settings = extension.inputs["settings"]
        (observed,) = settings["secretsManagementSettings"]["observedCertificates"]
        assert observed["url"] == f"https://{vault.outputs['name']}.vault.azure.net/secrets/saas-tls"
        assert observed["certificateStoreLocation"] == "/var/lib/waagent/Microsoft.Azure.KeyVault.Store/pls"
        assert settings["authenticationSettings"]["msiClientId"] == identity.outputs["clientId"]
        assert sim.depends_on(extension, grant), "the extension fails if it starts before the role is granted"
        assert "protectedSettings" not in extension.inputs
    everything = _everything(sim)
    assert "PRIVATE KEY" not in everything and "BEGIN CERTIFICATE" not in everything
    assert sim.outputs["keyVaultName"] == vault.outputs["name"]
    lb = sim.one("network:LoadBalancer")
    assert [r["frontendPort"] for r in lb.inputs["loadBalancingRules"]] == [443, 80]
    assert lb.inputs["probes"][0]["port"] == 80
    for vm in vms:
        site = _files(sim, vm)["/etc/nginx/sites-available/pls.conf"]
        assert "listen 443 ssl proxy_protocol default_server;" in site
        assert "server_name api.saas.example.com;" in site


def _key_vault_extensions(sim: Simulation) -> list[Registration]:
    return [
        e for e in sim.of_type("compute:VirtualMachineExtension") if e.inputs["publisher"] == "Microsoft.Azure.KeyVault"
    ]


def test_tls_before_the_certificate_is_imported_has_the_vault_but_no_extension() -> None:
    sim = run_stack("provider", **TLS)
    assert len(sim.of_type("keyvault:Vault")) == 1
    assert len(sim.of_type("authorization:RoleAssignment", under="CertificateVault")) == 1
    assert _key_vault_extensions(sim) == []
    assert all(vm.inputs["identity"] == {"type": "SystemAssigned"} for vm in sim.of_type("compute:VirtualMachine"))


def test_http_off_leaves_consumers_https_only_and_the_probe_on_80() -> None:
    sim = run_stack("provider", **TLS, httpOnTls="off")
    lb = sim.one("network:LoadBalancer")
    assert [r["frontendPort"] for r in lb.inputs["loadBalancingRules"]] == [443]
    rules = {r["sourceAddressPrefix"]: r for r in sim.one("network:NetworkSecurityGroup").inputs["securityRules"]}
    assert rules["10.50.0.0/16"]["destinationPortRanges"] == ["443"]
    assert rules["AzureLoadBalancer"]["destinationPortRange"] == "80"


def test_without_tls_there_is_no_key_vault_part_at_all() -> None:
    sim = run_stack("provider", tls=False)
    assert sim.of_type("keyvault:Vault") == [] and sim.of_type("Vault", under="CertificateVault") == []
    assert sim.of_type("managedidentity:UserAssignedIdentity", under="CertificateVault") == []
    assert _key_vault_extensions(sim) == []
    assert "serviceEndpoints" not in _subnet(sim, "backend").inputs
    assert "keyVaultName" not in sim.outputs


def test_the_example_app_cloud_config_replaces_the_demo_app_and_passes_cloud_inits_schema() -> None:
    sim = run_stack("provider", appCloudConfig="examples/app-cloud-config.yaml", appUpstream="127.0.0.1:3000")
    for vm in sim.of_type("compute:VirtualMachine"):
        files = _files(sim, vm)
        assert "/opt/pls/demo_app.py" not in files and "/opt/saas/app.py" in files
        assert "server 127.0.0.1:3000;" in files["/etc/nginx/sites-available/pls.conf"]
        assert _software(sim, vm)["app_commands"][-1] == ["systemctl", "enable", "--now", "saas-app.service"]
    example = ROOT / "examples" / "app-cloud-config.yaml"
    result = subprocess.run([need("cloud-init"), "schema", "-c", str(example)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")


def _snake_case_keys(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in ([f"{path}.{key}"] if SNAKE_CASE.fullmatch(str(key)) else [])
            + _snake_case_keys(item, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _snake_case_keys(item, f"{path}[{index}]")]
    return []


def test_azure_gets_its_own_property_names_everywhere(repository: RepositoryWorld) -> None:
    """A nested key the SDK did not rename (a plain dict where it cannot tell the type) reaches Azure as
    all_of or odata_type, and Azure ignores or refuses it."""
    assert _snake_case_keys({"criteria": {"all_of": []}}) == [".criteria.all_of"]
    for stack, sim in repository.deployed.items():
        for resource in sim.resources:
            if resource.type.startswith("azure-native:"):
                assert _snake_case_keys(resource.inputs) == [], (stack, resource.name)
