"""A Linux VM with one private NIC: SSH key only, no public IP, boot diagnostics on."""

import base64
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
from pulumi_azure_native import compute, monitor, network

from components._package import formerly, type_token

DEFAULT_SIZE = "Standard_B1s"
DEFAULT_ADMIN_USERNAME = "azureuser"


class ImageReference(TypedDict):
    """A marketplace image, as in an image URN publisher:offer:sku:version."""

    publisher: str
    """e.g. Canonical"""
    offer: str
    """e.g. ubuntu-24_04-lts"""
    sku: str
    """e.g. server"""
    version: str
    """e.g. latest"""


DEFAULT_IMAGE = ImageReference(publisher="Canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")


class VmProfile(TypedDict):
    """What every Linux VM of the package is made of, apart from its network."""

    ssh_public_key: pulumi.Input[str]
    """OpenSSH public key of the admin user: ssh-ed25519, or ssh-rsa of at least 2048 bits (Azure refuses others)."""
    admin_username: NotRequired[str]
    """Admin user (default azureuser); password authentication is off."""
    size: NotRequired[pulumi.Input[str]]
    """VM size (default Standard_B1s)."""
    image: NotRequired[ImageReference]
    """Image (default Ubuntu 24.04 LTS, Canonical:ubuntu-24_04-lts:server:latest)."""


class ObservedCertificate(TypedDict):
    """A Key Vault certificate the Key Vault VM extension (Linux, 4.x) installs on the VM and keeps renewed."""

    secret_url: pulumi.Input[str]
    """https://<vault>.vault.azure.net/secrets/<certificate>, without a version."""
    store_location: str
    """Folder on the VM: <vault>.<certificate>.pem (full chain) and .keyid (key), symlinks to the newest version."""
    identity_id: pulumi.Input[str]
    """A user-assigned identity allowed to read the secret; the VM gets it."""
    identity_client_id: pulumi.Input[str]
    """Client id of that identity, for the extension's sign-in."""
    granted_by: pulumi.Resource
    """The role assignment that lets the identity read: the extension fails if it starts first."""


class VmSoftware(TypedDict):
    """Software a managed Run Command applies to the VM in place. Azure runs the script when the VM is created and
    again whenever the script changes, or the VM's size does (it restarted). The deployment waits for it, and
    fails, naming the VM, when it exits non-zero."""

    script: pulumi.Input[str]
    """A shell script (#!/bin/sh), run as root. What it prints is the Run Command's output."""
    timeout_seconds: NotRequired[int]
    """How long it may run (default 3600 s)."""


class LocalHealthProbe(TypedDict):
    """The Application Health extension's probe, from inside the VM: http://localhost:<port><path> answers 200
    while the application is healthy (Azure's automatic guest patching watches it to catch a bad patch)."""

    port: int
    """A loopback port (it needs no PROXY protocol header: the probe comes from the VM itself)."""
    path: str
    """e.g. /healthz"""


class LinuxVmArgs(TypedDict):
    resource_group_name: pulumi.Input[str]
    """Resource group of the VM and its NIC."""
    location: pulumi.Input[str]
    """Azure region of the subnet's VNet."""
    subnet_id: pulumi.Input[str]
    """Subnet of the VM's only NIC (no public IP)."""
    vm: VmProfile
    """Size, image and admin of the VM."""
    computer_name: str
    """Host name inside the VM."""
    zone: NotRequired[int]
    """Availability zone (1-3); default: none."""
    cloud_init: NotRequired[str]
    """cloud-init user data (#cloud-config) for the first boot. Azure cannot change a VM's custom data and cloud-init
    runs it once, so a change reaches only VMs created after it: change a running VM with `software`."""
    software: NotRequired[VmSoftware]
    """Software applied in place by a managed Run Command, after the VM's extensions."""
    health_probe: NotRequired[LocalHealthProbe]
    """Report the application's health from inside the VM (the Application Health extension)."""
    automatic_patching: NotRequired[bool]
    """Azure installs critical and security patches itself (automatic VM guest patching, AutomaticByPlatform): in
    the VM's off-peak hours, never in two availability zones at once, watching the VM's health (default false: the
    image's own updates). The image must be one Azure supports for it (Ubuntu 22.04 and 24.04 are)."""
    load_balancer_backend_pool_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Load balancer backend pools the NIC joins."""
    application_security_group_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Application security groups the NIC joins."""
    certificate: NotRequired[ObservedCertificate]
    """A Key Vault certificate to install and keep renewed on the VM."""
    data_collection_rule_id: NotRequired[pulumi.Input[str]]
    """Collect logs as this data collection rule says: the VM gets the Azure Monitor agent (which signs in with
    the VM's system-assigned identity) and an association with the rule."""
    tags: NotRequired[dict[str, str]]
    """Tags for the VM and its NIC."""


class LinuxVm(pulumi.ComponentResource):
    """A Linux VM with one private NIC: SSH key only, no public IP, Trusted Launch, boot diagnostics on."""

    vm_id: pulumi.Output[str]
    """Resource id of the VM."""
    vm_name: pulumi.Output[str]
    """Azure name of the VM (for az vm run-command)."""
    nic_id: pulumi.Output[str]
    """Resource id of its NIC."""
    private_ip: pulumi.Output[str]
    """Its private IP."""

    def __init__(self, name: str, args: LinuxVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token("LinuxVm"), name, {}, formerly("pls:compute:LinuxVm", opts))
        tags = {**args.get("tags", {}), "component": name}
        profile = args["vm"]
        admin = profile.get("admin_username", DEFAULT_ADMIN_USERNAME)
        image = profile.get("image", DEFAULT_IMAGE)
        certificate = args.get("certificate")
        data_collection_rule_id = args.get("data_collection_rule_id")
        child = pulumi.ResourceOptions(parent=self)
        nic = network.NetworkInterface(
            f"{name}-nic",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            ip_configurations=[
                {
                    "name": "primary",
                    "primary": True,
                    "private_ip_allocation_method": "Dynamic",
                    "subnet": {"id": args["subnet_id"]},
                    "load_balancer_backend_address_pools": [
                        {"id": i} for i in args.get("load_balancer_backend_pool_ids", ())
                    ],
                    "application_security_groups": [{"id": i} for i in args.get("application_security_group_ids", ())],
                }
            ],
            tags=tags,
            opts=child,
        )
        linux: compute.LinuxConfigurationArgsDict = {
            "disable_password_authentication": True,
            "ssh": {
                "public_keys": [
                    {
                        "path": f"/home/{admin}/.ssh/authorized_keys",
                        "key_data": profile["ssh_public_key"],
                    }
                ]
            },
        }
        if args.get("automatic_patching"):
            linux["provision_vm_agent"] = True
            linux["patch_settings"] = {
                "patch_mode": compute.LinuxVMGuestPatchMode.AUTOMATIC_BY_PLATFORM,
                "assessment_mode": compute.LinuxPatchAssessmentMode.AUTOMATIC_BY_PLATFORM,
                "automatic_by_platform_settings": {
                    "reboot_setting": compute.LinuxVMGuestPatchAutomaticByPlatformRebootSetting.IF_REQUIRED
                },
            }
        os_profile: compute.OSProfileArgsDict = {
            "computer_name": args["computer_name"],
            "admin_username": admin,
            "linux_configuration": linux,
        }
        if "cloud_init" in args:
            os_profile["custom_data"] = base64.b64encode(args["cloud_init"].encode()).decode()
        storage_profile: compute.StorageProfileArgsDict = {
            "image_reference": {
                "publisher": image["publisher"],
                "offer": image["offer"],
                "sku": image["sku"],
                "version": image["version"],
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
        monitored = data_collection_rule_id is not None
        if certificate:
            identity = {
                "type": compute.ResourceIdentityType.SYSTEM_ASSIGNED_USER_ASSIGNED
                if monitored
                else compute.ResourceIdentityType.USER_ASSIGNED,
                "user_assigned_identities": [certificate["identity_id"]],
            }
        elif monitored:
            identity = {"type": compute.ResourceIdentityType.SYSTEM_ASSIGNED}
        vm = compute.VirtualMachine(
            f"{name}-vm",
            resource_group_name=args["resource_group_name"],
            location=args["location"],
            zones=[str(args["zone"])] if "zone" in args else None,
            hardware_profile={"vm_size": profile.get("size", DEFAULT_SIZE)},
            storage_profile=storage_profile,
            os_profile=os_profile,
            # The NIC is a resource of its own: it outlives the VM (a replacement gets it back, with its place in the
            # load balancer's pool), so deleting the VM detaches it.
            network_profile={
                "network_interfaces": [{"id": nic.id, "primary": True, "delete_option": compute.DeleteOptions.DETACH}]
            },
            security_profile=security_profile,
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            identity=identity,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                # Azure cannot put a VM in another zone or on another image: that is a new VM. The old one goes
                # first, because its name and NIC (with its place in the load balancer's pool) pass to the new one.
                replace_on_changes=["storageProfile.imageReference", "zones"],
                delete_before_replace=True,
                # Custom data is the first boot's; `software` changes a running VM.
                ignore_changes=["osProfile.customData"],
            ),
        )

        def extension(
            role: str, publisher: str, extension_type: str, version: str, **rest: Any
        ) -> compute.VirtualMachineExtension:
            """An Azure VM extension on this VM, kept on its newest minor version by Azure."""
            return compute.VirtualMachineExtension(
                f"{name}-{role}",
                resource_group_name=args["resource_group_name"],
                vm_name=vm.name,
                location=args["location"],
                publisher=publisher,
                type=extension_type,
                type_handler_version=version,
                auto_upgrade_minor_version=True,
                enable_automatic_upgrade=True,
                tags=tags,
                **rest,
            )

        extensions: list[compute.VirtualMachineExtension] = []
        if certificate:
            kv_certificate = extension(
                "kv-certificate",
                "Microsoft.Azure.KeyVault",
                "KeyVaultForLinux",
                "4.0",
                settings={
                    "secretsManagementSettings": {
                        "pollingIntervalInS": "3600",
                        "observedCertificates": [
                            {
                                "url": certificate["secret_url"],
                                "certificateStoreLocation": certificate["store_location"],
                            }
                        ],
                    },
                    # Required with a user-assigned identity (Microsoft's extension schema).
                    "authenticationSettings": {
                        "msiEndpoint": "http://169.254.169.254/metadata/identity",
                        "msiClientId": certificate["identity_client_id"],
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[certificate["granted_by"]]),
            )
            extensions.append(kv_certificate)
        if data_collection_rule_id is not None:
            extensions.append(
                extension("monitoring-agent", "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.0", opts=child)
            )
            monitor.DataCollectionRuleAssociation(
                f"{name}-log-collection",
                resource_uri=vm.id,
                association_name=f"{name}-log-collection",
                data_collection_rule_id=data_collection_rule_id,
                opts=child,
            )
        if "health_probe" in args:
            extensions.append(
                extension(
                    "app-health",
                    "Microsoft.ManagedServices",
                    "ApplicationHealthLinux",
                    "1.0",  # binary health states: 200 is healthy, anything else is not
                    settings={
                        "protocol": "http",
                        "port": args["health_probe"]["port"],
                        "requestPath": args["health_probe"]["path"],
                        "intervalInSeconds": 5,
                        "numberOfProbes": 1,
                    },
                    opts=child,
                )
            )
        if "software" in args:
            software = args["software"]
            compute.VirtualMachineRunCommandByVirtualMachine(
                f"{name}-software",
                resource_group_name=args["resource_group_name"],
                vm_name=vm.name,
                location=args["location"],
                run_command_name="software",
                source={"script": software["script"]},
                # A resize restarts the VM: the script runs again, and the deployment waits for it (and so for the
                # VM's health, which the script checks). A new VM (image, zone) gets it anew, with its extensions.
                parameters=[{"name": "VM_SIZE", "value": profile.get("size", DEFAULT_SIZE)}],
                async_execution=False,
                treat_failure_as_deployment_failure=True,
                timeout_in_seconds=software.get("timeout_seconds", 3600),
                tags=tags,
                # Last: the certificate and the agents are in place when the software starts using them.
                opts=pulumi.ResourceOptions(parent=self, depends_on=extensions),
            )
        self.vm_id = vm.id
        self.vm_name = vm.name
        self.nic_id = nic.id
        self.private_ip = nic.ip_configurations.apply(lambda cfgs: (cfgs or [])[0].private_ip_address or "")
        self.register_outputs({"vm_id": self.vm_id, "nic_id": self.nic_id, "private_ip": self.private_ip})
