"""Every configuration rule: a bad value names its key and the fix, and nothing is registered."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offline.engine import ROOT, SimulationError, World, simulate
from offline.repository import LAB, SECRET_PLACEHOLDER, offline_ssh_public_key, stack_config
from pls.config import ConsumerSettings, ProviderSettings, SettingsError, load_schema, parse
from pls.ssh_keys import main as ssh_key_cli
from tests.helpers.stacks import config_for

REMOVE = object()
SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"
ENDPOINT_ID = (
    f"/subscriptions/{SUB_A}/resourceGroups/rg-tw/providers/Microsoft.Network/privateEndpoints/tradewinds-saas-pe"
)
VALID_ALIAS = "saas.9c3f1a52-6d1e-4b8a-9f0e-2b7c4d5e6f70.westeurope.azure.privatelinkservice"
OWN_VNET = f"/subscriptions/{SUB_A}/resourceGroups/hub/providers/Microsoft.Network/virtualNetworks/spoke-1"
OWN_NETWORK: dict[str, Any] = {
    "endpointSubnetId": f"{OWN_VNET}/subnets/endpoints",
    "vnetHasOutbound": True,
    "consumerVnetCidr": REMOVE,
    "endpointSubnetCidr": REMOVE,
    "workloadSubnetCidr": REMOVE,
}


def _rsa_public_key(bits: int) -> str:
    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = field(b"ssh-rsa") + field(b"\x01\x00\x01") + field(b"\x00" + b"\xff" * (bits // 8))
    return "ssh-rsa " + base64.b64encode(blob).decode()


def _key(*fields: bytes) -> str:
    blob = b"".join(struct.pack(">I", len(f)) + f for f in fields)
    return f"{fields[0].decode()} {base64.b64encode(blob).decode()}"


ECDSA_KEY = _key(b"ecdsa-sha2-nistp256", b"nistp256", b"\x04" + bytes(64))
TRUNCATED_RSA_KEY = "ssh-rsa " + base64.b64encode(struct.pack(">I", 7) + b"ssh-rsa" + b"\x00\x00").decode()
HOLLOW_ED25519_KEY = _key(b"ssh-ed25519")
DEEP_ARRAY = "[" * 5000 + "]" * 5000
HUGE_INTEGER = "9" * 5000
HUB_ZONES = "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/hub/providers/Microsoft.Network/"
HUB_ZONES += "privateDnsZones/"
PE_PREFIX = f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/"


CASES = [
    # provider: networks
    ("provider", {"providerVnetCidr": "10.50.0.0/33"}, "providerVnetCidr"),
    ("provider", {"backendSubnetCidr": "10.50.1.1/24"}, "backendSubnetCidr"),
    ("provider", {"natSubnetCidr": "10.60.2.0/24"}, "natSubnetCidr"),
    ("provider", {"natSubnetCidr": "10.50.1.128/25"}, "natSubnetCidr"),
    ("provider", {"natSubnetCidr": "10.50.2.0/29"}, "natSubnetCidr"),
    ("provider", {"backendSubnetCidr": "10.50.1.0/30"}, "backendSubnetCidr"),
    ("provider", {"webVmCount": 30, "backendSubnetCidr": "10.50.1.0/27"}, "backendSubnetCidr"),
    # provider: web tier and load balancer
    ("provider", {"webVmCount": 0}, "webVmCount"),
    ("provider", {"webVmCount": "three"}, "webVmCount"),
    ("provider", {"zones": [4]}, "zones"),
    ("provider", {"zones": []}, "zones"),
    ("provider", {"zones": [1, 1]}, "zones"),
    ("provider", {"lbIdleTimeoutMinutes": 3}, "lbIdleTimeoutMinutes"),
    # provider: the Private Link Service
    ("provider", {"natIpCount": 0}, "natIpCount"),
    ("provider", {"natIpCount": 9}, "natIpCount"),
    ("provider", {"serviceName": "-saas"}, "serviceName"),
    ("provider", {"visibility": ["not-a-guid"]}, "visibility"),
    ("provider", {"visibility": ["*"], "autoApproval": []}, "visibility"),
    ("provider", {"visibility": ["*", SUB_A], "allowAnyoneWithAlias": True, "autoApproval": []}, "visibility"),
    ("provider", {"visibility": [SUB_A, SUB_A], "autoApproval": []}, "visibility"),
    (
        "provider",
        {"visibility": [f"{i:08d}-0000-4000-8000-000000000000" for i in range(101)], "autoApproval": []},
        "visibility",
    ),
    ("provider", {"allowAnyoneWithAlias": True, "visibility": [SUB_A], "autoApproval": []}, "visibility"),
    ("provider", {"visibility": [SUB_A], "autoApproval": [SUB_B]}, "autoApproval"),
    ("provider", {"autoApproval": ["contoso"]}, "autoApproval"),
    ("provider", {"fqdns": ["not a name"]}, "fqdns"),
    ("provider", {"approvedConnections": [ENDPOINT_ID]}, "approvedConnections"),
    ("provider", {"approvedConnections": ["Customer: Tradewinds, Order no.: 314159 | approve"]}, "approvedConnections"),
    (
        "provider",
        {"approvedConnections": [f"{ENDPOINT_ID} | ok"], "rejectedConnections": [f"{ENDPOINT_ID} | no"]},
        "rejectedConnections",
    ),
    # provider: the data path (app, TLS, per-tenant limits)
    ("provider", {"appUpstream": "localhost"}, "appUpstream"),
    ("provider", {"appUpstream": "127.0.0.1:70000"}, "appUpstream"),
    ("provider", {"appUpstream": "127.0.0.1:8080\n"}, "appUpstream"),
    ("provider", {"appUpstream": "127.0.0.1:80"}, "appUpstream"),
    ("provider", {"appUpstream": "10.50.1.9:8080"}, "appUpstream"),
    ("provider", {"appHealthPath": "/%"}, "appHealthPath"),
    ("provider", {"appHealthPath": "/health%zz"}, "appHealthPath"),
    ("provider", {"appHealthPath": "/health?x=1"}, "appHealthPath"),
    ("provider", {"customerRegistry": ["customers"]}, "customerRegistry"),
    ("provider", {"customerRegistry": "cust\0omers"}, "customerRegistry"),
    ("provider", {"customerRegistry": "c" * 300}, "customerRegistry"),
    ("provider", {"appCloudConfig": "app/missing.yaml"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "/etc/passwd"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "../shared/STYLE.md"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "tests/fixtures/without-cloud-config-header.yaml"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "tests/fixtures/clashing-cloud-config.yaml"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "README.md"}, "appCloudConfig"),
    ("provider", {"appCloudConfig": "a\0b"}, "appCloudConfig"),
    ("provider", {"tenantRateLimit": 0}, "tenantRateLimit"),
    ("provider", {"tenantRateBurst": -1}, "tenantRateBurst"),
    ("provider", {"tenantRateLimit": 100_001}, "tenantRateLimit"),
    ("provider", {"tls": True, "fqdns": []}, "fqdns"),
    ("provider", {"tlsCertificateName": "saas-tls"}, "tlsCertificateName"),
    (
        "provider",
        {"tls": True, "fqdns": ["api.saas.example.com"], "tlsCertificateName": "saas_tls"},
        "tlsCertificateName",
    ),
    ("provider", {"httpOnTls": "allow"}, "httpOnTls"),
    ("provider", {"keyVaultAllowedIpRanges": ["10.1.2.3"]}, "keyVaultAllowedIpRanges"),
    ("provider", {"keyVaultAllowedIpRanges": ["51.105.7.20/24"]}, "keyVaultAllowedIpRanges"),
    ("provider", {"keyVaultAllowedIpRanges": ["my laptop"]}, "keyVaultAllowedIpRanges"),
    # provider: operations
    ("provider", {"alertEmails": ["oncall"]}, "alertEmails"),
    ("provider", {"alertEmails": ["oncall@saas.example.com\n"]}, "alertEmails"),
    ("provider", {"alertEmails": ["a@saas.example.com", "A@saas.example.com"]}, "alertEmails"),
    ("provider", {"alertEmails": [f"oncall{i}@saas.example.com" for i in range(21)]}, "alertEmails"),
    ("provider", {"alertWebhookUrl": "http://hooks.example.com/x"}, "alertWebhookUrl"),
    ("provider", {"alertWebhookUrl": "https://hooks.example.com/a b"}, "alertWebhookUrl"),
    ("provider", {"natPortUsageAlertPercent": 0}, "natPortUsageAlertPercent"),
    ("provider", {"natPortUsageAlertPercent": 100}, "natPortUsageAlertPercent"),
    ("provider", {"connectionsAlertPercent": 120}, "connectionsAlertPercent"),
    ("provider", {"natSubnetFreeAddressesAlertBelow": 0}, "natSubnetFreeAddressesAlertBelow"),
    ("provider", {"natSubnetFreeAddressesAlertBelow": 300}, "natSubnetFreeAddressesAlertBelow"),
    ("provider", {"logAnalyticsWorkspaceId": "my-workspace"}, "logAnalyticsWorkspaceId"),
    (
        "provider",
        {"logAnalyticsWorkspaceId": f"/subscriptions/{SUB_A}/resourceGroups/ops/providers/Microsoft.Storage/x/ws1"},
        "logAnalyticsWorkspaceId",
    ),
    ("provider", {"logRetentionDays": 7}, "logRetentionDays"),
    ("provider", {"lockService": "yes"}, "lockService"),
    (
        "provider",
        {"keyVaultAllowedIpRanges": [f"8.8.{i // 256}.{i % 256}" for i in range(1001)]},
        "keyVaultAllowedIpRanges",
    ),
    # both roles: VMs and region
    ("provider", {"sshPublicKey": "hunter2"}, "sshPublicKey"),
    ("provider", {"sshPublicKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"}, "sshPublicKey"),
    ("provider", {"sshPublicKey": _rsa_public_key(1024)}, "sshPublicKey"),
    (
        "provider",
        {"sshPublicKey": "ssh-rsa " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519").decode()},
        "sshPublicKey",
    ),
    ("consumer", {"sshPublicKey": REMOVE}, "sshPublicKey"),
    ("provider", {"adminUsername": "admin"}, "adminUsername"),
    ("provider", {"adminUsername": "Azure User"}, "adminUsername"),
    ("provider", {"location": "West Europe"}, "location"),
    ("provider", {"vmSize": "B1s"}, "vmSize"),
    ("provider", {"vmImage": "ubuntu"}, "vmImage"),
    # total: hostile values end as a SettingsError naming their key (issue 11)
    ("provider", {"location": "westeurope\n"}, "location"),
    ("provider", {"location": "westeuropa"}, "location"),
    ("provider", {"location": "westus"}, "location"),
    ("provider", {"adminUsername": "azureuser\n"}, "adminUsername"),
    ("provider", {"vmSize": "Standard_B1s\n"}, "vmSize"),
    ("provider", {"vmImage": '["Canonical", "ubuntu-24_04-lts", "server", "latest"]'}, "vmImage"),
    ("provider", {"vmImage": "Canonical:ubuntu-24_04-lts:server.:latest"}, "vmImage"),
    ("provider", {"vmImage": " : : : "}, "vmImage"),
    ("provider", {"serviceName": "saas\n"}, "serviceName"),
    ("provider", {"serviceName": "s" * 80}, "serviceName"),
    ("provider", {"sshPublicKey": ECDSA_KEY}, "sshPublicKey"),
    ("provider", {"sshPublicKey": TRUNCATED_RSA_KEY}, "sshPublicKey"),
    ("provider", {"sshPublicKey": HOLLOW_ED25519_KEY}, "sshPublicKey"),
    ("provider", {"webVmCount": HUGE_INTEGER}, "webVmCount"),
    ("provider", {"visibility": DEEP_ARRAY}, "visibility"),
    ("consumer", {"natIpCount": DEEP_ARRAY}, "natIpCount"),
    ("provider", {"approvedConnections": [f"{PE_PREFIX}kundé-pe | ok"]}, "approvedConnections"),
    ("provider", {"approvedConnections": [f"{PE_PREFIX}pe. | ok"]}, "approvedConnections"),
    ("provider", {"approvedConnections": [f"{PE_PREFIX}{'p' * 65} | ok"]}, "approvedConnections"),
    ("provider", {"providerVnetCidr": "0.0.0.0/0"}, "providerVnetCidr"),
    ("consumer", {"consumerVnetCidr": "127.0.0.0/8"}, "consumerVnetCidr"),
    ("consumer", {"dnsZoneId": "saas.example.com"}, "dnsZoneId"),
    (
        "consumer",
        {"dnsZoneId": f"{HUB_ZONES}blob.core.windows.net"},
        "dnsZoneId",
    ),
    (
        "consumer",
        {
            "dnsZoneId": f"{HUB_ZONES}saas.example.com",
            "dnsZone": "other.example.com",
        },
        "dnsZone",
    ),
    ("consumer", {"linkDnsZone": True}, "linkDnsZone"),
    ("consumer", {"consumerVnetCidr": "169.254.0.0/16"}, "consumerVnetCidr"),
    ("consumer", {"consumerVnetCidr": "224.0.0.0/4"}, "consumerVnetCidr"),
    ("consumer", {"consumerVnetCidr": "168.63.0.0/16"}, "consumerVnetCidr"),
    ("consumer", {"providerStack": "organization/pls-saas/provider\n"}, "providerStack"),
    ("consumer", {"customer": "c" * 41}, "customer"),
    ("consumer", {"customer": "tradewinds\n"}, "customer"),
    ("consumer", {"dnsZone": "a." * 34 + "example"}, "dnsZone"),
    ("consumer", {"dnsZone": "core.windows.net"}, "dnsZone"),
    ("consumer", {"dnsZone": "saas.blob.core.windows.net"}, "dnsZone"),
    ("consumer", {"dnsRecord": "api\n"}, "dnsRecord"),
    ("consumer", {"requestMessage": "Customer: Tradewinds\nplease approve"}, "requestMessage"),
    ("consumer", {"azure-native:subscriptionId": REMOVE}, "azure-native:subscriptionId"),
    ("consumer", {"azure-native:subscriptionId": "tradewinds"}, "azure-native:subscriptionId"),
    ("consumer", {"azure-native:subscriptionld": SUB_A}, "azure-native:subscriptionld"),
    ("consumer", {"pls-sass:dnsZone": "saas.example.com"}, "pls-sass:dnsZone"),
    # roles and unknown keys
    ("provider", {"role": "both"}, "role"),
    ("provider", {"natIpCout": 2}, "natIpCout"),
    ("provider", {"customer": "tradewinds"}, "customer"),
    ("consumer", {"natIpCount": 4}, "natIpCount"),
    # consumer
    ("consumer", {"customer": ""}, "customer"),
    ("consumer", {"customer": "Trade Winds"}, "customer"),
    ("consumer", {"requestMessage": "x" * 141}, "requestMessage"),
    ("consumer", {"dnsZone": "saas"}, "dnsZone"),
    ("consumer", {"dnsRecord": "api_v1"}, "dnsRecord"),
    ("consumer", {"providerAlias": "saas.westeurope"}, "providerAlias"),
    ("consumer", {"providerAlias": VALID_ALIAS, "providerStack": "acme/pls-saas/provider"}, "providerStack"),
    ("consumer", {"providerStack": "provider"}, "providerStack"),
    ("consumer", {"endpointSubnetCidr": "10.1.4.0/24"}, "endpointSubnetCidr"),
    ("consumer", {"workloadSubnetCidr": "10.0.4.128/25"}, "workloadSubnetCidr"),
    # consumer: the customer's own network
    ("consumer", {**OWN_NETWORK, "endpointSubnetId": f"{OWN_VNET}/subnets/"}, "endpointSubnetId"),
    ("consumer", {**OWN_NETWORK, "endpointSubnetId": OWN_VNET}, "endpointSubnetId"),
    ("consumer", {"workloadSubnetId": f"{OWN_VNET}/subnets/apps"}, "workloadSubnetId"),
    ("consumer", {**OWN_NETWORK, "consumerVnetCidr": "10.9.0.0/16"}, "consumerVnetCidr"),
    ("consumer", {**OWN_NETWORK, "workloadSubnetId": f"{OWN_VNET}-2/subnets/apps"}, "workloadSubnetId"),
    ("consumer", {**OWN_NETWORK, "vnetHasOutbound": False}, "vnetHasOutbound"),
]


def _config(stack: str, overrides: dict[str, Any]) -> dict[str, Any]:
    config = config_for(stack)
    for key, value in overrides.items():
        if value is REMOVE:
            config.pop(key)
        else:
            config[key] = value
    return config


@pytest.mark.parametrize(("stack", "overrides", "key"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_bad_value_names_its_key_and_registers_nothing(stack: str, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(SimulationError) as failure:
        simulate(stack, _config(stack, overrides), world=World(LAB))
    error = failure.value.cause
    assert isinstance(error, SettingsError), error
    assert error.keys == {key}, str(error)
    assert f"{key if ':' in key else 'pls-saas:' + key} = " in str(error) and "Fix: " in str(error)
    assert failure.value.registrations == []


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as failure:
        parse(
            _config("provider", {"natIpCount": 9, "zones": [7], "location": "West Europe"}),
            stack="provider",
            project_dir=LAB,
        )
    assert failure.value.keys == {"natIpCount", "zones", "location"}


def test_a_private_key_is_never_echoed() -> None:
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    with pytest.raises(SettingsError) as failure:
        parse(_config("provider", {"sshPublicKey": secret}), stack="provider", project_dir=LAB)
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in str(failure.value)


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(SettingsError) as failure:
        parse(_config("provider", {"natIpCout": 2}), stack="provider", project_dir=LAB)
    assert "did you mean natIpCount?" in str(failure.value)


def test_public_visibility_with_explicit_opt_in_and_rbac_only_are_valid() -> None:
    public = parse(
        _config("provider", {"visibility": ["*"], "allowAnyoneWithAlias": True, "autoApproval": [SUB_B]}),
        stack="provider",
        project_dir=LAB,
    )
    assert isinstance(public, ProviderSettings) and public.visibility == ["*"]
    rbac_only = parse(_config("provider", {"visibility": [], "autoApproval": []}), stack="provider", project_dir=LAB)
    assert isinstance(rbac_only, ProviderSettings) and rbac_only.visibility == []


def test_consumer_ranges_may_overlap_the_providers() -> None:
    provider = parse(_config("provider", {}), stack="provider", project_dir=LAB)
    assert isinstance(provider, ProviderSettings)
    ranges = {
        "consumerVnetCidr": provider.provider_vnet_cidr,
        "endpointSubnetCidr": provider.backend_subnet_cidr,
        "workloadSubnetCidr": provider.nat_subnet_cidr,
    }
    consumer = parse(_config("consumer", ranges), stack="consumer", project_dir=LAB)
    assert isinstance(consumer, ConsumerSettings) and consumer.consumer_vnet_cidr == provider.provider_vnet_cidr


def test_the_request_message_defaults_to_the_customer() -> None:
    settings = parse(_config("consumer", {"requestMessage": ""}), stack="consumer", project_dir=LAB)
    assert isinstance(settings, ConsumerSettings) and settings.request_message == "Customer: tradewinds"


def test_every_schema_key_has_type_description_and_role() -> None:
    schema = load_schema()
    for key in schema.keys.values():
        assert key.type in ("string", "integer", "boolean", "array")
        assert key.description
        assert key.required == (key.name in ("role", "sshPublicKey")), key.name


def test_array_items_are_checked_against_the_schema() -> None:
    with pytest.raises(SettingsError) as failure:
        parse(_config("provider", {"zones": ["1", "2"]}), stack="provider", project_dir=LAB)
    assert failure.value.keys == {"zones"} and "expected array of integer" in str(failure.value)


def test_stack_files_as_pulumi_writes_them_run_offline(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.consumer-x.yaml").write_text(
        "config:\n"
        f"  azure-native:subscriptionId: {SUB_A}\n"
        "  azure-native:location: westeurope\n"
        "  pls-saas:role: consumer\n"
        "  pls-saas:customer: x\n"
        "  pls-saas:requestMessage:\n    secure: AAABAMx0ZmFrZSBjaXBoZXJ0ZXh0\n"
        "  pls-saas:sshPublicKey:\n    secure: AAABAHNvbWUgY2lwaGVydGV4dA==\n"
    )
    config = stack_config("consumer-x", tmp_path)
    assert config["requestMessage"] == SECRET_PLACEHOLDER
    settings = parse(config, stack="consumer-x", project_dir=LAB)
    assert isinstance(settings, ConsumerSettings) and settings.subscription_id == SUB_A


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        (offline_ssh_public_key(), True),
        (_rsa_public_key(4096), True),
        (ECDSA_KEY, False),
        (_rsa_public_key(1024), False),
    ],
    ids=["ed25519", "rsa-4096", "ecdsa", "rsa-1024"],
)
def test_deploy_preflight_checks_the_key_type_azure_accepts(
    tmp_path: Path, key: str, accepted: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "id.pub"
    key_file.write_text(key + "\n")
    assert (ssh_key_cli([str(key_file)]) == 0) is accepted
    assert accepted or "Fix: ssh-keygen -t ed25519" in capsys.readouterr().err


def test_the_preflight_is_the_command_scripts_deploy_runs(tmp_path: Path) -> None:
    key_file = tmp_path / "id.pub"
    key_file.write_text(ECDSA_KEY + "\n")
    assert ".venv/bin/python -m pls.ssh_keys" in (ROOT / "scripts/deploy").read_text()
    checked = subprocess.run([sys.executable, "-m", "pls.ssh_keys", str(key_file)], capture_output=True, text=True)
    assert checked.returncode == 2 and "Fix: ssh-keygen -t ed25519" in checked.stderr
    assert checked.stderr.count("\n") == 1, "the one message, no interpreter's warning beside it"


def test_the_preflight_finds_the_users_key_where_scripts_deploy_and_fleet_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_PUBLIC_KEY_FILE", raising=False)
    assert ssh_key_cli([]) == 2
    assert "no SSH public key: run ssh-keygen -t ed25519, or set SSH_PUBLIC_KEY_FILE" in capsys.readouterr().err
    (tmp_path / ".ssh").mkdir()
    rsa = tmp_path / ".ssh" / "id_rsa.pub"
    rsa.write_text(offline_ssh_public_key() + "\n")
    assert ssh_key_cli([]) == 0 and capsys.readouterr().out == f"{rsa}\n"
    ecdsa = tmp_path / ".ssh" / "id_ed25519.pub"  # looked at first: a key Azure would refuse is named, not skipped
    ecdsa.write_bytes(ECDSA_KEY.encode() + b" \xff\xfe laptop\n")
    assert ssh_key_cli([]) == 2
    assert f"{ecdsa}: Azure does not accept ecdsa-sha2-nistp256 keys" in capsys.readouterr().err
    monkeypatch.setenv("SSH_PUBLIC_KEY_FILE", str(rsa))  # the variable comes before ~/.ssh
    assert ssh_key_cli([]) == 0 and capsys.readouterr().out == f"{rsa}\n"
    assert ssh_key_cli([str(tmp_path / "missing.pub")]) == 2
    assert "missing.pub: No such file or directory" in capsys.readouterr().err
    # a variable naming what is not a key file is refused by name, never passed over for ~/.ssh's key
    for named, problem in [
        (tmp_path / "typo.pub", "No such file or directory"),
        (tmp_path / ".ssh", "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
    ]:
        monkeypatch.setenv("SSH_PUBLIC_KEY_FILE", str(named))
        assert ssh_key_cli([]) == 2 and f"{named}: {problem}" in capsys.readouterr().err
    huge = tmp_path / "huge.pub"  # only its start is read
    huge.write_bytes(b"A" * 20_000_000)
    monkeypatch.setenv("SSH_PUBLIC_KEY_FILE", str(huge))
    assert ssh_key_cli([]) == 2 and f"{huge}: not an OpenSSH public key" in capsys.readouterr().err
