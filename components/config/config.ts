// Stack config -> a validated, typed settings model. Pure: no Pulumi resources are touched here, so a
// bad value fails before anything is registered, and tests can call it directly.
import { ConfigError, ConfigSource, didYouMean, isRecord, Reader, setCommand, show } from "./config-reader";
import { COLORS, Color, readServices, ServiceSettings } from "./catalogue";
import { PolicySettings, POLICY_DEFAULTS, POLICY_KEYS, readPolicies } from "./policy-config";
import { readSecurity, SecuritySettings, SECURITY_DEFAULTS, SECURITY_KEYS } from "./security-config";
import { readRollout, RolloutSettings } from "./rollout-config";
import { EgressSettings, ObservabilitySettings, OBSERVABILITY_DEFAULTS, OBSERVABILITY_KEYS, readEgress, readObservability } from "./observability-config";
import {
    deploymentName,
    dnsNameProblem,
    egressVirtualServiceName,
    GeneratedName,
    ingressPolicyName,
    ingressRouteName,
    versionServiceName,
    meshPolicyName,
    imageProblem,
    nameProblems,
    rateLimitFilterName,
    serviceEntryName,
    waypointPolicyName,
    directCallersPolicyName,
} from "./names";

export type GatewayServiceType = "LoadBalancer" | "NodePort" | "ClusterIP";
/** The Kubernetes distribution the stack runs on; empty for a generic cluster. */
export type Platform = "" | "kind" | "gke" | "eks" | "aks" | "openshift";

export const GATEWAY_SERVICE_TYPES: readonly GatewayServiceType[] = ["LoadBalancer", "NodePort", "ClusterIP"];
export const PLATFORMS: readonly Platform[] = ["", "kind", "gke", "eks", "aks", "openshift"];
/** Which API the routes are rendered in: Istio's VirtualServices, or the Kubernetes Gateway API's HTTPRoutes. */
export type TrafficApi = "istio" | "gatewayApi";
export const TRAFFIC_APIS: readonly TrafficApi[] = ["istio", "gatewayApi"];
/** Who serves the edge Gateway of the Gateway API: Istio's own ingress gateway, Envoy Gateway's or Kong's proxies. */
export type GatewayProvider = "istio" | "envoyGateway" | "kong";
export const GATEWAY_PROVIDERS: readonly GatewayProvider[] = ["istio", "envoyGateway", "kong"];
/**
 * Istio's data plane in the app namespace: a sidecar per pod, or ambient (ztunnel on each node, a waypoint for
 * L7). ambientReady is the stage between them, either way: ambient installed beside the sidecars, which still
 * serve (docs/ambient.md).
 */
export type DataPlane = "sidecar" | "ambientReady" | "ambient";
export const DATA_PLANES: readonly DataPlane[] = ["sidecar", "ambientReady", "ambient"];
/** Whether ambient is installed (ztunnel, the waypoint, the Services naming it and its policies): from ambientReady on. */
export const ambientInstalled = (dataPlane: DataPlane): boolean => dataPlane !== "sidecar";
/** Whether the pods still run sidecars (injection, policies on the pods, the sidecars' reports): up to ambientReady. */
export const sidecarsServe = (dataPlane: DataPlane): boolean => dataPlane !== "ambient";

export interface Settings {
    readonly canaryWeight: number;
    readonly activeColor: Color;
    readonly istioVersion: string;
    readonly replicas: number;
    readonly image: string;
    readonly appNamespace: string;
    readonly ingressHost: string;
    readonly gatewayServiceType: GatewayServiceType;
    /** Ingress gateway pods at least (the chart's autoscaler may add more). */
    readonly gatewayReplicas: number;
    readonly platform: Platform;
    readonly gatewayHttpNodePort: number;
    readonly gatewayHttpsNodePort: number;
    readonly trafficApi: TrafficApi;
    readonly gatewayProvider: GatewayProvider;
    readonly dataPlane: DataPlane;
    readonly services: readonly ServiceSettings[];
    readonly policies: PolicySettings;
    readonly security: SecuritySettings;
    readonly observability: ObservabilitySettings;
    readonly egress: EgressSettings;
    readonly rollout: RolloutSettings;
}

/**
 * Defaults of the core scalar keys (each settings module has its own). `Pulumi.yaml` declares the same
 * defaults for the CLI; a test keeps them equal (SCALAR_DEFAULTS). They live in code too because Pulumi's
 * mocks (tests, `npm run render`) do not apply Pulumi.yaml.
 */
export const DEFAULTS = {
    canaryWeight: 10,
    activeColor: "blue",
    istioVersion: "1.30.3",
    replicas: 1,
    image: "hashicorp/http-echo:1.0.0",
    appNamespace: "backend",
    ingressHost: "*",
    gatewayServiceType: "LoadBalancer",
    gatewayReplicas: 1,
    platform: "",
    gatewayHttpNodePort: 30080,
    gatewayHttpsNodePort: 30443,
    trafficApi: "istio",
    gatewayProvider: "istio",
    dataPlane: "sidecar",
} as const satisfies Omit<Settings, "services" | "policies" | "security" | "observability" | "egress" | "rollout">;

/** Every key this program reads, for the error on an unknown key and the docs' and Pulumi.yaml's checks. */
export const CONFIG_KEYS: readonly string[] = [...Object.keys(DEFAULTS), "services", "rollout", ...POLICY_KEYS, ...SECURITY_KEYS, ...OBSERVABILITY_KEYS];

/** Every scalar key's default, as Pulumi.yaml declares them. */
export const SCALAR_DEFAULTS = { ...DEFAULTS, ...POLICY_DEFAULTS, ...SECURITY_DEFAULTS, ...OBSERVABILITY_DEFAULTS };

/** A namespace name: a DNS-1123 label of at most 63 characters. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
// A DNS name, optionally with a leading `*.` wildcard, or `*` alone (any host).
const HOST = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;

/** Namespaces the app may not share: Istio's own, the gateways', and Kubernetes' system namespaces. */
const RESERVED_NAMESPACES = /^(istio-system|istio-ingress|istio-egress|kube-.*)$/;

/** Checks the image reference and that it pins a tag or digest (no implicit latest). */
function readImage(r: Reader): string {
    const image = r.pattern("image", DEFAULTS.image, /^\S+$/, "must be an image reference without spaces", DEFAULTS.image);
    const problem = imageProblem(image);
    if (problem !== undefined) {
        r.fail("image", show(image), `${problem}; it must pin a tag or digest, such as hashicorp/http-echo:1.0.0 (no implicit latest)`, setCommand("image", DEFAULTS.image));
        return DEFAULTS.image;
    }
    return image;
}

/** Every object name made of config values, so each can be checked as Kubernetes will. */
function generatedNames(s: Pick<Settings, "services" | "appNamespace" | "policies" | "security" | "egress" | "trafficApi" | "dataPlane">): GeneratedName[] {
    const ns = s.appNamespace;
    const names: GeneratedName[] = s.services.flatMap((service) => {
        const app = { from: `services.${service.name}`, value: show(service.name), namespace: ns };
        const versions = { from: `services.${service.name}.versions`, value: show(service.versions), namespace: ns };
        return [
            ...(s.trafficApi === "istio"
                ? [...["ServiceAccount", "Service", "DestinationRule", "VirtualService"].map((kind) => ({ ...app, kind, name: service.name })), { ...app, kind: "VirtualService", name: ingressRouteName(service.name) }]
                : [
                      ...["ServiceAccount", "Service", "HTTPRoute"].map((kind) => ({ ...app, kind, name: service.name })),
                      { ...app, kind: "HTTPRoute", name: ingressRouteName(service.name) },
                      ...service.versions.map((version) => ({ ...versions, kind: "Service", name: versionServiceName(service.name, version) })),
                  ]),
            ...service.versions.map((version) => ({ ...versions, kind: "Deployment", name: deploymentName(service.name, version) })),
            ...(s.policies.byService[service.name].rateLimit ? [{ ...app, kind: "EnvoyFilter", name: rateLimitFilterName(service.name) }] : []),
            ...(s.security.denyByDefault
                ? [ingressPolicyName(service.name), meshPolicyName(service.name)]
                      .flatMap((name) => [...(sidecarsServe(s.dataPlane) ? [name] : []), ...(ambientInstalled(s.dataPlane) ? [waypointPolicyName(name)] : [])])
                      .concat(s.dataPlane === "ambientReady" ? [directCallersPolicyName(service.name)] : [])
                      .map((name) => ({ ...app, kind: "AuthorizationPolicy", name }))
                : []),
        ];
    });
    s.egress.hosts.forEach((h, i) => {
        const host = { from: `egressHosts[${i}].host`, value: show(h.host) };
        names.push({ ...host, kind: "ServiceEntry", namespace: ns, name: serviceEntryName(h.host) }, { ...host, kind: "VirtualService", namespace: "istio-egress", name: egressVirtualServiceName(h.host) });
    });
    return names;
}

/**
 * What the Gateway API's standard channel (v1.5.1) cannot say, refused by the key that asks for it: fault
 * injection and retries (HTTPRoute has neither outside the experimental channel), and edge rules gated on JWT
 * claims (Istio's `@request.auth.claims` pseudo-header, which no HTTPRoute match can name).
 */
function gatewayApiProblems(r: Reader, settings: Settings): void {
    const keep = `or keep the VirtualServices: ${setCommand("trafficApi", "istio")}`;
    const retries = "are retries, which HTTPRoute (Gateway API v1.5.1) has only in the experimental channel; trafficApi gatewayApi renders the standard channel";
    const resilience = r.json("resilience");
    const section = (name: string) => (isRecord(resilience) && isRecord(resilience[name]) ? resilience[name] : undefined);
    const everyService = section("*")?.retries;
    if (everyService !== undefined) r.fail('resilience["*"].retries', show(everyService), retries, `pulumi config rm --path 'resilience["*"].retries', ${keep}`);
    for (const [service, policies] of Object.entries(settings.policies.byService)) {
        if (policies.fault !== undefined) {
            r.fail(`faults.${service}`, show(policies.fault), "is fault injection, which HTTPRoute (Gateway API v1.5.1, standard channel) cannot express with trafficApi gatewayApi", `pulumi config rm --path 'faults.${service}', ${keep}`);
        }
        const own = section(service)?.retries;
        if (own !== undefined) r.fail(`resilience.${service}.retries`, show(own), retries, `pulumi config rm --path 'resilience.${service}.retries', ${keep}`);
    }
    if (settings.policies.edgeRuleAccess === "authenticated") {
        r.fail("edgeRuleAccess", show("authenticated"), "gates edge rules on JWT claims, which only Istio's VirtualService can match (an HTTPRoute header match cannot name the validated token's claims)", `${setCommand("edgeRuleAccess", "meshOnly")}, ${keep}`);
    }
}

/**
 * Another provider serves the edge only through the Gateway API, and Istio's edge features that live on Istio's
 * gateway pods (JWT validation with RequestAuthentication) do not reach its proxies.
 */
function gatewayProviderProblems(r: Reader, settings: Settings): void {
    const provider = settings.gatewayProvider;
    if (settings.trafficApi !== "gatewayApi") {
        r.fail("gatewayProvider", show(provider), `serves the edge through the Gateway API, and trafficApi is ${settings.trafficApi} (VirtualServices bind to Istio's gateway only)`, `${setCommand("trafficApi", "gatewayApi")}, or ${setCommand("gatewayProvider", "istio")}`);
    }
    if (provider === "kong") kongProblems(r, settings);
    if (provider === "envoyGateway") envoyGatewayProblems(r, settings);
    if (settings.security.jwt !== undefined) {
        r.fail("jwt", show("(a JWT issuer)"), `is validated by Istio's RequestAuthentication on Istio's ingress gateway; with gatewayProvider ${provider} the edge is ${provider}'s proxies, whose JWT validation (its SecurityPolicy) this program does not render`, `pulumi config rm jwt, or ${setCommand("gatewayProvider", "istio")}`);
    }
}

/**
 * What Kong's controller (3.5) does not translate from an HTTPRoute, and would drop without a word: request
 * mirrors, a rule's request timeout (it applies backendRequest only), and filters on a backendRef (a sticky
 * canary's Set-Cookie).
 */
function kongProblems(r: Reader, settings: Settings): void {
    const keep = setCommand("gatewayProvider", "istio");
    for (const [service, policies] of Object.entries(settings.policies.byService)) {
        if (policies.mirrorPercent !== undefined) r.fail(`mirror.${service}`, show(policies.mirrorPercent), "is a request mirror, which Kong's controller does not translate from an HTTPRoute (gatewayProvider kong)", `pulumi config rm --path 'mirror.${service}', or ${keep}`);
        if (policies.resilience.timeout !== undefined) r.fail("resilience", show(`timeout for ${service}`), "is a request timeout, which Kong's controller ignores on an HTTPRoute (it applies backendRequest timeouts only) with gatewayProvider kong", `remove the timeout (resilience.${service}.timeout or resilience["*"].timeout), or ${keep}`);
    }
    for (const service of settings.services) {
        if (service.stickyCanary !== undefined) r.fail(`services.${service.name}.stickyCanary`, show(service.stickyCanary.cookie), "sets its cookie with a filter on the candidate's backendRef, which Kong's controller does not translate (gatewayProvider kong)", `pulumi config rm --path 'services.${service.name}.stickyCanary', or ${keep}`);
    }
}

/**
 * Envoy Gateway's proxies reach the apps through their sidecar, which picks the upstream by Host: each edge
 * route rewrites Host to the version's Service, but a mirrored copy keeps the client's Host (with Envoy's
 * `-shadow` suffix), names no mesh Service, and would reach the candidate in plain text, denied.
 */
function envoyGatewayProblems(r: Reader, settings: Settings): void {
    for (const [service, policies] of Object.entries(settings.policies.byService)) {
        if (policies.mirrorPercent !== undefined) {
            r.fail(
                `mirror.${service}`,
                show(policies.mirrorPercent),
                "is a request mirror; with gatewayProvider envoyGateway its copy keeps the client's Host (suffixed -shadow), which the proxies' sidecar cannot route into the mesh, so the candidate would get it in plain text and deny it",
                `pulumi config rm --path 'mirror.${service}', or ${setCommand("gatewayProvider", "istio")}`,
            );
        }
    }
}

/** The oldest Istio minor release ambient stacks run on (1.x). */
const AMBIENT_MIN_MINOR = 26;

/**
 * What an ambient namespace cannot run, refused by the key that asks for it. Its pods have no sidecar: L7
 * routing and policy happen on the namespace's waypoint, which serves Gateway API routes (VirtualServices on
 * waypoints are Alpha in Istio 1.30, and mixing them with HTTPRoutes for one workload is undefined) and takes no
 * EnvoyFilter; what was bound to a sidecar has nowhere to run.
 */
function ambientProblems(r: Reader, settings: Settings): void {
    const sidecar = setCommand("dataPlane", "sidecar");
    const stage = `dataPlane ${settings.dataPlane}`;
    if (settings.trafficApi !== "gatewayApi") {
        // Required rather than implied: a routing API switch replaces every route object, and the preview should say so because a key did.
        r.fail("dataPlane", show(settings.dataPlane), `routes on waypoints with Gateway API HTTPRoutes only, and trafficApi is ${settings.trafficApi} (VirtualServices on waypoints are Alpha in Istio 1.30, and mixing them with HTTPRoutes is undefined)`, `${setCommand("trafficApi", "gatewayApi")}, or ${sidecar}`);
    }
    if (settings.gatewayProvider !== "istio") {
        r.fail(
            "gatewayProvider",
            show(settings.gatewayProvider),
            `joins the mesh through an Istio sidecar on its proxies, and with ${stage} nothing sends their calls through the apps' waypoint (istio.io/ingress-use-waypoint applies to Istio's gateway only), so the waypoint's policies and metrics would miss the edge's traffic`,
            `${setCommand("gatewayProvider", "istio")}, or ${sidecar}`,
        );
    }
    for (const [service, policies] of Object.entries(settings.policies.byService)) {
        if (policies.rateLimit !== undefined) {
            r.fail(`rateLimits.${service}`, show(policies.rateLimit), `is Envoy's local rate limit, an EnvoyFilter on the service's sidecars; with ${stage} the pods are ambient or about to be, without a sidecar, and an EnvoyFilter on a waypoint is Alpha in Istio 1.30 (shared by every service of the namespace, with no rate limit Istio tests there)`, `pulumi config rm --path 'rateLimits.${service}', or ${sidecar}`);
        }
    }
    const [major, minor] = settings.istioVersion.split(".").map(Number);
    if (major === 1 && minor < AMBIENT_MIN_MINOR) {
        r.fail(
            "istioVersion",
            show(settings.istioVersion),
            `must be 1.${AMBIENT_MIN_MINOR}.0 or newer with ${stage}: the ingress gateway goes through a waypoint (istio.io/ingress-use-waypoint) from 1.24, and istiod scales and secures the waypoint by its Gateway's parametersRef from 1.26`,
            `${setCommand("istioVersion", DEFAULTS.istioVersion)}, or ${sidecar}`,
        );
    }
    if (settings.egress.outboundTrafficPolicy === "REGISTRY_ONLY") {
        r.fail("outboundTrafficPolicy", show("REGISTRY_ONLY"), `is enforced by the callers' sidecars, and ztunnel does not enforce it, so from ${stage} on external hosts outside egressHosts would be reachable again`, `pulumi config set outboundTrafficPolicy ALLOW_ANY, or ${sidecar}`);
    }
    if (settings.egress.gateway) {
        r.fail("egressGateway", "true", `routes external hosts to the egress gateway with VirtualServices applied by the callers' sidecars (gateways: mesh), which the pods have no more from ${stage} on`, `pulumi config set egressGateway false, or ${sidecar}`);
    }
}

/** Reads and validates every key; throws one ConfigError listing all problems. */
export function readSettings(source: ConfigSource): Settings {
    const r = new Reader(source);
    const services = readServices(r);
    let appNamespace = r.pattern("appNamespace", DEFAULTS.appNamespace, NAMESPACE, "must be a Kubernetes namespace name: a DNS label of at most 63 characters", DEFAULTS.appNamespace);
    if (RESERVED_NAMESPACES.test(appNamespace)) {
        r.fail("appNamespace", show(appNamespace), "must not be istio-system, the gateways' istio-ingress or istio-egress, or a kube-* namespace: the app's policies would apply to them", setCommand("appNamespace", DEFAULTS.appNamespace));
        appNamespace = DEFAULTS.appNamespace;
    }
    let ingressHost = r.pattern("ingressHost", DEFAULTS.ingressHost, HOST, "must be a host name such as api.example.com, a wildcard such as *.example.com, or * for any host", "api.example.com");
    const hostProblem = dnsNameProblem(ingressHost);
    if (hostProblem !== undefined) {
        r.fail("ingressHost", show(ingressHost), hostProblem, setCommand("ingressHost", "api.example.com"));
        ingressHost = DEFAULTS.ingressHost;
    }
    const policies = readPolicies(r, services);
    const settings: Settings = {
        canaryWeight: r.integer("canaryWeight", DEFAULTS.canaryWeight, 0, 100, "percent of traffic on the candidate version of canary services", 50),
        activeColor: r.oneOf("activeColor", DEFAULTS.activeColor, COLORS, "the color of blue/green services that gets all traffic"),
        istioVersion: r.pattern("istioVersion", DEFAULTS.istioVersion, SEMVER, "must be an Istio release version such as 1.30.3 (the Helm chart version)", DEFAULTS.istioVersion),
        replicas: r.integer("replicas", DEFAULTS.replicas, 1, 50, "pods per service version", 3),
        image: readImage(r),
        appNamespace,
        ingressHost,
        gatewayServiceType: r.oneOf("gatewayServiceType", DEFAULTS.gatewayServiceType, GATEWAY_SERVICE_TYPES, "the ingress gateway's Kubernetes Service type"),
        gatewayReplicas: r.integer("gatewayReplicas", DEFAULTS.gatewayReplicas, 1, 20, "ingress gateway pods at least; 2 or more survive a node drain", 2),
        platform: r.oneOf("platform", DEFAULTS.platform, PLATFORMS, "the Kubernetes distribution: kind (a local cluster), gke, eks, aks, openshift, or empty for a generic cluster"),
        gatewayHttpNodePort: r.integer("gatewayHttpNodePort", DEFAULTS.gatewayHttpNodePort, 30000, 32767, "the node port for HTTP when gatewayServiceType is NodePort", 30080),
        gatewayHttpsNodePort: r.integer("gatewayHttpsNodePort", DEFAULTS.gatewayHttpsNodePort, 30000, 32767, "the node port for HTTPS when gatewayServiceType is NodePort", 30443),
        trafficApi: r.oneOf("trafficApi", DEFAULTS.trafficApi, TRAFFIC_APIS, "the API the routes are rendered in: istio (VirtualServices) or gatewayApi (Kubernetes Gateway API HTTPRoutes)"),
        gatewayProvider: r.oneOf("gatewayProvider", DEFAULTS.gatewayProvider, GATEWAY_PROVIDERS, "who serves the edge Gateway with trafficApi gatewayApi: istio (Istio's ingress gateway), envoyGateway (Envoy Gateway's proxies) or kong (Kong's)"),
        dataPlane: r.oneOf("dataPlane", DEFAULTS.dataPlane, DATA_PLANES, "Istio's data plane in the app namespace: sidecar (a proxy in every pod), ambient (ztunnel on each node, a waypoint proxy for L7), or ambientReady between them (ambient installed, the sidecars still serving: the stage a switch passes, one update each way)"),
        services,
        policies,
        security: readSecurity(r, services, appNamespace, ingressHost, policies.production),
        observability: readObservability(r, policies.production),
        egress: readEgress(r),
        rollout: readRollout(r),
    };
    if (settings.gatewayHttpNodePort === settings.gatewayHttpsNodePort) {
        r.fail("gatewayHttpsNodePort", show(String(settings.gatewayHttpsNodePort)), "must differ from gatewayHttpNodePort", setCommand("gatewayHttpsNodePort", settings.gatewayHttpNodePort === 30443 ? 30444 : 30443));
    }
    if (policies.edgeRuleAccess === "authenticated" && settings.security.jwt === undefined) {
        r.fail("edgeRuleAccess", show(policies.edgeRuleAccess), "needs jwt: edge rules match claims of a token the ingress gateway has validated", `${setCommand("edgeRuleAccess", "meshOnly")}, or configure jwt (see docs/security.md, JWT at the edge)`);
    }
    if (settings.trafficApi === "gatewayApi") gatewayApiProblems(r, settings);
    if (settings.gatewayProvider !== "istio") gatewayProviderProblems(r, settings);
    if (settings.dataPlane !== "sidecar") ambientProblems(r, settings);
    if (policies.production && settings.gatewayReplicas < 2) {
        // One gateway pod means every node drain or rollout of it is an outage of the whole edge.
        r.fail("gatewayReplicas", show(String(settings.gatewayReplicas)), "a production stack runs at least 2 ingress gateway pods, so a node drain never takes the edge down", setCommand("gatewayReplicas", 2));
    }
    const [major, minor] = settings.istioVersion.split(".").map(Number);
    if (major < 1 || (major === 1 && minor < 22)) {
        // networking.istio.io/v1 and security.istio.io/v1 are served from Istio 1.22 on.
        r.fail("istioVersion", show(settings.istioVersion), "must be 1.22.0 or newer (this program uses the v1 Istio APIs)", setCommand("istioVersion", DEFAULTS.istioVersion));
    }
    for (const { name, problem } of nameProblems(generatedNames(settings))) {
        r.fail(name.from, name.value, `${problem}; object names must be DNS labels of at most 63 characters, one per kind and namespace`, `pulumi config set --path '${name.from}' with a shorter or distinct name`);
    }
    for (const key of source.keys()) {
        if (!CONFIG_KEYS.includes(key)) {
            r.fail(key, show(source.get(key)), `is not a key this program reads${didYouMean(key, CONFIG_KEYS)}; known keys: ${CONFIG_KEYS.join(", ")}`, `pulumi config rm ${key}`);
        }
    }
    if (r.problems.length > 0) throw new ConfigError(r.problems);
    return settings;
}
