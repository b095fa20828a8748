// The checks behind the CrossGuard policy pack, as plain functions over resources' inputs so the tests can
// run them on the program's own resources and on deliberately bad ones. Each returns its violations.

export interface CheckedResource {
    /** Pulumi type token, e.g. `kubernetes:networking.istio.io/v1:VirtualService`. */
    readonly type: string;
    readonly name: string;
    readonly props: Readonly<Record<string, unknown>>;
}

/** The label the program puts on a production stack's app namespaces. */
export const PRODUCTION_LABEL = "istio-progressive-delivery/production";

function record(value: unknown): Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function list(value: unknown): unknown[] {
    return Array.isArray(value) ? (value as unknown[]) : [];
}

function text(value: unknown): string | undefined {
    return typeof value === "string" ? value : undefined;
}

const kindOf = (r: CheckedResource): string => r.type.slice(r.type.lastIndexOf(":") + 1);
const namespaceOf = (r: CheckedResource): string => text(record(r.props.metadata).namespace) ?? "default";
const isKind = (r: CheckedResource, kind: string, group?: string) => kindOf(r) === kind && (group === undefined || r.type.includes(`:${group}/`));

/** A host as Istio resolves it from a resource in `namespace`: short names are that namespace's Services. */
function qualifiedHost(host: string, namespace: string): string {
    if (host.includes(".svc.")) return host;
    const parts = host.split(".");
    if (parts.length === 1) return `${host}.${namespace}.svc.cluster.local`;
    if (parts.length === 2) return `${host}.svc.cluster.local`;
    return host;
}

function httpRoutes(vs: CheckedResource): Record<string, unknown>[] {
    return list(record(vs.props.spec).http).map(record);
}

/** Route weights are whole percents that add up to 100 in every route; mirrors copy 0-100 %. */
export function checkRouteWeights(r: CheckedResource): string[] {
    if (!isKind(r, "VirtualService", "networking.istio.io")) return [];
    const violations: string[] = [];
    for (const [i, route] of httpRoutes(r).entries()) {
        const label = `VirtualService ${r.name} http[${i}]${text(route.name) ? ` (${String(route.name)})` : ""}`;
        const destinations = list(route.route).map(record);
        const weights = destinations.map((d) => d.weight);
        if (destinations.length > 1 || weights.some((w) => w !== undefined)) {
            if (weights.some((w) => typeof w !== "number" || !Number.isInteger(w) || w < 0 || w > 100)) {
                violations.push(`${label}: every weight must be a whole percent from 0 to 100, got ${JSON.stringify(weights)}`);
            } else {
                const sum = (weights as number[]).reduce((a, b) => a + b, 0);
                if (sum !== 100) violations.push(`${label}: weights add up to ${sum}, not 100`);
            }
        }
        for (const mirror of list(route.mirrors).map(record)) {
            const value = record(mirror.percentage).value;
            if (value !== undefined && (typeof value !== "number" || value < 0 || value > 100)) {
                violations.push(`${label}: mirror percentage ${JSON.stringify(value)} is not 0-100`);
            }
        }
    }
    return violations;
}

/** Every subset a VirtualService routes or mirrors to is defined by a DestinationRule for that host. */
export function checkRoutedSubsets(resources: readonly CheckedResource[]): string[] {
    const defined = new Map<string, Set<string>>();
    for (const dr of resources.filter((r) => isKind(r, "DestinationRule", "networking.istio.io"))) {
        const spec = record(dr.props.spec);
        const host = qualifiedHost(text(spec.host) ?? "", namespaceOf(dr));
        const subsets = defined.get(host) ?? new Set<string>();
        for (const s of list(spec.subsets)) subsets.add(text(record(s).name) ?? "");
        defined.set(host, subsets);
    }
    const violations: string[] = [];
    for (const vs of resources.filter((r) => isKind(r, "VirtualService", "networking.istio.io"))) {
        for (const route of httpRoutes(vs)) {
            const destinations = [...list(route.route).map((d) => record(record(d).destination)), ...list(route.mirrors).map((m) => record(record(m).destination))];
            for (const d of destinations) {
                const subset = text(d.subset);
                if (subset === undefined) continue;
                const host = qualifiedHost(text(d.host) ?? "", namespaceOf(vs));
                if (!defined.get(host)?.has(subset)) {
                    violations.push(`VirtualService ${vs.name} routes to subset ${subset} of ${host}, which no DestinationRule defines`);
                }
            }
        }
    }
    return violations;
}

function podSpecOf(r: CheckedResource): Record<string, unknown> | undefined {
    const kind = kindOf(r);
    const spec = record(r.props.spec);
    if (kind === "Pod") return spec;
    if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(kind)) return record(record(spec.template).spec);
    if (kind === "CronJob") return record(record(record(record(spec.jobTemplate).spec).template).spec);
    return undefined;
}

function containersOf(r: CheckedResource): Record<string, unknown>[] {
    const pod = podSpecOf(r);
    return pod === undefined ? [] : [...list(pod.initContainers), ...list(pod.containers)].map(record);
}

/** Images name a tag or digest, and the tag is not `latest`. */
export function checkImagesPinned(r: CheckedResource): string[] {
    return containersOf(r).flatMap((c) => {
        const image = text(c.image) ?? "";
        const lastSegment = image.slice(image.lastIndexOf("/") + 1);
        const pinned = image.includes("@sha256:") || (lastSegment.includes(":") && !lastSegment.endsWith(":latest"));
        return pinned ? [] : [`${kindOf(r)} ${r.name} container ${String(c.name)}: image "${image}" is untagged or latest; pin a version or digest`];
    });
}

/**
 * App containers have readiness and liveness probes, CPU and memory requests (what the scheduler and an
 * autoscaler go by) and a memory limit. A CPU limit is not required: it throttles a busy pod even on an idle
 * node, which shows up as latency in exactly the p95 a canary is judged by.
 */
export function checkProbesAndLimits(r: CheckedResource): string[] {
    const pod = podSpecOf(r);
    if (pod === undefined) return [];
    return list(pod.containers).map(record).flatMap((c) => {
        const missing: string[] = [];
        if (c.readinessProbe === undefined) missing.push("a readinessProbe");
        if (c.livenessProbe === undefined) missing.push("a livenessProbe");
        const resources = record(c.resources);
        for (const [kind, resource] of [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]]) {
            if (record(resources[kind])[resource] === undefined) missing.push(`${kind}.${resource}`);
        }
        return missing.length === 0 ? [] : [`${kindOf(r)} ${r.name} container ${String(c.name)} has no ${missing.join(", ")}`];
    });
}

function productionNamespaces(resources: readonly CheckedResource[]): string[] {
    return resources
        .filter((r) => isKind(r, "Namespace") && r.type.includes(":core/v1:"))
        .filter((r) => record(record(r.props.metadata).labels)[PRODUCTION_LABEL] === "true")
        .map((r) => text(record(r.props.metadata).name) ?? "");
}

/** In production, each app namespace has STRICT mutual TLS and nothing weaker. */
export function checkProductionMtls(resources: readonly CheckedResource[]): string[] {
    const peerAuths = resources.filter((r) => isKind(r, "PeerAuthentication", "security.istio.io"));
    return productionNamespaces(resources).flatMap((ns) => {
        const modes = peerAuths.filter((p) => namespaceOf(p) === ns).map((p) => text(record(record(p.props.spec).mtls).mode));
        if (!modes.includes("STRICT")) return [`production namespace ${ns} has no STRICT PeerAuthentication`];
        return modes.some((m) => m !== "STRICT") ? [`production namespace ${ns} has a PeerAuthentication weaker than STRICT`] : [];
    });
}

/** In production, the ingress Gateway serves HTTPS from a credential. */
export function checkProductionGatewayTls(resources: readonly CheckedResource[]): string[] {
    if (productionNamespaces(resources).length === 0) return [];
    const https = resources
        .filter((r) => isKind(r, "Gateway", "networking.istio.io"))
        .flatMap((g) => list(record(g.props.spec).servers).map(record))
        .some((s) => text(record(s.port).protocol) === "HTTPS" && text(record(s.tls).credentialName) !== undefined);
    return https ? [] : ["a production stack's ingress Gateway has no HTTPS server with a TLS credential"];
}

/** In production, no route injects faults. */
export function checkNoProductionFaults(resources: readonly CheckedResource[]): string[] {
    if (productionNamespaces(resources).length === 0) return [];
    return resources
        .filter((r) => isKind(r, "VirtualService", "networking.istio.io"))
        .flatMap((vs) => httpRoutes(vs).filter((route) => route.fault !== undefined).map((route) => `VirtualService ${vs.name} route ${String(route.name)} injects faults in production`));
}
