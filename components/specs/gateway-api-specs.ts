// Pure renderers from the traffic plan to the Kubernetes Gateway API (v1.5.1, standard channel): a Service per
// version (the Gateway API has no subsets), an HTTPRoute per service at the edge and a GAMMA HTTPRoute in the
// mesh, and the edge Gateway. The types are the subset of v1.5.1's schema this program writes; the tests
// validate every object against the CRDs the program installs.
import type { ConfigProblem } from "../config/config-reader";
import { versionServiceName } from "../config/names";
import { durationMs } from "../config/config-reader";
import type { StringMatch } from "../config/policy-config";
import type { RequestMatch, RouteRule, ServicePlan } from "../plan/plan";
import type { GatewayProvider } from "../config/config";
import { ENVOY_GATEWAY_NAMESPACE, ENVOY_PROXY_SERVICE_ACCOUNT } from "./envoy-gateway-specs";
import { GatewayTlsSpec, SERVICE_PORT } from "./istio-specs";
import { KONG_NAMESPACE, KONG_PROXY_SERVICE_ACCOUNT } from "./kong-specs";
import { GATEWAY_NAMESPACE, GATEWAY_RELEASE } from "./mesh-specs";
import type { EdgeSource } from "./security-specs";

export const GATEWAY_API = "gateway.networking.k8s.io/v1";
/** The Gateway API release Istio 1.30.3 is built against, whose standard-channel CRDs the program installs. */
export const GATEWAY_API_BUNDLE = "v1.5.1";
/** The program's own copy of that release's standard-channel install, relative to the project root. */
export const GATEWAY_API_CRDS_FILE = "crds/gateway-api-v1.5.1-standard.yaml";
/** The Gateway API object the edge routes attach to (in the ingress gateway's namespace). */
export const EDGE_GATEWAY = "public-gateway";

export interface HttpHeaderMatch {
    readonly type: "Exact" | "RegularExpression";
    readonly name: string;
    readonly value: string;
}
export interface HttpPathMatch {
    readonly type: "Exact" | "PathPrefix" | "RegularExpression";
    readonly value: string;
}
export interface HttpRouteMatch {
    readonly path?: HttpPathMatch;
    readonly headers?: readonly HttpHeaderMatch[];
}
export interface BackendRef {
    readonly name: string;
    readonly port: number;
}
export type HttpRouteFilter =
    | { readonly type: "RequestMirror"; readonly requestMirror: { readonly backendRef: BackendRef; readonly percent?: number; readonly fraction?: { readonly numerator: number; readonly denominator: number } } }
    | { readonly type: "ResponseHeaderModifier"; readonly responseHeaderModifier: { readonly add: readonly { readonly name: string; readonly value: string }[] } }
    | { readonly type: "RequestRedirect"; readonly requestRedirect: { readonly scheme: "https"; readonly statusCode: 301 } }
    | { readonly type: "URLRewrite"; readonly urlRewrite: { readonly hostname: string } };
export interface WeightedBackendRef extends BackendRef {
    readonly weight: number;
    readonly filters?: readonly HttpRouteFilter[];
}
export interface HttpRouteRule {
    readonly name?: string;
    readonly matches?: readonly HttpRouteMatch[];
    readonly filters?: readonly HttpRouteFilter[];
    readonly backendRefs?: readonly WeightedBackendRef[];
    readonly timeouts?: { readonly request: string };
}
export interface ParentRef {
    readonly group?: string;
    readonly kind?: "Gateway" | "Service";
    readonly namespace?: string;
    readonly name: string;
    readonly port?: number;
    readonly sectionName?: string;
}
export interface HttpRouteSpec {
    readonly parentRefs: readonly ParentRef[];
    readonly hostnames?: readonly string[];
    readonly rules: readonly HttpRouteRule[];
}
export interface Listener {
    readonly name: string;
    readonly hostname?: string;
    readonly port: number;
    readonly protocol: "HTTP" | "HTTPS";
    readonly tls?: { readonly mode: "Terminate"; readonly certificateRefs: readonly { readonly kind: "Secret"; readonly name: string }[] };
    readonly allowedRoutes: { readonly namespaces: { readonly from: "Selector"; readonly selector: { readonly matchLabels: Readonly<Record<string, string>> } } };
}
export interface GatewayApiGatewaySpec {
    readonly gatewayClassName: string;
    readonly addresses?: readonly { readonly type: "Hostname"; readonly value: string }[];
    readonly listeners: readonly Listener[];
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function headerMatch(name: string, match: StringMatch): HttpHeaderMatch {
    if ("exact" in match) return { type: "Exact", name, value: match.exact };
    // HTTPRoute has no prefix match for headers: a regular expression says the same.
    if ("prefix" in match) return { type: "RegularExpression", name, value: `${escapeRegex(match.prefix)}.*` };
    return { type: "RegularExpression", name, value: match.regex };
}

function pathMatch(match: StringMatch): HttpPathMatch {
    if ("exact" in match) return { type: "Exact", value: match.exact };
    if ("prefix" in match) return { type: "PathPrefix", value: match.prefix };
    return { type: "RegularExpression", value: match.regex };
}

/** A rule's match as an HTTPRoute match; `scope` is the edge's path prefix, where the rule has no path of its own. */
function routeMatch(match: RequestMatch | undefined, scope: StringMatch | undefined): HttpRouteMatch | undefined {
    const path = match?.path ?? scope;
    const headers = Object.entries(match?.headers ?? {}).map(([name, m]) => headerMatch(name, m));
    if (path === undefined && headers.length === 0) return undefined;
    return { ...(path && { path: pathMatch(path) }), ...(headers.length > 0 && { headers }) };
}

/** A mirror share as HTTPRoute takes it: a whole percent, or a fraction for a decimal one. */
function mirrorShare(percent: number): { percent: number } | { fraction: { numerator: number; denominator: number } } {
    return Number.isInteger(percent) ? { percent } : { fraction: { numerator: Math.round(percent * 1000), denominator: 100_000 } };
}

/**
 * How the edge's proxy says which Service it calls. `kept`: the client's Host goes on (Istio's gateway picks the
 * upstream itself; Kong's controller is told by an annotation). `rewritten`: each backendRef rewrites Host to
 * its Service's name, for a proxy whose sidecar picks the upstream by Host (Envoy Gateway).
 */
export type EdgeHost = "kept" | "rewritten";

function routeRules(plan: ServicePlan, rules: readonly RouteRule[], scope: StringMatch | undefined, host: EdgeHost = "kept"): HttpRouteRule[] {
    const version = (subset: string) => plan.subsets.find((s) => s.name === subset)?.version ?? subset;
    const backend = (subset: string): BackendRef => ({ name: versionServiceName(plan.name, version(subset)), port: SERVICE_PORT });
    const backendFilters = (destination: RouteRule["destinations"][number]): HttpRouteFilter[] => [
        // `<service>.<namespace>.svc` is one of the names Istio gives the Service's virtual host whatever the cluster's DNS domain.
        ...(host === "rewritten" ? [{ type: "URLRewrite" as const, urlRewrite: { hostname: `${backend(destination.subset).name}.${plan.namespace}.svc` } }] : []),
        ...(destination.setCookie !== undefined ? [{ type: "ResponseHeaderModifier" as const, responseHeaderModifier: { add: [{ name: "Set-Cookie", value: destination.setCookie }] } }] : []),
    ];
    return rules.map((rule) => {
        const match = routeMatch(rule.match, scope);
        const filters: HttpRouteFilter[] = rule.mirror ? [{ type: "RequestMirror", requestMirror: { backendRef: backend(rule.mirror.subset), ...mirrorShare(rule.mirror.percent) } }] : [];
        return {
            name: rule.name,
            ...(match && { matches: [match] }),
            ...(filters.length > 0 && { filters }),
            // As in the VirtualService, a destination at weight 0 is left out.
            backendRefs: rule.destinations
                .filter((d) => d.weight > 0)
                .map((d) => {
                    const own = backendFilters(d);
                    return { ...backend(d.subset), weight: d.weight, ...(own.length > 0 && { filters: own }) };
                }),
            ...(rule.timeout && { timeouts: { request: gatewayApiDuration(durationMs(rule.timeout)) } }),
        };
    });
}

/**
 * A duration in the Gateway API's syntax, `^([0-9]{1,5}(h|m|s|ms)){1,4}$`: no decimals, at most five digits per
 * unit. Whole milliseconds (the config reader's rule) split into hours, minutes, seconds and milliseconds fit.
 */
export function gatewayApiDuration(ms: number): string {
    const parts: [number, string][] = [
        [Math.floor(ms / 3_600_000), "h"],
        [Math.floor(ms / 60_000) % 60, "m"],
        [Math.floor(ms / 1000) % 60, "s"],
        [ms % 1000, "ms"],
    ];
    const text = parts.filter(([amount]) => amount > 0).map(([amount, unit]) => `${amount}${unit}`).join("");
    return text === "" ? "0s" : text;
}

/** The Gateway API's limits on one HTTPRoute (v1.5.1's CRD: maxItems and its CEL rule on the matches of all rules). */
const HTTP_ROUTE_LIMITS = { rules: 16, matchesPerRule: 64, matchesPerRoute: 128, backendRefs: 16, headersPerMatch: 16 } as const;

/** What the HTTPRoutes of a service would hold past the Gateway API's limits, which the API server refuses. */
export function gatewayApiLimitProblems(plan: ServicePlan): ConfigProblem[] {
    const keep = "or keep the VirtualServices, which have no such limit: pulumi config set trafficApi istio";
    // What is past a limit, and the fix, per route; the mesh and edge routes share their rules, so one finding in both is reported once.
    const findings = (spec: HttpRouteSpec): [string, string][] => {
        const found: [string, string][] = [];
        if (spec.rules.length > HTTP_ROUTE_LIMITS.rules) found.push([`would hold ${spec.rules.length} rules (the routes, the sticky canary's and the release rule), and the Gateway API allows ${HTTP_ROUTE_LIMITS.rules}`, `merge or remove rules in routes.${plan.name}, ${keep}`]);
        const matches = spec.rules.reduce((sum, rule) => sum + (rule.matches?.length ?? 0), 0);
        if (matches > HTTP_ROUTE_LIMITS.matchesPerRoute) found.push([`would hold ${matches} matches, and the Gateway API allows ${HTTP_ROUTE_LIMITS.matchesPerRoute} in a route`, `remove rules from routes.${plan.name}, ${keep}`]);
        for (const rule of spec.rules) {
            const name = rule.name ?? "";
            if ((rule.matches?.length ?? 0) > HTTP_ROUTE_LIMITS.matchesPerRule) found.push([`would hold more than ${HTTP_ROUTE_LIMITS.matchesPerRule} matches in rule "${name}"`, `split rule "${name}", ${keep}`]);
            if ((rule.backendRefs?.length ?? 0) > HTTP_ROUTE_LIMITS.backendRefs) found.push([`would send rule "${name}" to more than ${HTTP_ROUTE_LIMITS.backendRefs} backends`, `send it to fewer versions, ${keep}`]);
            if ((rule.matches ?? []).some((match) => (match.headers?.length ?? 0) > HTTP_ROUTE_LIMITS.headersPerMatch)) found.push([`would match more than ${HTTP_ROUTE_LIMITS.headersPerMatch} headers in rule "${name}"`, `match fewer headers in rule "${name}", ${keep}`]);
        }
        return found;
    };
    const mesh = findings(meshHttpRouteSpec(plan));
    const edge = findings({ parentRefs: [], rules: routeRules(plan, plan.ingressRules, { prefix: plan.path }) });
    const where = new Map<string, { fix: string; places: string[] }>();
    for (const [place, list] of [["in the mesh", mesh], ["at the edge", edge]] as const) {
        for (const [what, fix] of list) where.set(what, { fix, places: [...(where.get(what)?.places ?? []), place] });
    }
    return [...where].map(([what, { fix, places }]) => ({
        key: `routes.${plan.name}`,
        value: `${plan.rules.length} rules`,
        allowed: `with trafficApi gatewayApi, the HTTPRoute ${places.join(" and ")} ${what}`,
        fix,
    }));
}

/** The GAMMA route: its parent is the app's Service, so it applies to every in-mesh call to that Service. */
export function meshHttpRouteSpec(plan: ServicePlan): HttpRouteSpec {
    return { parentRefs: [{ group: "", kind: "Service", name: plan.name, port: SERVICE_PORT }], rules: routeRules(plan, plan.rules, undefined) };
}

/**
 * The edge route, by path prefix, on the edge Gateway: on both listeners, or on HTTPS only when HTTP redirects.
 * `*` (any host) is a route without hostnames.
 */
export function edgeHttpRouteSpec(plan: ServicePlan, gatewayNamespace: string, ingressHost: string, tls: GatewayTlsSpec | undefined, host: EdgeHost = "kept"): HttpRouteSpec {
    return {
        parentRefs: [{ name: EDGE_GATEWAY, namespace: gatewayNamespace, ...(tls?.httpsRedirect && { sectionName: "https" }) }],
        ...(ingressHost !== "*" && { hostnames: [ingressHost] }),
        rules: routeRules(plan, plan.ingressRules, { prefix: plan.path }, host),
    };
}

/** HTTP's only route when HTTPS is on and HTTP redirects: a 301 to the same URL over HTTPS. */
export function httpsRedirectRouteSpec(gatewayNamespace: string, ingressHost: string): HttpRouteSpec {
    return {
        parentRefs: [{ name: EDGE_GATEWAY, namespace: gatewayNamespace, sectionName: "http" }],
        ...(ingressHost !== "*" && { hostnames: [ingressHost] }),
        rules: [{ name: "https-redirect", filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] }],
    };
}

/**
 * The edge Gateway of the provider's class (with Istio, on the ingress gateway it already runs: the address
 * names its Service), with HTTP and, with TLS, HTTPS listeners from the same TLS config; routes from the app
 * namespace only.
 */
export function edgeGatewaySpec(ingressHost: string, tls: GatewayTlsSpec | undefined, appNamespace: string, gatewayClassName: string, addresses: GatewayApiGatewaySpec["addresses"]): GatewayApiGatewaySpec {
    const common = {
        ...(ingressHost !== "*" && { hostname: ingressHost }),
        allowedRoutes: { namespaces: { from: "Selector" as const, selector: { matchLabels: { "kubernetes.io/metadata.name": appNamespace } } } },
    };
    const http: Listener = { name: "http", port: 80, protocol: "HTTP", ...common };
    return {
        gatewayClassName,
        ...(addresses && { addresses }),
        listeners: tls === undefined ? [http] : [http, { name: "https", port: 443, protocol: "HTTPS", tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: tls.credentialName }] }, ...common }],
    };
}

/** Gateway API precedence of a match (path exact, then the longest prefix, then the most headers), comparable in order. */
function precedence(match: HttpRouteMatch | undefined): readonly number[] {
    const path = match?.path ?? { type: "PathPrefix", value: "/" };
    const kind = path.type === "Exact" ? 2 : path.type === "PathPrefix" ? 1 : 0;
    return [kind, path.type === "PathPrefix" ? path.value.length : 0, match?.headers?.length ?? 0];
}

const outranks = (a: readonly number[], b: readonly number[]) => {
    const i = a.findIndex((x, k) => x !== b[k]);
    return i >= 0 && a[i] > b[i];
};

/** Whether one request could satisfy both matches: no, only where they ask the same header for different exact values, or different exact paths. */
function mayOverlap(a: HttpRouteMatch | undefined, b: HttpRouteMatch | undefined): boolean {
    const exact = (m: HttpRouteMatch | undefined) => new Map((m?.headers ?? []).filter((h) => h.type === "Exact").map((h) => [h.name.toLowerCase(), h.value]));
    const [ea, eb] = [exact(a), exact(b)];
    if ([...ea].some(([name, value]) => eb.has(name) && eb.get(name) !== value)) return false;
    return !(a?.path?.type === "Exact" && b?.path?.type === "Exact" && a.path.value !== b.path.value);
}

/**
 * Where an HTTPRoute would send a request elsewhere than the VirtualService: Istio takes the first rule that
 * matches, the Gateway API the most specific match (rule order only breaks ties). A later rule that outranks
 * an earlier one it may overlap would take that earlier rule's requests, so such a config is refused.
 */
export function precedenceProblems(plan: ServicePlan): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const check = (where: string, rules: readonly HttpRouteRule[]) => {
        rules.forEach((later, j) => {
            const earlier = rules.slice(0, j).find((rule) => mayOverlap(rule.matches?.[0], later.matches?.[0]) && outranks(precedence(later.matches?.[0]), precedence(rule.matches?.[0])));
            if (earlier === undefined) return;
            problems.push({
                key: `routes.${plan.name}`,
                value: `"${later.name ?? `rule ${j + 1}`}" after "${earlier.name ?? "an earlier rule"}"`,
                allowed: `with trafficApi gatewayApi, ${where}: the HTTPRoute would send requests both match to "${later.name ?? ""}" (more specific: an exact path, a longer prefix or more headers), where the VirtualService sends them to "${earlier.name ?? ""}", which comes first`,
                fix: `put "${later.name ?? ""}" before "${earlier.name ?? ""}" in routes.${plan.name}, make their matches exclusive, or keep the VirtualServices: pulumi config set trafficApi istio`,
            });
        });
    };
    check("in the mesh", meshHttpRouteSpec(plan).rules);
    check("at the edge", routeRules(plan, plan.ingressRules, { prefix: plan.path }));
    return problems;
}

/** Who the edge's proxies are to the apps' sidecars: each provider's proxies by their service account. */
export function edgeSource(provider: GatewayProvider): EdgeSource {
    const serviceAccounts: Record<GatewayProvider, string> = {
        istio: `${GATEWAY_NAMESPACE}/${GATEWAY_RELEASE}`,
        envoyGateway: `${ENVOY_GATEWAY_NAMESPACE}/${ENVOY_PROXY_SERVICE_ACCOUNT}`,
        kong: `${KONG_NAMESPACE}/${KONG_PROXY_SERVICE_ACCOUNT}`,
    };
    return { serviceAccount: serviceAccounts[provider] };
}

/** Where the edge answers when a provider names its Service itself: the address it writes into the Gateway's status. */
export function gatewayAddressHint(): string {
    return `pending (kubectl -n ${GATEWAY_NAMESPACE} get gateways.gateway.networking.k8s.io ${EDGE_GATEWAY} -o jsonpath='{.status.addresses[0].value}')`;
}
