"""The CrossGuard rules: each fires on a hand-built bad resource, stays quiet on every shipped stack,
and catches a deliberately bad deployment of the real program."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from offline.policy_pack import View, views, violations
from offline.records import Simulation
from offline.repository import LAB, RepositoryWorld, stack_files
from policy import rules
from tests.helpers.stacks import run_stack

BAD = [
    ("no-public-ip", rules.NIC, {"ipConfigurations": [{"name": "p", "publicIPAddress": {"id": "pip"}}]}),
    (
        "no-public-ip",
        rules.LOAD_BALANCER,
        {"frontendIPConfigurations": [{"name": "f", "publicIPAddress": {"id": "x"}}]},
    ),
    (
        "no-public-ip",
        rules.VIRTUAL_MACHINE,
        {
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    {"ipConfigurations": [{"publicIPAddressConfiguration": {"name": "pip"}}]}
                ]
            }
        },
    ),
    (
        "no-internet-http-or-ssh",
        rules.NSG,
        {
            "securityRules": [
                {
                    "name": "web",
                    "access": "Allow",
                    "direction": "Inbound",
                    "sourceAddressPrefix": "Internet",
                    "destinationPortRange": "80",
                }
            ]
        },
    ),
    (
        "no-internet-http-or-ssh",
        rules.NSG,
        {
            "securityRules": [
                {
                    "name": "all",
                    "access": "Allow",
                    "direction": "Inbound",
                    "sourceAddressPrefix": "*",
                    "destinationPortRange": "*",
                }
            ]
        },
    ),
    (
        "no-internet-http-or-ssh",
        rules.SECURITY_RULE,
        {
            "name": "ssh",
            "access": "Allow",
            "direction": "Inbound",
            "sourceAddressPrefixes": ["0.0.0.0/0"],
            "destinationPortRanges": ["20-23"],
        },
    ),
    (
        "pls-auto-approval-within-visibility",
        rules.PRIVATE_LINK_SERVICE,
        {"visibility": {"subscriptions": ["a"]}, "autoApproval": {"subscriptions": ["b"]}},
    ),
    (
        "linux-vm-ssh-key-only",
        rules.VIRTUAL_MACHINE,
        {"osProfile": {"adminPassword": "Microhack2021", "linuxConfiguration": {}}},
    ),
    ("private-dns-link-without-auto-registration", rules.DNS_LINK, {"registrationEnabled": True}),
    ("key-vault-rbac-purge-protected-firewalled", rules.KEY_VAULT, {"properties": {"enablePurgeProtection": True}}),
    (
        "key-vault-rbac-purge-protected-firewalled",
        rules.KEY_VAULT,
        {"properties": {"enableRbacAuthorization": True, "networkAcls": {"defaultAction": "Deny"}}},
    ),
    (
        "key-vault-rbac-purge-protected-firewalled",
        rules.KEY_VAULT,
        {"properties": {"enableRbacAuthorization": True, "enablePurgeProtection": True}},
    ),
]


@pytest.mark.parametrize(("policy", "resource_type", "props"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_rule_fires_on_a_bad_resource(policy: str, resource_type: str, props: dict[str, Any]) -> None:
    found = violations([View(resource_type, "bad", props)])
    assert {v.policy for v in found} == {policy}


def test_rules_accept_what_they_should() -> None:
    good = [
        View(
            rules.NSG,
            "inside",
            {
                "securityRules": [
                    {
                        "name": "vnet",
                        "access": "Allow",
                        "direction": "Inbound",
                        "sourceAddressPrefix": "10.0.0.0/8",
                        "destinationPortRange": "80",
                    },
                    {
                        "name": "https",
                        "access": "Allow",
                        "direction": "Inbound",
                        "sourceAddressPrefix": "Internet",
                        "destinationPortRange": "443",
                    },
                    {
                        "name": "deny",
                        "access": "Deny",
                        "direction": "Inbound",
                        "sourceAddressPrefix": "*",
                        "destinationPortRange": "*",
                    },
                ]
            },
        ),
        View(
            rules.PRIVATE_LINK_SERVICE,
            "public",
            {"visibility": {"subscriptions": ["*"]}, "autoApproval": {"subscriptions": ["b"]}},
        ),
        View(rules.VIRTUAL_MACHINE, "windows", {"osProfile": {"windowsConfiguration": {}}}),
    ]
    assert violations(good) == []


def test_nat_subnet_with_policies_enabled_is_caught() -> None:
    subnet = View(rules.SUBNET, "nat", {"privateLinkServiceNetworkPolicies": "Enabled"})
    service = View(rules.PRIVATE_LINK_SERVICE, "pls", {}, {"ipConfigurations": [subnet]})
    assert rules.pls_nat_subnet_policies_disabled([service, subnet]) == [
        ("pls", "NAT subnet nat must have privateLinkServiceNetworkPolicies Disabled")
    ]


def test_services_on_one_load_balancer_must_agree_on_proxy_protocol_and_own_their_frontends() -> None:
    balancer = View(rules.LOAD_BALANCER, "ilb-lb", {})

    def service(name: str, proxy: bool, frontend: str) -> View:
        props = {"enableProxyProtocol": proxy, "loadBalancerFrontendIpConfigurations": [{"id": frontend}]}
        return View(rules.PRIVATE_LINK_SERVICE, name, props, {"loadBalancerFrontendIpConfigurations": [balancer]})

    assert (
        rules.pls_services_share_a_load_balancer_as_azure_allows([service("a", True, "f1"), service("b", True, "f2")])
        == []
    )
    found = rules.pls_services_share_a_load_balancer_as_azure_allows(
        [service("a", True, "f1"), service("b", False, "f1")]
    )
    assert [message for _, message in found] == [
        "the Private Link Services of ilb-lb disagree on PROXY protocol: turn it on for all",
        "two Private Link Services of ilb-lb share a frontend: give each its own",
    ]
    nine = [service(f"s{n}", True, f"f{n}") for n in range(9)]
    assert (
        "has 9 Private Link Services; Azure allows 8"
        in rules.pls_services_share_a_load_balancer_as_azure_allows(nine)[0][1]
    )


def test_the_program_with_several_services_passes_every_rule() -> None:
    sim = run_stack("provider", additionalServices=["saas-2", "saas-3 natSubnetCidr=10.50.3.0/24"])
    resources = views(sim)
    assert violations(resources) == []
    services = [r for r in resources if r.resource_type == rules.PRIVATE_LINK_SERVICE]
    assert len(services) == 3
    assert all(
        [d.name for d in s.property_dependencies["loadBalancerFrontendIpConfigurations"]] == ["ilb-lb"]
        for s in services
    )


@pytest.mark.parametrize("stack", stack_files(LAB))
def test_every_shipped_stack_passes(stack: str, repository: RepositoryWorld) -> None:
    sim = repository.result(stack)
    resources = views(sim)
    assert violations(resources) == []
    if stack == "provider":
        (service,) = [r for r in resources if r.resource_type == rules.PRIVATE_LINK_SERVICE]
        assert [s.name for s in service.property_dependencies["ipConfigurations"]] == ["provider-net-pls-nat"]


def test_a_deliberately_bad_provider_fails(provider: Simulation) -> None:
    resources = copy.deepcopy(views(provider))
    by_type = {r.resource_type: r for r in resources}
    by_type[rules.NIC].props["ipConfigurations"][0]["publicIPAddress"] = {"id": "pip"}
    by_type[rules.NSG].props["securityRules"][0]["sourceAddressPrefix"] = "Internet"
    nat_subnet = next(r for r in resources if r.name == "provider-net-pls-nat")
    nat_subnet.props["privateLinkServiceNetworkPolicies"] = "Enabled"  # type: ignore[index]
    assert {v.policy for v in violations(resources)} == {
        "no-public-ip",
        "no-internet-http-or-ssh",
        "pls-nat-subnet-policies-disabled",
    }


def test_the_tls_provider_passes() -> None:
    sim = run_stack("provider", tls=True, fqdns=["api.saas.example.com"], tlsCertificateName="saas-tls")
    assert sim.of_type("keyvault:Vault") and violations(views(sim)) == []
