// The traffic plan: which versions of each service run, how they are named as Istio subsets, and which share
// of requests each subset receives. Pure data from the settings model; the components only render it.
import type { DataPlane, Settings } from "../config/config";
import { candidateSubset, ServiceSettings, Subset, subsetsOf } from "../config/catalogue";
import { isHttpEcho } from "../config/names";
import type { Autoscaling, Resources, WorkloadSettings } from "../config/workload-config";
import type { FaultSettings, RateLimitSettings, ResilienceSettings, ServicePolicies, StringMatch } from "../config/policy-config";

export interface WeightedSubset {
    readonly subset: string;
    readonly weight: number;
    /** A Set-Cookie the response carries when this destination served it (a sticky canary). */
    readonly setCookie?: string;
}

/** Conditions of a rule; all must hold. Header names are lowercase. */
export interface RequestMatch {
    readonly headers?: Readonly<Record<string, StringMatch>>;
    readonly path?: StringMatch;
}

/** One HTTP route rule, in the order Istio evaluates them. */
export interface RouteRule {
    readonly name: string;
    /** Absent on the release rule, which takes every request the rules before it did not. */
    readonly match?: RequestMatch;
    readonly destinations: readonly WeightedSubset[];
    readonly mirror?: { readonly subset: string; readonly percent: number };
    readonly fault?: FaultSettings;
    readonly timeout?: string;
    readonly retries?: ResilienceSettings["retries"];
}

/** What one version runs: the Deployment's decisions, for the specs to render. */
export interface VersionWorkload {
    readonly version: string;
    readonly image: string;
    /**
     * Pods the Deployment asks for. With an autoscaler, its minimum: the count the version starts with; after
     * that the Deployment keeps whatever count is live and the autoscaler takes it over (see AppWorkloads).
     */
    readonly replicas: number;
    /** The fewest pods the version runs: with 2 or more it gets a PodDisruptionBudget. */
    readonly minPods: number;
    /** http-echo's flags (its answer and port); other images run their own command. */
    readonly args: readonly string[];
    readonly env: Readonly<Record<string, string>>;
    readonly resources: Resources;
    /** The numeric user of images known to run as one (runAsNonRoot needs a number to verify). */
    readonly runAsUser?: number;
}

export interface ServicePlan {
    readonly name: string;
    readonly namespace: string;
    /** The Service's cluster-local FQDN, the host Istio routes to. */
    readonly host: string;
    readonly path: string;
    readonly release: ServiceSettings["release"];
    readonly subsets: readonly Subset[];
    /** Ordered rules for in-mesh callers; the last one has no match and carries the release split. */
    readonly rules: readonly RouteRule[];
    /** The same rules as the ingress applies them: edge rules restricted or left out as edgeRuleAccess says. */
    readonly ingressRules: readonly RouteRule[];
    /** Percent of plain requests per subset (the default rule), for outputs and summaries. */
    readonly split: Readonly<Record<string, number>>;
    /** The container port, protocol and health check every version shares. */
    readonly workload: Pick<WorkloadSettings, "port" | "protocol" | "health">;
    readonly workloads: readonly VersionWorkload[];
    readonly autoscaling?: Autoscaling;
    /** Circuit breaking for the DestinationRule, and Istio mutual TLS when the namespace requires it. */
    readonly trafficPolicy: Pick<ResilienceSettings, "connectionPool" | "outlierDetection"> & { readonly istioMutualTls?: boolean };
    readonly rateLimit?: RateLimitSettings;
    /** Sidecars in its pods, ambient (ztunnel on each node and the namespace's waypoint for L7), or the stage between. */
    readonly dataPlane: DataPlane;
}

export interface TrafficPlan {
    readonly namespace: string;
    readonly ingressHost: string;
    readonly services: readonly ServicePlan[];
}

// hashicorp/http-echo 1.0.0 is a distroless image that runs as `nonroot`, UID and GID 65532.
const HTTP_ECHO_UID = 65532;
const HTTP_ECHO_RESOURCES: Resources = { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m", memory: "64Mi" } };
/** What a service that says nothing of its resources gets: a request to schedule by, and a memory ceiling. */
const DEFAULT_RESOURCES: Resources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } };

/** Istio's regex for one cookie in the Cookie header (RE2, matched against the whole header). */
export function cookieRegex(name: string, match: { exact: string } | { regex: string }): string {
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const value = "exact" in match ? escape(match.exact) : `(?:${match.regex})`;
    return `^(?:.*;\\s*)?${escape(name)}=${value}(?:;.*)?$`;
}

/** The ordered rules of a service: blue/green preview, then the configured matches, then the release split. */
function rulesOf(service: ServiceSettings, settings: Settings, policies: ServicePolicies): RouteRule[] {
    const { timeout, retries } = policies.resilience;
    const common = { ...(policies.fault && { fault: policies.fault }), ...(timeout && { timeout }), ...(retries && { retries }) };
    const rules: RouteRule[] = [];
    const previewHeader = settings.policies.previewHeader;
    if (service.release === "blueGreen" && previewHeader !== undefined) {
        for (const color of ["blue", "green"] as const) {
            rules.push({ name: `preview-${color}`, match: { headers: { [previewHeader]: { exact: color } } }, destinations: [{ subset: color, weight: 100 }], ...common });
        }
    }
    for (const route of policies.routes) {
        const headers = { ...route.headers, ...(route.cookie && { cookie: { regex: cookieRegex(route.cookie.name, route.cookie.match) } }) };
        const match: RequestMatch = { ...(Object.keys(headers).length > 0 && { headers }), ...(route.path && { path: route.path }) };
        rules.push({ name: route.name, match, destinations: [{ subset: route.to, weight: 100 }], ...common });
    }
    const candidate = candidateSubset(service, settings.activeColor);
    const split = releaseSplit(service, settings);
    const sticky = service.stickyCanary;
    const candidateWeight = split.find((d) => d.subset === candidate)?.weight ?? 0;
    // A sticky canary: the candidate's responses set a cookie, and the cookie keeps its holder on the candidate.
    // Only while the candidate has weight: at 0 it is unreleased, and the rule would let a forged cookie in.
    if (sticky !== undefined && candidate !== undefined && candidateWeight > 0) {
        rules.push({ name: STICKY_RULE, match: { headers: { cookie: { regex: cookieRegex(sticky.cookie, { exact: candidate }) } } }, destinations: [{ subset: candidate, weight: 100 }], ...common });
    }
    const destinations = sticky === undefined ? split : split.map((d) => (d.subset === candidate ? { ...d, setCookie: `${sticky.cookie}=${candidate}; Max-Age=${String(sticky.maxAgeSeconds)}; Path=/` } : d));
    const mirror = policies.mirrorPercent !== undefined && candidate !== undefined ? { subset: candidate, percent: policies.mirrorPercent } : undefined;
    rules.push({ name: "release", destinations, ...(mirror && { mirror }), ...common });
    return rules;
}

/** The rule that keeps a sticky canary's users on the candidate. */
export const STICKY_RULE = "sticky-canary";

/** The pseudo-header under which Istio's ingress gateway matches a claim of the JWT it validated. */
export const JWT_CLAIM_HEADER = "@request.auth.claims.";

/**
 * The rules the ingress applies. The release rule applies to everyone; a rule with conditions (how a caller
 * picks a version) applies as edgeRuleAccess says: to anyone, only with the claim, or not at all.
 */
function ingressRulesOf(rules: readonly RouteRule[], publicRules: ReadonlySet<string>, settings: Settings): RouteRule[] {
    const { edgeRuleAccess } = settings.policies;
    const jwt = settings.security.jwt;
    const claim = settings.policies.edgeRuleClaim ?? (jwt && { name: "iss", value: jwt.issuer });
    return rules.flatMap((rule) => {
        if (rule.match === undefined || edgeRuleAccess === "public" || publicRules.has(rule.name)) return [rule];
        if (edgeRuleAccess === "meshOnly" || claim === undefined) return [];
        return [{ ...rule, match: { ...rule.match, headers: { ...rule.match.headers, [JWT_CLAIM_HEADER + claim.name]: { exact: claim.value } } } }];
    });
}

/** The default split of a service: the one decision canaryWeight and activeColor control. */
export function releaseSplit(service: ServiceSettings, settings: Pick<Settings, "canaryWeight" | "activeColor">): WeightedSubset[] {
    switch (service.release) {
        case "canary": {
            const [stable, candidate] = service.versions;
            const weight = service.canaryWeight ?? settings.canaryWeight;
            return [
                { subset: stable, weight: 100 - weight },
                { subset: candidate, weight },
            ];
        }
        case "blueGreen":
            return [
                { subset: "blue", weight: settings.activeColor === "blue" ? 100 : 0 },
                { subset: "green", weight: settings.activeColor === "green" ? 100 : 0 },
            ];
        case "single":
            return [{ subset: service.versions[0], weight: 100 }];
    }
}

function planService(service: ServiceSettings, settings: Settings): ServicePlan {
    const subsets = subsetsOf(service);
    const policies = settings.policies.byService[service.name];
    const { connectionPool, outlierDetection } = policies.resilience;
    const rules = rulesOf(service, settings, policies);
    // The sticky rule matches a cookie the candidate's own responses set, while it is released; not a version pick.
    const publicRules = new Set([...policies.routes.filter((r) => r.public).map((r) => r.name), STICKY_RULE]);
    // The last rule has no match: it carries the release split.
    const split = rules[rules.length - 1].destinations;
    const { port, protocol, health } = service.workload;
    const workloads = subsets.map((s, i): VersionWorkload => {
        const own = service.versionSettings[i];
        const image = own.image ?? settings.image;
        const echo = isHttpEcho(image);
        const replicas = own.replicas ?? settings.replicas;
        // http-echo answers with text naming app and version (and color), so a curl shows who served it.
        const text = s.name === s.version ? `${service.name} ${s.version}` : `${service.name} ${s.version} (${s.name})`;
        return {
            version: s.version,
            image,
            replicas: service.autoscaling?.minReplicas ?? replicas,
            minPods: service.autoscaling?.minReplicas ?? replicas,
            args: echo ? [`-text=${text}`, `-listen=:${String(port)}`] : [],
            env: { ...service.workload.env, ...own.env },
            resources: own.resources ?? service.workload.resources ?? (echo ? HTTP_ECHO_RESOURCES : DEFAULT_RESOURCES),
            ...(echo && { runAsUser: HTTP_ECHO_UID }),
        };
    });
    return {
        name: service.name,
        namespace: settings.appNamespace,
        host: `${service.name}.${settings.appNamespace}.svc.cluster.local`,
        path: service.path,
        release: service.release,
        subsets,
        rules,
        ingressRules: ingressRulesOf(rules, publicRules, settings),
        split: Object.fromEntries(split.map((d) => [d.subset, d.weight])),
        workload: { port, protocol, health },
        workloads,
        ...(service.autoscaling && { autoscaling: service.autoscaling }),
        trafficPolicy: {
            ...(connectionPool && { connectionPool }),
            ...(outlierDetection && { outlierDetection }),
            // Ambient pods have no sidecar to terminate Istio's TLS: ztunnel carries every connection over mutual TLS (HBONE) itself.
            ...(settings.security.mtlsMode === "STRICT" && settings.dataPlane !== "ambient" && { istioMutualTls: true }),
        },
        ...(policies.rateLimit && { rateLimit: policies.rateLimit }),
        dataPlane: settings.dataPlane,
    };
}

export function planTraffic(settings: Settings): TrafficPlan {
    return {
        namespace: settings.appNamespace,
        ingressHost: settings.ingressHost,
        services: settings.services.map((s) => planService(s, settings)),
    };
}
