// Entry point: read and validate stack config once, plan the traffic, compose the components, export outputs.
import * as pulumi from "@pulumi/pulumi";
import { readSettings } from "./components/config";
import { IstioMesh } from "./components/istio";
import { AppNamespace } from "./components/namespace";
import { planTraffic } from "./components/plan";
import { AppRouting } from "./components/routing";
import { AppWorkloads } from "./components/workloads";
import { curlCommands, ingressUrl, policySummary, trafficSplit as splitOf } from "./components/outputs";

const config = new pulumi.Config();
const projectPrefix = `${pulumi.getProject()}:`;
const settings = readSettings({
    get: (key) => config.get(key),
    keys: () => Object.keys(pulumi.runtime.allConfig()).filter((k) => k.startsWith(projectPrefix)).map((k) => k.slice(projectPrefix.length)),
});
const plan = planTraffic(settings);

const mesh = new IstioMesh("istio", {
    version: settings.istioVersion,
    gatewayServiceType: settings.gatewayServiceType,
    gatewayHttpNodePort: settings.gatewayHttpNodePort,
    ingressHost: settings.ingressHost,
});
const appNamespace = new AppNamespace("apps", { name: settings.appNamespace, dependsOn: [mesh.istiod] });

for (const service of plan.services) {
    const workloads = new AppWorkloads(service.name, {
        plan: service,
        image: settings.image,
        replicas: settings.replicas,
        namespace: appNamespace.name,
        dependsOn: [mesh.istiod, appNamespace],
    });
    new AppRouting(service.name, {
        plan: service,
        gatewayRef: mesh.gatewayRef,
        ingressHost: settings.ingressHost,
        dependsOn: [mesh.istiod, mesh.publicGateway, appNamespace],
        workloads: workloads.deployments,
    });
}

export const istioVersion = settings.istioVersion;
export const canaryWeight = settings.canaryWeight;
export const activeColor = settings.activeColor;
export const trafficSplit = splitOf(plan);
export const routingPolicies = policySummary(plan);
export const ingressAddress = mesh.ingressAddress;
export const url = ingressAddress.apply((address) => ingressUrl(address));
export const tryIt = url.apply((base) => curlCommands(plan, base, settings.ingressHost));
