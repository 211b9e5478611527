"""Several Private Link Services on one load balancer, and the customer registry that fills their lists.

Each test writes its own registry (a temporary directory) and overrides the lab's provider: nothing here
reads the users' stack files or their customers/ directory.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.engine import SimulationError, World, deploy, simulate
from offline.steps import aliases, engine_urn
from operations.capacity import capacity_notes
from pls import contract
from pls.azure_rules import MAX_SUBSCRIPTIONS
from pls.config import ConsumerSettings, ProviderSettings, SettingsError, parse
from pls.webserver import render_web_server
from tests.helpers.real_nginx import LINK_ID, free_port, parse_response, proxied, request, running
from tests.helpers.stacks import FIRST_DEPLOYMENT, config_for

ACME = "a0000000-0000-4000-8000-000000000001"
GLOBEX = "a0000000-0000-4000-8000-000000000002"


def subscription(n: int) -> str:
    return str(uuid.UUID(int=0xB0000000_0000_4000_8000_000000000000 + n))


def register(project: Path, name: str, **entry: Any) -> None:
    """An entry in the registry of the test's own project (never the lab's or the users')."""
    (project / "customers").mkdir(parents=True, exist_ok=True)
    (project / "customers" / f"{name}.yaml").write_text(yaml.safe_dump(entry))


def provider(project: Path, **overrides: Any) -> dict[str, Any]:
    """The lab's provider stack file, deployed from the test's project: its registry has the customers."""
    project.mkdir(exist_ok=True)
    return config_for("provider", **overrides)


def settings_of(config: dict[str, Any], stack: str = "provider", *, project: Path) -> ProviderSettings:
    settings = parse(config, stack=stack, project_dir=project)
    assert isinstance(settings, ProviderSettings)
    return settings


def problems(config: dict[str, Any], stack: str = "provider", *, project: Path) -> dict[str, str]:
    with pytest.raises(SettingsError) as error:
        parse(config, stack=stack, project_dir=project)
    return {p.key: p.problem for p in error.value.problems}


def test_the_registry_derives_exactly_the_lists_each_service_is_sent(tmp_path: Path) -> None:
    register(tmp_path, "acme", service="saas", subscriptions=[ACME], approval="auto", contract="AC-1")
    register(tmp_path, "globex", service="saas-2", subscriptions=[GLOBEX.upper()], contract="GX-7")
    config = provider(tmp_path, additionalServices=["saas-2 natIpCount=2"], **FIRST_DEPLOYMENT)
    sim = simulate("provider", config, world=World(tmp_path))
    services = {r.inputs["serviceName"]: r for r in sim.of_type("network:PrivateLinkService")}
    assert services["saas"].inputs["visibility"] == {"subscriptions": [ACME]}
    assert services["saas"].inputs["autoApproval"] == {"subscriptions": [ACME]}
    assert services["saas-2"].inputs["visibility"] == {"subscriptions": [GLOBEX]}
    assert services["saas-2"].inputs["autoApproval"] == {"subscriptions": []}
    assert len(services["saas-2"].inputs["ipConfigurations"]) == 2
    assert set(sim.outputs[contract.ALIASES]) == {"saas", "saas-2"}
    assert sim.outputs[contract.ALIAS] == sim.outputs[contract.ALIASES]["saas"]
    assert set(sim.outputs[contract.SERVICE_IDS]) == {"saas", "saas-2"}


def test_each_service_has_its_own_frontend_and_backend_ports_on_one_pool_and_proxy_protocol_for_all(
    tmp_path: Path,
) -> None:
    config = provider(
        tmp_path, additionalServices=["saas-2", "saas-3"], tls=True, fqdns=["api.saas.example.com"], **FIRST_DEPLOYMENT
    )
    sim = simulate("provider", config, world=World(tmp_path))
    (lb,) = sim.of_type("network:LoadBalancer")
    frontends = {fe["name"]: fe for fe in lb.outputs["frontendIPConfigurations"]}
    assert set(frontends) == {"frontend", "frontend-saas-2", "frontend-saas-3"}
    rules = {r["name"]: r for r in lb.inputs["loadBalancingRules"]}
    # Azure refuses two rules to one backend port of a pool without floating IP.
    backend_ports = [r["backendPort"] for r in rules.values()]
    assert len(backend_ports) == len(set(backend_ports))
    assert {r["backendAddressPool"]["id"] for r in rules.values()} == {lb.outputs["backendAddressPools"][0]["id"]}
    assert rules["https"]["backendPort"] == 443 and rules["frontend-saas-2-https"]["backendPort"] == 21443
    assert rules["frontend-saas-3-http"]["frontendPort"] == 80 and rules["frontend-saas-3-http"]["backendPort"] == 22080
    for service in sim.of_type("network:PrivateLinkService"):
        assert service.inputs["enableProxyProtocol"] is True
        (frontend,) = service.inputs["loadBalancerFrontendIpConfigurations"]
        name = "frontend" if service.inputs["serviceName"] == "saas" else f"frontend-{service.inputs['serviceName']}"
        assert frontend["id"] == frontends[name]["id"]
    (nsg,) = sim.of_type("network:NetworkSecurityGroup")
    allowed = nsg.inputs["securityRules"][0]["destinationPortRanges"]
    assert sorted(map(int, allowed)) == sorted(backend_ports)


def test_nginx_serves_every_services_ports(tmp_path: Path) -> None:
    settings = settings_of(
        provider(tmp_path, additionalServices=["saas-2"], tls=True, fqdns=["api.saas.example.com"]), project=tmp_path
    )
    site = render_web_server(settings.web_server).site_config
    for listen in ("listen 80 proxy_protocol", "listen 21080 proxy_protocol", "listen 443 ssl proxy_protocol"):
        assert listen in site
    assert "listen 21443 ssl proxy_protocol" in site


def test_a_second_services_port_answers_with_the_consumers_link_id(tmp_path: Path) -> None:
    second_http = free_port()
    with running(tmp_path, service_ports=((second_http, free_port()),)) as server:
        answer = parse_response(server.exchange(proxied(LINK_ID) + request("/_pls/whoami.json"), second_http))
    assert answer.status == 200
    assert json.loads(answer.body)["linkId"] == str(LINK_ID)


def test_adding_a_service_keeps_the_first_alias_and_every_urn(tmp_path: Path) -> None:
    world = World(tmp_path)
    before = deploy(world, "provider", provider(tmp_path))
    after = deploy(world, "provider", provider(tmp_path, additionalServices=["saas-2"]))
    assert after.outputs[contract.ALIAS] == before.outputs[contract.ALIAS]
    claimed = {urn for urns in aliases(after).values() for urn in urns} | {engine_urn(r.urn) for r in after.resources}
    assert {engine_urn(r.urn) for r in before.resources} <= claimed
    (first,) = before.of_type("network:PrivateLinkService")
    assert (
        after.by_urn[first.urn].inputs["loadBalancerFrontendIpConfigurations"]
        == first.inputs["loadBalancerFrontendIpConfigurations"]
    )
    service = world.azure.service_by_alias(after.outputs[contract.ALIASES]["saas-2"])
    assert service is not None and service.name == "saas-2"


def test_a_101st_subscription_on_a_full_service_is_refused_naming_the_service(tmp_path: Path) -> None:
    for n in range(MAX_SUBSCRIPTIONS + 1):
        register(tmp_path, f"c{n}", service="saas-2", subscriptions=[subscription(n)])
    found = problems(provider(tmp_path, additionalServices=["saas-2"]), project=tmp_path)
    assert "service saas-2 would have 101 subscriptions in visibility" in found["customerRegistry"]


def test_registry_mistakes_are_named_by_file_and_field(tmp_path: Path) -> None:
    register(tmp_path, "acme", service="nowhere", subscriptions=[ACME])
    register(tmp_path, "globex", service="saas", subscriptions=[GLOBEX], approval="sometimes")
    register(tmp_path, "hooli", service="saas", subscriptions=[ACME])
    register(tmp_path, "initech", service="saas", subscriptions=[ACME])
    (tmp_path / "customers" / "Bad_Name.yaml").write_text("service: saas\n")
    found = problems(provider(tmp_path), project=tmp_path)
    assert "not a service of this provider (saas)" in found["customers/acme.yaml:service"]
    assert "customers/globex.yaml:approval" in found
    assert "already onboarded (customers/hooli.yaml)" in found["customers/initech.yaml:subscriptions"]
    assert "the file's name is the customer's" in found["customers/Bad_Name.yaml"]


def test_a_subscription_in_the_stack_file_and_the_registry_is_refused(tmp_path: Path) -> None:
    register(tmp_path, "acme", service="saas", subscriptions=[ACME])
    found = problems(provider(tmp_path, visibility=[ACME]), project=tmp_path)
    assert "already onboarded (visibility in the provider's stack file)" in found["customers/acme.yaml:subscriptions"]


@pytest.mark.parametrize(
    ("services", "key", "problem"),
    [
        (["saas"], "additionalServices", "names saas twice"),
        (["saas-2", "saas-2"], "additionalServices", "names saas-2 twice"),
        ([f"s{n}" for n in range(8)], "additionalServices", "at most 7 more services"),
        (["Saas-2"], "additionalServices[0].name", "is not a service name"),
        (["saas-2 natIpCount=9"], "additionalServices[0].natIpCount", "has 1 to 8 NAT IP configurations"),
        (["saas-2 colour=blue"], "additionalServices", "is not one of"),
        ([{"name": "saas-2"}, {"name": "saas-3", "natIpCount": 9}], "additionalServices[1].natIpCount", "1 to 8"),
        ([{"name": "saas-2", "natIpCount": "2"}], "additionalServices[0].natIpCount", "expected integer"),
        ([{"name": "saas-2", "colour": "blue"}], "additionalServices[0].colour", "unknown field"),
        ([{"natIpCount": 2}], "additionalServices[0].name", "required"),
        ([{"name": "saas-2", "natSubnetCidr": "10.50.3.1/28"}], "additionalServices[0].natSubnetCidr", "host bits"),
        ([7], "additionalServices", "expected array of object"),
        (["saas-2 natSubnetCidr=10.50.1.0/28"], "additionalServices", "overlaps backendSubnetCidr"),
        (["saas-2 natSubnetCidr=10.60.0.0/24"], "additionalServices", "is not inside 10.50.0.0/16"),
        (["saas-2 natIpCount=8 natSubnetCidr=10.50.3.0/28"], "additionalServices", "needs 16"),
    ],
)
def test_bad_services_are_refused_by_key(tmp_path: Path, services: list[str], key: str, problem: str) -> None:
    found = problems(provider(tmp_path, additionalServices=services), project=tmp_path)
    assert problem in found[key], found


def test_services_sharing_the_nat_subnet_must_fit_in_it_together(tmp_path: Path) -> None:
    config = provider(tmp_path, natSubnetCidr="10.50.2.0/27", natIpCount=8, additionalServices=["saas-2 natIpCount=8"])
    settings_of(config, project=tmp_path)  # 27 usable addresses hold both services' 16 NAT IPs and the 8 spare
    config["natSubnetCidr"] = "10.50.2.0/28"
    assert "needs 24" in problems(config, project=tmp_path)["natSubnetCidr"]
    own = provider(tmp_path, natSubnetCidr="10.50.2.0/28", additionalServices=["saas-2 natSubnetCidr=10.50.3.0/28"])
    sim = simulate("provider", {**own, **FIRST_DEPLOYMENT}, world=World(tmp_path))
    subnets = {r.inputs["subnetName"]: r for r in sim.of_type("network:Subnet")}
    assert subnets["pls-nat-saas-2"].inputs["privateLinkServiceNetworkPolicies"] == "Disabled"
    second = next(r for r in sim.of_type("network:PrivateLinkService") if r.inputs["serviceName"] == "saas-2")
    assert second.inputs["ipConfigurations"][0]["subnet"]["id"] == subnets["pls-nat-saas-2"].outputs["id"]
    assert (
        "set_real_ip_from 10.50.3.0/28;" in render_web_server(settings_of(own, project=tmp_path).web_server).site_config
    )


def test_a_registered_consumer_reaches_its_services_alias_and_agrees_with_its_entry(tmp_path: Path) -> None:
    register(tmp_path, "acme", service="saas-2", subscriptions=[ACME])
    world = World(tmp_path)
    provided = deploy(world, "provider", provider(tmp_path, additionalServices=["saas-2"]))
    consumer = config_for("consumer", customer="acme", **{"azure-native:subscriptionId": ACME})
    settings = parse(consumer, stack="consumer-acme", project_dir=tmp_path)
    assert isinstance(settings, ConsumerSettings) and settings.service == "saas-2"
    sim = deploy(world, "consumer-acme", consumer)
    assert sim.outputs["providerAlias"] == provided.outputs[contract.ALIASES]["saas-2"]
    assert sim.outputs["connectionState"] == "Pending"
    found = problems(
        {**consumer, "autoApproved": True, "azure-native:subscriptionId": GLOBEX}, "consumer-acme", project=tmp_path
    )
    assert "disagrees with customers/acme.yaml, whose approval is manual" in found["autoApproved"]
    assert "not among customers/acme.yaml's subscriptions" in found["azure-native:subscriptionId"]


def test_a_consumer_of_a_service_the_provider_does_not_have_registers_nothing(tmp_path: Path) -> None:
    register(tmp_path, "acme", service="saas-9", subscriptions=[ACME])
    world = World(tmp_path)
    deploy(world, "provider", provider(tmp_path / "empty"), project_dir=tmp_path / "empty")
    consumer = config_for("consumer", customer="acme", **{"azure-native:subscriptionId": ACME})
    with pytest.raises(SimulationError) as failure:
        deploy(world, "consumer-acme", consumer)
    assert "no 'aliases' output for service 'saas-9'" in str(failure.value)
    assert [r.type for r in failure.value.registrations if r.custom] == ["pulumi:pulumi:StackReference"]


def test_registry_decisions_approve_the_customers_endpoint(tmp_path: Path) -> None:
    endpoint = f"/subscriptions/{ACME}/resourceGroups/acme-rg/providers/Microsoft.Network/privateEndpoints/acme-saas-pe"
    register(tmp_path, "acme", service="saas-2", subscriptions=[ACME])
    world = World(tmp_path)
    deploy(world, "provider", provider(tmp_path, additionalServices=["saas-2"]))
    consumer = config_for("consumer", customer="acme", **{"azure-native:subscriptionId": ACME})
    deploy(world, "consumer-acme", consumer)
    register(
        tmp_path,
        "acme",
        service="saas-2",
        subscriptions=[ACME],
        decisions=[{"endpoint": endpoint, "status": "Approved", "reason": "contract AC-1"}],
    )
    decided = deploy(world, "provider", provider(tmp_path, additionalServices=["saas-2"]))
    (decision,) = decided.of_type("network:PrivateLinkServicePrivateEndpointConnection")
    assert decision.inputs["serviceName"] == "saas-2"
    refreshed = deploy(world, "provider", provider(tmp_path, additionalServices=["saas-2"]))
    (connection,) = [c for c in refreshed.outputs[contract.CONNECTIONS] if c["service"] == "saas-2"]
    assert connection["status"] == "Approved"
    assert refreshed.outputs["pendingConnections"] == []


def test_a_registry_decision_about_an_endpoint_that_has_not_asked_waits_for_it(tmp_path: Path) -> None:
    endpoint = f"/subscriptions/{ACME}/resourceGroups/acme-rg/providers/Microsoft.Network/privateEndpoints/acme-saas-pe"
    decision = {"endpoint": endpoint, "status": "Approved", "reason": "contract AC-1"}
    register(tmp_path, "acme", service="saas-2", subscriptions=[ACME], decisions=[decision])
    sim = deploy(World(tmp_path), "provider", provider(tmp_path, additionalServices=["saas-2"]))
    assert sim.of_type("network:PrivateLinkServicePrivateEndpointConnection") == []
    assert sim.warnings == [f"decision Approved waits for {endpoint}: applied once its private endpoint asks"]


def test_the_capacity_report_counts_each_services_use_and_names_those_with_room(tmp_path: Path) -> None:
    for n in range(85):
        register(tmp_path, f"c{n}", service="saas", subscriptions=[subscription(n)])
    settings = settings_of(
        provider(tmp_path, additionalServices=["saas-2 natSubnetCidr=10.50.3.0/28"]), project=tmp_path
    )
    connections = [{"service": "saas"}] * 85 + [{"service": "saas-2"}] * 3
    lines = capacity_notes(settings, connections)
    assert lines == [
        "capacity (2 of 8 services on the load balancer):",
        f"  saas: endpoints 85/1000, visibility 85/100, auto-approval 0/100, NAT IPs {settings.nat_ip_count}/8, "
        f"NAT subnet 10.50.2.0/24 {256 - 5 - settings.nat_ip_count} addresses free",
        "  saas-2: endpoints 3/1000, visibility 0/100, auto-approval 0/100, NAT IPs 1/8, NAT subnet 10.50.3.0/28 "
        "10 addresses free",
        "warning: saas uses 85 of 100 visibility; services with room: saas-2",
    ]
    full = settings_of(provider(tmp_path), project=tmp_path)
    assert capacity_notes(full, [{"service": "saas"}] * 85)[-1] == (
        "warning: saas uses 85 of 100 visibility; none has room: scripts/onboard declares the next service"
    )
