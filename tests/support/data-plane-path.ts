// What becomes of a request in the app namespace, from the rendered objects and the pods that run, as Istio 1.30
// passes it on, whichever data plane each pod has (a switch between sidecar and ambient mixes them):
//
// - A sidecar pod routes its own calls (the GAMMA HTTPRoutes of the Service it calls) and sends them to a pod of
//   the chosen Service itself: sidecars never go through a waypoint.
// - An ambient pod's calls are carried by ztunnel: to a Service labelled istio.io/use-waypoint with the name of a
//   waypoint (a Gateway of class istio-waypoint in its namespace), through that waypoint; to any other Service,
//   straight to one of its pods, without L7 routing.
// - Istio's ingress gateway applies its HTTPRoutes and calls the chosen Service's pods itself, or its waypoint when
//   the Service is also labelled istio.io/ingress-use-waypoint=true.
// - The waypoint authorizes by the policies bound to it or to the addressed Service (targetRefs), with the caller's
//   identity; then routes by that Service's GAMMA routes (or to the Service itself), and calls its pods as itself.
// - A pod admits a request by the policies that select it, with the identity of whoever connected: its sidecar at
//   L7; an ambient pod's ztunnel at L4 (rules naming paths or methods cannot match there).
// - HBONE, the tunnel to an ambient pod or a waypoint, is sent once istiod runs in ambient mode (PILOT_ENABLE_AMBIENT:
//   pushed to the proxies, no restart), and a waypoint exists only then; a sidecar accepts HBONE only if it started
//   with ISTIO_META_ENABLE_HBONE (the pod's proxy.istio.io/config, or the mesh default when it was injected).
import type { HttpRouteSpec } from "../../components/specs/gateway-api-specs";
import { HBONE_PORT, WAYPOINT_CLASS } from "../../components/specs/ambient-specs";
import { helmReleases, K8sObject, objects, ofKind, ProgramRun, Request } from "../harness";
import { authorized, NamespacedPolicy, Peer } from "./mesh-hop";
import { RenderedRoute, routeHttp } from "./http-route";

/** Where a request ends: the versions of the pods it may reach, by percent, or why it fails. */
export type Landing = { readonly kind: "served"; readonly versions: Readonly<Record<string, number>> } | { readonly kind: "denied"; readonly where: string } | { readonly kind: "failed"; readonly why: string } | { readonly kind: "unrouted" };

export type PodKind = "sidecar" | "sidecarHbone" | "ambient";

export interface Pod {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly kind: PodKind;
}

export interface World {
    readonly services: readonly K8sObject[];
    readonly waypoints: ReadonlySet<string>;
    readonly routes: readonly RenderedRoute[];
    readonly policies: readonly NamespacedPolicy[];
    readonly pods: readonly Pod[];
    /** istiod runs in ambient mode: proxies send HBONE, waypoints are deployed. */
    readonly ambientControlPlane: boolean;
}

const HBONE_ANNOTATION = /"ISTIO_META_ENABLE_HBONE":"true"/;

/**
 * The kind a pod of `deployment` gets when it starts in a namespace labelled `namespaceLabels`, istiod in ambient
 * mode or not. Istio's injector takes a pod labelled sidecar.istio.io/inject=true in any namespace, and one in a
 * namespace labelled istio-injection=enabled unless the pod says "false"; a pod with a sidecar is never captured
 * by ambient; otherwise the pod's own istio.io/dataplane-mode, or else its namespace's, enrolls it in ambient.
 */
export function podKind(deployment: K8sObject, namespaceLabels: Readonly<Record<string, string>>, ambientControlPlane: boolean): PodKind {
    const template = (deployment.spec as { template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } } }).template.metadata;
    const [labels, annotations] = [template?.labels ?? {}, template?.annotations ?? {}];
    const inject = labels["sidecar.istio.io/inject"];
    if (inject === "true" || (inject !== "false" && namespaceLabels["istio-injection"] === "enabled")) {
        return ambientControlPlane || HBONE_ANNOTATION.test(annotations["proxy.istio.io/config"] ?? "") ? "sidecarHbone" : "sidecar";
    }
    if ((labels["istio.io/dataplane-mode"] ?? namespaceLabels["istio.io/dataplane-mode"]) === "ambient") return "ambient";
    throw new Error(`a pod of ${deployment.metadata.name} would start outside the mesh`);
}

/** Whether istiod runs in ambient mode, by its release's values. */
export const ambientControlPlaneOf = (result: ProgramRun): boolean => helmReleases(result).some((r) => r.name === "istiod" && r.values.profile === "ambient");

/** The pods of each Deployment, as started in the program's namespaces. */
export function podsOf(result: ProgramRun): Pod[] {
    const namespaces = new Map(ofKind(result, "Namespace").map((n) => [n.metadata?.name ?? "", n.metadata?.labels ?? {}]));
    const ambient = ambientControlPlaneOf(result);
    return objects(result)
        .filter((o) => o.kind === "Deployment")
        .map((d) => ({ namespace: d.metadata.namespace ?? "", labels: (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels, kind: podKind(d, namespaces.get(d.metadata.namespace ?? "") ?? {}, ambient) }));
}

/**
 * Whether a registered waypoint Gateway stands for proxies that serve (istiod deploys them only in ambient mode,
 * which the caller checks). Pulumi takes a custom resource as ready once it exists, and istiod's Programmed
 * condition (1.30) checks the waypoint's Service, not its pods: what depends on the waypoint meets it serving only
 * if Pulumi waited for a PodDisruptionBudget over its pods to allow a disruption (every wanted pod ready; with
 * maxUnavailable 1, never with none). And istiod's waypoint template gives its pods no seccomp profile, without
 * which a namespace enforcing the restricted Pod Security level admits none, unless the Gateway's parameters
 * patch one in.
 */
function waypointServes(waypoint: K8sObject, all: readonly K8sObject[]): boolean {
    const namespace = waypoint.metadata.namespace ?? "";
    const awaited = all.some((o) => {
        if (o.kind !== "PodDisruptionBudget" || o.metadata.namespace !== namespace || o.metadata.annotations?.["pulumi.com/waitFor"] !== "condition=DisruptionAllowed") return false;
        const spec = o.spec as { maxUnavailable?: number; selector?: { matchLabels?: Record<string, string> } };
        return spec.maxUnavailable === 1 && spec.selector?.matchLabels?.["gateway.networking.k8s.io/gateway-name"] === waypoint.metadata.name;
    });
    if (!awaited) return false;
    const enforce = all.find((o) => o.kind === "Namespace" && o.metadata.name === namespace)?.metadata.labels?.["pod-security.kubernetes.io/enforce"];
    if (enforce !== "restricted") return true;
    const ref = (waypoint.spec as { infrastructure?: { parametersRef?: { kind: string; name: string } } }).infrastructure?.parametersRef;
    const parameters = all.find((o) => o.kind === "ConfigMap" && ref?.kind === "ConfigMap" && o.metadata.name === ref.name && o.metadata.namespace === namespace);
    const patch = parameters?.data?.deployment;
    const pod = patch === undefined ? undefined : (JSON.parse(patch) as { spec?: { template?: { spec?: { securityContext?: { seccompProfile?: { type?: string } } } } } }).spec?.template?.spec;
    return pod?.securityContext?.seccompProfile?.type === "RuntimeDefault";
}

/** The world a program's objects make, with `pods` running (by default, each Deployment's as it starts now). */
export function worldOf(result: ProgramRun, pods: readonly Pod[] = podsOf(result)): World {
    const all = objects(result);
    const ambientControlPlane = ambientControlPlaneOf(result);
    const waypoints = all.filter((o) => o.kind === "Gateway" && o.apiVersion.startsWith("gateway.networking.k8s.io/")).filter((o) => {
        const spec = o.spec as { gatewayClassName: string; listeners: { port: number; protocol: string }[] };
        return spec.gatewayClassName === WAYPOINT_CLASS && spec.listeners.some((l) => l.port === HBONE_PORT && l.protocol === "HBONE");
    });
    return {
        services: all.filter((o) => o.kind === "Service"),
        waypoints: new Set(waypoints.filter((w) => ambientControlPlane && waypointServes(w, all)).map((w) => `${w.metadata.namespace ?? ""}/${w.metadata.name}`)),
        routes: all.filter((o) => o.kind === "HTTPRoute").map((o) => ({ namespace: o.metadata.namespace ?? "", name: o.metadata.name, spec: o.spec as HttpRouteSpec })),
        policies: ofKind(result, "AuthorizationPolicy").map((p) => ({ namespace: p.metadata?.namespace ?? "", spec: p.spec ?? {} })),
        pods,
        ambientControlPlane,
    };
}

const peerOf = (serviceAccount: string): Peer => {
    const [namespace, name] = serviceAccount.split("/");
    return { principal: `cluster.local/ns/${namespace}/sa/${name}`, namespace };
};

interface Call {
    readonly request: Request;
    readonly method: string;
}

/** Every outcome must be served; the versions are weighed by `weight` (percent of the requests each outcome takes). */
function combine(outcomes: readonly (readonly [Landing, number])[]): Landing {
    const versions: Record<string, number> = {};
    for (const [outcome, weight] of outcomes) {
        if (outcome.kind !== "served") return outcome;
        for (const [version, share] of Object.entries(outcome.versions)) versions[version] = (versions[version] ?? 0) + (share * weight) / 100;
    }
    return { kind: "served", versions };
}

/**
 * A connection to each pod `service` selects, from `peer`, admitted by the pod's own proxy or its ztunnel. A
 * proxy (a sidecar, the ingress gateway) sends HBONE to an ambient pod and Istio's mutual TLS to a sidecar; a
 * waypoint or ztunnel sends only HBONE, which a sidecar takes only if it accepts HBONE.
 */
function toPods(world: World, service: K8sObject, peer: Peer, call: Call, sender: "proxy" | "tunnel"): Landing {
    const selector = (service.spec as { selector: Record<string, string> }).selector;
    const namespace = service.metadata.namespace ?? "";
    const pods = world.pods.filter((p) => p.namespace === namespace && Object.entries(selector).every(([k, v]) => p.labels[k] === v));
    if (pods.length === 0) return { kind: "unrouted" };
    for (const pod of pods) {
        const name = `${pod.labels.app}-${pod.labels.version} (${pod.kind})`;
        if (pod.kind === "sidecar" && sender === "tunnel") return { kind: "failed", why: `HBONE to ${name}, whose sidecar does not accept it` };
        if (pod.kind === "ambient" && !world.ambientControlPlane) return { kind: "failed", why: `${name} is ambient, and istiod sends no HBONE` };
        const enforcer = pod.kind === "ambient" ? ({ kind: "ztunnel" } as const) : ({ kind: "sidecar" } as const);
        if (!authorized(world.policies, namespace, pod.labels, peer, call.request.path, call.method, enforcer)) return { kind: "denied", where: `${enforcer.kind} of ${name}, for ${peer.principal ?? "?"}` };
    }
    const versions = [...new Set(pods.map((p) => p.labels.version))];
    return { kind: "served", versions: Object.fromEntries(versions.map((v) => [v, 100 / versions.length])) };
}

const serviceNamed = (world: World, namespace: string, name: string) => world.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === name);

/** The waypoint a Service names, if it runs. */
function waypointOf(world: World, service: K8sObject): string | undefined {
    const name = service.metadata.labels?.["istio.io/use-waypoint"];
    return name !== undefined && world.waypoints.has(`${service.metadata.namespace ?? ""}/${name}`) ? name : undefined;
}

/** The Service's GAMMA routes' choice, as percent per backend Service; all to the Service itself when it has none. */
function gammaBackends(world: World, namespace: string, serviceName: string, call: Call): Record<string, number> {
    const outcome = routeHttp(world.routes, { ...call.request, gateway: "mesh", host: `${serviceName}.${namespace}.svc.cluster.local` });
    return outcome === undefined ? { [serviceName]: 100 } : outcome.backends;
}

function weighted(world: World, namespace: string, backends: Record<string, number>, land: (service: K8sObject) => Landing): Landing {
    const total = Object.values(backends).reduce((a, b) => a + b, 0);
    const outcomes: [Landing, number][] = [];
    for (const [name, weight] of Object.entries(backends)) {
        if (weight === 0) continue;
        const service = serviceNamed(world, namespace, name);
        outcomes.push([service === undefined ? { kind: "unrouted" } : land(service), (100 * weight) / total]);
    }
    return combine(outcomes);
}

/** Through the waypoint: authorized for the addressed Service with the caller's identity, routed, then sent to the pods as the waypoint. */
function viaWaypoint(world: World, service: K8sObject, waypoint: string, caller: Peer, call: Call): Landing {
    const namespace = service.metadata.namespace ?? "";
    if (!authorized(world.policies, namespace, {}, caller, call.request.path, call.method, { kind: "waypoint", waypoint, service: service.metadata.name })) return { kind: "denied", where: `waypoint, for ${service.metadata.name}` };
    const self = peerOf(`${namespace}/${waypoint}`);
    return weighted(world, namespace, gammaBackends(world, namespace, service.metadata.name, call), (backend) => toPods(world, backend, self, call, "tunnel"));
}

/** An edge request: the ingress gateway's HTTPRoutes pick a Service in `namespace`, which it then calls (or its waypoint). */
export function landFromEdge(world: World, namespace: string, request: Request, ingressServiceAccount: string, method = "GET"): Landing {
    const call = { request, method };
    const outcome = routeHttp(world.routes, request);
    if (outcome === undefined) return { kind: "unrouted" };
    const gateway = peerOf(ingressServiceAccount);
    return weighted(world, namespace, outcome.backends, (service) => {
        const waypoint = waypointOf(world, service);
        if (waypoint !== undefined && service.metadata.labels?.["istio.io/ingress-use-waypoint"] === "true") {
            return world.ambientControlPlane ? viaWaypoint(world, service, waypoint, gateway, call) : { kind: "failed", why: "the gateway sends no HBONE to the waypoint" };
        }
        return toPods(world, service, gateway, call, "proxy");
    });
}

/** A mesh request from each pod of `callerApp` (as its service account) to `serviceName`. */
export function landFromMesh(world: World, namespace: string, serviceName: string, callerApp: string, request: Request, method = "GET"): Landing {
    const call = { request, method };
    const caller = peerOf(`${namespace}/${callerApp}`);
    const service = serviceNamed(world, namespace, serviceName);
    if (service === undefined) return { kind: "unrouted" };
    const kinds = [...new Set(world.pods.filter((p) => p.namespace === namespace && p.labels.app === callerApp).map((p) => p.kind))];
    if (kinds.length === 0) throw new Error(`no pod of ${callerApp} runs to call from`);
    // Each running kind of caller must get through; where they do, they reach the same versions.
    const outcomes = kinds.map((kind): Landing => {
        // A sidecar routes and calls the chosen Service's pods itself.
        if (kind !== "ambient") return weighted(world, namespace, gammaBackends(world, namespace, serviceName, call), (backend) => toPods(world, backend, caller, call, "proxy"));
        const waypoint = waypointOf(world, service);
        return waypoint !== undefined ? viaWaypoint(world, service, waypoint, caller, call) : toPods(world, service, caller, call, "tunnel");
    });
    return outcomes.find((o) => o.kind !== "served") ?? outcomes[0];
}
