import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { isRecord } from "../config/config-reader";
import { ingressRouteName, versionServiceName } from "../config/names";
import { EdgeHost, edgeGatewaySpec, edgeHttpRouteSpec, EDGE_GATEWAY, GATEWAY_API, GATEWAY_API_CRDS_FILE, gatewayAddressHint, httpsRedirectRouteSpec, meshHttpRouteSpec } from "../specs/gateway-api-specs";
import { NETWORKING_API, versionDestinationRuleSpec } from "../specs/istio-specs";
import { GATEWAY_NAMESPACE, GATEWAY_RELEASE } from "../specs/mesh-specs";
import { appLabels, podSecurityLabels, servicePort, versionSelector } from "../specs/workload-specs";
import { AppRoutingArgs, Edge, EdgeArgs, istioIngressGateway, rateLimitFilter, RoutingBackend } from "./routing";
import { helmRelease } from "./helm";
import { WAYPOINT, WAYPOINT_LABELS, WAYPOINT_PARAMETERS, WAYPOINT_SERVICE_LABELS, waypointDisruptionBudget, waypointGatewaySpec, waypointParameters } from "../specs/ambient-specs";
import {
    ENVOY_GATEWAY_CHART,
    ENVOY_GATEWAY_CLASS,
    ENVOY_GATEWAY_CRDS_CHART,
    ENVOY_GATEWAY_NAMESPACE,
    ENVOY_PROXY_API,
    ENVOY_PROXY_CONFIG,
    envoyGatewayClassSpec,
    envoyGatewayCrdsValues,
    envoyGatewayValues,
    envoyProxySpec,
} from "../specs/envoy-gateway-specs";
import { KONG_CHART, KONG_GATEWAY_CLASS, KONG_NAMESPACE, KONG_RELEASE, KONG_ROUTE_ANNOTATIONS, KONG_SERVICE_UPSTREAM, kongGatewayClass, kongValues } from "../specs/kong-specs";
import { ambientInstalled, GatewayProvider } from "../config/config";

/** An object of the install file: what the API server needs to create it. */
interface InstallObject {
    readonly apiVersion: string;
    readonly kind: string;
    readonly metadata: { readonly name: string } & Record<string, unknown>;
    readonly spec: Record<string, unknown>;
}

function isInstallObject(doc: unknown): doc is InstallObject {
    return isRecord(doc) && typeof doc.apiVersion === "string" && typeof doc.kind === "string" && isRecord(doc.metadata) && typeof doc.metadata.name === "string" && isRecord(doc.spec);
}

let installObjects: readonly InstallObject[] | undefined;

/**
 * The Gateway API's standard-channel install as the program carries it (CRDs, and the admission policy that
 * keeps experimental CRDs off them), read once: the project root holds Pulumi.yaml, above components/ in
 * TypeScript and above bin/ compiled.
 */
export function gatewayApiInstall(): readonly InstallObject[] {
    if (installObjects !== undefined) return installObjects;
    const root = [path.resolve(__dirname, "..", ".."), path.resolve(__dirname, "..", "..", "..")].find((dir) => fs.existsSync(path.join(dir, GATEWAY_API_CRDS_FILE)));
    if (root === undefined) throw new Error(`The Gateway API install ${GATEWAY_API_CRDS_FILE} is missing from the project`);
    const docs = parseAllDocuments(fs.readFileSync(path.join(root, GATEWAY_API_CRDS_FILE), "utf8")).map((d) => d.toJS() as unknown);
    installObjects = docs.filter(isInstallObject).map(({ apiVersion, kind, metadata, spec }) => ({ apiVersion, kind, metadata, spec }));
    return installObjects;
}

/** What serves the edge Gateway: its class, and what the Gateway must wait for. */
interface EdgeProvider {
    readonly gatewayClassName: string;
    /** What the version Services need for this provider's proxies to call them through the mesh. */
    readonly backendAnnotations?: Readonly<Record<string, string>>;
    /** How its proxies tell their sidecar which Service they call: Host rewritten by the route, or as annotated. */
    readonly edgeHost: EdgeHost;
    readonly routeAnnotations?: Readonly<Record<string, string>>;
    readonly addresses?: readonly { readonly type: "Hostname"; readonly value: string }[];
    readonly ready: pulumi.Resource[];
    readonly ingressAddress: pulumi.Output<string>;
}

/** Another provider's edge: its node port as configured, or the address the provider writes into the Gateway's status. */
function providedAddress(args: EdgeArgs): pulumi.Output<string> {
    const { gateway } = args;
    if (gateway.gatewayServiceType === "NodePort") return pulumi.output(`localhost:${args.tls ? gateway.gatewayHttpsNodePort : gateway.gatewayHttpNodePort}`);
    return pulumi.output(gatewayAddressHint());
}

/** Istio's ingress gateway serves it: Istio's manual deployment, the Gateway's address naming that gateway's Service. */
function istioProvider(args: EdgeArgs): EdgeProvider {
    const ingress = istioIngressGateway(args.mesh);
    return { gatewayClassName: "istio", addresses: [{ type: "Hostname", value: `${GATEWAY_RELEASE}.${GATEWAY_NAMESPACE}.svc.cluster.local` }], edgeHost: "kept", ready: [ingress.release], ingressAddress: ingress.address };
}

/**
 * Another provider's namespace, admitted at Pod Security baseline at most: the providers' charts do not promise
 * the restricted level's seccomp profile on every pod.
 */
function providerNamespace(name: string, args: EdgeArgs, parent: pulumi.Resource): k8s.core.v1.Namespace {
    const level = args.podSecurity === "restricted" ? "baseline" : args.podSecurity;
    return new k8s.core.v1.Namespace(name, { metadata: { name, labels: podSecurityLabels(level) } }, { parent });
}

/** Envoy Gateway serves it: its pinned charts, its GatewayClass, and the EnvoyProxy that joins its proxies to the mesh. */
function envoyGatewayProvider(args: EdgeArgs, crds: pulumi.Resource[], parent: pulumi.Resource): EdgeProvider {
    const opts = (dependsOn: pulumi.Input<pulumi.Resource>[]) => ({ parent, dependsOn });
    const namespace = providerNamespace(ENVOY_GATEWAY_NAMESPACE, args, parent);
    // Not a Helm release: Helm keeps every template of gateway-crds-helm in its release Secret whatever the values
    // (about 2 MB after gzip and base64, over the Secret's 1 MiB), which is why Envoy Gateway's own guide applies
    // it with `helm template | kubectl apply --server-side`. A v4 Chart renders it the same way, client-side, each
    // object a resource of its own, and stores no release.
    const ownCrds = new k8s.helm.v4.Chart(
        "envoy-gateway-crds",
        { chart: ENVOY_GATEWAY_CRDS_CHART.chart, version: ENVOY_GATEWAY_CRDS_CHART.version, namespace: ENVOY_GATEWAY_NAMESPACE, values: envoyGatewayCrdsValues() },
        opts([namespace, ...crds]),
    );
    // Its proxies get Istio's sidecar: istiod's injection webhook must serve first.
    const controller = helmRelease("envoy-gateway", ENVOY_GATEWAY_CHART, ENVOY_GATEWAY_NAMESPACE, envoyGatewayValues(), opts([ownCrds, args.mesh.istiod]));
    const { gateway } = args;
    const proxy = new k8s.apiextensions.CustomResource(
        ENVOY_PROXY_CONFIG,
        {
            apiVersion: ENVOY_PROXY_API,
            kind: "EnvoyProxy",
            metadata: { name: ENVOY_PROXY_CONFIG, namespace: ENVOY_GATEWAY_NAMESPACE },
            spec: envoyProxySpec({ serviceType: gateway.gatewayServiceType, replicas: gateway.gatewayReplicas, httpNodePort: gateway.gatewayHttpNodePort, httpsNodePort: gateway.gatewayHttpsNodePort, https: args.tls !== undefined }),
        },
        opts([ownCrds]),
    );
    const gatewayClass = new k8s.apiextensions.CustomResource(ENVOY_GATEWAY_CLASS, { apiVersion: GATEWAY_API, kind: "GatewayClass", metadata: { name: ENVOY_GATEWAY_CLASS }, spec: envoyGatewayClassSpec() }, opts([...crds, controller, proxy]));
    return { gatewayClassName: ENVOY_GATEWAY_CLASS, edgeHost: "rewritten", ready: [controller, gatewayClass], ingressAddress: providedAddress(args) };
}

/** Kong serves it: its pinned ingress chart (controller and proxies, the proxies joined to the mesh) and its unmanaged GatewayClass. */
function kongProvider(args: EdgeArgs, crds: pulumi.Resource[], parent: pulumi.Resource): EdgeProvider {
    const namespace = providerNamespace(KONG_NAMESPACE, args, parent);
    const { gateway } = args;
    // Kong's controller reads the Gateway API at start: the CRDs first; its proxies get Istio's sidecar, so istiod too.
    const release = helmRelease(
        KONG_RELEASE,
        KONG_CHART,
        KONG_NAMESPACE,
        kongValues({ serviceType: gateway.gatewayServiceType, replicas: gateway.gatewayReplicas, httpNodePort: gateway.gatewayHttpNodePort, httpsNodePort: gateway.gatewayHttpsNodePort }),
        { parent, dependsOn: [namespace, ...crds, args.mesh.istiod] },
    );
    const { annotations, spec } = kongGatewayClass();
    const gatewayClass = new k8s.apiextensions.CustomResource(KONG_GATEWAY_CLASS, { apiVersion: GATEWAY_API, kind: "GatewayClass", metadata: { name: KONG_GATEWAY_CLASS, annotations }, spec }, { parent, dependsOn: [...crds, release] });
    return { gatewayClassName: KONG_GATEWAY_CLASS, backendAnnotations: KONG_SERVICE_UPSTREAM, edgeHost: "kept", routeAnnotations: KONG_ROUTE_ANNOTATIONS, ready: [release, gatewayClass], ingressAddress: providedAddress(args) };
}

const PROVIDERS: Record<GatewayProvider, (args: EdgeArgs, crds: pulumi.Resource[], parent: pulumi.Resource) => EdgeProvider> = {
    istio: istioProvider,
    envoyGateway: envoyGatewayProvider,
    kong: kongProvider,
};

/**
 * The Gateway API's edge: its CRDs, installed first and pinned, and a Gateway served by the configured
 * provider (Istio's ingress gateway, Envoy Gateway's or Kong's proxies).
 */
export class GatewayApiEdge extends pulumi.ComponentResource implements Edge {
    readonly crds: k8s.apiextensions.CustomResource[];
    readonly gateway: k8s.apiextensions.CustomResource;
    readonly ready: pulumi.Resource[];
    readonly ingressAddress: pulumi.Output<string>;
    readonly backendAnnotations: Readonly<Record<string, string>>;
    readonly edgeHost: EdgeHost;
    readonly routeAnnotations: Readonly<Record<string, string>>;
    /** In ambient mode, the waypoint's readiness: its disruption budget, awaited until every waypoint pod is ready. */
    readonly waypoint?: pulumi.Resource;

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:GatewayApiEdge", name, {}, opts);
        this.crds = gatewayApiInstall().map((object) => new k8s.apiextensions.CustomResource(object.metadata.name, { ...object }, { parent: this }));
        const provider = PROVIDERS[args.gateway.gatewayProvider](args, this.crds, this);
        this.ingressAddress = provider.ingressAddress;
        this.backendAnnotations = provider.backendAnnotations ?? {};
        this.edgeHost = provider.edgeHost;
        this.routeAnnotations = provider.routeAnnotations ?? {};
        this.gateway = new k8s.apiextensions.CustomResource(
            EDGE_GATEWAY,
            {
                apiVersion: GATEWAY_API,
                kind: "Gateway",
                metadata: { name: EDGE_GATEWAY, namespace: GATEWAY_NAMESPACE },
                spec: edgeGatewaySpec(args.ingressHost, args.tls, args.appNamespace, provider.gatewayClassName, provider.addresses),
            },
            // The provider programs it; its HTTPS listener names the TLS Secret.
            { parent: this, dependsOn: [...this.crds, args.mesh.istiod, ...provider.ready, ...args.mesh.tlsSecrets] },
        );
        const redirect = args.tls?.httpsRedirect
            ? [
                  new k8s.apiextensions.CustomResource(
                      "edge-https-redirect",
                      { apiVersion: GATEWAY_API, kind: "HTTPRoute", metadata: { name: "edge-https-redirect", namespace: args.appNamespace }, spec: httpsRedirectRouteSpec(GATEWAY_NAMESPACE, args.ingressHost) },
                      { parent: this, dependsOn: [this.gateway] },
                  ),
              ]
            : [];
        if (ambientInstalled(args.dataPlane)) {
            // istiod deploys the waypoint's proxies for it; the ambient data plane must serve before a Service sends calls through it.
            // istiod does not deploy a waypoint whose parameters are missing, so they come first.
            const parameters = new k8s.core.v1.ConfigMap(WAYPOINT_PARAMETERS, { metadata: { name: WAYPOINT_PARAMETERS, namespace: args.appNamespace }, data: waypointParameters(args.gateway.gatewayReplicas) }, { parent: this, dependsOn: [args.appNamespaceObject] });
            const waypoint = new k8s.apiextensions.CustomResource(
                WAYPOINT,
                { apiVersion: GATEWAY_API, kind: "Gateway", metadata: { name: WAYPOINT, namespace: args.appNamespace, labels: { ...WAYPOINT_LABELS } }, spec: waypointGatewaySpec() },
                { parent: this, dependsOn: [...this.crds, ...args.mesh.dataPlane, args.appNamespaceObject, parameters] },
            );
            // What the Services wait for: the waypoint's pods ready, not only its Gateway programmed.
            const budget = waypointDisruptionBudget();
            this.waypoint = new k8s.policy.v1.PodDisruptionBudget(WAYPOINT, { metadata: { name: WAYPOINT, namespace: args.appNamespace, annotations: budget.annotations }, spec: budget.spec }, { parent: this, dependsOn: [waypoint] });
        }
        this.ready = [args.mesh.istiod, this.gateway, ...redirect];
        this.registerOutputs({ gateway: `${GATEWAY_NAMESPACE}/${EDGE_GATEWAY}`, ingressAddress: this.ingressAddress });
    }
}

/**
 * One service's routing in the Gateway API: a Service per version (the API has no subsets), an HTTPRoute at the
 * edge and a GAMMA HTTPRoute in the mesh, a DestinationRule per version where the service has a traffic policy,
 * and the rate limit. A release moves the HTTPRoutes and nothing else.
 */
export class GatewayApiAppRouting extends pulumi.ComponentResource {
    readonly versionServices: k8s.core.v1.Service[];
    readonly routes: k8s.apiextensions.CustomResource[];

    constructor(name: string, args: AppRoutingArgs<GatewayApiEdge>, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:GatewayApiAppRouting", name, {}, opts);
        const { plan } = args;
        const metadata = (objectName: string, extra: Record<string, string> = {}, annotations: Readonly<Record<string, string>> = {}) => ({
            name: objectName,
            namespace: plan.namespace,
            labels: { ...appLabels(plan.name), ...extra },
            ...(Object.keys(annotations).length > 0 && { annotations: { ...annotations } }),
        });
        const dependsOn = [...args.dependsOn, ...args.edge.ready];
        const versions = [...new Set(plan.subsets.map((s) => s.version))];
        this.versionServices = versions.map((version) => {
            const serviceName = versionServiceName(plan.name, version);
            return new k8s.core.v1.Service(
                serviceName,
                {
                    metadata: metadata(serviceName, { version, ...(ambientInstalled(plan.dataPlane) && WAYPOINT_SERVICE_LABELS) }, args.edge.backendAnnotations),
                    spec: { selector: versionSelector(plan.name, version), ports: [servicePort(plan)] },
                },
                // Named by the waypoint only once it exists and the pods behind accept HBONE (restarted for it in ambientReady).
                { parent: this, dependsOn: [...args.dependsOn, ...args.workloads, ...(args.edge.waypoint ? [args.edge.waypoint] : [])] },
            );
        });
        const policies = versions.flatMap((version) => {
            const serviceName = versionServiceName(plan.name, version);
            const spec = versionDestinationRuleSpec(plan, `${serviceName}.${plan.namespace}.svc.cluster.local`);
            return spec === undefined ? [] : [new k8s.apiextensions.CustomResource(serviceName, { apiVersion: NETWORKING_API, kind: "DestinationRule", metadata: metadata(serviceName, { version }), spec }, { parent: this, dependsOn })];
        });
        // Make before break: every version's Service, policy and pods exist before a route points at them.
        const routeOpts = { parent: this, dependsOn: [...dependsOn, ...this.versionServices, ...policies, ...args.workloads] };
        this.routes = [
            new k8s.apiextensions.CustomResource(plan.name, { apiVersion: GATEWAY_API, kind: "HTTPRoute", metadata: metadata(plan.name), spec: meshHttpRouteSpec(plan) }, routeOpts),
            new k8s.apiextensions.CustomResource(
                ingressRouteName(plan.name),
                {
                    apiVersion: GATEWAY_API,
                    kind: "HTTPRoute",
                    metadata: metadata(ingressRouteName(plan.name), {}, args.edge.routeAnnotations),
                    spec: edgeHttpRouteSpec(plan, GATEWAY_NAMESPACE, args.ingressHost, args.tls, args.edge.edgeHost),
                },
                routeOpts,
            ),
        ];
        rateLimitFilter(plan, { parent: this, dependsOn: [...dependsOn, ...args.workloads] });
        this.registerOutputs({ split: plan.split });
    }
}

/** Routes in the Gateway API: its CRDs and edge Gateway, and per service version Services and two HTTPRoutes. */
export const gatewayApiRouting: RoutingBackend = (name, args) => {
    const edge = new GatewayApiEdge(name, args);
    return { edge, route: (service, routeArgs) => new GatewayApiAppRouting(service, { ...routeArgs, edge }) };
};
