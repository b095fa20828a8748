// Entry point: read and validate stack config once, plan the traffic, compose the components, export outputs.
import { readSettings } from "./components/config";
import { GATEWAY_NAMESPACE, GATEWAY_RELEASE, GATEWAY_SELECTOR, IstioMesh } from "./components/istio";
import { MeshSecurity } from "./components/security";
import { AppNamespace } from "./components/namespace";
import { planTraffic } from "./components/plan";
import { AppRouting } from "./components/routing";
import { AppWorkloads } from "./components/workloads";
import { stackConfigSource } from "./components/stack-config";
import { curlCommands, ingressUrl, policySummary, trafficSplit as splitOf } from "./components/outputs";

const settings = readSettings(stackConfigSource());
const plan = planTraffic(settings);

const mesh = new IstioMesh("istio", {
    version: settings.istioVersion,
    gatewayServiceType: settings.gatewayServiceType,
    gatewayHttpNodePort: settings.gatewayHttpNodePort,
    gatewayHttpsNodePort: settings.gatewayHttpsNodePort,
    ingressHost: settings.ingressHost,
    podSecurity: settings.security.podSecurity,
    tls: settings.security.tls,
});
const appNamespace = new AppNamespace("apps", {
    name: settings.appNamespace,
    podSecurity: settings.security.podSecurity,
    production: settings.policies.production,
    dependsOn: [mesh.istiod],
});
new MeshSecurity("security", {
    settings: settings.security,
    services: plan.services,
    appNamespace: settings.appNamespace,
    gatewayNamespace: GATEWAY_NAMESPACE,
    gatewayServiceAccount: `${GATEWAY_NAMESPACE}/${GATEWAY_RELEASE}`,
    gatewaySelector: { ...GATEWAY_SELECTOR },
    dependsOn: [mesh.istiod, appNamespace],
});

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
const https = settings.security.tls !== undefined;
export const url = ingressAddress.apply((address) => ingressUrl(address, settings.ingressHost, https));
export const tryIt = ingressAddress.apply((address) => curlCommands(plan, address, settings.ingressHost, https));
