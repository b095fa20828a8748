// Bad input, as a new user would type it: every config key and every render flag. Each case is refused with
// render's documented exit status (2), before anything is registered or written, with a message that names
// the key, the value, what is allowed and a fix.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CONFIG_KEYS } from "../components/config/config";
import { ConfigError, printable } from "../components/config/config-reader";
import { ConfigValue, ProgramError, PROJECT_ROOT } from "../lib/mock-program";
import { parseStackFile, StackFileError } from "../lib/stack-file";
import { exitStatus, parseArgs, render, renderFix } from "../scripts/render";
import { configProblems, INGRESS, planFor, PRODUCTION_MINIMUM, routeVia, shares, virtualServiceSpecs } from "./harness";

const rule = (fields: Record<string, unknown>) => ({ routes: { "user-service": [{ name: "r", headers: { "x-a": { exact: "b" } }, to: "v2", ...fields }] } });
const service = (fields: Record<string, unknown>, name = "cart-service") => ({ services: { [name]: { path: "/cart", release: "canary", versions: ["v1", "v2"], ...fields } } });
const egress = (entry: Record<string, unknown>) => ({ egressHosts: [{ host: "api.example.com", ports: [{ number: 443, protocol: "TLS" }], ...entry }] });
const jwt = (fields: Record<string, unknown>) => ({ jwt: { issuer: "https://i.example.com", jwksUri: "https://i.example.com/jwks.json", protectedPaths: ["/orders*"], ...fields } });
const resilience = (fields: Record<string, unknown>) => ({ resilience: { "*": fields } });
const prod = (overrides: Record<string, ConfigValue>) => ({ stack: "prod", overrides });
const long = (n: number) => "a".repeat(n);
const rollout = (fields: Record<string, unknown>) => ({ rollout: fields });
/** A custom metric's query over one version. */
const METRIC_QUERY = 'sum(rate(istio_requests_total{destination_version="{{version}}"}[{{interval}}]))';

/** [what a user tried, stack and config, the key the error must name]. */
const CASES: [string, { stack: string; overrides: Record<string, ConfigValue> }, string][] = [
    ["a canary weight over 100", { stack: "dev", overrides: { canaryWeight: "150" } }, "canaryWeight"],
    ["a negative canary weight", { stack: "dev", overrides: { canaryWeight: "-1" } }, "canaryWeight"],
    ["a fractional canary weight", { stack: "dev", overrides: { canaryWeight: "12.5" } }, "canaryWeight"],
    ["a canary weight in words", { stack: "dev", overrides: { canaryWeight: "fifty" } }, "canaryWeight"],
    ["an unknown color", { stack: "dev", overrides: { activeColor: "purple" } }, "activeColor"],
    ["an empty color", { stack: "dev", overrides: { activeColor: "" } }, "activeColor"],
    ["Istio as latest", { stack: "dev", overrides: { istioVersion: "latest" } }, "istioVersion"],
    ["an Istio older than the v1 APIs", { stack: "dev", overrides: { istioVersion: "1.20.0" } }, "istioVersion"],
    ["an Istio version without a patch", { stack: "dev", overrides: { istioVersion: "1.30" } }, "istioVersion"],
    ["zero replicas", { stack: "dev", overrides: { replicas: "0" } }, "replicas"],
    ["51 replicas", { stack: "dev", overrides: { replicas: "51" } }, "replicas"],
    ["an image without a tag", { stack: "dev", overrides: { image: "hashicorp/http-echo" } }, "image"],
    ["an image with two tags", { stack: "dev", overrides: { image: "nginx:1.0:2.0" } }, "image"],
    ["a 10,000-character image", { stack: "dev", overrides: { image: `${long(10_000)}:1` } }, "image"],
    ["an image with an uppercase name", { stack: "dev", overrides: { image: "Acme/App:1.0" } }, "image"],
    ["an image with an empty tag", { stack: "dev", overrides: { image: "nginx:" } }, "image"],
    ["an image with a short digest", { stack: "dev", overrides: { image: "nginx@sha256:abc" } }, "image"],
    ["an image with a space", { stack: "dev", overrides: { image: "nginx :1.0" } }, "image"],
    ["istio-system as the app namespace", { stack: "dev", overrides: { appNamespace: "istio-system" } }, "appNamespace"],
    ["a kube-* app namespace", { stack: "dev", overrides: { appNamespace: "kube-public" } }, "appNamespace"],
    ["the ingress gateway's namespace", { stack: "dev", overrides: { appNamespace: "istio-ingress" } }, "appNamespace"],
    ["an uppercase namespace", { stack: "dev", overrides: { appNamespace: "Backend" } }, "appNamespace"],
    ["a 64-character namespace", { stack: "dev", overrides: { appNamespace: long(64) } }, "appNamespace"],
    ["an ingress host with a space", { stack: "dev", overrides: { ingressHost: "exa mple.com" } }, "ingressHost"],
    ["an ingress host with a 64-character label", { stack: "dev", overrides: { ingressHost: `${long(64)}.example.com` } }, "ingressHost"],
    ["an ingress host over 253 characters", { stack: "dev", overrides: { ingressHost: `${"a.".repeat(130)}com` } }, "ingressHost"],
    ["an ingress host given as a URL", { stack: "dev", overrides: { ingressHost: "https://api.example.com" } }, "ingressHost"],
    ["an Ingress service type", { stack: "dev", overrides: { gatewayServiceType: "Ingress" } }, "gatewayServiceType"],
    ["zero gateway pods", { stack: "dev", overrides: { gatewayReplicas: "0" } }, "gatewayReplicas"],
    ["one gateway pod in production", prod({ gatewayReplicas: "1" }), "gatewayReplicas"],
    ["a platform Istio has no name for", { stack: "dev", overrides: { platform: "minikube" } }, "platform"],
    ["an uppercase platform", { stack: "dev", overrides: { platform: "GKE" } }, "platform"],
    ["a node port below the range", { stack: "dev", overrides: { gatewayHttpNodePort: "80" } }, "gatewayHttpNodePort"],
    ["an HTTPS node port above the range", { stack: "dev", overrides: { gatewayHttpsNodePort: "40000" } }, "gatewayHttpsNodePort"],
    ["the same node port twice", { stack: "dev", overrides: { gatewayHttpsNodePort: "30080" } }, "gatewayHttpsNodePort"],
    ["services that are not JSON", { stack: "dev", overrides: { services: "user-service" } }, "services"],
    ["no services", { stack: "dev", overrides: { services: {} } }, "services"],
    ["a service name with an underscore", { stack: "dev", overrides: service({}, "cart_service") }, "services.cart_service"],
    ["a service named __proto__", { stack: "dev", overrides: service({}, "__proto__") }, "services.__proto__"],
    ["a canary with one version", { stack: "dev", overrides: service({ versions: ["v1"] }) }, "services.cart-service.versions"],
    ["the same version twice", { stack: "dev", overrides: service({ versions: ["v1", "v1"] }) }, "services.cart-service.versions"],
    ["an uppercase version", { stack: "dev", overrides: service({ versions: ["v1", "V2"] }) }, "services.cart-service.versions"],
    ["the root path", { stack: "dev", overrides: service({ path: "/" }) }, "services.cart-service.path"],
    ["a relative path", { stack: "dev", overrides: service({ path: "cart" }) }, "services.cart-service.path"],
    ["an unknown release strategy", { stack: "dev", overrides: service({ release: "rolling" }) }, "services.cart-service.release"],
    ["a misspelled service field", { stack: "dev", overrides: service({ pth: "/cart" }) }, "services.cart-service.pth"],
    [
        "two services whose Deployments share a name",
        { stack: "dev", overrides: { services: { a: { path: "/a", release: "single", versions: ["b-c"] }, "a-b": { path: "/ab", release: "single", versions: ["c"] } }, routes: {}, meshEdges: [] } },
        "services.a-b.versions",
    ],
    ["a service and version too long for a Deployment name", { stack: "dev", overrides: service({ versions: ["v1", long(40)] }, `s${long(30)}`) }, `services.s${long(30)}.versions`],
    ["a rule with no condition", { stack: "dev", overrides: rule({ headers: undefined }) }, "routes.user-service[0]"],
    ["a rule to a version that does not run", { stack: "dev", overrides: rule({ to: "v3" }) }, "routes.user-service[0].to"],
    ["an uppercase header", { stack: "dev", overrides: rule({ headers: { "X-User": { exact: "a" } } }) }, "routes.user-service[0].headers.X-User"],
    ["a header regex RE2 refuses: \\Z", { stack: "dev", overrides: rule({ headers: { "x-a": { regex: "a\\Z" } } }) }, "routes.user-service[0].headers.x-a.regex"],
    ["a header regex RE2 refuses: [^]", { stack: "dev", overrides: rule({ headers: { "x-a": { regex: "[^]" } } }) }, "routes.user-service[0].headers.x-a.regex"],
    ["a header regex RE2 refuses: {1001}", { stack: "dev", overrides: rule({ headers: { "x-a": { regex: "a{1001}" } } }) }, "routes.user-service[0].headers.x-a.regex"],
    ["a back-reference", { stack: "dev", overrides: rule({ headers: { "x-a": { regex: "(a)\\1" } } }) }, "routes.user-service[0].headers.x-a.regex"],
    ["a cookie regex RE2 refuses", { stack: "dev", overrides: rule({ headers: undefined, cookie: { name: "exp", regex: "(?=x)" } }) }, "routes.user-service[0].cookie.regex"],
    ["a rule path outside the service", { stack: "dev", overrides: rule({ path: { prefix: "/products" } }) }, "routes.user-service[0].path"],
    ["a reserved rule name", { stack: "dev", overrides: rule({ name: "release" }) }, "routes.user-service[0].name"],
    ["public as a string", { stack: "dev", overrides: rule({ public: "yes" }) }, "routes.user-service[0].public"],
    ["a misspelled rule field", { stack: "dev", overrides: rule({ too: "v2" }) }, "routes.user-service[0].too"],
    ["the cookie header as a header rule", { stack: "dev", overrides: rule({ headers: { cookie: { exact: "a=b" } } }) }, "routes.user-service[0].headers.cookie"],
    ["routes for a service not in the catalogue", { stack: "dev", overrides: { routes: { "cart-service": [] } } }, "routes.cart-service"],
    ["routes that are not a list", { stack: "dev", overrides: { routes: { "user-service": { name: "r" } } } }, "routes.user-service"],
    ["an uppercase preview header", { stack: "dev", overrides: { previewHeader: "X-Preview" } }, "previewHeader"],
    ["a preview header with a space", { stack: "dev", overrides: { previewHeader: "x preview" } }, "previewHeader"],
    ["an unknown edge access", { stack: "dev", overrides: { edgeRuleAccess: "anyone" } }, "edgeRuleAccess"],
    ["authenticated edge rules without JWT", { stack: "dev", overrides: { edgeRuleAccess: "authenticated" } }, "edgeRuleAccess"],
    ["public edge rules in production", prod({ edgeRuleAccess: "public" }), "edgeRuleAccess"],
    ["an edge claim with public access", { stack: "dev", overrides: { edgeRuleClaim: { name: "groups", value: "t" } } }, "edgeRuleClaim"],
    ["an edge claim with a space in its name", { stack: "staging", overrides: { edgeRuleClaim: { name: "my groups", value: "t" } } }, "edgeRuleClaim.name"],
    ["a mirror over 100 percent", { stack: "dev", overrides: { mirror: { "user-service": 150 } } }, "mirror.user-service"],
    ["a mirror for a single-version service", { stack: "dev", overrides: { mirror: { "order-service": 10 } } }, "mirror.order-service"],
    ["a mirror percent as text", { stack: "dev", overrides: { mirror: { "user-service": "ten" } } }, "mirror.user-service"],
    ["a fault over 100 percent", { stack: "dev", overrides: { faults: { "order-service": { abort: { percent: 101, httpStatus: 503 } } } } }, "faults.order-service.abort.percent"],
    ["an absurd fault delay", { stack: "dev", overrides: { faults: { "order-service": { delay: { percent: 5, fixedDelay: "10m" } } } } }, "faults.order-service.delay.fixedDelay"],
    ["an HTTP status of 700", { stack: "dev", overrides: { faults: { "order-service": { abort: { percent: 5, httpStatus: 700 } } } } }, "faults.order-service.abort.httpStatus"],
    ["an empty fault", { stack: "dev", overrides: { faults: { "order-service": {} } } }, "faults.order-service"],
    ["a fault in production", prod({ faults: { "order-service": { abort: { percent: 5, httpStatus: 503 } } } }), "faults.order-service"],
    ["a zero timeout", { stack: "dev", overrides: resilience({ timeout: "0s" }) }, "resilience.*.timeout"],
    ["a timeout in words", { stack: "dev", overrides: resilience({ timeout: "5 seconds" }) }, "resilience.*.timeout"],
    ["a timeout over an hour", { stack: "dev", overrides: resilience({ timeout: "2h" }) }, "resilience.*.timeout"],
    ["retries that cannot fit in the timeout", { stack: "dev", overrides: resilience({ timeout: "1s", retries: { attempts: 3, perTryTimeout: "1s" } }) }, "resilience.*.retries"],
    ["an unknown retry condition", { stack: "dev", overrides: resilience({ retries: { attempts: 2, retryOn: "5xx,sometimes" } }) }, "resilience.*.retries.retryOn"],
    ["eleven retries", { stack: "dev", overrides: resilience({ retries: { attempts: 11 } }) }, "resilience.*.retries.attempts"],
    ["an ejection percent over 100", { stack: "dev", overrides: resilience({ outlierDetection: { maxEjectionPercent: 150 } }) }, "resilience.*.outlierDetection.maxEjectionPercent"],
    ["a misspelled resilience section", { stack: "dev", overrides: resilience({ timout: "5s" }) }, "resilience.*.timout"],
    ["a zero connection limit", { stack: "dev", overrides: resilience({ connectionPool: { maxConnections: 0 } }) }, "resilience.*.connectionPool.maxConnections"],
    ["a fill interval of 10ms", { stack: "dev", overrides: { rateLimits: { "user-service": { maxTokens: 10, tokensPerFill: 10, fillInterval: "10ms" } } } }, "rateLimits.user-service.fillInterval"],
    ["a fill interval of 0.01s", { stack: "dev", overrides: { rateLimits: { "user-service": { maxTokens: 10, tokensPerFill: 10, fillInterval: "0.01s" } } } }, "rateLimits.user-service.fillInterval"],
    ["an empty token bucket", { stack: "dev", overrides: { rateLimits: { "user-service": { maxTokens: 0, tokensPerFill: 10, fillInterval: "1s" } } } }, "rateLimits.user-service.maxTokens"],
    ["a rate limit without its fill", { stack: "dev", overrides: { rateLimits: { "user-service": { maxTokens: 10, fillInterval: "1s" } } } }, "rateLimits.user-service.tokensPerFill"],
    ["production as yes", { stack: "dev", overrides: { production: "yes" } }, "production"],
    ["allowFaultsInProduction as maybe", { stack: "dev", overrides: { allowFaultsInProduction: "maybe" } }, "allowFaultsInProduction"],
    ["mTLS off", { stack: "dev", overrides: { mtlsMode: "OFF" } }, "mtlsMode"],
    ["PERMISSIVE mTLS in production", prod({ mtlsMode: "PERMISSIVE" }), "mtlsMode"],
    ["denyByDefault as no", { stack: "dev", overrides: { denyByDefault: "no" } }, "denyByDefault"],
    ["deny-by-default off in production", prod({ denyByDefault: false }), "denyByDefault"],
    ["mesh edges that are not a list", { stack: "dev", overrides: { meshEdges: "order-service" } }, "meshEdges"],
    ["a mesh edge from an unknown caller", { stack: "dev", overrides: { meshEdges: [{ from: "Cart", to: "user-service" }] } }, "meshEdges[0].from"],
    ["a mesh edge to an unknown service", { stack: "dev", overrides: { meshEdges: [{ from: "order-service", to: "cart-service" }] } }, "meshEdges[0].to"],
    ["a mesh edge with an unknown method", { stack: "dev", overrides: { meshEdges: [{ from: "order-service", to: "user-service", methods: ["FETCH"] }] } }, "meshEdges[0].methods"],
    ["a mesh edge with a relative path", { stack: "dev", overrides: { meshEdges: [{ from: "order-service", to: "user-service", paths: ["users"] }] } }, "meshEdges[0].paths"],
    ["JWT without an issuer", { stack: "dev", overrides: jwt({ issuer: undefined }) }, "jwt.issuer"],
    ["JWT with both jwksUri and jwks", { stack: "dev", overrides: jwt({ jwks: { keys: [{ kty: "RSA" }] } }) }, "jwt"],
    ["a JWKS URI over plain HTTP", { stack: "dev", overrides: jwt({ jwksUri: "http://i.example.com/jwks.json" }) }, "jwt.jwksUri"],
    ["JWT protecting no path", { stack: "dev", overrides: jwt({ protectedPaths: [] }) }, "jwt.protectedPaths"],
    ["an inline JWKS without keys", { stack: "dev", overrides: jwt({ jwksUri: undefined, jwks: { keys: [] } }) }, "jwt.jwks"],
    ["a certificate that is not PEM", { stack: "dev", overrides: { tlsCertificate: "not a certificate", tlsPrivateKey: "not a key" } }, "tlsCertificate"],
    ["a certificate without its key", { stack: "dev", overrides: { tlsCertificate: "x" } }, "tlsPrivateKey"],
    ["a key without its certificate", { stack: "dev", overrides: { tlsPrivateKey: "x" } }, "tlsCertificate"],
    ["a TLS Secret name with an underscore", { stack: "dev", overrides: { tlsCredentialName: "api_tls" } }, "tlsCredentialName"],
    ["an HTTPS redirect without TLS", { stack: "dev", overrides: { httpsRedirect: true } }, "httpsRedirect"],
    ["production without TLS", prod({ tlsCredentialName: "" }), "tlsCredentialName"],
    ["an unknown Pod Security level", { stack: "dev", overrides: { podSecurity: "none" } }, "podSecurity"],
    ["privileged pods in production", prod({ podSecurity: "privileged" }), "podSecurity"],
    ["observability as on", { stack: "dev", overrides: { observability: "on" } }, "observability"],
    ["a trace sampling of 150 percent", { stack: "dev", overrides: { traceSamplingPercent: "150" } }, "traceSamplingPercent"],
    ["a trace sampling in words", { stack: "dev", overrides: { traceSamplingPercent: "all" } }, "traceSamplingPercent"],
    ["access logging as 1", { stack: "dev", overrides: { accessLogging: "1" } }, "accessLogging"],
    ["a volume size in GB", { stack: "dev", overrides: { prometheusVolumeSize: "20GB" } }, "prometheusVolumeSize"],
    ["a zero volume", { stack: "dev", overrides: { prometheusVolumeSize: "0Gi" } }, "prometheusVolumeSize"],
    ["Prometheus without a volume in production", prod({ prometheusVolumeSize: "" }), "prometheusVolumeSize"],
    ["an uppercase storage class", { stack: "dev", overrides: { prometheusVolumeSize: "1Gi", prometheusStorageClass: "Fast" } }, "prometheusStorageClass"],
    ["a storage class without a volume", { stack: "dev", overrides: { prometheusStorageClass: "fast" } }, "prometheusStorageClass"],
    ["egress hosts that are not a list", { stack: "dev", overrides: { egressHosts: "api.github.com" } }, "egressHosts"],
    ["a single-label egress host", { stack: "dev", overrides: egress({ host: "localhost" }) }, "egressHosts[0].host"],
    ["an egress host with a 64-character label", { stack: "dev", overrides: egress({ host: `${long(64)}.com` }) }, "egressHosts[0].host"],
    ["an egress port over 65535", { stack: "dev", overrides: egress({ ports: [{ number: 70000, protocol: "TLS" }] }) }, "egressHosts[0].ports[0].number"],
    ["an unknown egress protocol", { stack: "dev", overrides: egress({ ports: [{ number: 443, protocol: "QUIC" }] }) }, "egressHosts[0].ports[0].protocol"],
    ["a wildcard resolved by DNS", { stack: "dev", overrides: egress({ host: "*.example.com", resolution: "DNS" }) }, "egressHosts[0].resolution"],
    ["the same egress host twice", { stack: "dev", overrides: { egressHosts: [egress({}).egressHosts[0], egress({}).egressHosts[0]] } }, "egressHosts[1].host"],
    ["an egress gateway with nothing to carry", { stack: "dev", overrides: { egressGateway: true } }, "egressGateway"],
    ["TCP through the egress gateway", { stack: "dev", overrides: { egressGateway: true, ...egress({ ports: [{ number: 5432, protocol: "TCP" }] }) } }, "egressHosts[0].ports[0]"],
    ["an unknown outbound policy", { stack: "dev", overrides: { outboundTrafficPolicy: "DENY" } }, "outboundTrafficPolicy"],
    ["rollout as a number", { stack: "dev", overrides: { rollout: "5" } }, "rollout"],
    ["a misspelled rollout field", { stack: "dev", overrides: rollout({ intervall: "1m" }) }, "rollout.intervall"],
    ["rollout steps that go down", { stack: "dev", overrides: rollout({ steps: [10, 5, 100] }) }, "rollout.steps"],
    ["a rollout step over 100", { stack: "dev", overrides: rollout({ steps: [50, 150] }) }, "rollout.steps"],
    ["a fractional rollout step, which pulumi config set --path would store as a string", { stack: "dev", overrides: rollout({ steps: [12.5, 100] }) }, "rollout.steps"],
    ["no rollout steps", { stack: "dev", overrides: rollout({ steps: [] }) }, "rollout.steps"],
    ["a rollout interval without a unit", { stack: "dev", overrides: rollout({ interval: "60" }) }, "rollout.interval"],
    ["a rollout interval of a day", { stack: "dev", overrides: rollout({ interval: "24h" }) }, "rollout.interval"],
    ["a success rate as a fraction over 100", { stack: "dev", overrides: rollout({ analysis: { minSuccessRate: 990 } }) }, "rollout.analysis.minSuccessRate"],
    ["a p95 latency as a bare number", { stack: "dev", overrides: rollout({ analysis: { maxP95Latency: 500 } }) }, "rollout.analysis.maxP95Latency"],
    ["zero minimum requests", { stack: "dev", overrides: rollout({ analysis: { minRequests: 0 } }) }, "rollout.analysis.minRequests"],
    ["zero failed checks", { stack: "dev", overrides: rollout({ analysis: { failedChecks: 0 } }) }, "rollout.analysis.failedChecks"],
    ["a progress deadline in days", { stack: "dev", overrides: rollout({ analysis: { progressDeadline: "2d" } }) }, "rollout.analysis.progressDeadline"],
    ["a bake time without a unit", { stack: "dev", overrides: rollout({ analysis: { bakeTime: 30 } }) }, "rollout.analysis.bakeTime"],
    ["custom metrics as one object, not a list", { stack: "dev", overrides: rollout({ analysis: { metrics: { name: "p50", query: "up", max: 1 } } }) }, "rollout.analysis.metrics"],
    ["a custom metric with a misspelled bound", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: METRIC_QUERY, maximum: 1 }] } }) }, "rollout.analysis.metrics[0].maximum"],
    ["a custom metric named in capitals", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "P50", query: METRIC_QUERY, max: 1 }] } }) }, "rollout.analysis.metrics[0].name"],
    ["two custom metrics of one name", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: METRIC_QUERY, max: 1 }, { name: "p50", query: METRIC_QUERY, min: 1 }] } }) }, "rollout.analysis.metrics[1].name"],
    ["a custom metric query without {{version}}", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: "sum(rate(istio_requests_total[1m]))", max: 1 }] } }) }, "rollout.analysis.metrics[0].query"],
    ["a custom metric query with an unknown placeholder", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: 'sum(x{v="{{version}}", a="{{app}}"})', max: 1 }] } }) }, "rollout.analysis.metrics[0].query"],
    ["a custom metric query with an unclosed parenthesis", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: 'sum(rate(x{v="{{version}}"}[5m])', max: 1 }] } }) }, "rollout.analysis.metrics[0].query"],
    ["a custom metric with two bounds", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: METRIC_QUERY, max: 1, min: 0 }] } }) }, "rollout.analysis.metrics[0]"],
    ["a custom metric with no bound", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: METRIC_QUERY }] } }) }, "rollout.analysis.metrics[0]"],
    ["a custom metric compared with the stable at a ratio of 0", { stack: "dev", overrides: rollout({ analysis: { metrics: [{ name: "p50", query: METRIC_QUERY, maxRatioToStable: 0 }] } }) }, "rollout.analysis.metrics[0].maxRatioToStable"],
    ["a bake time over a day", { stack: "dev", overrides: rollout({ analysis: { bakeTime: "25h" } }) }, "rollout.analysis.bakeTime"],
    ["an unknown routing API", { stack: "dev", overrides: { trafficApi: "httpRoute" } }, "trafficApi"],
    ["an unknown edge provider", { stack: "gateway", overrides: { gatewayProvider: "nginx" } }, "gatewayProvider"],
    ["an unknown data plane", { stack: "gateway", overrides: { dataPlane: "sidecarless" } }, "dataPlane"],
    ["ambient mode with VirtualServices", { stack: "dev", overrides: { dataPlane: "ambient", resilience: {}, faults: {} } }, "dataPlane"],
    ["ambient mode behind Kong's proxies", { stack: "kong", overrides: { dataPlane: "ambient" } }, "gatewayProvider"],
    ["ambient mode on an Istio without waypoint parameters", { stack: "ambient", overrides: { istioVersion: "1.25.4" } }, "istioVersion"],
    ["ambient mode on prod's registry-only egress", { stack: "ambient", overrides: { outboundTrafficPolicy: "REGISTRY_ONLY" } }, "outboundTrafficPolicy"],
    ["a rate limit in an ambient namespace", { stack: "ambient", overrides: { rateLimits: { "user-service": { maxTokens: 10, tokensPerFill: 10, fillInterval: "1s" } } } }, "rateLimits.user-service"],
    ["an egress gateway for ambient pods", { stack: "ambient", overrides: { egressGateway: true, egressHosts: [{ host: "api.github.com", ports: [{ number: 443, protocol: "TLS" }] }] } }, "egressGateway"],
    ["a request mirror Kong would drop", { stack: "kong", overrides: { mirror: { "user-service": 10 } } }, "mirror.user-service"],
    ["a misspelled analysis field", { stack: "dev", overrides: rollout({ analysis: { threshold: 5 } }) }, "rollout.analysis.threshold"],
    ["a false-rollback budget of zero, which no test can keep", { stack: "dev", overrides: rollout({ analysis: { falseRollback: 0 } }) }, "rollout.analysis.falseRollback"],
    ["a missed-regression budget in words", { stack: "dev", overrides: rollout({ analysis: { missedRegression: "low" } }) }, "rollout.analysis.missedRegression"],
    ["an error margin over 50 points", { stack: "dev", overrides: rollout({ analysis: { errorMargin: 60 } }) }, "rollout.analysis.errorMargin"],
    ["a slow-request ratio of 1, which no candidate can exceed by", { stack: "dev", overrides: rollout({ analysis: { slowRatio: 1 } }) }, "rollout.analysis.slowRatio"],
    ["an unknown webhook", { stack: "dev", overrides: rollout({ webhooks: { preRolout: { url: "http://h.test/" } } }) }, "rollout.webhooks.preRolout"],
    ["a webhook URL that is not http", { stack: "dev", overrides: rollout({ webhooks: { loadTest: { url: "ftp://h.test/" } } }) }, "rollout.webhooks.loadTest.url"],
    ["a webhook URL with a password", { stack: "dev", overrides: rollout({ webhooks: { rollback: { url: "https://u:p@h.test/" } } }) }, "rollout.webhooks.rollback.url"],
    ["a webhook timeout of a day", { stack: "dev", overrides: rollout({ webhooks: { confirmPromotion: { url: "http://h.test/", timeout: "24h" } } }) }, "rollout.webhooks.confirmPromotion.timeout"],
    ["a Prometheus address without a scheme", { stack: "dev", overrides: rollout({ prometheusUrl: "localhost:9090" }) }, "rollout.prometheusUrl"],
    ["an unknown blue/green traffic source", { stack: "dev", overrides: rollout({ blueGreenTraffic: "shadow" }) }, "rollout.blueGreenTraffic"],
    ["a misspelled key", { stack: "dev", overrides: { canaryWieght: "50" } }, "canaryWieght"],
    ["a key with a newline in it", { stack: "dev", overrides: { "canary\nWeight": "50" } }, "canary\nWeight"],
];

/** render's --set values are strings; objects go as JSON, as the CLI passes them. */
const asFlags = (overrides: Record<string, ConfigValue>) => Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));

describe("bad input: every config key and render flag is refused before anything is registered or written", () => {
    let out: string;
    before(() => {
        out = fs.mkdtempSync(path.join(os.tmpdir(), "bad-input-"));
    });
    after(() => {
        fs.rmSync(out, { recursive: true, force: true });
    });

    it("has at least 100 cases, covering every key the program reads", () => {
        assert.ok(CASES.length >= 100, String(CASES.length));
        const covered = new Set(CASES.map(([, , key]) => /^[^.[]*/.exec(key)?.[0]));
        assert.deepEqual(CONFIG_KEYS.filter((k) => !covered.has(k)), []);
    });

    for (const [what, { stack, overrides }, key] of CASES) {
        it(`refuses ${what}`, async () => {
            const error = await render({ stack, overrides: asFlags(overrides), out }, () => undefined).then(
                () => assert.fail("accepted"),
                (e: unknown) => e,
            );
            assert.equal(exitStatus(error).code, 2);
            assert.ok(error instanceof ProgramError && error.cause instanceof ConfigError, String(error));
            assert.deepEqual(error.registered, [], "registered nothing");
            assert.deepEqual(fs.readdirSync(out), [], "wrote nothing");
            const problem = error.cause.problems.find((p) => p.key === key);
            assert.ok(problem, `no problem names ${key}: ${error.message}`);
            for (const part of [problem.value, problem.allowed, problem.fix]) assert.ok(part.trim().length > 0, error.message);
            assert.ok(error.message.includes(`- ${printable(key)} = `), error.message);
            assert.doesNotMatch(error.message, /[\u0000-\u0008\u000b-\u001f\u007f]/, "no raw control characters");
        });
    }

    for (const [what, argv, message] of [
        ["no --stack", [], /--stack is required/],
        ["an unknown stack", ["--stack", "qa"], /--stack "qa": there is no Pulumi.qa.yaml/],
        ["--stack without a value", ["--stack"], /--stack needs a value/],
        ["an unknown flag", ["--stack", "dev", "--weight", "5"], /Unknown argument "--weight"/],
        ["--set without =", ["--stack", "dev", "--set", "canaryWeight"], /--set takes key=value/],
        ["--set with an empty key", ["--stack", "dev", "--set", "=5"], /--set takes key=value/],
        ["--out without a value", ["--stack", "dev", "--out"], /--out needs a value/],
        ["--out of the repository", ["--stack", "dev", "--out", PROJECT_ROOT], /is the repository or a folder holding it/],
        ["--out of a folder render did not write", ["--stack", "dev", "--out", path.join(PROJECT_ROOT, "docs")], /that no render wrote/],
    ] as const) {
        it(`refuses the render flags: ${what}`, () => {
            let error: unknown;
            try {
                parseArgs(argv);
            } catch (e) {
                error = e;
            }
            assert.deepEqual([exitStatus(error).code, message.test(exitStatus(error).message)], [2, true], exitStatus(error).message);
        });
    }

    for (const [what, text, line, problem, fix] of [
        ["a duplicate key", "config:\n  p:canaryWeight: 10\n  p:canaryWeight: 50\n", 3, /Map keys must be unique/, /a key may appear once in a map/],
        ["a key indented too far", "config:\n  p:a: 1\n   p:b: 2\n", 2, /Nested mappings are not allowed/, /line the keys of one map up/],
        ["a tab", "config:\n\tp:a: 1\n", 2, /Tabs are not allowed/, /indent with spaces/],
    ] as const) {
        it(`reports ${what} in a stack file with the file, line and a fix, as render's exit 2`, () => {
            const file = path.join(out, "..", `Pulumi.broken-${process.pid}.yaml`);
            fs.writeFileSync(file, text);
            try {
                assert.throws(
                    () => parseStackFile(file),
                    (e: unknown) => e instanceof StackFileError && e.line === line && problem.test(e.problem) && fix.test(e.fix) && exitStatus(e).code === 2 && !exitStatus(e).message.includes("    at "),
                );
            } finally {
                fs.rmSync(file);
            }
        });
    }

    it("takes --set __proto__=x as the unknown key it is, and names --set in the fix of a key like toString only when --set gave it", () => {
        const options = parseArgs(["--stack", "dev", "--set", "__proto__=x"]);
        assert.ok(options !== "help");
        assert.deepEqual(configProblems(options.overrides).map((p) => p.key), ["__proto__"]);
        const [fromFile] = configProblems({ toString: "x" });
        assert.equal(renderFix(fromFile, {}).fix, fromFile.fix, "no --set was given, so the fix is not about --set");
    });

    it("says what to change in render's own flags when the value came from --set", () => {
        const [plain] = configProblems({ canaryWeight: "150" });
        assert.equal(renderFix(plain, { canaryWeight: "150" }).fix, "--set canaryWeight=50");
        assert.equal(renderFix(plain, {}).fix, "pulumi config set canaryWeight 50");
        const [nested] = configProblems(rule({ to: "v3" }));
        assert.match(renderFix(nested, { routes: "{}" }).fix, /^in --set routes=<JSON>, set routes.user-service\[0\].to to v2$/);
    });

    it("accepts what RE2 accepts, which JavaScript's RegExp does not", () => {
        for (const regex of ["(?i)beta", "(?P<tier>gold|silver)", "\\pL+", "[[:alpha:]]+"]) {
            assert.deepEqual(configProblems(rule({ headers: { "x-a": { regex } } })), [], regex);
        }
        const [refusal] = configProblems(rule({ headers: { "x-a": { regex: "a\\Z" } } }));
        assert.match(refusal.allowed, /RE2 says: error parsing regexp: invalid escape sequence: `\\Z`/);
    });

    it("suggests the field that was meant", () => {
        const [problem] = configProblems(rule({ too: "v2" }));
        assert.match(problem.allowed, /unknown field \(did you mean to\?\)/);
    });

    it("treats a header named __proto__ as the plain header it is: no catch-all", () => {
        const specs = virtualServiceSpecs(planFor("dev", { ...rule({ headers: { ["__proto__"]: { exact: "x" } } }), canaryWeight: 10 }));
        const users = (headers: Record<string, string>) => shares(routeVia(specs, { gateway: INGRESS, host: "any.host", path: "/users", headers }));
        assert.deepEqual(users({}), { v1: 90, v2: 10 });
        assert.deepEqual(users(Object.fromEntries([["__proto__", "x"]])), { v2: 100 });
    });

    it("escapes what it echoes: newlines, terminal escapes and line separators", () => {
        assert.equal(printable("a\nb\u001b[31m\u2028c"), "a\\nb\\u001b[31m\\u2028c");
    });
});

describe("production stack minimum", () => {
    it("accepts the least a production stack must set", () => {
        assert.deepEqual(configProblems({ ...PRODUCTION_MINIMUM }), []);
    });
});
