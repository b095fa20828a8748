// What becomes of a request an edge proxy with an Istio sidecar (Envoy Gateway's, Kong's) sends to an app, as
// Istio 1.30.3 handles it, and whether the app's sidecar lets it in.
//
// - The proxy's sidecar picks the upstream by the request's Host, not by the address the proxy dialled: each
//   mesh Service has an outbound virtual host whose domains are its names (`name.ns.svc.cluster.local`,
//   `name.ns.svc`, `name.ns`, and `name` from its own namespace), each also with `:port`
//   (pilot/pkg/networking/core/httproute.go, generateVirtualHostDomains). A Host naming no Service falls to the
//   catch-all virtual host: PassthroughCluster (ALLOW_ANY), plain text to the dialled address, or a 502
//   (REGISTRY_ONLY) (buildCatchAllVirtualHost; cluster_builder.go, ORIGINAL_DST without TLS).
// - A Service's upstream is reached over Istio mutual TLS, with the caller's service account as its principal.
// - The app's sidecar refuses plain text under STRICT; under PERMISSIVE it takes it with no peer identity.
// - Then its AuthorizationPolicies: a DENY that matches refuses; with any ALLOW policy, one must match.
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy" with { "resolution-mode": "import" };

export interface MeshService {
    readonly name: string;
    readonly namespace: string;
    readonly port: number;
}

export type Upstream = { readonly kind: "service"; readonly service: MeshService } | { readonly kind: "passthrough" } | { readonly kind: "blackhole" };

/** The caller's sidecar's choice for a request with `host`, sent from `callerNamespace`. */
export function sidecarUpstream(host: string, services: readonly MeshService[], callerNamespace: string, outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY"): Upstream {
    const domains = (s: MeshService) => {
        const names = [`${s.name}.${s.namespace}.svc.cluster.local`, `${s.name}.${s.namespace}.svc`, `${s.name}.${s.namespace}`, ...(s.namespace === callerNamespace ? [s.name] : [])];
        return names.flatMap((n) => [n, `${n}:${String(s.port)}`]);
    };
    const service = services.find((s) => domains(s).includes(host.toLowerCase()));
    if (service !== undefined) return { kind: "service", service };
    return outboundTrafficPolicy === "ALLOW_ANY" ? { kind: "passthrough" } : { kind: "blackhole" };
}

/** Who the app's sidecar sees calling: a principal and namespace over mutual TLS, none in plain text. */
export interface Peer {
    readonly principal?: string;
    readonly namespace?: string;
}

export type Arrival = { readonly kind: "arrived"; readonly service: MeshService; readonly peer: Peer } | { readonly kind: "failed"; readonly why: string };

/**
 * Where the request arrives: the Service its Host names, over mutual TLS; or, passed through, the Service
 * the proxy dialled, in plain text (refused under STRICT).
 */
export function arrival(upstream: Upstream, dialled: MeshService, callerServiceAccount: string, mtlsMode: "STRICT" | "PERMISSIVE"): Arrival {
    if (upstream.kind === "blackhole") return { kind: "failed", why: "502: the Host names no Service and outbound traffic is REGISTRY_ONLY" };
    if (upstream.kind === "service") {
        const [namespace, name] = callerServiceAccount.split("/");
        return { kind: "arrived", service: upstream.service, peer: { principal: `cluster.local/ns/${namespace}/sa/${name}`, namespace } };
    }
    if (mtlsMode === "STRICT") return { kind: "failed", why: "connection reset: plain text passed through to a STRICT mutual TLS workload" };
    return { kind: "arrived", service: dialled, peer: {} };
}

type PolicySpec = NonNullable<IAuthorizationPolicy["spec"]>;
type Rule = NonNullable<PolicySpec["rules"]>[number];

/** Istio's string match for principals, namespaces and paths: exact, `prefix*`, `*suffix` or `*`. */
function matchesValue(pattern: string, value: string | undefined): boolean {
    if (value === undefined) return false;
    if (pattern === "*") return true;
    if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
    if (pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
    return value === pattern;
}

const KNOWN_SOURCE = new Set(["principals", "namespaces", "notPrincipals", "notNamespaces"]);
/** Every operation attribute the model reads: all L7, which ztunnel cannot see. */
const KNOWN_OPERATION = new Set(["paths", "methods", "notPaths", "notMethods"]);

/** Who enforces a policy: a pod's sidecar, ambient's ztunnel (L4: it sees connections, not requests), or a waypoint serving `service`. */
export type Enforcer = { readonly kind: "sidecar" } | { readonly kind: "ztunnel" } | { readonly kind: "waypoint"; readonly waypoint: string; readonly service: string };

/**
 * Whether a rule matches. ztunnel cannot see a rule's L7 attributes (istiod's ambient authorization.go): a rule of
 * an ALLOW policy that names any never matches ("L7 policies never match for ALLOW"), and a DENY policy's rule is
 * enforced without them, so it denies more.
 */
function ruleMatches(rule: Rule, peer: Peer, path: string, method: string, enforcer: Enforcer, action: "ALLOW" | "DENY"): boolean {
    if (rule.when !== undefined) throw new Error(`the model does not evaluate 'when' conditions: ${JSON.stringify(rule.when)}`);
    const l7 = (rule.to ?? []).some(({ operation }) => Object.keys(operation ?? {}).some((k) => KNOWN_OPERATION.has(k)));
    if (enforcer.kind === "ztunnel" && l7) {
        if (action === "ALLOW") return false;
        return ruleMatches({ ...rule, to: undefined }, peer, path, method, enforcer, action);
    }
    const any = (patterns: readonly string[] | undefined, value: string | undefined) => patterns === undefined || patterns.some((p) => matchesValue(p, value));
    const none = (patterns: readonly string[] | undefined, value: string | undefined) => patterns === undefined || !patterns.some((p) => matchesValue(p, value));
    const fromOk =
        rule.from === undefined ||
        rule.from.some(({ source }) => {
            const unknown = Object.keys(source ?? {}).filter((k) => !KNOWN_SOURCE.has(k));
            if (unknown.length > 0) throw new Error(`the model does not evaluate source fields ${unknown.join(", ")}`);
            return any(source?.principals, peer.principal) && any(source?.namespaces, peer.namespace) && none(source?.notPrincipals, peer.principal) && none(source?.notNamespaces, peer.namespace);
        });
    const toOk =
        rule.to === undefined ||
        rule.to.some(({ operation }) => {
            const unknown = Object.keys(operation ?? {}).filter((k) => !KNOWN_OPERATION.has(k));
            if (unknown.length > 0) throw new Error(`the model does not evaluate operation fields ${unknown.join(", ")}`);
            return any(operation?.paths, path) && any(operation?.methods, method) && none(operation?.notPaths, path) && none(operation?.notMethods, method);
        });
    return fromOk && toOk;
}

export interface NamespacedPolicy {
    readonly namespace: string;
    readonly spec: PolicySpec;
}

/**
 * Whether a policy binds at this enforcement point. A sidecar and ztunnel take the policies without targetRefs
 * whose selector (none: the whole namespace) matches the pod; a waypoint takes those whose targetRefs name it or
 * the Service the request is addressed to.
 */
function binds(spec: PolicySpec, labels: Readonly<Record<string, string>>, enforcer: Enforcer): boolean {
    const targets = spec.targetRefs ?? [];
    if (enforcer.kind === "waypoint") {
        return targets.some((t) => (t.kind === "Service" && (t.group ?? "") === "" && t.name === enforcer.service) || (t.kind === "Gateway" && t.group === "gateway.networking.k8s.io" && t.name === enforcer.waypoint));
    }
    return targets.length === 0 && Object.entries(spec.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/** Istio's verdict for a request to a workload with `labels` in `namespace` (the mesh's root namespace aside), at `enforcer`. */
export function authorized(policies: readonly NamespacedPolicy[], namespace: string, labels: Readonly<Record<string, string>>, peer: Peer, path: string, method: string, enforcer: Enforcer = { kind: "sidecar" }): boolean {
    const applying = policies
        .filter((p) => p.namespace === namespace)
        .map((p) => p.spec)
        .filter((spec) => binds(spec, labels, enforcer));
    const action = (spec: PolicySpec) => spec.action ?? "ALLOW";
    const matches = (spec: PolicySpec) => (spec.rules ?? []).some((rule) => ruleMatches(rule, peer, path, method, enforcer, action(spec) === "DENY" ? "DENY" : "ALLOW"));
    if (applying.some((spec) => action(spec) === "DENY" && matches(spec))) return false;
    const allows = applying.filter((spec) => action(spec) === "ALLOW");
    return allows.length === 0 || allows.some(matches);
}
