"""A Linux VM with one private NIC: SSH key only, no public IP, boot diagnostics on."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import compute, monitor, network

from pls.settings import VmSettings


@dataclass(frozen=True)
class ObservedCertificate:
    """A Key Vault certificate the Key Vault VM extension (Linux, 4.x) installs on the VM and keeps renewed."""

    secret_url: pulumi.Input[str]
    """https://<vault>.vault.azure.net/secrets/<certificate>, without a version."""
    store_location: str
    """Folder on the VM: <vault>.<certificate>.pem (full chain) and .keyid (key), symlinks to the newest version."""
    identity_id: pulumi.Input[str]
    """A user-assigned identity allowed to read the secret; the VM gets it."""
    identity_client_id: pulumi.Input[str]
    granted_by: pulumi.Resource
    """The role assignment that lets the identity read: the extension fails if it starts first."""


@dataclass(frozen=True)
class LinuxVmArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    vm: VmSettings
    computer_name: str
    zone: int | None = None
    cloud_init: str | None = None
    load_balancer_backend_pool_ids: Sequence[pulumi.Input[str]] = ()
    application_security_group_ids: Sequence[pulumi.Input[str]] = ()
    certificate: ObservedCertificate | None = None
    data_collection_rule_id: pulumi.Input[str] | None = None
    """Collect logs as this data collection rule says: the VM gets the Azure Monitor agent (which signs in with
    the VM's system-assigned identity) and an association with the rule."""
    tags: dict[str, str] = field(default_factory=dict)


class LinuxVm(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    vm_name: pulumi.Output[str]
    nic_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]

    def __init__(self, name: str, args: LinuxVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pls:compute:LinuxVm", name, {}, opts)
        tags = {**args.tags, "component": name}
        child = pulumi.ResourceOptions(parent=self)
        nic = network.NetworkInterface(
            f"{name}-nic",
            resource_group_name=args.resource_group_name,
            location=args.location,
            ip_configurations=[
                {
                    "name": "primary",
                    "primary": True,
                    "private_ip_allocation_method": "Dynamic",
                    "subnet": {"id": args.subnet_id},
                    "load_balancer_backend_address_pools": [{"id": i} for i in args.load_balancer_backend_pool_ids],
                    "application_security_groups": [{"id": i} for i in args.application_security_group_ids],
                }
            ],
            tags=tags,
            opts=child,
        )
        os_profile: compute.OSProfileArgsDict = {
            "computer_name": args.computer_name,
            "admin_username": args.vm.admin_username,
            "linux_configuration": {
                "disable_password_authentication": True,
                "ssh": {
                    "public_keys": [
                        {
                            "path": f"/home/{args.vm.admin_username}/.ssh/authorized_keys",
                            "key_data": args.vm.ssh_public_key,
                        }
                    ]
                },
            },
        }
        if args.cloud_init:
            os_profile["custom_data"] = base64.b64encode(args.cloud_init.encode()).decode()
        storage_profile: compute.StorageProfileArgsDict = {
            "image_reference": {
                "publisher": args.vm.image.publisher,
                "offer": args.vm.image.offer,
                "sku": args.vm.image.sku,
                "version": args.vm.image.version,
            },
            "os_disk": {
                "create_option": "FromImage",
                "caching": compute.CachingTypes.READ_WRITE,
                "delete_option": "Delete",
                "managed_disk": {"storage_account_type": "StandardSSD_LRS"},
            },
        }
        security_profile: compute.SecurityProfileArgsDict = {
            "security_type": "TrustedLaunch",
            "uefi_settings": {"secure_boot_enabled": True, "v_tpm_enabled": True},
        }
        identity: compute.VirtualMachineIdentityArgsDict | None = None
        monitored = args.data_collection_rule_id is not None
        if args.certificate:
            identity = {
                "type": compute.ResourceIdentityType.SYSTEM_ASSIGNED_USER_ASSIGNED
                if monitored
                else compute.ResourceIdentityType.USER_ASSIGNED,
                "user_assigned_identities": [args.certificate.identity_id],
            }
        elif monitored:
            identity = {"type": compute.ResourceIdentityType.SYSTEM_ASSIGNED}
        vm = compute.VirtualMachine(
            f"{name}-vm",
            resource_group_name=args.resource_group_name,
            location=args.location,
            zones=[str(args.zone)] if args.zone else None,
            hardware_profile={"vm_size": args.vm.size},
            storage_profile=storage_profile,
            os_profile=os_profile,
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True, "delete_option": "Delete"}]},
            security_profile=security_profile,
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            identity=identity,
            tags=tags,
            # Azure cannot change a VM's custom data: new software means a new VM. The old one goes first,
            # because the NIC (and its place in the load balancer's pool) passes to the new one.
            opts=pulumi.ResourceOptions(
                parent=self, replace_on_changes=["osProfile.customData"], delete_before_replace=True
            ),
        )

        def extension(
            role: str, publisher: str, extension_type: str, version: str, **rest: Any
        ) -> compute.VirtualMachineExtension:
            """An Azure VM extension on this VM, kept on its newest minor version by Azure."""
            return compute.VirtualMachineExtension(
                f"{name}-{role}",
                resource_group_name=args.resource_group_name,
                vm_name=vm.name,
                location=args.location,
                publisher=publisher,
                type=extension_type,
                type_handler_version=version,
                auto_upgrade_minor_version=True,
                enable_automatic_upgrade=True,
                tags=tags,
                **rest,
            )

        if args.certificate:
            extension(
                "kv-certificate",
                "Microsoft.Azure.KeyVault",
                "KeyVaultForLinux",
                "4.0",
                settings={
                    "secretsManagementSettings": {
                        "pollingIntervalInS": "3600",
                        "observedCertificates": [
                            {
                                "url": args.certificate.secret_url,
                                "certificateStoreLocation": args.certificate.store_location,
                            }
                        ],
                    },
                    # Required with a user-assigned identity (Microsoft's extension schema).
                    "authenticationSettings": {
                        "msiEndpoint": "http://169.254.169.254/metadata/identity",
                        "msiClientId": args.certificate.identity_client_id,
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.certificate.granted_by]),
            )
        if args.data_collection_rule_id is not None:
            extension("monitoring-agent", "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.0", opts=child)
            monitor.DataCollectionRuleAssociation(
                f"{name}-log-collection",
                resource_uri=vm.id,
                association_name=f"{name}-log-collection",
                data_collection_rule_id=args.data_collection_rule_id,
                opts=child,
            )
        self.vm_id = vm.id
        self.vm_name = vm.name
        self.nic_id = nic.id
        self.private_ip = nic.ip_configurations.apply(lambda cfgs: (cfgs or [])[0].private_ip_address or "")
        self.register_outputs({"vm_id": self.vm_id, "nic_id": self.nic_id, "private_ip": self.private_ip})
