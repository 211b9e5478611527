"""Azure Private Link Service for a SaaS: the provider publishes a web service, each customer reaches it privately.

The stack's `role` picks the side: `provider` (Pulumi.provider.yaml) or `consumer`
(Pulumi.consumer*.yaml, one stack per customer). See README.md for the architecture.
"""

import dataclasses
import functools
from collections.abc import Callable

import pulumi

from components.certificate_vault import CertificateVault, CertificateVaultArgs
from components.consumer_network import ConsumerNetwork, ConsumerNetworkArgs, ExistingSubnets, NewNetwork
from components.internal_load_balancer import AdditionalFrontend, InternalLoadBalancer, InternalLoadBalancerArgs
from components.linux_vm import LocalHealthProbe, ObservedCertificate
from components.log_workspace import LogWorkspace, LogWorkspaceArgs, TextLog
from components.private_link_service import ConnectionDecision, PrivateLinkService, PrivateLinkServiceArgs
from components.private_service_access import PrivateServiceAccess, PrivateServiceAccessArgs, VerificationVm
from components.provider_network import ProviderNetwork, ProviderNetworkArgs
from components.service_alerts import ServiceAlerts, ServiceAlertsArgs, WatchedService
from components.web_tier import WebTier, WebTierArgs
from pls import contract
from pls.config import ConsumerSettings, ProviderSettings, load
from pls.config.services import PublishedService
from pls.deployed import check_deployed, decisions_ready, last_deployment
from pls.nginx_site import (
    ACCESS_LOG,
    ACCESS_LOG_COLUMNS,
    ACCESS_LOG_TABLE,
    HEALTH_PATH,
    WHOAMI_PATH,
)
from pls.web_server_config import HEALTH_PORT, LOCAL_HEALTH_PORT
from pls.webserver import BOOTSTRAP, CERT_STORE, render_web_server

# Kept word for word: the lock's notes are an input of every deployed lock, and a new text would update them all.
LOCK_NOTES = (
    "Deleting this Private Link Service changes its alias for every customer. Set lockService: false "
    "in the provider stack (README, Lifecycle) to offboard a customer or tear down."
)


def provider(s: ProviderSettings) -> None:
    # Before any resource: refuse what Azure cannot undo (fewer NAT IPs, a new alias) against the live services, and
    # keep back each decision about an endpoint that has not asked (Azure decides only about connections that exist).
    deployed = last_deployment()
    decisions, held_back = decisions_ready(s, deployed)
    for warning in [*s.warnings, *check_deployed(s, deployed), *held_back]:
        pulumi.log.warn(warning)
    net = ProviderNetwork("provider", network_args(s))
    vault = CertificateVault("tls", vault_args(s, net)) if s.tls else None
    logs = LogWorkspace("logs", workspace_args(s, net)) if s.needs_workspace else None
    lb = InternalLoadBalancer("ilb", load_balancer_args(s, net, logs))
    web = WebTier("web", web_tier_args(s, net, lb, vault, logs))
    services = {
        service.name: PrivateLinkService(
            service.component_name, service_args(s, service, decisions[service.name], net, lb, logs)
        )
        for service in s.services
    }
    first = services[s.service_name]
    if s.alerts and logs:
        ServiceAlerts("alerts", alert_args(s, net, lb, services, logs))

    pulumi.export(contract.ALIAS, first.alias)
    pulumi.export(contract.SERVICE_ID, first.service_id)
    pulumi.export(contract.ALIASES, {name: service.alias for name, service in services.items()})
    pulumi.export(contract.SERVICE_IDS, {name: service.service_id for name, service in services.items()})
    pulumi.export("privateLinkServiceName", first.service_name)
    pulumi.export("pendingConnections", every_service(services, lambda service: service.pending_connections))
    pulumi.export(contract.CONNECTIONS, every_service(services, lambda service: service.connections))
    pulumi.export("location", s.location)
    pulumi.export("resourceGroupName", net.resource_group_name)
    pulumi.export("loadBalancerFrontendIp", lb.frontend_private_ip)
    pulumi.export("natSubnetCidr", s.nat_subnet_cidr)
    pulumi.export("natGatewayPublicIp", net.nat_gateway_public_ip)
    pulumi.export("proxyProtocol", s.proxy_protocol)
    pulumi.export("fqdns", list(s.fqdns))
    pulumi.export("webVmPrivateIps", web.private_ips)
    if logs:
        pulumi.export("logAnalyticsWorkspaceId", logs.workspace_id)
    if vault:
        pulumi.export("keyVaultName", vault.vault_name)
        pulumi.export("keyVaultUri", vault.vault_uri)


def every_service(
    services: dict[str, PrivateLinkService],
    connections_of: Callable[[PrivateLinkService], pulumi.Output[list[dict[str, str]]]],
) -> pulumi.Output[list[dict[str, str]]]:
    """The connections (or pending ones) of every service, each naming its service. Chained, not Output.all,
    which makes an Output of every element of every list (a provider has up to 8,000 connections)."""
    combined: pulumi.Output[list[dict[str, str]]] = pulumi.Output.from_input([])
    for name, service in services.items():
        combined = combined.apply(functools.partial(_naming_the_service, connections_of(service), name))
    return combined


def _naming_the_service(
    connections: pulumi.Output[list[dict[str, str]]], name: str, so_far: list[dict[str, str]]
) -> pulumi.Output[list[dict[str, str]]]:
    return connections.apply(lambda conns: [*so_far, *({**c, "service": name} for c in conns)])


def network_args(s: ProviderSettings) -> ProviderNetworkArgs:
    args = ProviderNetworkArgs(
        location=s.location,
        vnet_cidr=s.provider_vnet_cidr,
        backend_subnet_cidr=s.backend_subnet_cidr,
        nat_subnet_cidr=s.nat_subnet_cidr,
        nat_gateway=s.nat_gateway,
        service_ports=[service.backend_port(port) for service in s.services for port in s.service_ports],
        probe_port=HEALTH_PORT,
        key_vault_service_endpoint=s.tls,
        tags=s.tags,
    )
    own = {service.nat_subnet_role: service.nat_subnet_cidr for service in s.services if service.own_nat_subnet}
    if own:
        args["additional_nat_subnets"] = own
    return args


def vault_args(s: ProviderSettings, net: ProviderNetwork) -> CertificateVaultArgs:
    return CertificateVaultArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        reader_subnet_ids=[net.backend_subnet_id],
        allowed_ip_ranges=list(s.key_vault_allowed_ip_ranges),
        tags=s.tags,
    )


def workspace_args(s: ProviderSettings, net: ProviderNetwork) -> LogWorkspaceArgs:
    args = LogWorkspaceArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        retention_days=s.log_retention_days,
        tags=s.tags,
    )
    if s.log_analytics_workspace_id:
        args["existing_workspace_id"] = s.log_analytics_workspace_id
    if s.diagnostics:
        args["text_log"] = TextLog(
            file_pattern=ACCESS_LOG,
            table_name=ACCESS_LOG_TABLE,
            columns=[[column, kind] for column, _, kind in ACCESS_LOG_COLUMNS],
        )
    return args


def load_balancer_args(
    s: ProviderSettings, net: ProviderNetwork, logs: LogWorkspace | None
) -> InternalLoadBalancerArgs:
    args = InternalLoadBalancerArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        load_balancer_name=s.load_balancer_name,
        subnet_id=net.backend_subnet_id,
        idle_timeout_minutes=s.lb_idle_timeout_minutes,
        ports=list(s.service_ports),
        probe_port=HEALTH_PORT,
        probe_path=HEALTH_PATH,
        tags=s.tags,
    )
    if len(s.services) > 1:
        args["additional_frontends"] = [
            AdditionalFrontend(name=service.frontend_name, backend_port_offset=service.backend_port(0))
            for service in s.services[1:]
        ]
    if logs and s.diagnostics:
        args["diagnostics_workspace_id"] = logs.workspace_id
    return args


def web_tier_args(
    s: ProviderSettings,
    net: ProviderNetwork,
    lb: InternalLoadBalancer,
    vault: CertificateVault | None,
    logs: LogWorkspace | None,
) -> WebTierArgs:
    args = WebTierArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        subnet_id=net.backend_subnet_id,
        backend_pool_id=lb.backend_pool_id,
        application_security_group_id=net.application_security_group_id,
        vm=s.vm,
        count=s.web_vm_count,
        zones=list(s.zones),
        cloud_init=BOOTSTRAP,
        software_by_zone={
            str(zone): render_web_server(dataclasses.replace(s.web_server, zone=str(zone))).software_script
            for zone in s.zones
        },
        health_probe=LocalHealthProbe(port=LOCAL_HEALTH_PORT, path=HEALTH_PATH),
        tags=s.tags,
    )
    if vault and s.tls_certificate_name:
        args["certificate"] = ObservedCertificate(
            secret_url=vault.secret_url(s.tls_certificate_name),
            store_location=CERT_STORE,
            identity_id=vault.reader_identity_id,
            identity_client_id=vault.reader_client_id,
            granted_by=vault.reader_role_assignment,
        )
    if logs and logs.data_collection_rule_id is not None:
        args["data_collection_rule_id"] = logs.data_collection_rule_id
    return args


def service_args(
    s: ProviderSettings,
    service: PublishedService,
    decisions: list[ConnectionDecision],
    net: ProviderNetwork,
    lb: InternalLoadBalancer,
    logs: LogWorkspace | None,
) -> PrivateLinkServiceArgs:
    args = PrivateLinkServiceArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        service_name=service.name,
        frontend_ip_configuration_id=lb.frontend_ip_configuration_ids.apply(lambda ids: ids[service.frontend_name]),
        nat_subnet_id=net.nat_subnet_ids[service.nat_subnet_role],
        nat_ip_count=service.nat_ip_count,
        visibility=list(service.visibility),
        auto_approval=list(service.auto_approval),
        fqdns=list(s.fqdns),
        proxy_protocol=s.proxy_protocol,
        protect=s.protect_service,
        connection_decisions=decisions,
        lock=s.lock_service,
        lock_notes=LOCK_NOTES,
        tags=s.tags,
    )
    if logs and s.diagnostics:
        args["diagnostics_workspace_id"] = logs.workspace_id
    return args


def alert_args(
    s: ProviderSettings,
    net: ProviderNetwork,
    lb: InternalLoadBalancer,
    services: dict[str, PrivateLinkService],
    logs: LogWorkspace,
) -> ServiceAlertsArgs:
    args = ServiceAlertsArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        private_link_service_id=services[s.service_name].service_id,
        load_balancer_id=lb.load_balancer_id,
        nat_subnet_id=net.nat_subnet_id,
        workspace_id=logs.workspace_id,
        emails=list(s.alert_emails),
        nat_port_usage_percent=s.nat_port_usage_alert_percent,
        connections_threshold=s.connections_alert_threshold,
        nat_subnet_min_free_addresses=s.nat_subnet_free_addresses_alert_below,
        tags=s.tags,
    )
    if len(s.services) > 1:
        args["additional_services"] = [
            WatchedService(name=service.name, private_link_service_id=services[service.name].service_id)
            | ({"nat_subnet_id": net.nat_subnet_ids[service.nat_subnet_role]} if service.own_nat_subnet else {})
            for service in s.services[1:]
        ]
    if s.alert_webhook_url:
        args["webhook_url"] = pulumi.Output.secret(s.alert_webhook_url)
    return args


def consumer(s: ConsumerSettings) -> None:
    # Before any resource: a provider stack that is not there (or has no such service) stops the stack here.
    alias = contract.provider_alias(s.provider_stack_read, s.provider_alias or None, s.service)
    net = ConsumerNetwork(s.customer, consumer_network_args(s))
    access = PrivateServiceAccess(s.customer, access_args(s, net, alias))

    pulumi.export("providerAlias", alias)
    pulumi.export("privateEndpointId", access.endpoint_id)
    pulumi.export("endpointIp", access.private_ip)
    pulumi.export("fqdn", access.fqdn)
    pulumi.export("connectionName", access.connection_name)
    pulumi.export("connectionState", access.connection_state)
    pulumi.export("resourceGroupName", net.resource_group_name)
    if access.test_vm_name is not None:
        pulumi.export("testVmId", access.test_vm_id)
        pulumi.export("testVmPrivateIp", access.test_vm_private_ip)
        # What scripts/verify needs to run vm/verify_probe.py on the test VM, and what the VM must find.
        pulumi.export(
            contract.VERIFY,
            {
                "resourceGroupName": net.resource_group_name,
                "testVmName": access.test_vm_name,
                "testVmPrivateIp": access.test_vm_private_ip,
                "url": f"{s.service_url}{WHOAMI_PATH}",
                "endpointIp": access.private_ip,
                "proxyProtocol": s.proxy_protocol,
                "providerStack": s.provider_stack_read,
                "privateEndpointId": access.endpoint_id,
            },
        )
        pulumi.export("verifyCommand", f"scripts/verify {pulumi.get_stack()}")


def consumer_network_args(s: ConsumerSettings) -> ConsumerNetworkArgs:
    """The customer's resource group, and its own subnets or a new VNet."""
    args = ConsumerNetworkArgs(resource_group_name=s.resource_group_name, location=s.location, tags=s.tags)
    if s.own_subnets:
        endpoint_subnet_id, workload_subnet_id = s.own_subnets
        args["existing"] = ExistingSubnets(endpoint_subnet_id=endpoint_subnet_id, workload_subnet_id=workload_subnet_id)
    else:
        args["new"] = NewNetwork(
            vnet_cidr=s.consumer_vnet_cidr,
            endpoint_subnet_cidr=s.endpoint_subnet_cidr,
            workload_subnet_cidr=s.workload_subnet_cidr,
            workload_nat_gateway=s.workload_nat_gateway,
        )
    return args


def access_args(s: ConsumerSettings, net: ConsumerNetwork, alias: str) -> PrivateServiceAccessArgs:
    args = PrivateServiceAccessArgs(
        resource_group_name=net.resource_group_name,
        location=s.location,
        subnet_id=net.endpoint_subnet_id,
        vnet_id=net.vnet_id,
        alias=alias,
        auto_approved=s.auto_approved,
        dns_zone=s.zone_name,
        dns_record=s.dns_record,
        tags=s.tags,
    )
    if not s.auto_approved:
        args["request_message"] = s.request_message
    if s.dns_zone_id:
        args["dns_zone_id"] = s.dns_zone_id
        args["link_dns_zone"] = s.link_dns_zone
    if s.test_vm:
        args["test_vm"] = VerificationVm(subnet_id=net.workload_subnet_id, vm=s.vm)
    return args


settings = load()
if isinstance(settings, ProviderSettings):
    provider(settings)
else:
    consumer(settings)
