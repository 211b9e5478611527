"""The provider's Key Vault for its TLS certificate, and the identity the web VMs read it with.

No secret passes through Pulumi: the provider imports the certificate into the vault itself, and the
Key Vault VM extension on each web VM fetches it with this identity (role Key Vault Secrets User).
"""

from typing import NotRequired, TypedDict

import pulumi
from pulumi_azure_native import authorization, keyvault, managedidentity

from components._package import formerly, type_token
from components._roles import grant_built_in_role

KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
"""Built-in role: read secrets' contents, which is how a certificate's private key is read (Azure built-in roles)."""
SOFT_DELETE_DAYS = 90


class CertificateVaultArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the vault and the identity."""
    location: pulumi.Input[str]
    """Azure region."""
    reader_subnet_ids: list[pulumi.Input[str]]
    """Subnets (with the Microsoft.KeyVault service endpoint) whose VMs fetch the certificate through the firewall."""
    allowed_ip_ranges: NotRequired[list[str]]
    """Public addresses let through the firewall: the operators who import certificates."""
    tags: NotRequired[dict[str, str]]
    """Tags for the vault and the identity."""


class CertificateVault(pulumi.ComponentResource):
    """A Key Vault for a TLS certificate (RBAC only, purge protection, firewall) and an identity that may read it."""

    vault_id: pulumi.Output[str]
    vault_name: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    reader_identity_id: pulumi.Output[str]
    reader_client_id: pulumi.Output[str]
    reader_role_assignment: authorization.RoleAssignment
    """Extensions that read the vault must wait for it: Azure RBAC, not the vault, decides who reads."""

    def __init__(self, name: str, args: CertificateVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("CertificateVault"), name, {}, formerly("pls:security:CertificateVault", opts))
        tags = {**args.get("tags", {}), "component": name}
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        vault = keyvault.Vault(
            f"{name}-kv",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            properties={
                "tenant_id": client.tenant_id,
                "sku": {"family": keyvault.SkuFamily.A, "name": keyvault.SkuName.STANDARD},
                # Access is Azure RBAC only: no access policies to drift from the role assignments.
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": SOFT_DELETE_DAYS,
                # Once on, it stays on: a deleted certificate (or vault) can be recovered, never purged early.
                "enable_purge_protection": True,
                "public_network_access": keyvault.PublicNetworkAccess.ENABLED,
                "network_acls": {
                    "default_action": keyvault.NetworkRuleAction.DENY,
                    "bypass": keyvault.NetworkRuleBypassOptions.AZURE_SERVICES,
                    "ip_rules": [{"value": ip} for ip in args.get("allowed_ip_ranges", [])],
                    "virtual_network_rules": [{"id": subnet} for subnet in args["reader_subnet_ids"]],
                },
            },
            tags=tags,
            opts=child,
        )
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-reader",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            tags=tags,
            opts=child,
        )
        self.reader_role_assignment = grant_built_in_role(
            f"{name}-reader-secrets-user",
            scope=vault.id,
            role_id=KEY_VAULT_SECRETS_USER,
            principal_id=identity.principal_id,
            subscription_id=client.subscription_id,
            parent=self,
        )
        self.vault_id = vault.id
        self.vault_name = vault.name
        self.vault_uri = vault.properties.apply(lambda p: p.vault_uri or "")
        self.reader_identity_id = identity.id
        self.reader_client_id = identity.client_id
        self.register_outputs(
            {
                "vault_id": self.vault_id,
                "vault_name": self.vault_name,
                "vault_uri": self.vault_uri,
                "reader_identity_id": self.reader_identity_id,
                "reader_client_id": self.reader_client_id,
            }
        )

    def secret_url(self, certificate_name: str) -> pulumi.Output[str]:
        """The versionless URL the Key Vault VM extension observes (/secrets/ carries the key, /certificates/ not)."""
        return self.vault_uri.apply(lambda uri: f"{uri.rstrip('/')}/secrets/{certificate_name}")
