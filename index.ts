// Entry point: read and validate stack config once, plan the traffic, compose the components, export outputs.
import { keepConfigSecretsSecret, stackConfigSource } from "./components/config/stack-config";
import { checkedPlan } from "./components/specs/checked-plan";
import { curlCommands, ingressUrl, policySummary, trafficSplit as splitOf } from "./components/plan/outputs";
import { edgeSource } from "./components/specs/gateway-api-specs";
import { GATEWAY_NAMESPACE, GATEWAY_SELECTOR } from "./components/specs/mesh-specs";
import { dashboardCommands, promDuration, releaseQueries as queriesOf, tracingExtensionProvider } from "./components/specs/observability-specs";
import { canaryDashboard } from "./components/specs/canary-dashboard";
import { Egress } from "./components/resources/egress";
import { IstioMesh } from "./components/resources/istio";
import { AppNamespace } from "./components/resources/namespace";
import { Observability } from "./components/resources/observability";
import { gatewayApiRouting } from "./components/resources/gateway-api";
import { istioRouting, RoutingBackend } from "./components/resources/routing";
import { MeshSecurity } from "./components/resources/security";
import { AppWorkloads } from "./components/resources/workloads";

const config = stackConfigSource();
const { settings, plan } = checkedPlan(config);
// The one place the routing API is chosen: a renderer per API, the same traffic plan.
const ROUTING: Record<typeof settings.trafficApi, RoutingBackend> = { istio: istioRouting, gatewayApi: gatewayApiRouting };
const exported = keepConfigSecretsSecret(config);

const mesh = new IstioMesh("istio", {
    version: settings.istioVersion,
    gatewayServiceType: settings.gatewayServiceType,
    gatewayReplicas: settings.gatewayReplicas,
    platform: settings.platform,
    gatewayHttpNodePort: settings.gatewayHttpNodePort,
    gatewayHttpsNodePort: settings.gatewayHttpsNodePort,
    ingressHost: settings.ingressHost,
    podSecurity: settings.security.podSecurity,
    tls: settings.security.tls,
    outboundTrafficPolicy: settings.egress.outboundTrafficPolicy,
    ...(settings.observability.enabled && { tracingProvider: tracingExtensionProvider() }),
    ingressGateway: settings.gatewayProvider === "istio",
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
    edgeSource: edgeSource(settings.gatewayProvider),
    gatewaySelector: { ...GATEWAY_SELECTOR },
    ...(mesh.ingressGateway && { gatewayRelease: mesh.ingressGateway.release }),
    dependsOn: [mesh.istiod, appNamespace],
});

new Observability("observability", {
    settings: settings.observability,
    localCluster: settings.platform === "kind",
    canaryDashboard: canaryDashboard(settings.appNamespace, promDuration(settings.rollout.intervalMs)),
    dependsOn: [mesh.istiod],
});
new Egress("egress", {
    settings: settings.egress,
    istioVersion: settings.istioVersion,
    appNamespace: settings.appNamespace,
    podSecurity: settings.security.podSecurity,
    dependsOn: [mesh.istiod, appNamespace],
});

const routing = ROUTING[settings.trafficApi]("edge", {
    mesh,
    ingressHost: settings.ingressHost,
    appNamespace: settings.appNamespace,
    ...(settings.security.tls && { tls: settings.security.tls }),
    gateway: settings,
    podSecurity: settings.security.podSecurity,
});
for (const service of plan.services) {
    const workloads = new AppWorkloads(service.name, {
        plan: service,
        namespace: settings.appNamespace,
        dependsOn: [mesh.istiod, appNamespace],
    });
    routing.route(service.name, {
        plan: service,
        ingressHost: settings.ingressHost,
        ...(settings.security.tls && { tls: settings.security.tls }),
        dependsOn: [appNamespace],
        workloads: workloads.deployments,
    });
}

export const istioVersion = exported(settings.istioVersion);
export const canaryWeight = exported(settings.canaryWeight);
export const activeColor = exported(settings.activeColor);
export const trafficSplit = exported(splitOf(plan));
export const routingPolicies = exported(policySummary(plan));
export const ingressAddress = exported(routing.edge.ingressAddress);
const https = settings.security.tls !== undefined;
export const url = exported(routing.edge.ingressAddress.apply((address) => ingressUrl(address, settings.ingressHost, https)));
export const tryIt = exported(routing.edge.ingressAddress.apply((address) => curlCommands(plan, address, settings.ingressHost, https)));
/** PromQL for each multi-version service's requests, 5xx, latency histogram, success rate and p95 by destination_version. */
export const releaseQueries = exported(queriesOf(plan, settings.rollout.intervalMs));
export const dashboards = exported(settings.observability.enabled ? dashboardCommands() : {});
