// A customer (any tenant) reaches the SaaS privately from its own VNet, with the provider's component package.
import * as pulumi from "@pulumi/pulumi";
import * as plsSaas from "@pulumi/pls-saas";

const config = new pulumi.Config();

// Named after the customer: the endpoint is tradewinds-saas-pe, whose id the provider approves.
const access = new plsSaas.PrivateServiceAccess("tradewinds", {
    resourceGroupName: config.require("resourceGroupName"),
    location: config.get("location") ?? "westeurope",
    subnetId: config.require("subnetId"),
    vnetId: config.require("vnetId"),
    alias: "saas.9c3f1a52-6d1e-4b8a-9f0e-2b7c4d5e6f70.westeurope.azure.privatelinkservice",
    requestMessage: "Customer: Tradewinds, Order no.: 314159",
    dnsZone: "saas.example.com",
    dnsRecord: "api",
});

export const endpointId = access.endpointId; // send it to the provider: it approves this id
export const privateIp = access.privateIp;
export const url = pulumi.interpolate`https://${access.fqdn}`;
export const connectionState = access.connectionState;
