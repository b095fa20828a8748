// Pure renderers from the traffic plan to Istio resource specs, typed with Istio's own CRD schemas
// (@kubernetes-models/istio) so that a misspelled or misplaced field fails to compile.
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule" with { "resolution-mode": "import" };
import type { IGateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway" with { "resolution-mode": "import" };
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService" with { "resolution-mode": "import" };
import type { IEnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter" with { "resolution-mode": "import" };
import type { RateLimitSettings, StringMatch } from "../config/policy-config";
import { durationMs } from "../config/config-reader";
import { segmentBase } from "../config/catalogue";
import { RouteRule, ServicePlan } from "../plan/plan";

export type VirtualServiceSpec = NonNullable<IVirtualService["spec"]>;
export type HttpRoute = NonNullable<VirtualServiceSpec["http"]>[number];
export type HttpMatch = NonNullable<HttpRoute["match"]>[number];
export type DestinationRuleSpec = NonNullable<IDestinationRule["spec"]>;
export type GatewaySpec = NonNullable<IGateway["spec"]>;
export type EnvoyFilterSpec = NonNullable<IEnvoyFilter["spec"]>;

export const NETWORKING_API = "networking.istio.io/v1";
/** EnvoyFilter exists only as v1alpha3. */
export const ENVOY_FILTER_API = "networking.istio.io/v1alpha3";
/** The reserved gateway name for all sidecars in the mesh. */
export const MESH_GATEWAY = "mesh";

/** The service's traffic policy (mutual TLS, connection pool, outlier detection), or undefined when it has none. */
function trafficPolicyOf(plan: ServicePlan): DestinationRuleSpec["trafficPolicy"] {
    const { connectionPool, outlierDetection, istioMutualTls } = plan.trafficPolicy;
    const trafficPolicy: DestinationRuleSpec["trafficPolicy"] = {
        // Consistent with a STRICT PeerAuthentication: clients always present their mesh certificate.
        ...(istioMutualTls && { tls: { mode: "ISTIO_MUTUAL" } }),
        ...(connectionPool && {
            connectionPool: {
                ...(connectionPool.maxConnections !== undefined && { tcp: { maxConnections: connectionPool.maxConnections } }),
                http: {
                    ...(connectionPool.http1MaxPendingRequests !== undefined && { http1MaxPendingRequests: connectionPool.http1MaxPendingRequests }),
                    ...(connectionPool.maxRequestsPerConnection !== undefined && { maxRequestsPerConnection: connectionPool.maxRequestsPerConnection }),
                },
            },
        }),
        ...(outlierDetection && {
            outlierDetection: {
                ...(outlierDetection.consecutive5xxErrors !== undefined && { consecutive5xxErrors: outlierDetection.consecutive5xxErrors }),
                ...(outlierDetection.interval !== undefined && { interval: outlierDetection.interval }),
                ...(outlierDetection.baseEjectionTime !== undefined && { baseEjectionTime: outlierDetection.baseEjectionTime }),
                ...(outlierDetection.maxEjectionPercent !== undefined && { maxEjectionPercent: outlierDetection.maxEjectionPercent }),
            },
        }),
    };
    return Object.keys(trafficPolicy).length > 0 ? trafficPolicy : undefined;
}

export function destinationRuleSpec(plan: ServicePlan): DestinationRuleSpec {
    const trafficPolicy = trafficPolicyOf(plan);
    return {
        host: plan.host,
        ...(trafficPolicy && { trafficPolicy }),
        subsets: plan.subsets.map((s) => ({ name: s.name, labels: { version: s.version } })),
    };
}

/**
 * With the Gateway API, a version is its own Service: its traffic policy is a DestinationRule of that host
 * (Istio applies it whichever API routed the request), and none when the service has no policy.
 */
export function versionDestinationRuleSpec(plan: ServicePlan, host: string): DestinationRuleSpec | undefined {
    const trafficPolicy = trafficPolicyOf(plan);
    return trafficPolicy && { host, trafficPolicy };
}

type UriMatch = NonNullable<HttpMatch["uri"]>;

/**
 * Istio's matches for a path. A prefix matches whole path segments, as the Gateway API's PathPrefix does
 * (/users matches /users and /users/42, not /usersearch; a trailing slash is ignored): Istio's own `prefix` is
 * a string prefix, so it becomes the exact path or the path and a slash.
 */
function uriMatches(path: StringMatch): UriMatch[] {
    if (!("prefix" in path)) return [{ ...path }];
    // Never empty: a service's path and a rule's path under it are refused without a segment.
    const base = segmentBase(path.prefix);
    return [{ exact: base }, { prefix: `${base}/` }];
}

/** Istio's matches for a rule (any of them); `scope` is the ingress path prefix, where the rule has no path of its own. */
function matchOf(rule: RouteRule, scope: StringMatch | undefined): HttpMatch[] | undefined {
    const path = rule.match?.path ?? scope;
    const headers = rule.match?.headers && { headers: { ...rule.match.headers } };
    if (path === undefined) return headers && [headers];
    return uriMatches(path).map((uri) => ({ ...headers, uri }));
}

function httpRoutes(plan: ServicePlan, rules: readonly RouteRule[], scope: StringMatch | undefined): HttpRoute[] {
    const destination = (subset: string) => ({ host: plan.host, subset, port: { number: SERVICE_PORT } });
    return rules.map((rule) => {
        const match = matchOf(rule, scope);
        const { fault, retries, timeout, mirror } = rule;
        return {
            name: rule.name,
            ...(match && { match }),
            // A destination at weight 0 is left out: a retired subset may then go without any route naming it.
            route: rule.destinations
                .filter((d) => d.weight > 0)
                .map((d) => ({
                    destination: destination(d.subset),
                    weight: d.weight,
                    ...(d.setCookie !== undefined && { headers: { response: { add: { "set-cookie": d.setCookie } } } }),
                })),
            ...(mirror && { mirrors: [{ destination: destination(mirror.subset), percentage: { value: mirror.percent } }] }),
            ...(fault && {
                fault: {
                    ...(fault.delay && { delay: { percentage: { value: fault.delay.percent }, fixedDelay: fault.delay.fixedDelay } }),
                    ...(fault.abort && { abort: { percentage: { value: fault.abort.percent }, httpStatus: fault.abort.httpStatus } }),
                },
            }),
            ...(timeout && { timeout }),
            ...(retries && { retries: { attempts: retries.attempts, ...(retries.perTryTimeout && { perTryTimeout: retries.perTryTimeout }), ...(retries.retryOn && { retryOn: retries.retryOn }) } }),
        };
    });
}

/** Routes for calls from other workloads in the mesh, so a split holds for service-to-service traffic. */
export function meshVirtualServiceSpec(plan: ServicePlan): VirtualServiceSpec {
    return {
        hosts: [plan.host],
        gateways: [MESH_GATEWAY],
        http: httpRoutes(plan, plan.rules, undefined),
    };
}

/**
 * Routes for requests through the ingress gateway, by path prefix. A separate VirtualService from the mesh
 * one because Istio refuses a `*` host on a VirtualService bound to the mesh.
 */
export function ingressVirtualServiceSpec(plan: ServicePlan, gateway: string, ingressHost: string): VirtualServiceSpec {
    return {
        hosts: [ingressHost],
        gateways: [gateway],
        http: httpRoutes(plan, plan.ingressRules, { prefix: plan.path }),
    };
}

/** Port of every app Service; the container behind it listens on the service's own `port`. */
export const SERVICE_PORT = 80;

/** HTTPS on the public Gateway: the Secret's name in the gateway namespace, and whether HTTP redirects. */
export interface GatewayTlsSpec {
    credentialName: string;
    httpsRedirect: boolean;
}

export function gatewaySpec(selector: Record<string, string>, ingressHost: string, tls: GatewayTlsSpec | undefined): GatewaySpec {
    const http = { port: { number: 80, name: "http", protocol: "HTTP" }, hosts: [ingressHost], ...(tls?.httpsRedirect && { tls: { httpsRedirect: true } }) };
    if (tls === undefined) return { selector, servers: [http] };
    return {
        selector,
        servers: [http, { port: { number: 443, name: "https", protocol: "HTTPS" }, hosts: [ingressHost], tls: { mode: "SIMPLE", credentialName: tls.credentialName } }],
    };
}

/** Applied after the default-priority (0) EnvoyFilters of the namespace and the mesh. */
export const RATE_LIMIT_FILTER_PRIORITY = 10;

/** The HTTP filter every inbound chain ends with; the rate limit goes right before it. */
export const ROUTER_FILTER = "envoy.filters.http.router";

/**
 * Envoy's local rate limit on the service's inbound sidecar listener: a token bucket per pod; requests over
 * it get HTTP 429 with `x-local-rate-limit: true`. It is inserted before the router, so after authentication
 * and authorization: a request they deny never spends a token. (Istio inserts an INSERT_BEFORE patch with no
 * `subFilter` first of all, ahead of them: istio 1.30.3, envoyfilter/listener_patch.go, patchHTTPFilters.)
 */
export function rateLimitFilterSpec(app: string, limit: RateLimitSettings): EnvoyFilterSpec {
    const always = (runtimeKey: string) => ({ runtime_key: runtimeKey, default_value: { numerator: 100, denominator: "HUNDRED" } });
    return {
        workloadSelector: { labels: { app } },
        // A relative patch (INSERT_BEFORE) needs an explicit order among EnvoyFilters, or Istio may apply it
        // before the filter it is relative to exists (istioctl analyze: IST0151).
        priority: RATE_LIMIT_FILTER_PRIORITY,
        configPatches: [
            {
                applyTo: "HTTP_FILTER",
                match: {
                    context: "SIDECAR_INBOUND",
                    listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: ROUTER_FILTER } } } },
                },
                patch: {
                    operation: "INSERT_BEFORE",
                    value: {
                        name: "envoy.filters.http.local_ratelimit",
                        typed_config: {
                            "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                            type_url: "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                            value: {
                                stat_prefix: "http_local_rate_limiter",
                                // A protobuf Duration in JSON form is seconds with an `s` ("0.05s"), not "50ms" or "1m".
                                token_bucket: { max_tokens: limit.maxTokens, tokens_per_fill: limit.tokensPerFill, fill_interval: `${durationMs(limit.fillInterval) / 1000}s` },
                                // Without these two the filter only counts; the labs' version never limited anything.
                                filter_enabled: always("local_rate_limit_enabled"),
                                filter_enforced: always("local_rate_limit_enforced"),
                                response_headers_to_add: [{ append_action: "APPEND_IF_EXISTS_OR_ADD", header: { key: "x-local-rate-limit", value: "true" } }],
                            },
                        },
                    },
                },
            },
        ],
    };
}
