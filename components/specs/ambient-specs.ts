// Pure renderers for Istio's ambient data plane (1.30): the app namespace's waypoint, the labels that send its
// Services' traffic through it, and the authorization policies as ztunnel (L4) and the waypoint (L7) enforce them.
//
// In an ambient namespace a pod has no proxy of its own. ztunnel, on each node, carries every connection over
// mutual TLS (HBONE) and enforces the policies that select workloads, at L4 only: an ALLOW rule naming paths or
// methods never matches there. A Service labelled istio.io/use-waypoint has its calls sent through the named
// waypoint, which applies the Service's HTTPRoutes and the policies that target it with targetRefs; Istio's
// ingress gateway also goes through it for a Service labelled istio.io/ingress-use-waypoint.
import { versionServiceName } from "../config/names";
import type { ServicePlan } from "../plan/plan";
import type { MeshEdge } from "../config/security-config";
import { AuthorizationPolicySpec, EdgeSource, principal } from "./security-specs";
import { segmentBase } from "../config/catalogue";
import { GATEWAY_MAX_REPLICAS } from "./mesh-specs";

/**
 * The pod annotation that makes a sidecar accept HBONE (ISTIO_META_ENABLE_HBONE, read when the proxy starts): in
 * ambientReady, so the waypoint and ambient callers can reach the sidecar pods. The pods restart to take it.
 */
export const HBONE_SIDECAR_ANNOTATION = { "proxy.istio.io/config": JSON.stringify({ proxyMetadata: { ISTIO_META_ENABLE_HBONE: "true" } }) } as const;

/** One waypoint per app namespace, named as `istioctl waypoint apply` names it. */
export const WAYPOINT = "waypoint";
export const WAYPOINT_CLASS = "istio-waypoint";
/** The waypoint's HBONE listener: the port and protocol Istio's waypoint class requires. */
export const HBONE_PORT = 15008;

/** The ConfigMap the waypoint's Gateway names for how istiod deploys it. */
export const WAYPOINT_PARAMETERS = "waypoint-deployment";

export interface WaypointGatewaySpec {
    readonly gatewayClassName: typeof WAYPOINT_CLASS;
    readonly listeners: readonly [{ readonly name: "mesh"; readonly port: typeof HBONE_PORT; readonly protocol: "HBONE" }];
    readonly infrastructure: { readonly parametersRef: { readonly group: ""; readonly kind: "ConfigMap"; readonly name: typeof WAYPOINT_PARAMETERS } };
}

export function waypointGatewaySpec(): WaypointGatewaySpec {
    return { gatewayClassName: WAYPOINT_CLASS, listeners: [{ name: "mesh", port: HBONE_PORT, protocol: "HBONE" }], infrastructure: { parametersRef: { group: "", kind: "ConfigMap", name: WAYPOINT_PARAMETERS } } };
}

/**
 * How istiod (1.26 on) deploys the waypoint: it patches the Deployment, HorizontalPodAutoscaler and
 * PodDisruptionBudget of its waypoint template with these (strategic merge, YAML or JSON).
 * - The pods get the RuntimeDefault seccomp profile: the template sets none, and the restricted Pod Security
 *   level, which app namespaces enforce by default, admits no pod without one.
 * - Scaling as the ingress gateway's: every L7 request of the namespace passes the waypoint, so it runs
 *   gatewayReplicas pods at least under an autoscaler (the template's alone runs one). No Deployment replicas: the
 *   autoscaler owns that count. Its disruption budget is the program's own (waypointDisruptionBudget).
 */
export function waypointParameters(gatewayReplicas: number): { readonly deployment: string; readonly horizontalPodAutoscaler: string } {
    return {
        deployment: JSON.stringify({ spec: { template: { spec: { securityContext: { seccompProfile: { type: "RuntimeDefault" } } } } } }),
        horizontalPodAutoscaler: JSON.stringify({ spec: { minReplicas: gatewayReplicas, maxReplicas: Math.max(GATEWAY_MAX_REPLICAS, gatewayReplicas) } }),
    };
}

/** The waypoint serves traffic addressed to Services (the default of its class, said explicitly). */
export const WAYPOINT_LABELS = { "istio.io/waypoint-for": "service" } as const;

/** The label istiod gives the pods of the Gateway it deploys. */
const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";

/**
 * The waypoint's PodDisruptionBudget, which also tells when its pods are ready. A node drain evicts one waypoint
 * pod at a time; and the disruption controller sets DisruptionAllowed only while every pod the waypoint's
 * Deployment wants is ready (with maxUnavailable 1: healthy pods above expected - 1), never with none. Pulumi waits
 * for that condition before what depends on it, the Services that send calls through the waypoint, so none does
 * before a waypoint pod can answer. (Without it Pulumi takes the Gateway as ready once it exists, and istiod's
 * Programmed condition, 1.30, checks the waypoint's Service, not its pods.)
 */
export function waypointDisruptionBudget(): { readonly annotations: Readonly<Record<string, string>>; readonly spec: { readonly maxUnavailable: 1; readonly selector: { readonly matchLabels: Readonly<Record<string, string>> } } } {
    return { annotations: { "pulumi.com/waitFor": "condition=DisruptionAllowed" }, spec: { maxUnavailable: 1, selector: { matchLabels: { [GATEWAY_NAME_LABEL]: WAYPOINT } } } };
}

/** The app namespace's pods join ambient: captured by the CNI agent, their traffic carried by ztunnel, no injection. */
export const AMBIENT_NAMESPACE_LABELS = { "istio.io/dataplane-mode": "ambient" } as const;

/**
 * Labels on each of an app's Services (the app's and each version's): mesh calls and the ingress gateway's go
 * through the waypoint, which routes them, authorizes them and reports them (reporter="waypoint"). On the
 * Services rather than the namespace, so each Service names the waypoint only once it exists.
 */
export const WAYPOINT_SERVICE_LABELS = { "istio.io/use-waypoint": WAYPOINT, "istio.io/ingress-use-waypoint": "true" } as const;

/** The waypoint's own identity: its pods run as the service account named after the Gateway. */
export const waypointServiceAccount = (namespace: string): string => `${namespace}/${WAYPOINT}`;

/** Every Service a request to the app may be addressed to at the waypoint: the app's, and each version's (the edge routes to those). */
export function appServiceRefs(plan: ServicePlan): { group: ""; kind: "Service"; name: string }[] {
    const names = [plan.name, ...new Set(plan.subsets.map((s) => versionServiceName(plan.name, s.version)))];
    return names.map((name) => ({ group: "", kind: "Service", name }));
}

/** ztunnel admits the waypoint's connections to the namespace's pods: with deny by default, nothing else reaches them but through it. */
export function allowWaypointSpec(namespace: string): AuthorizationPolicySpec {
    return { action: "ALLOW", rules: [{ from: [{ source: { principals: [principal(waypointServiceAccount(namespace))] } }] }] };
}

/** The edge's identity may call the app's public path prefix, at the waypoint, for each of the app's Services. */
export function ambientIngressAllowSpec(plan: ServicePlan, edge: EdgeSource): AuthorizationPolicySpec {
    const base = segmentBase(plan.path);
    return { targetRefs: appServiceRefs(plan), action: "ALLOW", rules: [{ from: [{ source: { principals: [principal(edge.serviceAccount)] } }], to: [{ operation: { paths: [base, `${base}/*`] } }] }] };
}

/**
 * In ambientReady, the declared callers of an app by identity alone: a sidecar caller does not pass through the
 * waypoint but calls the pod itself, and once that pod is ambient its ztunnel sees who calls, not what is asked.
 * Without it a switch to ambient would deny every sidecar caller's request to a pod already restarted. It goes
 * when ambient completes (Pulumi deletes last, once every Deployment has rolled).
 */
export function directCallersAllowSpec(app: string, edges: readonly MeshEdge[]): AuthorizationPolicySpec {
    return { selector: { matchLabels: { app } }, action: "ALLOW", rules: [{ from: [{ source: { principals: [...new Set(edges.map((e) => principal(e.from)))] } }] }] };
}

/** The in-mesh callers declared for one app, at the waypoint. */
export function ambientMeshAllowSpec(plan: ServicePlan, edges: readonly MeshEdge[]): AuthorizationPolicySpec {
    return {
        targetRefs: appServiceRefs(plan),
        action: "ALLOW",
        rules: edges.map((e) => ({ from: [{ source: { principals: [principal(e.from)] } }], to: [{ operation: { methods: [...e.methods], paths: [...e.paths] } }] })),
    };
}
