"""The component package's provider: serves the components below to every Pulumi language.

A customer runs `pulumi package add <repository>.git/components@<version>`; the Pulumi CLI starts this file with the
plugin folder (components/) as its only import path and asks it for the package schema, which the SDK's analyzer
derives from the components' type annotations and docstrings.
"""

import sys
from pathlib import Path

# The components import each other as `components.<module>`: their package's parent must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider.experimental import component_provider_host

from components._package import PACKAGE, VERSION
from components.internal_load_balancer import InternalLoadBalancer
from components.private_dns import PrivateDnsRecord
from components.private_endpoint import PrivateEndpoint
from components.private_link_service import PrivateLinkService
from components.private_service_access import PrivateServiceAccess

SERVED = [PrivateServiceAccess, PrivateEndpoint, PrivateDnsRecord, PrivateLinkService, InternalLoadBalancer]
"""The customer's side, whole and in parts, and the provider-side pieces worth reusing."""

if __name__ == "__main__":
    component_provider_host(components=SERVED, name=PACKAGE, version=VERSION)
