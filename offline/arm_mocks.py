"""Pulumi mocks that answer like Azure Resource Manager, deterministically, from the state of an offline Azure.

Every resource gets the id ARM would give it (ARM below: its type, the input naming it and its ARM parent);
what a type adds to its state is one small handler in STATE_OF. Invokes are answered from the same state.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from offline.azure import AzureError, OfflineAzure

TENANT_ID = "00000000-0000-4000-8000-000000000002"

# ARM resource type of each azure-native token, and the inputs naming the resource and its ARM parent.
ARM: dict[str, tuple[str, str, str | None]] = {
    "azure-native:resources:ResourceGroup": ("", "resourceGroupName", None),
    "azure-native:network:VirtualNetwork": ("Microsoft.Network/virtualNetworks", "virtualNetworkName", None),
    "azure-native:network:Subnet": ("subnets", "subnetName", "virtualNetworkName"),
    "azure-native:network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        "networkSecurityGroupName",
        None,
    ),
    "azure-native:network:ApplicationSecurityGroup": (
        "Microsoft.Network/applicationSecurityGroups",
        "applicationSecurityGroupName",
        None,
    ),
    "azure-native:network:PublicIPAddress": ("Microsoft.Network/publicIPAddresses", "publicIpAddressName", None),
    "azure-native:network:NatGateway": ("Microsoft.Network/natGateways", "natGatewayName", None),
    "azure-native:network:LoadBalancer": ("Microsoft.Network/loadBalancers", "loadBalancerName", None),
    "azure-native:network:NetworkInterface": ("Microsoft.Network/networkInterfaces", "networkInterfaceName", None),
    "azure-native:network:PrivateLinkService": ("Microsoft.Network/privateLinkServices", "serviceName", None),
    "azure-native:network:PrivateLinkServicePrivateEndpointConnection": (
        "privateEndpointConnections",
        "peConnectionName",
        "serviceName",
    ),
    "azure-native:network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints", "privateEndpointName", None),
    "azure-native:compute:VirtualMachine": ("Microsoft.Compute/virtualMachines", "vmName", None),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName", None),
    "azure-native:privatedns:VirtualNetworkLink": ("virtualNetworkLinks", "virtualNetworkLinkName", "privateZoneName"),
    "azure-native:privatedns:PrivateRecordSet": ("A", "relativeRecordSetName", "privateZoneName"),
    "azure-native:compute:VirtualMachineExtension": ("extensions", "vmExtensionName", "vmName"),
    "azure-native:compute:VirtualMachineRunCommandByVirtualMachine": ("runCommands", "runCommandName", "vmName"),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName", None),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
        None,
    ),
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces", "workspaceName", None),
    "azure-native:operationalinsights:Table": ("tables", "tableName", "workspaceName"),
    "azure-native:monitor:ActionGroup": ("Microsoft.Insights/actionGroups", "actionGroupName", None),
    "azure-native:monitor:MetricAlert": ("Microsoft.Insights/metricAlerts", "ruleName", None),
    "azure-native:monitor:ScheduledQueryRule": ("Microsoft.Insights/scheduledQueryRules", "ruleName", None),
    "azure-native:monitor:DataCollectionRule": (
        "Microsoft.Insights/dataCollectionRules",
        "dataCollectionRuleName",
        None,
    ),
}
_EXTENSION_RESOURCES: dict[str, tuple[str, str, str]] = {
    # Resources that live on another resource (their scope): type -> (scope input, ARM type, own name input).
    "azure-native:authorization:ManagementLockByScope": ("scope", "Microsoft.Authorization/locks", "lockName"),
    "azure-native:monitor:DiagnosticSetting": ("resourceUri", "Microsoft.Insights/diagnosticSettings", "name"),
    "azure-native:monitor:DataCollectionRuleAssociation": (
        "resourceUri",
        "Microsoft.Insights/dataCollectionRuleAssociations",
        "associationName",
    ),
}
_ARM_PARENT_TYPE = {
    "workspaceName": "Microsoft.OperationalInsights/workspaces",
    "virtualNetworkName": "Microsoft.Network/virtualNetworks",
    "serviceName": "Microsoft.Network/privateLinkServices",
    "privateZoneName": "Microsoft.Network/privateDnsZones",
    "vmName": "Microsoft.Compute/virtualMachines",
}


class AzureMocks(Mocks):
    """Answers like Azure Resource Manager, deterministically, from the state of an offline Azure."""

    def __init__(self, azure: OfflineAzure, subscription: str, stack_outputs: Callable[[str], dict[str, Any]]) -> None:
        self.azure = azure
        self.subscription = subscription
        self.stack_outputs = stack_outputs
        """A StackReference's answer: the engine's record of that stack's outputs."""
        self.invokes: list[MockCallArgs] = []
        self.subnet_cidrs: dict[str, ipaddress.IPv4Network] = {}
        self.allocated: dict[str, int] = {}
        self.nic_ips: dict[str, str] = {}

    def allocate(self, subnet_id: str) -> str:
        """The next free private IP of a subnet (Azure reserves the first four addresses)."""
        prefix = self.subnet_cidrs.get(subnet_id.lower()) or self.azure.existing_subnets.get(subnet_id.lower())
        if prefix is None:
            raise AzureError("InvalidResourceReference", f"Resource {subnet_id} referenced by resource was not found.")
        net = ipaddress.IPv4Network(prefix)
        index = self.allocated.get(subnet_id.lower(), 4)
        self.allocated[subnet_id.lower()] = index + 1
        return str(net.network_address + index)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = inputs.get("name") or args.name
            return name, {"name": name, "outputs": dict(self.stack_outputs(name)), "secretOutputNames": []}
        if args.typ == "azure-native:authorization:RoleAssignment":
            assignment = inputs.get("roleAssignmentName") or str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
            return f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{assignment}", inputs
        if args.typ in _EXTENSION_RESOURCES:
            scope_key, arm_type, own_name_key = _EXTENSION_RESOURCES[args.typ]
            if args.typ.endswith(":ManagementLockByScope"):
                self.azure.lock(inputs[scope_key])
            return f"{inputs[scope_key]}/providers/{arm_type}/{inputs.get(own_name_key) or args.name}", inputs
        if args.typ not in ARM:
            return f"{args.name}-id", inputs
        arm_type, own_name_key, parent_key = ARM[args.typ]
        # Azure-native's autonames are random; offline they are stable per stack (two stacks never share one).
        digest = hashlib.sha256(f"{pulumi.get_stack()}/{args.name}".encode()).hexdigest()[:8]
        name = inputs.get(own_name_key) or f"{args.name}{digest}"
        group = inputs.get("resourceGroupName") or name
        rid = f"/subscriptions/{self.subscription}/resourceGroups/{group}"
        if parent_key:
            rid += f"/providers/{_ARM_PARENT_TYPE[parent_key]}/{inputs[parent_key]}/{arm_type}/{name}"
        elif arm_type:
            rid += f"/providers/{arm_type}/{name}"
        state = {**inputs, "name": name, "id": rid}
        if "identity" in inputs:
            # Azure answers with a map of identity id -> its principal and client ids, not the list it was sent.
            identities = inputs["identity"].get("userAssignedIdentities", [])
            state["identity"] = {**inputs["identity"], "userAssignedIdentities": {i: {} for i in identities}}
        handler = STATE_OF.get(args.typ.rsplit(":", 1)[-1])
        if handler:
            handler(self, Created(rid, name, group, digest, inputs, state))
        return rid, state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return self._answer(args), []

    def _answer(self, args: MockCallArgs) -> dict[str, Any]:
        self.invokes.append(args)
        if args.token == "azure-native:authorization:getClientConfig":
            return {"subscriptionId": self.subscription, "tenantId": TENANT_ID, "clientId": "mock", "objectId": "mock"}
        if args.token == "azure-native:network:getNetworkInterface":
            ip = self.nic_ips[args.args["networkInterfaceName"]]
            return {"ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": ip}]}
        if args.token == "azure-native:network:getPrivateLinkService":
            return self.azure.get_service(args.args["resourceGroupName"], args.args["serviceName"])
        raise NotImplementedError(f"no mock for invoke {args.token}")


class Created:
    """A resource ARM has just created: its id and name, and the state it reports (which a handler adds to)."""

    def __init__(self, rid: str, name: str, group: str, digest: str, inputs: dict[str, Any], state: dict[str, Any]):
        self.rid, self.name, self.group, self.digest, self.inputs, self.state = rid, name, group, digest, inputs, state

    def derived_id(self, what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.rid}/{what}"))


def _subnet(mocks: AzureMocks, r: Created) -> None:
    mocks.subnet_cidrs[r.rid.lower()] = ipaddress.IPv4Network(r.inputs["addressPrefix"])


def _network_interface(mocks: AzureMocks, r: Created) -> None:
    for config in r.state["ipConfigurations"]:
        config["privateIPAddress"] = mocks.allocate(config["subnet"]["id"])
    mocks.nic_ips[r.name] = r.state["ipConfigurations"][0]["privateIPAddress"]


def _load_balancer(mocks: AzureMocks, r: Created) -> None:
    for collection in ("frontendIPConfigurations", "backendAddressPools", "probes"):
        r.state[collection] = [{**c, "id": f"{r.rid}/{collection}/{c['name']}"} for c in r.inputs.get(collection, [])]
    for frontend in r.state["frontendIPConfigurations"]:
        frontend["privateIPAddress"] = mocks.allocate(frontend["subnet"]["id"])


def _vault(mocks: AzureMocks, r: Created) -> None:
    r.state["properties"] = {**r.inputs["properties"], "vaultUri": f"https://{r.name}.vault.azure.net/"}


def _user_assigned_identity(mocks: AzureMocks, r: Created) -> None:
    r.state.update(clientId=r.derived_id("client"), principalId=r.derived_id("principal"), tenantId=TENANT_ID)


def _workspace(mocks: AzureMocks, r: Created) -> None:
    r.state["customerId"] = r.derived_id("customer")


def _public_ip(mocks: AzureMocks, r: Created) -> None:
    r.state["ipAddress"] = "203.0.113.10"


def _private_link_service(mocks: AzureMocks, r: Created) -> None:
    location = r.inputs.get("location", "westeurope")
    r.state["alias"] = mocks.azure.put_service(r.rid, {**r.inputs, "location": location})["alias"]


def _connection_decision(mocks: AzureMocks, r: Created) -> None:
    decision = r.inputs["privateLinkServiceConnectionState"]
    mocks.azure.decide(r.group, r.inputs["serviceName"], r.name, decision["status"], decision.get("description", ""))


def _private_endpoint(mocks: AzureMocks, r: Created) -> None:
    nic_name = r.inputs.get("customNetworkInterfaceName") or f"{r.name}.nic.{r.digest}"
    mocks.nic_ips[nic_name] = mocks.allocate(r.inputs["subnet"]["id"])
    nic_id = f"/subscriptions/{mocks.subscription}/resourceGroups/{r.group}/providers/Microsoft.Network"
    r.state["networkInterfaces"] = [{"id": f"{nic_id}/networkInterfaces/{nic_name}"}]
    for key, automatic in (("manualPrivateLinkServiceConnections", False), ("privateLinkServiceConnections", True)):
        r.state[key] = []
        for c in r.inputs.get(key) or []:
            status, description = mocks.azure.connect(
                r.rid, mocks.subscription, c["privateLinkServiceId"], c["name"], c.get("requestMessage", ""), automatic
            )
            r.state[key].append(
                {**c, "privateLinkServiceConnectionState": {"status": status, "description": description}}
            )


STATE_OF: dict[str, Callable[[AzureMocks, Created], None]] = {
    "Subnet": _subnet,
    "NetworkInterface": _network_interface,
    "LoadBalancer": _load_balancer,
    "Vault": _vault,
    "UserAssignedIdentity": _user_assigned_identity,
    "Workspace": _workspace,
    "PublicIPAddress": _public_ip,
    "PrivateLinkService": _private_link_service,
    "PrivateLinkServicePrivateEndpointConnection": _connection_decision,
    "PrivateEndpoint": _private_endpoint,
}
"""What a created resource of each type (by its token's last part) adds to the state ARM reports."""
