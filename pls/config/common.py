"""The keys every stack has, whatever its role: its region, its VMs, and the PROXY protocol switch."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from components.linux_vm import ImageReference, VmProfile
from pls import azure_rules
from pls.config.errors import refuse
from pls.config.keys import Key, Model, Role, matching, rule
from pls.ssh_keys import ssh_key_problem


def _image_urn_ok(urn: str) -> bool:
    parts = urn.split(":")
    return (
        len(parts) == 4
        and all(azure_rules.IMAGE_PART_RE.fullmatch(part) for part in parts[:3])
        and azure_rules.IMAGE_VERSION_RE.fullmatch(parts[3]) is not None
    )


def _ssh_public_key(key: str) -> str:
    problem = ssh_key_problem(key)
    if problem:
        raise refuse(
            problem,
            'set the contents of your public key: pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
            hide_value="PRIVATE KEY" in key,
        )
    return key.strip()


class CommonSettings(Model):
    """What every stack declares, and where it runs."""

    project: str
    """The Pulumi project (not a key: the engine says)."""
    stack: str
    subscription_id: str | None = None
    """`azure-native:subscriptionId`, the subscription the stack deploys into (required for a consumer)."""

    role: Annotated[
        Role,
        Key(
            "both",
            (
                "Which side this stack deploys: `provider` (web tier, internal load balancer, Private Link "
                "Service) or `consumer` (private endpoint, private DNS, test VM). Required."
            ),
        ),
    ]
    location: Annotated[
        str,
        Key(
            "both",
            (
                "Azure region with availability zones 1-3 (checked against Microsoft's list, "
                "pls/azure_rules.py); a Private Link Service is regional (one provider stack per region)."
            ),
        ),
        matching(azure_rules.REGION_NAME_RE, "not an Azure region name", "use e.g. westeurope"),
        rule(
            lambda region: region in azure_rules.ZONE_REGIONS,
            "not an Azure region with availability zones 1-3 (the web tier and its frontend are zonal)",
            f"use one of {', '.join(sorted(azure_rules.ZONE_REGIONS))}",
        ),
    ] = "westeurope"
    admin_username: Annotated[
        str,
        Key(
            "both",
            ("Linux admin user of every VM. Password authentication is disabled; only sshPublicKey can log in."),
        ),
        matching(
            azure_rules.LINUX_USER_RE,
            "not a Linux user name",
            "use up to 32 lowercase letters, digits, - and _, starting with a letter",
        ),
        rule(
            lambda user: user not in azure_rules.RESERVED_USERNAMES, "Azure reserves this name", "choose e.g. azureuser"
        ),
    ] = "azureuser"
    ssh_public_key: Annotated[
        str,
        Key(
            "both",
            (
                "OpenSSH public key for adminUsername: ssh-ed25519, or ssh-rsa of at least 2048 bits (Azure "
                "refuses ECDSA for Linux VMs). Required; never a private key or a password."
            ),
        ),
        AfterValidator(_ssh_public_key),
    ]
    vm_size: Annotated[
        str,
        Key(
            "both",
            ("VM size of the web VMs and of the consumer's test VM."),
        ),
        matching(azure_rules.VM_SIZE_RE, "not an Azure VM size", "use a size such as Standard_B1s"),
    ] = "Standard_B1s"
    vm_image: Annotated[
        str,
        Key(
            "both",
            (
                "Ubuntu LTS image URN publisher:offer:sku:version. The nginx it installs must be >= 1.23.2 for "
                "the LinkID (Ubuntu 24.04 ships 1.24). Azure patches the web VMs itself (automatic guest patching), "
                "for the images it lists (Canonical's Ubuntu 22.04 and 24.04 server are). A new image replaces the "
                "web VMs, a zone at a time."
            ),
        ),
        rule(
            _image_urn_ok,
            "not an image URN",
            "write publisher:offer:sku:version (version: latest or x.y.z), "
            "e.g. Canonical:ubuntu-24_04-lts:server:latest",
        ),
    ] = "Canonical:ubuntu-24_04-lts:server:latest"
    proxy_protocol: Annotated[
        bool,
        Key(
            "both",
            (
                "Provider: send a PROXY protocol v2 header (real client address, LinkID TLV 0xEE) to the "
                "backends; turns on the PLS setting and nginx's parsing together. Off, every tenant arrives from "
                "the NAT IPs: the app sees no consumer address or LinkID and the rate limit is per NAT IP. "
                "Consumer: the provider has it on (its proxyProtocol), so scripts/verify checks that the "
                "provider saw the test VM's own address and the connection's LinkID."
            ),
        ),
    ] = True

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack}

    @property
    def vm(self) -> VmProfile:
        publisher, offer, sku, version = self.vm_image.split(":")
        return VmProfile(
            ssh_public_key=self.ssh_public_key,
            admin_username=self.admin_username,
            size=self.vm_size,
            image=ImageReference(publisher=publisher, offer=offer, sku=sku, version=version),
        )
