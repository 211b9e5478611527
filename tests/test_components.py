"""Each component on its own, under the same Azure-like mocks, with arguments the stack files never use."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

import pulumi
import pytest

from components.consumer_network import ConsumerNetwork, ConsumerNetworkArgs, ExistingSubnets, NewNetwork
from components.internal_load_balancer import InternalLoadBalancer, InternalLoadBalancerArgs
from components.linux_vm import ImageReference, LinuxVm, LinuxVmArgs, VmProfile
from components.private_dns import PrivateDnsRecord, PrivateDnsRecordArgs
from components.private_endpoint import PrivateEndpoint, PrivateEndpointArgs
from components.private_link_service import PrivateLinkService, PrivateLinkServiceArgs
from components.private_service_access import PrivateServiceAccess, PrivateServiceAccessArgs, VerificationVm
from components.provider_network import ProviderNetwork, ProviderNetworkArgs
from components.virtual_network import SubnetSpec, VirtualNetwork, VirtualNetworkArgs
from components.web_tier import WebTier, WebTierArgs, batches
from offline.engine import World, simulate
from offline.records import Simulation
from offline.repository import LAB, offline_ssh_public_key

VM = VmProfile(
    size="Standard_D2as_v5",
    image=ImageReference(
        publisher="Canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
    ),
    admin_username="operator",
    ssh_public_key=offline_ssh_public_key(),
)
TAGS = {"project": "pls-saas", "stack": "unit"}


def run(program: Callable[[], object], world: World | None = None) -> Simulation:
    return simulate("unit", {}, program=program, world=world or World(LAB))


def _customer_azure() -> World:
    """An Azure where the customer's VNet already exists, outside any stack."""
    world = World(LAB)
    world.azure.existing_subnets[f"{EXISTING_VNET}/subnets/private-endpoints".lower()] = "10.80.1.0/27"
    world.azure.existing_subnets[f"{EXISTING_VNET}/subnets/apps".lower()] = "10.80.2.0/24"
    return world


def _network() -> VirtualNetwork:
    return VirtualNetwork(
        "net",
        VirtualNetworkArgs(
            resource_group_name="rg",
            location="swedencentral",
            address_space="192.168.0.0/16",
            subnets=[
                SubnetSpec(role="a", cidr="192.168.1.0/24", private_link_service_policies_disabled=True),
                SubnetSpec(role="b", cidr="192.168.2.0/24", private_endpoint_policies_disabled=True),
                SubnetSpec(
                    role="c", cidr="192.168.3.0/24", network_security_group_id="nsg-id", nat_gateway_id="nat-id"
                ),
            ],
            tags=TAGS,
        ),
    )


def test_virtual_network_writes_subnets_in_order_with_explicit_policies() -> None:
    sim = run(_network)
    subnets = {s.inputs["subnetName"]: s for s in sim.of_type("network:Subnet")}
    assert sim.depends_on(subnets["b"], subnets["a"]) and sim.depends_on(subnets["c"], subnets["b"])
    assert not sim.depends_on(subnets["a"], subnets["c"])
    assert (
        subnets["a"].inputs["privateLinkServiceNetworkPolicies"],
        subnets["a"].inputs["privateEndpointNetworkPolicies"],
    ) == (
        "Disabled",
        "Enabled",
    )
    assert subnets["b"].inputs["privateEndpointNetworkPolicies"] == "Disabled"
    assert subnets["c"].inputs["networkSecurityGroup"] == {"id": "nsg-id"}
    assert subnets["c"].inputs["natGateway"] == {"id": "nat-id"}
    assert all(s.inputs["defaultOutboundAccess"] is False for s in subnets.values())
    assert sim.one("network:VirtualNetwork").inputs["location"] == "swedencentral"


def test_linux_vm_without_zone_or_cloud_init() -> None:
    def program() -> None:
        vm = LinuxVm(
            "jump",
            LinuxVmArgs(
                resource_group_name="rg",
                location="swedencentral",
                subnet_id=_network().subnet_ids["a"],
                vm=VM,
                computer_name="jump",
                tags=TAGS,
            ),
        )
        pulumi.export("ip", vm.private_ip)

    sim = run(program)
    vm = sim.one("compute:VirtualMachine")
    assert "zones" not in vm.inputs
    assert "customData" not in vm.inputs["osProfile"]
    assert (
        vm.inputs["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["path"]
        == "/home/operator/.ssh/authorized_keys"
    )
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_D2as_v5"
    nic = sim.one("network:NetworkInterface")
    assert nic.inputs["ipConfigurations"][0]["loadBalancerBackendAddressPools"] == []
    assert sim.outputs["ip"] == "192.168.1.4"


def _web_tier(count: int, zones: list[int]) -> Simulation:
    def program() -> None:
        WebTier(
            "web",
            WebTierArgs(
                resource_group_name="rg",
                location="swedencentral",
                subnet_id=_network().subnet_ids["c"],
                backend_pool_id="pool-id",
                application_security_group_id="asg-id",
                vm=VM,
                count=count,
                zones=zones,
                cloud_init="#cloud-config\n# first boot\n",
                software_by_zone={str(zone): f"#!/bin/sh\n# zone {zone}\n" for zone in zones},
                health_probe={"port": 8081, "path": "/healthz"},
                tags=TAGS,
            ),
        )

    return run(program)


def test_web_tier_spreads_over_the_given_zones_each_vm_with_its_zones_software() -> None:
    sim = _web_tier(4, [1, 3])
    vms = sorted(sim.of_type("compute:VirtualMachine"), key=lambda r: r.name)
    assert [v.inputs["zones"] for v in vms] == [["1"], ["3"], ["1"], ["3"]]
    for vm in vms:
        assert base64.b64decode(vm.inputs["osProfile"]["customData"]).decode() == "#cloud-config\n# first boot\n"
        assert vm.inputs["storageProfile"]["imageReference"]["offer"] == "0001-com-ubuntu-server-jammy"
        # The first boot's only: a running VM changes through its software, never a new VM for new custom data.
        assert vm.ignore_changes == ["osProfile.customData"]
        assert vm.replace_on_changes == ["storageProfile.imageReference", "zones"] and vm.delete_before_replace
        # The NIC outlives the VM, so a replacement gets it back with its place in the pool.
        assert vm.inputs["networkProfile"]["networkInterfaces"][0]["deleteOption"] == "Detach"
        assert vm.inputs["osProfile"]["linuxConfiguration"]["patchSettings"] == {
            "patchMode": "AutomaticByPlatform",
            "assessmentMode": "AutomaticByPlatform",
            "automaticByPlatformSettings": {"rebootSetting": "IfRequired"},
        }
    for software in sim.of_type("compute:VirtualMachineRunCommandByVirtualMachine"):
        vm = next(v for v in vms if v.parent == software.parent)
        assert software.inputs["source"] == {"script": f"#!/bin/sh\n# zone {vm.inputs['zones'][0]}\n"}
        assert software.inputs["treatFailureAsDeploymentFailure"] is True and software.inputs["asyncExecution"] is False
        assert {p["name"]: p["value"] for p in software.inputs["parameters"]} == {"VM_SIZE": VM["size"]}
        assert sim.depends_on(software, vm)
    for health in sim.of_type("compute:VirtualMachineExtension"):
        assert (health.inputs["publisher"], health.inputs["type"]) == (
            "Microsoft.ManagedServices",
            "ApplicationHealthLinux",
        )
        assert health.inputs["settings"] == {
            "protocol": "http",
            "port": 8081,
            "requestPath": "/healthz",
            "intervalInSeconds": 5,
            "numberOfProbes": 1,
        }
    for nic in sim.of_type("network:NetworkInterface"):
        assert nic.inputs["ipConfigurations"][0]["loadBalancerBackendAddressPools"] == [{"id": "pool-id"}]
        assert nic.inputs["ipConfigurations"][0]["applicationSecurityGroups"] == [{"id": "asg-id"}]


@pytest.mark.parametrize(
    ("count", "zones", "expected"),
    [
        (4, [1, 3], [[1, 3], [2, 4]]),  # a zone at a time
        (3, [2, 1, 3], [[1], [2], [3]]),  # in the order the zones are given
        (3, [1], [[1], [2], [3]]),  # one zone: a VM at a time
        (2, [1, 2, 3], [[1], [2]]),  # a zone without a VM is no batch
    ],
)
def test_web_tier_changes_its_vms_a_batch_at_a_time(count: int, zones: list[int], expected: list[list[int]]) -> None:
    assert [[index + 1 for index in batch] for batch in batches(count, zones)] == expected
    sim = _web_tier(count, zones)
    resources = {vm.name.removesuffix("-vm"): vm for vm in sim.of_type("compute:VirtualMachine")}
    software = {
        r.name.removesuffix("-software"): r for r in sim.of_type("compute:VirtualMachineRunCommandByVirtualMachine")
    }
    for earlier, later in itertools.pairwise(expected):
        for before, after in itertools.product(earlier, later):
            # Every VM of a batch starts only when the previous batch's software (and so its health) is done.
            assert sim.depends_on(resources[f"web-{after}"], software[f"web-{before}"])
    for batch in expected:
        for one, other in itertools.permutations(batch, 2):
            assert not sim.depends_on(resources[f"web-{one}"], resources[f"web-{other}"]), "a batch changes at once"


def test_internal_load_balancer_builds_child_ids_from_the_subscription() -> None:
    def program() -> None:
        InternalLoadBalancer(
            "ilb",
            InternalLoadBalancerArgs(
                resource_group_name="rg",
                location="swedencentral",
                load_balancer_name="lb-x",
                subnet_id=_network().subnet_ids["c"],
                idle_timeout_minutes=30,
                ports=[8443, 8080],
                probe_port=8080,
                probe_path="/ready",
                tags=TAGS,
            ),
        )

    sim = run(program)
    lb = sim.one("network:LoadBalancer")
    rules = lb.inputs["loadBalancingRules"]
    assert [(r["name"], r["frontendPort"], r["backendPort"]) for r in rules] == [
        ("tcp-8443", 8443, 8443),
        ("tcp-8080", 8080, 8080),
    ]
    for rule in rules:
        assert rule["idleTimeoutInMinutes"] == 30
        assert rule["probe"]["id"] == (
            "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/"
            "Microsoft.Network/loadBalancers/lb-x/probes/http"
        )
    assert (lb.inputs["probes"][0]["port"], lb.inputs["probes"][0]["requestPath"]) == (8080, "/ready")
    assert [i.token for i in sim.invokes] == ["azure-native:authorization:getClientConfig"]


def test_private_link_service_with_eight_nat_ips_unprotected_and_public() -> None:
    def program() -> None:
        PrivateLinkService(
            "svc",
            PrivateLinkServiceArgs(
                resource_group_name="rg",
                location="swedencentral",
                service_name="api",
                frontend_ip_configuration_id="fe-id",
                nat_subnet_id="nat-id",
                nat_ip_count=8,
                visibility=["*"],
                auto_approval=[],
                fqdns=["api.saas.example.com"],
                proxy_protocol=True,
                protect=False,
                tags=TAGS,
            ),
        )

    sim = run(program)
    pls = sim.one("network:PrivateLinkService")
    assert [c["name"] for c in pls.inputs["ipConfigurations"]] == [f"nat-{i}" for i in range(1, 9)]
    assert sum(c["primary"] for c in pls.inputs["ipConfigurations"]) == 1
    assert pls.inputs["visibility"] == {"subscriptions": ["*"]}
    assert pls.inputs["fqdns"] == ["api.saas.example.com"]
    assert pls.inputs["enableProxyProtocol"] is True
    assert pls.protect is False


def test_provider_network_without_nat_gateway() -> None:
    def program() -> None:
        net = ProviderNetwork(
            "p",
            ProviderNetworkArgs(
                location="swedencentral",
                vnet_cidr="172.20.0.0/16",
                backend_subnet_cidr="172.20.0.0/24",
                nat_subnet_cidr="172.20.1.0/28",
                nat_gateway=False,
                tags=TAGS,
            ),
        )
        pulumi.export("nat_ip", net.nat_gateway_public_ip)

    sim = run(program)
    assert sim.of_type("network:NatGateway") == [] and sim.of_type("network:PublicIPAddress") == []
    assert sim.outputs["nat_ip"] is None
    allow_vnet = sim.one("network:NetworkSecurityGroup").inputs["securityRules"][0]
    assert allow_vnet["sourceAddressPrefix"] == "172.20.0.0/16"


def test_consumer_network_endpoint_subnet_and_nsg_on_workload() -> None:
    sim = run(
        lambda: ConsumerNetwork(
            "acme",
            ConsumerNetworkArgs(
                resource_group_name="acme-network",
                location="swedencentral",
                new=NewNetwork(
                    vnet_cidr="10.9.0.0/16", endpoint_subnet_cidr="10.9.0.0/28", workload_subnet_cidr="10.9.1.0/24"
                ),
                tags=TAGS,
            ),
        )
    )
    subnets = {s.inputs["subnetName"]: s for s in sim.of_type("network:Subnet")}
    assert sim.one("resources:ResourceGroup").inputs["resourceGroupName"] == "acme-network"
    assert subnets["endpoints"].inputs["privateEndpointNetworkPolicies"] == "Disabled"
    assert "networkSecurityGroup" not in subnets["endpoints"].inputs
    assert (
        subnets["workload"].inputs["networkSecurityGroup"]["id"]
        == sim.one("network:NetworkSecurityGroup").outputs["id"]
    )


EXISTING_VNET = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/hub-network"
    "/providers/Microsoft.Network/virtualNetworks/spoke-7"
)


def test_consumer_network_attaches_to_the_customers_own_subnets_and_creates_only_its_group() -> None:
    def program() -> None:
        net = ConsumerNetwork(
            "acme",
            ConsumerNetworkArgs(
                resource_group_name="acme-saas",
                location="northeurope",
                existing=ExistingSubnets(
                    endpoint_subnet_id=f"{EXISTING_VNET}/subnets/private-endpoints",
                    workload_subnet_id=f"{EXISTING_VNET}/subnets/apps",
                ),
            ),
        )
        pulumi.export("vnet", net.vnet_id)
        pulumi.export("endpoints", net.endpoint_subnet_id)
        pulumi.export("workload", net.workload_subnet_id)

    sim = run(program)
    assert [r.type for r in sim.resources if r.custom] == ["azure-native:resources:ResourceGroup"]
    assert sim.outputs == {
        "vnet": EXISTING_VNET,
        "endpoints": f"{EXISTING_VNET}/subnets/private-endpoints",
        "workload": f"{EXISTING_VNET}/subnets/apps",
    }


def test_private_endpoint_manual_and_automatic() -> None:
    def program(auto: bool) -> Callable[[], None]:
        def build() -> None:
            endpoint = PrivateEndpoint(
                "acme-saas",
                PrivateEndpointArgs(
                    resource_group_name="rg",
                    location="swedencentral",
                    subnet_id=_network().subnet_ids["b"],
                    alias="api.guid.swedencentral.azure.privatelinkservice",
                    request_message="Customer: ACME",
                    auto_approved=auto,
                    tags=TAGS,
                ),
            )
            pulumi.export("ip", endpoint.private_ip)
            pulumi.export("state", endpoint.connection_state)

        return build

    manual = run(program(auto=False))
    (connection,) = manual.one("network:PrivateEndpoint").inputs["manualPrivateLinkServiceConnections"]
    assert connection["requestMessage"] == "Customer: ACME" and connection["name"] == "acme-saas-connection"
    assert (manual.outputs["ip"], manual.outputs["state"]) == ("192.168.2.4", "Pending")
    automatic = run(program(auto=True))
    (connection,) = automatic.one("network:PrivateEndpoint").inputs["privateLinkServiceConnections"]
    assert "requestMessage" not in connection
    assert automatic.outputs["state"] == "Approved"


def test_private_dns_record() -> None:
    sim = run(
        lambda: PrivateDnsRecord(
            "dns",
            PrivateDnsRecordArgs(
                resource_group_name="rg",
                zone_name="svc.contoso.example",
                record_name="www",
                vnet_id="vnet-id",
                ip_address="10.9.0.4",
                ttl_seconds=60,
                tags=TAGS,
            ),
        )
    )
    record = sim.one("privatedns:PrivateRecordSet")
    assert (record.inputs["relativeRecordSetName"], record.inputs["ttl"]) == ("www", 60)
    assert record.inputs["aRecords"] == [{"ipv4Address": "10.9.0.4"}]
    link = sim.one("privatedns:VirtualNetworkLink")
    assert link.inputs["virtualNetwork"] == {"id": "vnet-id"} and link.inputs["registrationEnabled"] is False
    assert sim.one("privatedns:PrivateZone").inputs["location"] == "global"


def _access(**extra: object) -> Callable[[], None]:
    def program() -> None:
        access = PrivateServiceAccess(
            "tradewinds",
            PrivateServiceAccessArgs(
                resource_group_name="tradewinds-apps",
                location="northeurope",
                subnet_id=f"{EXISTING_VNET}/subnets/private-endpoints",
                vnet_id=EXISTING_VNET,
                alias="saas.9c3f1a52-6d1e-4b8a-9f0e-2b7c4d5e6f70.westeurope.azure.privatelinkservice",
                dns_zone="saas.example.com",
                dns_record="api",
                **extra,  # type: ignore[typeddict-item]
            ),
        )
        for output in ("endpoint_id", "private_ip", "fqdn", "connection_state", "test_vm_private_ip"):
            pulumi.export(output, getattr(access, output))

    return program


def test_private_service_access_on_an_existing_subnet_automatic_and_without_a_test_vm() -> None:
    sim = run(_access(auto_approved=True), _customer_azure())
    assert {r.type.rsplit(":", 1)[-1] for r in sim.resources if r.custom} == {
        "PrivateEndpoint",
        "PrivateZone",
        "VirtualNetworkLink",
        "PrivateRecordSet",
    }
    endpoint = sim.one("network:PrivateEndpoint")
    assert endpoint.inputs["privateEndpointName"] == "tradewinds-saas-pe"  # the id the provider approves
    assert endpoint.inputs["subnet"] == {"id": f"{EXISTING_VNET}/subnets/private-endpoints"}
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert "requestMessage" not in connection and "manualPrivateLinkServiceConnections" not in endpoint.inputs
    assert sim.one("privatedns:VirtualNetworkLink").inputs["virtualNetwork"] == {"id": EXISTING_VNET}
    record = sim.one("privatedns:PrivateRecordSet")
    assert record.inputs["aRecords"] == [{"ipv4Address": sim.outputs["private_ip"]}]
    assert sim.outputs["private_ip"] == "10.80.1.4"
    assert sim.outputs["fqdn"] == "api.saas.example.com" and sim.outputs["test_vm_private_ip"] is None
    assert sim.outputs["endpoint_id"] == endpoint.outputs["id"]


HUB_ZONE = (
    "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/hub-dns"
    "/providers/Microsoft.Network/privateDnsZones/saas.example.com"
)


@pytest.mark.parametrize("linked", [False, True])
def test_private_service_access_writes_only_its_record_into_a_central_zone(linked: bool) -> None:
    """An enterprise keeps private DNS in a hub: the record goes into that zone, in the hub's subscription, and
    the zone is linked to the VNet only when asked."""
    sim = run(_access(dns_zone_id=HUB_ZONE, link_dns_zone=linked), _customer_azure())
    assert sim.of_type("privatedns:PrivateZone") == []
    (hub,) = [r for r in sim.resources if r.type == "pulumi:providers:azure-native"]
    assert hub.inputs["subscriptionId"] == "33333333-3333-4333-8333-333333333333"
    record = sim.one("privatedns:PrivateRecordSet")
    assert (record.inputs["resourceGroupName"], record.inputs["privateZoneName"]) == ("hub-dns", "saas.example.com")
    links = sim.of_type("privatedns:VirtualNetworkLink")
    assert [link.inputs["resourceGroupName"] for link in links] == (["hub-dns"] if linked else [])
    assert all(r.provider.startswith(hub.urn) for r in [record, *links])
    assert sim.outputs["fqdn"] == "api.saas.example.com"


def test_private_service_access_manual_with_a_test_vm_in_the_customers_subnet() -> None:
    sim = run(
        _access(
            request_message="Customer: Tradewinds, PO 314159",
            test_vm=VerificationVm(
                subnet_id=f"{EXISTING_VNET}/subnets/apps", vm=VmProfile(ssh_public_key=offline_ssh_public_key())
            ),
            tags={"cost-center": "42"},
        ),
        _customer_azure(),
    )
    (connection,) = sim.one("network:PrivateEndpoint").inputs["manualPrivateLinkServiceConnections"]
    assert connection["requestMessage"] == "Customer: Tradewinds, PO 314159"
    vm = sim.one("compute:VirtualMachine")
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_B1s"
    assert vm.inputs["storageProfile"]["imageReference"]["offer"] == "ubuntu-24_04-lts"
    assert vm.inputs["osProfile"]["adminUsername"] == "azureuser"
    nic = sim.one("network:NetworkInterface", under="LinuxVm")
    assert nic.inputs["ipConfigurations"][0]["subnet"] == {"id": f"{EXISTING_VNET}/subnets/apps"}
    assert sim.outputs["test_vm_private_ip"] == nic.outputs["ipConfigurations"][0]["privateIPAddress"] == "10.80.2.4"
    assert sim.of_type("network:PublicIPAddress") == [] and sim.of_type("network:NatGateway") == []
    assert vm.inputs["tags"]["cost-center"] == "42"
