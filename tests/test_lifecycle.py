"""The README's lifecycles as sequences of deployments over one persistent offline Azure.

After every step the test asserts what Azure would show: the connection's state on both sides, the alias,
the NAT IPs, and what is refused (by Azure, by the engine, or by the program before any change).
"""

from __future__ import annotations

import functools
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from maintenance import scale
from offline.azure import AzureError
from offline.engine import ROOT, EngineError, SimulationError, World, deploy, destroy, refresh
from offline.records import Simulation
from offline.repository import (
    LAB,
    deploy_for,
    deploy_repository,
    deployed_once,
    offline_ssh_public_key,
    settings_or_problem,
    stack_config,
    stack_files,
    stack_settings,
)
from offline.steps import replacements, steps
from operations import commands, onboarding
from operations.exits import RefusedError
from operations.plan import (
    Preview,
    connection_forecast,
    decision_notes,
    placeholder_note,
    plan_all,
    plan_one,
    preview_against,
)
from operations.transaction import LOCK, commit
from pls.azure_rules import MAX_SUBSCRIPTIONS
from pls.config import ConsumerSettings, ProviderSettings, SettingsError, parse
from pls.config.registry import read_registry
from pls.deployed import ALIAS_CHANGES, DeployedService, LastDeployment, check_deployed
from tests.helpers.stacks import (
    committed,
    config_for,
    copy_lab,
    copy_stack_files,
    edit,
    repo_with,
    world_with_provider,
)
from tests.test_stack_files import check_stack_file

TRADEWINDS = "11111111-1111-4111-8111-111111111111"
CONTOSO = "22222222-2222-4222-8222-222222222222"
ACME = "77777777-7777-4777-8777-777777777777"
STRANGER = "99999999-9999-4999-8999-999999999999"


def _provider(**overrides: Any) -> dict[str, Any]:
    """The lab's provider stack file (its customers are the lab's registry: tradewinds, contoso auto-approved, and
    fabrikam), with the decisions a step of the scenario makes."""
    base = {
        "approvedConnections": [],
        "lockService": True,  # the default; a user offboarding a customer has it off in the stack file for a while
    }
    return config_for("provider", **{"rejectedConnections": [], **base, **overrides})


@functools.cache
def _deployed() -> World:
    world = World(LAB)
    deploy(world, "provider", _provider())
    return world


def _world() -> World:
    """A world where this scenario's provider has just been deployed (deployed once, copied per test)."""
    return _deployed().fork()


def _refused(action: Any, cause: type[BaseException]) -> BaseException:
    with pytest.raises(SimulationError) as failure:
        action()
    assert isinstance(failure.value.cause, cause), failure.value.cause
    return failure.value.cause


def _nothing_but_the_lookup(failure_registrations: list[Any]) -> None:
    assert [r.type for r in failure_registrations] == ["pulumi:pulumi:StackReference"]


def test_manual_customer_requests_is_approved_and_is_offboarded(tmp_path: Path) -> None:
    project = copy_lab(tmp_path)  # the registry changes as the scenario goes: a copy of the lab's
    world = World(project)
    alias = deploy(world, "provider", _provider()).outputs["alias"]

    tradewinds = deploy(world, "consumer", config_for("consumer"))
    assert tradewinds.outputs["connectionState"] == "Pending"
    assert tradewinds.outputs["providerAlias"] == alias

    # The provider's next deployment lists the request, with the customer's message and LinkID.
    provider = deploy(world, "provider", _provider())
    (request,) = provider.outputs["pendingConnections"]
    assert request["privateEndpointId"] == tradewinds.outputs["privateEndpointId"]
    assert request["requestMessage"] == "Customer: Tradewinds, Order no.: 314159"
    assert request["linkIdentifier"].isdigit()

    # Approval as the README does it: scripts/approve records the decision about that endpoint in the entry.
    assert commands.main(["approve", "tradewinds", "--reason", "contract TW-314159"], project) == 0
    entry = yaml.safe_load((project / "customers" / "tradewinds.yaml").read_text())
    assert entry["decisions"] == [
        {"endpoint": tradewinds.outputs["privateEndpointId"], "status": "Approved", "reason": "contract TW-314159"}
    ]
    provider = deploy(world, "provider", _provider())
    assert provider.outputs["pendingConnections"] == []
    assert provider.outputs["alias"] == alias
    assert refresh(world, "consumer").outputs["connectionState"] == "Approved"

    # Offboarding. The lock on the service covers its connections: Azure refuses the customer's destroy.
    locked = _refused(lambda: destroy(world, "consumer"), AzureError)
    assert isinstance(locked, AzureError) and locked.code == "ScopeLocked"
    # README, Offboarding: the provider lifts the lock (the alias stays), the customer destroys its endpoint...
    unlocked = deploy(world, "provider", _provider(lockService=False))
    assert unlocked.outputs["alias"] == alias and not unlocked.of_type("ManagementLockByScope")
    destroy(world, "consumer")
    service = world.azure.service_by_alias(alias)
    assert service is not None and service.connections == {}
    # ...a deployment before the offboarding lands names the decision whose endpoint has gone, with the fix, and
    # goes on (one customer's action never stops the provider's deployment for everyone else)...
    stale = deploy(world, "provider", _provider(lockService=False))
    assert (
        f"decision Approved about {tradewinds.outputs['privateEndpointId']}: its private endpoint has gone from "
        "service saas (it was connected): scripts/offboard tradewinds"
    ) in stale.warnings
    # ...scripts/offboard removes the entry and the stack file, deployed while unlocked, and the lock comes back.
    assert commands.main(["offboard", "tradewinds"], project) == 0
    assert "tradewinds" not in str(deploy(world, "provider", _provider(lockService=False)).warnings)
    relocked = deploy(world, "provider", _provider())
    assert relocked.one("ManagementLockByScope").inputs["scope"] == relocked.one("PrivateLinkService").outputs["id"]


def test_rejected_customer_stays_rejected() -> None:
    world = _world()
    endpoint_id = deploy(world, "consumer", config_for("consumer")).outputs["privateEndpointId"]
    deploy(world, "provider", _provider(rejectedConnections=[f"{endpoint_id} | no contract"]))
    assert refresh(world, "consumer").outputs["connectionState"] == "Rejected"


def test_auto_approved_customer_is_approved_on_arrival() -> None:
    world = _world()
    contoso = deploy(world, "consumer-contoso", config_for("consumer-contoso"))
    assert contoso.outputs["connectionState"] == "Approved"
    assert deploy(world, "provider", _provider()).outputs["pendingConnections"] == []


def test_a_stack_that_claims_auto_approval_its_entry_does_not_give_is_refused_naming_both(tmp_path: Path) -> None:
    project = copy_lab(tmp_path)
    entry = project / "customers" / "contoso.yaml"
    entry.write_text(entry.read_text().replace("approval: auto", "approval: manual"))
    with pytest.raises(SettingsError) as refused:
        parse(config_for("consumer-contoso"), stack="consumer-contoso", project_dir=project)
    assert refused.value.keys == {"autoApproved"}
    assert "disagrees with customers/contoso.yaml, whose approval is manual" in str(refused.value)


def test_an_unregistered_auto_approved_stack_waits_on_a_service_open_to_anyone_and_the_plan_says_so(
    tmp_path: Path,
) -> None:
    """A service open to anyone with its alias (allowAnyoneWithAlias) lets an unregistered customer ask: it is
    not auto-approved, so its automatic request waits, and its plan says why."""
    world = World(LAB)
    deploy(world, "provider", _provider(allowAnyoneWithAlias=True))
    walkin = config_for("consumer-contoso", customer="walkin", **{"azure-native:subscriptionId": STRANGER})
    assert deploy(world, "consumer-contoso", walkin).outputs["connectionState"] == "Pending"
    settings = parse(walkin, stack="consumer-contoso", project_dir=LAB)
    assert isinstance(settings, ConsumerSettings) and settings.registered is None
    forecast = connection_forecast(settings, repo_with(tmp_path, allowAnyoneWithAlias=True))
    assert any("does not auto-approve" in line for line in forecast)


def test_customer_outside_visibility_is_refused_by_azure() -> None:
    """A customer no registry entry names (its stack file is here, its entry is not): Azure refuses its endpoint."""
    world = _world()
    provider = world.deployments["provider"]
    stranger = config_for("consumer", customer="stranger", **{"azure-native:subscriptionId": STRANGER})
    refused = _refused(lambda: deploy(world, "consumer", stranger), AzureError)
    assert isinstance(refused, AzureError) and refused.code == "PrivateLinkServiceNotVisible"
    assert STRANGER in str(refused)
    assert "consumer" not in world.deployments
    assert world.azure.service_by_alias(provider.outputs["alias"]).connections == {}  # type: ignore[union-attr]


def test_nat_ips_grow_and_shrink_in_place_and_a_decrease_warns_that_its_flows_reset() -> None:
    world = World(LAB)
    first = deploy(world, "provider", _provider(natIpCount=2))
    grown = deploy(world, "provider", _provider(natIpCount=3))
    assert grown.outputs["alias"] == first.outputs["alias"]
    assert world.azure.service_by_alias(grown.outputs["alias"]).nat_ip_count == 3  # type: ignore[union-attr]
    fewer = parse(
        {**_provider(natIpCount=1), "sshPublicKey": offline_ssh_public_key()}, stack="provider", project_dir=LAB
    )
    assert isinstance(fewer, ProviderSettings)
    deployed = LastDeployment(
        DeployedService(
            name="saas",
            location="westeurope",
            alias=grown.outputs["alias"],
            nat_ip_count=3,
            frontend_ids=(),
            connection_endpoint_ids=(),
        ),
        {},
        frozenset(),
    )
    (warning,) = check_deployed(fewer, deployed)
    assert "natIpCount 3 -> 1 removes NAT IP configurations nat-2..nat-3 of saas" in warning
    assert "connections through them are reset" in warning
    shrunk = deploy(world, "provider", _provider(natIpCount=1))
    assert shrunk.outputs["alias"] == first.outputs["alias"]
    assert world.azure.service_by_alias(shrunk.outputs["alias"]).nat_ip_count == 1  # type: ignore[union-attr]


def test_a_new_alias_is_refused_while_protected_and_the_plan_says_why() -> None:
    world = _world()
    deploy(world, "consumer", config_for("consumer"))
    with pytest.raises(SimulationError) as failure:
        deploy(world, "provider", _provider(serviceName="saas2"))
    error = failure.value.cause
    assert isinstance(error, SettingsError) and error.keys == {"serviceName"}
    assert ALIAS_CHANGES in str(error)
    _nothing_but_the_lookup(failure.value.registrations)


def test_an_unprotected_replacement_gives_a_new_alias_and_is_described() -> None:
    world = World(LAB)
    before = deploy(world, "provider", _provider(protectService=False))
    # Unprotected in Pulumi, the service is still locked in Azure: the replacement is refused, nothing changes.
    locked = _refused(
        lambda: deploy(world, "provider", _provider(protectService=False, serviceName="saas2")), AzureError
    )
    assert isinstance(locked, AzureError) and locked.code == "ScopeLocked"
    assert world.azure.service_by_alias(before.outputs["alias"]) is not None
    # Lifting the lock is its own deployment: the engine deletes a dropped lock only after the replacement.
    deploy(world, "provider", _provider(protectService=False, lockService=False))
    after = deploy(world, "provider", _provider(protectService=False, lockService=False, serviceName="saas2"))
    assert after.outputs["alias"] != before.outputs["alias"]
    described = [r for r, changed in replacements(before, after) if r.type.endswith(":PrivateLinkService")]
    assert len(described) == 1
    assert world.azure.service_by_alias(before.outputs["alias"]) is None


def test_teardown_order_unlock_and_unprotect_then_consumers_then_provider() -> None:
    world = _world()
    deploy(world, "consumer-contoso", config_for("consumer-contoso"))
    _refused(lambda: destroy(world, "provider"), EngineError)  # protected
    locked = _refused(lambda: destroy(world, "consumer-contoso"), AzureError)  # the service's lock
    assert isinstance(locked, AzureError) and locked.code == "ScopeLocked"
    deploy(world, "provider", _provider(protectService=False, lockService=False))
    refused = _refused(lambda: destroy(world, "provider"), AzureError)  # it still has a connection
    assert isinstance(refused, AzureError)
    assert refused.code == "CannotDeletePrivateLinkServiceWithPrivateEndpointConnections"
    destroy(world, "consumer-contoso")
    destroy(world, "provider")
    assert world.deployments == {} and world.azure.state.services == {}


# --- the README's steps, literally, on a copy of the repository's stack files ---------------------


ANYONE = {"pls-saas:allowAnyoneWithAlias": True}
"""The README allows it: the first service visible to anyone with its alias (the walks run with and without it)."""


def _onboarding_provider(root: Path, source: Path = ROOT, edits: dict[str, object] | None = None) -> tuple[str, str]:
    """The provider and service a new customer goes to, copied into `root` with the registry's entries of that
    service (whatever else the repository holds, the walk deploys that provider and the new customer): the first
    service of the user's providers with room for a subscription (Azure takes 100), or else a new provider stack as
    docs/operations/capacity.md starts one. `edits` are the user's edits of that provider's stack file."""
    for stack in sorted(stack_files(source), key=lambda s: (s != "provider", s)):
        settings = settings_or_problem(stack, source)
        if not isinstance(settings, ProviderSettings):
            continue
        room = next((s for s in settings.services if len(s.visibility) < MAX_SUBSCRIPTIONS), None)
        if room is not None:
            (root / f"Pulumi.{stack}.yaml").write_text((source / f"Pulumi.{stack}.yaml").read_text())
            (root / "customers").mkdir(exist_ok=True)
            for customer in room.customers:
                shutil.copy(source / "customers" / f"{customer}.yaml", root / "customers")
            edit(root / f"Pulumi.{stack}.yaml", **(edits or {}))
            return stack, room.name
    new = next(f"provider-{n}" for n in itertools.count(2) if not (source / f"Pulumi.provider-{n}.yaml").exists())
    (root / f"Pulumi.{new}.yaml").write_text((source / "Pulumi.provider.yaml").read_text())
    service = f"saas-{new.removeprefix('provider-')}"
    edit(root / f"Pulumi.{new}.yaml", **{"pls-saas:serviceName": service, **(edits or {})})
    return new, service


def _all_green(root: Path) -> dict[str, Simulation]:
    repository = deploy_repository(root)
    for stack in sorted(stack_files(root), key=lambda s: stack_config(s, root)["role"] != "provider"):
        check_stack_file(repository, stack, root)  # providers first: a provider's own problem is the one shown
    return repository.deployed


def _unused_customer(root: Path) -> tuple[str, str]:
    """A customer name and subscription that no stack file or entry here uses (a user may have onboarded anyone)."""
    used = {str(stack_config(s, root).get("azure-native:subscriptionId", "")).lower() for s in stack_files(root)}
    used |= {s for customer in read_registry(root).customers for s in customer.subscriptions}
    number = next(n for n in itertools.count() if f"{n:08d}-5555-4555-8555-555555555555" not in used)
    name = next(
        f"walk{n}"
        for n in itertools.count()
        if not (root / f"Pulumi.consumer-walk{n}.yaml").exists() and not (root / "customers" / f"walk{n}.yaml").exists()
    )
    return name, f"{number:08d}-5555-4555-8555-555555555555"


def _entry(root: Path, customer: str, **fields: object) -> Path:
    """A registry entry written by hand, in the format of docs/operations/registry.md."""
    path = root / "customers" / f"{customer}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


@pytest.mark.parametrize("edits", [{}, ANYONE], ids=["as-shipped", "anyone-with-the-alias"])
def test_onboarding_approving_and_offboarding_by_hand_keeps_every_check_green(
    tmp_path: Path, edits: dict[str, object]
) -> None:
    """docs/operations/onboarding.md without the scripts: the entry written by hand, the customer's stack file
    copied from Pulumi.consumer.yaml and edited, a decision added to the entry, the test VM removed, the files
    deleted; every stack file's check after each step."""
    provider, service = _onboarding_provider(tmp_path, edits=edits)
    customer, subscription = _unused_customer(tmp_path)
    where = {
        "provider": provider,
        **({"service": service} if service != stack_config(provider, tmp_path)["serviceName"] else {}),
    }
    entry = _entry(tmp_path, customer, **where, subscriptions=[subscription], approval="manual", contract="ACME-1")
    acme = tmp_path / f"Pulumi.consumer-{customer}.yaml"
    acme.write_text((ROOT / "Pulumi.consumer.yaml").read_text())
    edit(
        acme,
        **{
            "azure-native:subscriptionId": subscription,
            "pls-saas:customer": customer,
            "pls-saas:consumerVnetCidr": "10.60.0.0/16",
            "pls-saas:endpointSubnetCidr": "10.60.4.0/24",
            "pls-saas:workloadSubnetCidr": "10.60.5.0/24",
            "pls-saas:requestMessage": "Customer: ACME, Order no.: 271828",
            "pls-saas:dnsZone": "saas.acme.example",
            "pls-saas:providerStack": f"organization/pls-saas/{provider}",
        },
    )
    stack = f"consumer-{customer}"
    deployed = _all_green(tmp_path)
    assert deployed[stack].outputs["connectionState"] == "Pending"

    endpoint_id = deployed[stack].outputs["privateEndpointId"]
    decision = {"endpoint": endpoint_id, "status": "Approved", "reason": "contract ACME-271828"}
    _entry(tmp_path, customer, **where, subscriptions=[subscription], approval="manual", decisions=[decision])
    assert _all_green(tmp_path)[stack].outputs["connectionState"] == "Approved"

    edit(acme, **{"pls-saas:testVm": False})
    live = _all_green(tmp_path)[stack]
    assert live.outputs["connectionState"] == "Approved" and "verify" not in live.outputs
    assert live.of_type("compute:VirtualMachine") == [] and live.of_type("network:NatGateway") == []

    acme.unlink()
    entry.unlink()
    assert stack not in _all_green(tmp_path)


@pytest.mark.parametrize("edits", [{}, ANYONE], ids=["as-shipped", "anyone-with-the-alias"])
def test_onboarding_approving_and_offboarding_with_the_scripts_keeps_every_check_green(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edits: dict[str, object]
) -> None:
    """The README's commands on a copy of the user's provider and the customers of the service with room:
    scripts/onboard, the customer's deployment, scripts/approve, scripts/offboard, and every stack file's check
    after each. The walk's cost is one service's (at most 100 customers), however many the repository has."""
    provider, _ = _onboarding_provider(tmp_path, edits=edits)
    customer, subscription = _unused_customer(tmp_path)
    stack = f"consumer-{customer}"
    argv = ["onboard", customer, "--subscription", subscription, "--contract", "AC-1", "--provider", provider]
    assert commands.main(argv, tmp_path) == 0, capsys.readouterr().err
    entry = yaml.safe_load((tmp_path / "customers" / f"{customer}.yaml").read_text())
    assert entry["subscriptions"] == [subscription] and entry["approval"] == "manual"
    assert _all_green(tmp_path)[stack].outputs["connectionState"] == "Pending"

    assert commands.main(["approve", customer, "--reason", "contract AC-1"], tmp_path) == 0, capsys.readouterr().err
    assert _all_green(tmp_path)[stack].outputs["connectionState"] == "Approved"

    assert commands.main(["offboard", customer], tmp_path) == 0, capsys.readouterr().err
    assert not (tmp_path / "customers" / f"{customer}.yaml").exists()
    assert stack not in _all_green(tmp_path)


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content (but the lock, which git ignores): what a refused command must
    leave exactly as it was."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK}


def test_the_scripts_refuse_bad_input_by_name_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 for input that can never be used (a name, an id), 1 for a change the registry's rules refuse."""
    copy_stack_files(tmp_path, LAB)
    before = _files(tmp_path)
    for argv, said, status in [
        (["onboard", "ACME", "--subscription", TRADEWINDS], "is not a DNS label", 2),
        (["onboard", "acme", "--subscription", "not-a-guid"], "is not a subscription id", 2),
        (["onboard", "acme", "--subscription", TRADEWINDS], "is onboarded already (tradewinds)", 1),
        (["onboard", "tradewinds", "--subscription", ACME], "tradewinds is onboarded already", 1),
        (["onboard", "acme", "--subscription", ACME, "--service", "saas-9"], "no service saas-9", 1),
        (["onboard", "acme", "--subscription", ACME, "--provider", "provider-9"], "no provider stack provider-9", 1),
        (["approve", "nobody", "--reason", "x"], "nobody is not in the registry", 1),
        (["offboard", "nobody"], "nobody is not in the registry", 1),
    ]:
        assert commands.main(argv, tmp_path) == status, argv
        assert said in capsys.readouterr().err, argv
        assert _files(tmp_path) == before, argv


def test_approving_a_customer_whose_entry_is_broken_names_the_file_and_its_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_stack_files(tmp_path, LAB)
    (tmp_path / "customers").mkdir(exist_ok=True)
    (tmp_path / "customers" / "acme.yaml").write_text("provider: provider\nservice: [saas\n")
    assert commands.main(["approve", "acme", "--reason", "contract AC-1"], tmp_path) == 2
    said = capsys.readouterr().err
    assert "the registry (customers/) has problems; fix them first" in said
    assert "customers/acme.yaml: is not valid YAML" in said
    assert commands.main(["approve", "../customers/acme", "--reason", "x"], tmp_path) == 2
    assert "'../customers/acme': \"../customers/acme\" is not a DNS label" in capsys.readouterr().err


def test_a_bad_csv_row_refuses_the_whole_file_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_stack_files(tmp_path, LAB)
    rows = tmp_path / "customers.csv"
    rows.write_text(
        "customer,subscriptions,approval,contract\n"
        f"acme,{ACME},auto,AC-1\n"
        "globex,00000000-5555-4555-8555-555555555555,sometimes,GX-1\n"
    )
    assert commands.main(["onboard", "--from", str(rows)], tmp_path) == 2
    assert "customers.csv line 3: has approval 'sometimes'" in capsys.readouterr().err
    assert not (tmp_path / "customers" / "acme.yaml").exists() and not (tmp_path / "Pulumi.consumer-acme.yaml").exists()
    rows.write_text(f"customer,subscriptions,approval,contract\nacme,{ACME},auto,AC-1\n")
    assert commands.main(["onboard", "--from", str(rows)], tmp_path) == 0
    assert stack_settings("consumer-acme", tmp_path).registered is not None  # type: ignore[union-attr]


def test_a_full_service_sends_the_next_customer_to_a_new_one_and_eight_full_ones_refuse(tmp_path: Path) -> None:
    copy_stack_files(tmp_path, LAB)
    lab_visible = sum(len(c.subscriptions) for c in read_registry(tmp_path).customers)
    batch = [
        onboarding.Onboarding(f"c{n}", [scale.subscription_of(n)], stack=False)
        for n in range(MAX_SUBSCRIPTIONS - lab_visible)
    ]
    commit(tmp_path, onboarding.plan_onboarding(tmp_path, batch))
    change = onboarding.plan_onboarding(
        tmp_path, [onboarding.Onboarding("next", [scale.subscription_of(9999)], stack=False)]
    )
    assert any("declared service saas-2 on provider" in note for note in change.notes)
    assert "- name: saas-2" in change.files["Pulumi.provider.yaml"]
    assert "# Who may connect is not here" in change.files["Pulumi.provider.yaml"]  # the user's comments stay
    edit(tmp_path / "Pulumi.provider.yaml", **{"pls-saas:additionalServices": [f"saas-{k}" for k in range(2, 9)]})
    full = [
        onboarding.Onboarding(
            f"big{k}",
            [f"{n:08d}-{k:04d}-4666-8666-666666666666" for n in range(MAX_SUBSCRIPTIONS)],
            service=f"saas-{k}",
            stack=False,
        )
        for k in range(2, 9)
    ]
    commit(tmp_path, onboarding.plan_onboarding(tmp_path, full))
    with pytest.raises(RefusedError, match=r"every service is full .* another provider stack"):
        onboarding.plan_onboarding(tmp_path, [onboarding.Onboarding("late", [scale.subscription_of(9998)])])


def test_a_1001st_endpoint_is_refused_by_azure() -> None:
    world = World(LAB)
    sim = deploy(
        world, "provider", config_for("provider", visibility=["*"], allowAnyoneWithAlias=True, autoApproval=[])
    )
    service = world.azure.service_by_alias(sim.outputs["alias"])
    assert service is not None
    for n in range(1000):
        world.azure.connect(
            f"/subscriptions/{scale.subscription_of(n)}/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/e{n}",
            scale.subscription_of(n),
            service.alias,
            f"e{n}",
            "",
            False,
        )
    with pytest.raises(AzureError, match="1000 private endpoint connections"):
        world.azure.connect(
            f"/subscriptions/{ACME}/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/late",
            ACME,
            service.alias,
            "late",
            "",
            False,
        )


def test_onboarding_a_customer_on_its_own_vnet_the_way_the_stack_file_comment_says(tmp_path: Path) -> None:
    provider, service = _onboarding_provider(tmp_path)
    customer, subscription = _unused_customer(tmp_path)
    first = stack_config(provider, tmp_path)["serviceName"]
    _entry(
        tmp_path,
        customer,
        provider=provider,
        **({"service": service} if service != first else {}),
        subscriptions=[subscription],
    )
    own = tmp_path / f"Pulumi.consumer-{customer}.yaml"
    own.write_text((ROOT / "Pulumi.consumer.yaml").read_text())
    vnet = f"/subscriptions/{subscription}/resourceGroups/network/providers/Microsoft.Network/virtualNetworks/hub"
    edit(
        own,
        **{
            "azure-native:subscriptionId": subscription,
            "pls-saas:customer": customer,
            "pls-saas:endpointSubnetId": f"{vnet}/subnets/private-endpoints",
            "pls-saas:vnetHasOutbound": True,
            "pls-saas:providerStack": f"organization/pls-saas/{provider}",
            "pls-saas:consumerVnetCidr": None,
            "pls-saas:endpointSubnetCidr": None,
            "pls-saas:workloadSubnetCidr": None,
        },
    )
    deployed = _all_green(tmp_path)[f"consumer-{customer}"]
    assert deployed.outputs["connectionState"] == "Pending"
    assert deployed.one("privatedns:VirtualNetworkLink").inputs["virtualNetwork"] == {"id": vnet}


def test_multi_region_consumers_resolve_their_regions_provider(tmp_path: Path) -> None:
    copy_stack_files(tmp_path)
    (tmp_path / "Pulumi.provider-swedencentral.yaml").write_text((ROOT / "Pulumi.provider.yaml").read_text())
    (tmp_path / "customers" / "nordic.yaml").write_text(
        yaml.safe_dump({"provider": "provider-swedencentral", "subscriptions": [ACME]})
    )
    edit(tmp_path / "Pulumi.provider-swedencentral.yaml", **{"pls-saas:location": "swedencentral"})
    (tmp_path / "Pulumi.consumer-nordic.yaml").write_text((ROOT / "Pulumi.consumer.yaml").read_text())
    edit(
        tmp_path / "Pulumi.consumer-nordic.yaml",
        **{
            "azure-native:subscriptionId": ACME,
            "pls-saas:customer": "nordic",
            "pls-saas:providerStack": "organization/pls-saas/provider-swedencentral",
        },
    )
    deployed = _all_green(tmp_path)
    alias = deployed["consumer-nordic"].outputs["providerAlias"]
    assert alias == deployed["provider-swedencentral"].outputs["alias"]
    assert alias.endswith(".swedencentral.azure.privatelinkservice")
    assert deployed["consumer"].outputs["providerAlias"] == deployed["provider"].outputs["alias"] != alias


def test_the_plan_of_a_changed_stack_file_names_the_replacement(tmp_path: Path) -> None:
    root = committed(repo_with(tmp_path))
    # The working tree's provider stack file asks for a new service name; HEAD is what is deployed.
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:serviceName": "saas2"})
    preview = preview_against("provider", "HEAD", root)
    (line,) = preview.lines
    assert preview.refused and line.startswith("refused before any change") and ALIAS_CHANGES in line


def test_the_preview_deploys_the_revision_only_when_its_stack_files_differ(tmp_path: Path) -> None:
    root = committed(repo_with(tmp_path))
    planned = deploy_for("consumer", root)
    unchanged = preview_against("consumer", "HEAD", root, planned)
    customs = sum(r.custom for r in planned.deployed["consumer"].resources)
    assert unchanged == Preview([f"0 to create, 0 to update, 0 to replace, 0 to delete, {customs} unchanged"], False)
    edit(root / "Pulumi.consumer.yaml", **{"pls-saas:dnsRecord": "portal"})
    changed = preview_against("consumer", "HEAD", root, deploy_for("consumer", root))
    assert changed.lines[0].startswith("0 to create, 0 to update, 1 to replace, 0 to delete")
    (replaced,) = changed.lines[1:]
    assert replaced.endswith(
        "tradewinds-dns-a (PrivateRecordSet): replaces tradewinds-dns-a (changed: relativeRecordSetName)"
    )


def test_the_plan_warns_a_customer_whose_name_is_not_on_the_providers_certificate(tmp_path: Path) -> None:
    tls = {"tls": True, "fqdns": ["api.saas.example.com"]}
    on_the_certificate = parse(
        config_for("consumer", dnsZone="saas.example.com", https=True), stack="consumer", project_dir=LAB
    )
    elsewhere = parse(
        config_for("consumer", dnsZone="saas.tradewinds.example", https=True), stack="consumer", project_dir=LAB
    )
    assert isinstance(on_the_certificate, ConsumerSettings) and isinstance(elsewhere, ConsumerSettings)
    root = repo_with(tmp_path, **tls)
    assert not any("TLS certificate" in line for line in connection_forecast(on_the_certificate, root))
    (warning,) = [line for line in connection_forecast(elsewhere, root) if "TLS certificate" in line]
    assert "api.saas.tradewinds.example is not in provider's fqdns" in warning


def test_the_plan_warns_a_customer_that_would_verify_with_the_wrong_protocol(tmp_path: Path) -> None:
    plain = parse(config_for("consumer"), stack="consumer", project_dir=LAB)
    assert isinstance(plain, ConsumerSettings) and not plain.https
    root = repo_with(tmp_path, tls=True, fqdns=["api.saas.example.com"])
    (warning,) = [line for line in connection_forecast(plain, root) if "wrong protocol" in line]
    assert "set https: true" in warning


def test_the_plan_warns_a_customer_that_would_expect_proxy_protocol_from_a_provider_without_it(tmp_path: Path) -> None:
    expecting = parse(config_for("consumer", proxyProtocol=True), stack="consumer", project_dir=LAB)
    assert isinstance(expecting, ConsumerSettings)
    assert not any(
        "proxyProtocol" in line for line in connection_forecast(expecting, repo_with(tmp_path, proxyProtocol=True))
    )
    (warning,) = [
        line
        for line in connection_forecast(expecting, repo_with(tmp_path, proxyProtocol=False))
        if "proxyProtocol" in line
    ]
    assert "scripts/verify would expect the wrong client address and LinkID (set proxyProtocol: false)" in warning


def test_new_web_vm_software_is_applied_in_place_and_keeps_the_alias() -> None:
    world = World(LAB)
    before = deploy(world, "provider", _provider())
    after = deploy(world, "provider", _provider(tenantRateLimit=7))
    assert replacements(before, after) == []
    changed = sorted((step.resource.name, step.changed) for step in steps(before, after) if step.op != "same")
    assert changed == [(f"web-{i}-software", ("source",)) for i in (1, 2, 3)]
    assert after.outputs["alias"] == before.outputs["alias"]


def test_a_customer_of_an_invalid_provider_stack_file_is_told_the_providers_own_problem(tmp_path: Path) -> None:
    root = repo_with(tmp_path, keyVaultAllowedIpRanges=["203.0.113.25"])
    repository = deploy_repository(root)
    assert "keyVaultAllowedIpRanges" in str(repository.failed["provider"].cause)
    cause = str(repository.failed["consumer"].cause)
    assert cause.startswith("providerStack: Pulumi.provider.yaml") and "keyVaultAllowedIpRanges" in cause
    assert repository.failed["consumer"].registrations == []


def test_the_preview_lists_what_removing_the_test_vm_deletes_and_updates() -> None:
    world = world_with_provider()
    before = deploy(world, "consumer", config_for("consumer"))
    after = deploy(world, "consumer", config_for("consumer", testVm=False))
    found = {(step.op, step.resource.type.rsplit(":", 1)[-1]): step.changed for step in steps(before, after)}
    gone = {kind for op, kind in found if op == "delete"}
    assert gone == {"VirtualMachine", "NetworkInterface", "NatGateway", "PublicIPAddress"}
    assert found[("update", "Subnet")] == ("natGateway",)
    assert not any(op in ("create", "replace") for op, _ in found)
    again = deploy(world, "consumer", config_for("consumer", testVm=False))
    assert {step.op for step in steps(after, again)} == {"same"}  # a second run changes nothing (AVM's idem)


def test_the_plan_exits_non_zero_when_the_change_would_be_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI gates on the exit status: 1 when Azure, the engine or the program would refuse the change."""
    import operations.plan

    # The lab's provider, whatever the user's stack file holds; the preview decides the exit status.
    monkeypatch.setattr(operations.plan, "stack_settings", lambda stack, root: stack_settings(stack, LAB))
    monkeypatch.setattr(operations.plan, "run", lambda stack, root: deployed_once(LAB))
    monkeypatch.setattr(operations.plan, "decision_notes", lambda provider, root: [])
    for refused, status in ((True, 1), (False, 0)):
        preview = Preview(["refused before any change: …" if refused else "0 to create"], refused)
        monkeypatch.setattr(
            operations.plan, "preview_against", lambda stack, revision, root, planned, preview=preview: preview
        )
        assert operations.plan.main(["provider"]) == status


def test_a_decision_about_an_endpoint_no_stack_file_creates_is_shown_as_assumed_and_a_look_alike_warned() -> None:
    look_alike = f"/subscriptions/{TRADEWINDS}/resourceGroups/globx-rg/providers/Microsoft.Network/privateEndpoints/"
    other_tenant = f"/subscriptions/{STRANGER}/resourceGroups/apps/providers/Microsoft.Network/privateEndpoints/pe1"
    provider = parse(
        _provider(approvedConnections=[f"{look_alike}globx-saas-pe | typo", f"{other_tenant} | another tenant"]),
        stack="provider",
        project_dir=LAB,
    )
    assert isinstance(provider, ProviderSettings)
    notes = decision_notes(provider, LAB)
    assert sum("(assumed: no stack file here creates it)" in line for line in notes) == 2
    (warning,) = [line for line in notes if line.startswith("warning:")]
    assert "globx-saas-pe looks like the endpoint of a customer 'globx'" in warning


def test_an_address_from_the_offline_placeholder_ranges_is_marked_as_not_real() -> None:
    assert "placeholder" in placeholder_note("198.18.3.4")
    assert placeholder_note("10.0.4.4") == placeholder_note("not an address") == placeholder_note(5) == ""


# --- hundreds of customers: a stack's plan deploys what it depends on, not the repository --------------------


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository of 250 customers over the provider's three services, onboarded with scripts/onboard's code
    and approved with scripts/approve's (maintenance.scale)."""
    root = tmp_path_factory.mktemp("crowded")
    scale.generate(root, 250)
    return root


def test_one_customers_plan_deploys_only_its_provider_and_itself(crowded: Path) -> None:
    planned = deploy_for("consumer-c0150", crowded)
    assert set(planned.deployed) == {"provider", "consumer-c0150"} and planned.failed == {}
    assert planned.deployed["consumer-c0150"].outputs["connectionState"] == "Pending"  # manual, not approved
    approved = deploy_for("consumer-c0151", crowded)  # manual, approved in its registry entry
    assert approved.deployed["consumer-c0151"].outputs["connectionState"] == "Approved"


def test_the_providers_plan_deploys_no_customer_and_holds_every_customers_connection(crowded: Path) -> None:
    planned = deploy_for("provider", crowded)
    assert set(planned.deployed) == {"provider"} and planned.assumed == []
    connections = planned.deployed["provider"].outputs["connections"]
    statuses = {c["privateEndpointId"].split("/")[-1]: c["status"] for c in connections}
    assert len(statuses) == 250 + 2  # and the lab's tradewinds and contoso (fabrikam is given another alias)
    assert {c["service"] for c in connections} == {"saas", "saas-2", "saas-3"}
    assert statuses["c0100-saas-pe"] == "Approved"  # auto-approved
    assert statuses["c0101-saas-pe"] == "Approved"  # approved by its endpoint's id
    assert statuses["c0102-saas-pe"] == "Pending"


def test_plan_all_gives_every_stack_exactly_the_verdict_of_its_own_plan(tmp_path: Path) -> None:
    """Against HEAD: the provider renamed (a new alias: refused), one customer's file invalid, one customer nobody
    registered (not visible: refused by Azure), the others as they were."""
    root = committed(copy_lab(tmp_path))
    edit(root / "Pulumi.provider.yaml", **{"pls-saas:serviceName": "saas2"})
    edit(root / "Pulumi.consumer-contoso.yaml", **{"pls-saas:dnsRecord": "Not_A_Label"})
    (root / "Pulumi.consumer-stranger.yaml").write_text((root / "Pulumi.consumer.yaml").read_text())
    edit(
        root / "Pulumi.consumer-stranger.yaml",
        **{"pls-saas:customer": "stranger", "azure-native:subscriptionId": STRANGER},
    )
    rows, found = plan_all(root, "HEAD")
    own = {stack: plan_one(stack, "HEAD", root=root) for stack in stack_files(root)}
    assert {stack: verdict.status for stack, verdict in found.items()} == {
        stack: verdict.status for stack, verdict in own.items()
    }
    assert {stack: verdict.status for stack, verdict in found.items()} == {
        "provider": 1,
        "consumer": 0,
        "consumer-contoso": 2,
        "consumer-fabrikam": 0,
        "consumer-stranger": 1,
    }
    (provider_row,) = [row for row in rows if row.startswith("| provider |")]
    assert "refused: refused before any change" in provider_row and ALIAS_CHANGES in provider_row
    (stranger_row,) = [row for row in rows if row.startswith("| consumer-stranger |")]
    assert "PrivateLinkServiceNotVisible" in stranger_row


def test_plan_all_names_a_customer_of_an_invalid_provider_with_the_providers_problem(tmp_path: Path) -> None:
    root = repo_with(tmp_path, keyVaultAllowedIpRanges=["203.0.113.25"])
    rows, found = plan_all(root)
    assert (found["provider"].status, found["consumer"].status) == (2, 1)
    (provider_row,) = [row for row in rows if row.startswith("| provider |")]
    assert "invalid: " in provider_row and "keyVaultAllowedIpRanges" in provider_row
    (consumer_row,) = [row for row in rows if row.startswith("| consumer |")]
    assert "refused: providerStack: Pulumi.provider.yaml" in consumer_row
