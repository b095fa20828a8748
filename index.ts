// Entry point: read and validate stack config once, plan the traffic, compose the components, export outputs.
// The program is a function Pulumi awaits: the data-plane switch is checked against the stack's last update first.
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
import { guardDataPlane } from "./components/resources/data-plane-guard";

const config = stackConfigSource();
const { settings, plan } = checkedPlan(config);
// The one place the routing API is chosen: a renderer per API, the same traffic plan.
const ROUTING: Record<typeof settings.trafficApi, RoutingBackend> = { istio: istioRouting, gatewayApi: gatewayApiRouting };
const exported = keepConfigSecretsSecret(config);

export = async (): Promise<Record<string, unknown>> => {
    // A switch of data plane that one update cannot make safely is refused here, before anything is created.
    const dataPlaneRecord = await guardDataPlane(settings.dataPlane);

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
        dataPlane: settings.dataPlane,
    });
    const appNamespace = new AppNamespace("apps", {
        name: settings.appNamespace,
        podSecurity: settings.security.podSecurity,
        production: settings.policies.production,
        dataPlane: settings.dataPlane,
        dependsOn: mesh.dataPlane,
    });
    const security = new MeshSecurity("security", {
        settings: settings.security,
        services: plan.services,
        appNamespace: settings.appNamespace,
        gatewayNamespace: GATEWAY_NAMESPACE,
        edgeSource: edgeSource(settings.gatewayProvider),
        gatewaySelector: { ...GATEWAY_SELECTOR },
        dataPlane: settings.dataPlane,
        ...(mesh.ingressGateway && { gatewayRelease: mesh.ingressGateway.release }),
        dependsOn: [mesh.istiod, appNamespace],
    });

    new Observability("observability", {
        settings: settings.observability,
        localCluster: settings.platform === "kind",
        canaryDashboard: canaryDashboard(settings.appNamespace, promDuration(settings.rollout.intervalMs), settings.dataPlane),
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
        dataPlane: settings.dataPlane,
        appNamespaceObject: appNamespace.namespace,
    });
    for (const service of plan.services) {
        const workloads = new AppWorkloads(service.name, {
            plan: service,
            namespace: settings.appNamespace,
            // A pod starts once the allows its proxy (or, in ambient mode, ztunnel and the waypoint) reads exist.
            dependsOn: [mesh.istiod, appNamespace, security],
            ...(routing.edge.waypoint && { waypoint: routing.edge.waypoint }),
        });
        routing.route(service.name, {
            plan: service,
            ingressHost: settings.ingressHost,
            ...(settings.security.tls && { tls: settings.security.tls }),
            dependsOn: [appNamespace],
            workloads: workloads.deployments,
        });
    }

    const https = settings.security.tls !== undefined;
    return {
        istioVersion: exported(settings.istioVersion),
        canaryWeight: exported(settings.canaryWeight),
        activeColor: exported(settings.activeColor),
        trafficSplit: exported(splitOf(plan)),
        routingPolicies: exported(policySummary(plan)),
        ingressAddress: exported(routing.edge.ingressAddress),
        url: exported(routing.edge.ingressAddress.apply((address) => ingressUrl(address, settings.ingressHost, https))),
        tryIt: exported(routing.edge.ingressAddress.apply((address) => curlCommands(plan, address, settings.ingressHost, https))),
        /** PromQL for each multi-version service's requests, 5xx, latency histogram, success rate and p95 by destination_version. */
        releaseQueries: exported(queriesOf(plan, settings.rollout.intervalMs)),
        dashboards: exported(settings.observability.enabled ? dashboardCommands() : {}),
        /** The data plane this update completed with, once every resource is applied: what the next update's switch is judged against. */
        dataPlane: exported(dataPlaneRecord()),
    };
};
