// Test helpers: run the program under mocks, find its resources, and answer "where does this request go"
// by evaluating the rendered VirtualServices the way Istio does (first matching rule wins).
import { ProgramError, ProgramRun, RegisteredResource, runProgram, ConfigValue, stackConfig } from "../lib/mock-program";
import { destinationRuleSpec, HttpMatch, HttpRoute, ingressVirtualServiceSpec, meshVirtualServiceSpec, VirtualServiceSpec } from "../components/specs/istio-specs";
import { ingressRouteName } from "../components/config/names";
import { ConfigError, ConfigProblem } from "../components/config/config-reader";
import { readSettings, Settings } from "../components/config/config";
import { checkedPlan } from "../components/specs/checked-plan";
import { JWT_CLAIM_HEADER, planTraffic, TrafficPlan } from "../components/plan/plan";
import { RE2JS } from "re2js";
import { configSource } from "../rollout/config-edit";
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule" with { "resolution-mode": "import" };
import type { IGateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway" with { "resolution-mode": "import" };
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService" with { "resolution-mode": "import" };
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment" with { "resolution-mode": "import" };
import type { INamespace } from "kubernetes-models/v1/Namespace" with { "resolution-mode": "import" };
import type { IService } from "kubernetes-models/v1/Service" with { "resolution-mode": "import" };
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount" with { "resolution-mode": "import" };
import type { ISecret } from "kubernetes-models/v1/Secret" with { "resolution-mode": "import" };
import type { IEnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter" with { "resolution-mode": "import" };
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy" with { "resolution-mode": "import" };
import type { IPeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication" with { "resolution-mode": "import" };
import type { IRequestAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication" with { "resolution-mode": "import" };
import type { IServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry" with { "resolution-mode": "import" };
import type { ITelemetry } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry" with { "resolution-mode": "import" };

export { runProgram, ProgramError, configSource };
export type { ProgramRun, RegisteredResource };

const runs = new Map<string, Promise<ProgramRun>>();

/** runProgram, memoised per stack and overrides: most tests only read the result. */
export function run(stack: string, overrides: Record<string, ConfigValue> = {}, secretKeys: readonly string[] = []): Promise<ProgramRun> {
    // Keyed by the config the program sees, as the CLI passes it: an override equal to the stack's value is no change.
    const asCli = (v: ConfigValue): string => (typeof v === "string" ? v : JSON.stringify(v));
    const config: Record<string, ConfigValue> = { ...stackConfig(stack), ...overrides };
    const effective = Object.keys(config).sort().map((k) => [k, asCli(config[k])]);
    const key = JSON.stringify([stack, effective, secretKeys]);
    let result = runs.get(key);
    if (result === undefined) {
        result = runProgram(stack, overrides, secretKeys);
        runs.set(key, result);
    }
    return result;
}

/** Expects the program to refuse the config; returns the error and what got registered first. */
export async function refused(stack: string, overrides: Record<string, ConfigValue>): Promise<ProgramError> {
    try {
        await run(stack, overrides);
    } catch (error) {
        if (error instanceof ProgramError) return error;
        throw error;
    }
    throw new Error(`expected the program to refuse ${JSON.stringify(overrides)}`);
}

export interface K8sObject {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: unknown;
    /** A ConfigMap's or Secret's. */
    data?: Record<string, string>;
}

function isK8sObject(inputs: Record<string, unknown>): boolean {
    return typeof inputs.apiVersion === "string" && typeof inputs.kind === "string" && typeof inputs.metadata === "object";
}

/** Every Kubernetes object the program creates (custom resources, not Helm releases or components). */
export function objects(result: ProgramRun): K8sObject[] {
    return result.resources.filter((r) => r.custom && isK8sObject(r.inputs)).map((r) => r.inputs as unknown as K8sObject);
}

/** The schema type of each kind the program renders (the schema tests check that they conform). */
export interface KindMap {
    Deployment: IDeployment;
    Service: IService;
    ServiceAccount: IServiceAccount;
    Namespace: INamespace;
    VirtualService: IVirtualService;
    DestinationRule: IDestinationRule;
    Gateway: IGateway;
    Secret: ISecret;
    EnvoyFilter: IEnvoyFilter;
    PeerAuthentication: IPeerAuthentication;
    AuthorizationPolicy: IAuthorizationPolicy;
    RequestAuthentication: IRequestAuthentication;
    ServiceEntry: IServiceEntry;
    Telemetry: ITelemetry;
}

export function ofKind<K extends keyof KindMap>(result: ProgramRun, kind: K): KindMap[K][] {
    return objects(result).filter((o) => o.kind === kind) as unknown as KindMap[K][];
}

export function named<K extends keyof KindMap>(result: ProgramRun, kind: K, name: string): KindMap[K] {
    return must(
        ofKind(result, kind).find((o) => o.metadata?.name === name),
        `${kind} ${name}`,
    );
}

export interface HelmRelease {
    name: string;
    chart: string;
    version: string;
    namespace: string;
    repositoryOpts: { repo: string };
    values: Record<string, unknown>;
}

export function helmReleases(result: ProgramRun): HelmRelease[] {
    return result.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release").map((r) => r.inputs as unknown as HelmRelease);
}

export function resource(result: ProgramRun, type: string, name: string): RegisteredResource {
    const found = result.resources.find((r) => r.type.endsWith(type) && r.name === name);
    if (found === undefined) throw new Error(`no resource ${type} ${name}`);
    return found;
}

/**
 * Does `dependent` wait for `dependency`: directly, through a component that contains it, or through a
 * chain of such waits (Pulumi creates a resource only after everything it depends on exists)?
 */
export function waitsFor(result: ProgramRun, dependent: RegisteredResource, dependency: RegisteredResource): boolean {
    const key = (r: RegisteredResource) => `${r.type}::${r.name}`;
    const byKey = new Map(result.resources.map((r) => [key(r), r]));
    const ancestors = new Set<string>();
    for (let at: RegisteredResource | undefined = dependency; at !== undefined; at = at.parent === undefined ? undefined : byKey.get(at.parent)) {
        ancestors.add(key(at));
    }
    const visited = new Set<string>();
    const queue = [...dependent.dependsOn];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        if (ancestors.has(next)) return true;
        if (visited.has(next)) continue;
        visited.add(next);
        queue.push(...(byKey.get(next)?.dependsOn ?? []));
        // Waiting for a component means waiting for everything inside it.
        queue.push(...result.resources.filter((r) => r.parent === next).map(key));
    }
    return false;
}

export interface Request {
    /** `mesh` for a call from another workload, or the `namespace/name` of the ingress Gateway. */
    gateway: string;
    host: string;
    path: string;
    headers?: Record<string, string>;
    /** Claims of a JWT the ingress gateway validated (a list claim matches if any element does). */
    claims?: Record<string, string | string[]>;
}

/** Percent of matching requests per destination `host/subset`. */
export type Distribution = Record<string, number>;

function hostMatches(pattern: string, host: string): boolean {
    if (pattern === "*") return true;
    if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
    return pattern === host;
}

type StringMatch = { exact?: string; prefix?: string; regex?: string } | undefined;

function stringMatches(match: StringMatch, value: string | undefined): boolean {
    if (match === undefined) return true;
    if (value === undefined) return false;
    if (match.exact !== undefined) return value === match.exact;
    if (match.prefix !== undefined) return value.startsWith(match.prefix);
    // Istio matches the whole value, with RE2.
    if (match.regex !== undefined) return RE2JS.compile(match.regex).matches(value);
    return true;
}

function requestMatches(match: HttpMatch, request: Request, vsGateways: string[]): boolean {
    const gateways = match.gateways ?? vsGateways;
    if (!gateways.includes(request.gateway)) return false;
    if (!stringMatches(match.uri, request.path)) return false;
    const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [name, headerMatch] of Object.entries(match.headers ?? {})) {
        if (name.startsWith(JWT_CLAIM_HEADER)) {
            // Istio matches validated JWT claims at gateways only; a sidecar never sees them.
            const claim = request.gateway === "mesh" ? undefined : request.claims?.[name.slice(JWT_CLAIM_HEADER.length)];
            const values = claim === undefined ? [] : Array.isArray(claim) ? claim : [claim];
            if (!values.some((v) => stringMatches(headerMatch, v))) return false;
        } else if (!stringMatches(headerMatch, headers[name])) {
            return false;
        }
    }
    return true;
}

/** Where Istio sends `request`, given every VirtualService the program renders; undefined if none applies. */
export function routeRequest(result: ProgramRun, request: Request): Distribution | undefined {
    return routeVia(
        ofKind(result, "VirtualService").map((vs) => vs.spec ?? {}),
        request,
    );
}

/** The HTTP route Istio applies to `request`, given VirtualService specs in creation order (first match wins). */
export function matchedRoute(specs: readonly VirtualServiceSpec[], request: Request): HttpRoute | undefined {
    for (const spec of specs) {
        const gateways = spec.gateways ?? ["mesh"];
        if (!gateways.includes(request.gateway)) continue;
        if (!(spec.hosts ?? []).some((h) => hostMatches(h, request.host))) continue;
        const rule = (spec.http ?? []).find((r) => (r.match ?? []).length === 0 || (r.match ?? []).some((m) => requestMatches(m, request, gateways)));
        if (rule !== undefined) return rule;
    }
    return undefined;
}

/** Where Istio sends `request`: percent per destination `host/subset`. */
export function routeVia(specs: readonly VirtualServiceSpec[], request: Request): Distribution | undefined {
    const rule = matchedRoute(specs, request);
    if (rule === undefined) return undefined;
    const distribution: Distribution = {};
    for (const r of rule.route ?? []) {
        const key = `${r.destination.host}/${r.destination.subset ?? ""}`;
        distribution[key] = (distribution[key] ?? 0) + (r.weight ?? 100);
    }
    return distribution;
}

/** The Set-Cookie each destination of the matched route adds to its responses, by subset. */
export function setCookies(specs: readonly VirtualServiceSpec[], request: Request): Record<string, string> {
    return Object.fromEntries((matchedRoute(specs, request)?.route ?? []).flatMap((r) => {
        const cookie = r.headers?.response?.add?.["set-cookie"];
        return cookie === undefined ? [] : [[r.destination.subset ?? "", cookie]];
    }));
}

/** Shares per subset of one service host, leaving out zero-weight destinations. */
export function shares(distribution: Distribution | undefined): Record<string, number> {
    const result: Record<string, number> = {};
    for (const [key, weight] of Object.entries(distribution ?? {})) {
        if (weight > 0) result[key.slice(key.indexOf("/") + 1)] = weight;
    }
    return result;
}

export const INGRESS = "istio-ingress/public-gateway";
export const fqdn = (service: string, namespace = "backend") => `${service}.${namespace}.svc.cluster.local`;

/** A stack file's settings with overrides, read as the program reads them, without running the program. */
export function settingsFor(stack: string, overrides: Record<string, unknown> = {}): Settings {
    return readSettings(configSource({ ...stackConfig(stack), ...overrides }));
}

/** The traffic plan of a stack with overrides: the pure core, no Pulumi. */
export function planFor(stack: string, overrides: Record<string, unknown> = {}): TrafficPlan {
    return planTraffic(settingsFor(stack, overrides));
}

/** The VirtualService specs the routing renders for a plan, in the order the program creates them. */
export function virtualServiceSpecs(plan: TrafficPlan): VirtualServiceSpec[] {
    return plan.services.flatMap((s) => [meshVirtualServiceSpec(s), ingressVirtualServiceSpec(s, INGRESS, plan.ingressHost)]);
}

/** That the pure routing above is what the program registers: tests run it in place of the whole program. */
export function registeredVirtualServiceSpecs(result: ProgramRun): VirtualServiceSpec[] {
    return ofKind(result, "VirtualService").filter((vs) => vs.metadata?.namespace !== "istio-egress").map((vs) => vs.spec ?? {});
}

/** A stack's routing from the pure core, no Pulumi: where requests go, and the specs by object name. */
export function routingOf(stack: string, overrides: Record<string, unknown> = {}) {
    const plan = planFor(stack, overrides);
    const virtualServices = new Map(plan.services.flatMap((s) => [[s.name, meshVirtualServiceSpec(s)], [ingressRouteName(s.name), ingressVirtualServiceSpec(s, INGRESS, plan.ingressHost)]] as const));
    return {
        plan,
        route: (request: Request) => routeVia([...virtualServices.values()], request),
        virtualService: (name: string) => must(virtualServices.get(name), `VirtualService ${name}`),
        destinationRule: (name: string) => destinationRuleSpec(must(plan.services.find((s) => s.name === name), `service ${name}`)),
    };
}


/** What the program refuses in `values` before creating anything (empty when it accepts them). */
export function configProblems(values: Record<string, unknown>, secretKeys: readonly string[] = []): readonly ConfigProblem[] {
    try {
        checkedPlan(configSource(values, secretKeys));
    } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
    }
    return [];
}

/** The least a production stack must set besides `production`, for tests of one more production rule. */
export const PRODUCTION_MINIMUM = { production: true, gatewayReplicas: "2", tlsCredentialName: "api-example-com-tls" } as const;

/** The value, or a failed assertion naming what was missing. */
export function must<T>(value: T | undefined | null, what: string): T {
    if (value === undefined || value === null) throw new Error(`missing: ${what}`);
    return value;
}
