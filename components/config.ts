// Stack config -> a validated, typed settings model. Pure: no Pulumi resources are touched here, so a
// bad value fails before anything is registered, and tests can call it directly.
import { ConfigError, ConfigSource, isRecord, Reader, setCommand, show } from "./config-reader";
import { PolicySettings, POLICY_DEFAULTS, POLICY_KEYS, readPolicies } from "./policy-config";
import { readSecurity, SecuritySettings, SECURITY_DEFAULTS, SECURITY_KEYS } from "./security-config";
import { EgressSettings, ObservabilitySettings, OBSERVABILITY_DEFAULTS, OBSERVABILITY_KEYS, readEgress, readObservability } from "./observability-config";

export { ConfigError, ConfigSource };

export type ReleaseStrategy = "canary" | "blueGreen" | "single";
export type Color = "blue" | "green";
export type GatewayServiceType = "LoadBalancer" | "NodePort" | "ClusterIP";
/** The Kubernetes distribution the stack runs on; empty for a generic cluster. */
export type Platform = "" | "kind" | "gke" | "eks" | "aks" | "openshift";

export const RELEASE_STRATEGIES: readonly ReleaseStrategy[] = ["canary", "blueGreen", "single"];
export const COLORS: readonly Color[] = ["blue", "green"];
export const GATEWAY_SERVICE_TYPES: readonly GatewayServiceType[] = ["LoadBalancer", "NodePort", "ClusterIP"];
export const PLATFORMS: readonly Platform[] = ["", "kind", "gke", "eks", "aks", "openshift"];

/** One application in the catalogue: where the ingress exposes it and which versions run. */
export interface ServiceSettings {
    readonly name: string;
    /** Path prefix on the ingress gateway, e.g. `/users`. */
    readonly path: string;
    /** canary: [stable, candidate]; blueGreen: [blue, green]; single: [only]. */
    readonly release: ReleaseStrategy;
    readonly versions: readonly string[];
}

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
    readonly services: readonly ServiceSettings[];
    readonly policies: PolicySettings;
    readonly security: SecuritySettings;
    readonly observability: ObservabilitySettings;
    readonly egress: EgressSettings;
}

/** The catalogue a fresh stack gets: the labs' three services. */
export const DEFAULT_SERVICES: readonly ServiceSettings[] = [
    { name: "user-service", path: "/users", release: "canary", versions: ["v1", "v2"] },
    { name: "product-service", path: "/products", release: "blueGreen", versions: ["v1", "v2"] },
    { name: "order-service", path: "/orders", release: "single", versions: ["v1"] },
];

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
} as const satisfies Omit<Settings, "services" | "policies" | "security" | "observability" | "egress">;

/** Every key this program reads, for the error on an unknown key and the README/Pulumi.yaml checks. */
export const CONFIG_KEYS: readonly string[] = [...Object.keys(DEFAULTS), "services", ...POLICY_KEYS, ...SECURITY_KEYS, ...OBSERVABILITY_KEYS];

/** Every scalar key's default, as Pulumi.yaml declares them. */
export const SCALAR_DEFAULTS = { ...DEFAULTS, ...POLICY_DEFAULTS, ...SECURITY_DEFAULTS, ...OBSERVABILITY_DEFAULTS };

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const PATH_PREFIX = /^\/[A-Za-z0-9._~\-/]*$/;
// A DNS name, optionally with a leading `*.` wildcard, or `*` alone (any host).
const HOST = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;
const IMAGE_WITH_TAG = /^[a-z0-9][a-z0-9._\-/:]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$/;

const VERSION_COUNT: Record<ReleaseStrategy, number> = { canary: 2, blueGreen: 2, single: 1 };
const SERVICE_FIELDS = ["path", "release", "versions"];
const SERVICES_FIX =
    "pulumi config set --path 'services.user-service.path' /users (and .release, .versions[0], .versions[1]); " +
    "see the README's services example";

function readServices(reader: Reader): readonly ServiceSettings[] {
    if (reader.raw("services") === undefined) return DEFAULT_SERVICES;
    const parsed = reader.object("services", "service name -> { path, release, versions }", SERVICES_FIX);
    if (parsed === undefined) return DEFAULT_SERVICES;
    if (Object.keys(parsed).length === 0) {
        reader.fail("services", "{}", "must list at least one service", SERVICES_FIX);
        return DEFAULT_SERVICES;
    }
    const services: ServiceSettings[] = [];
    for (const [name, entry] of Object.entries(parsed)) {
        const at = `services.${name}`;
        const before = reader.problems.length;
        if (!DNS_LABEL.test(name)) {
            reader.fail(at, JSON.stringify(name), "a service name must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters", SERVICES_FIX);
        }
        if (!isRecord(entry)) {
            reader.fail(at, JSON.stringify(entry), "must be an object { path, release, versions }", SERVICES_FIX);
            continue;
        }
        for (const field of Object.keys(entry)) {
            if (!SERVICE_FIELDS.includes(field)) {
                reader.fail(`${at}.${field}`, JSON.stringify(entry[field]), `unknown field; a service has ${SERVICE_FIELDS.join(", ")}`, `pulumi config rm --path '${at}.${field}'`);
            }
        }
        const { path, release, versions } = entry;
        if (typeof path !== "string" || !PATH_PREFIX.test(path) || path === "/") {
            reader.fail(`${at}.path`, JSON.stringify(path), "must be a URL path prefix other than '/', such as /users", `pulumi config set --path '${at}.path' /${name.replace(/-service$/, "")}`);
        }
        const strategy = RELEASE_STRATEGIES.find((s) => s === release);
        if (strategy === undefined) {
            reader.fail(`${at}.release`, JSON.stringify(release), `must be one of ${RELEASE_STRATEGIES.join(", ")}`, `pulumi config set --path '${at}.release' canary`);
        }
        const versionList = Array.isArray(versions) ? versions : undefined;
        const wanted = strategy === undefined ? undefined : VERSION_COUNT[strategy];
        if (
            versionList === undefined ||
            versionList.some((v) => typeof v !== "string" || !DNS_LABEL.test(v)) ||
            new Set(versionList).size !== versionList.length ||
            (wanted !== undefined && versionList.length !== wanted)
        ) {
            const shape = strategy === "blueGreen" ? "[blue version, green version]" : strategy === "canary" ? "[stable version, candidate version]" : "[version]";
            reader.fail(`${at}.versions`, JSON.stringify(versions), `must be a list of ${wanted ?? "1 or 2"} distinct version labels (DNS labels such as v1): ${shape}`, `pulumi config set --path '${at}.versions[0]' v1`);
        }
        if (reader.problems.length === before && typeof path === "string" && strategy !== undefined && versionList !== undefined) {
            services.push({ name, path, release: strategy, versions: versionList.map(String) });
        }
    }
    // The gateway matches each service's path as a string prefix, one VirtualService per service, and Istio
    // orders one host's VirtualServices by creation time: where one path starts another, which service
    // answers would be left to chance.
    services.forEach((s, i) => {
        const other = services.slice(0, i).find((o) => s.path.startsWith(o.path) || o.path.startsWith(s.path));
        if (other === undefined) return;
        const clash = other.path === s.path ? `must be unique; ${other.name} already uses it` : `must not overlap services.${other.name}.path ${JSON.stringify(other.path)}: the ingress matches path prefixes, so which of the two services answers a request under both would be left to chance`;
        reader.fail(`services.${s.name}.path`, JSON.stringify(s.path), clash, `pulumi config set --path 'services.${s.name}.path' /${s.name}`);
    });
    return services;
}

/** Reads and validates every key; throws one ConfigError listing all problems. */
export function readSettings(source: ConfigSource): Settings {
    const r = new Reader(source);
    const services = readServices(r);
    const appNamespace = r.pattern("appNamespace", DEFAULTS.appNamespace, DNS_LABEL, "must be a Kubernetes namespace name (DNS label)", DEFAULTS.appNamespace);
    const ingressHost = r.pattern("ingressHost", DEFAULTS.ingressHost, HOST, "must be a host name such as api.example.com, a wildcard such as *.example.com, or * for any host", "api.example.com");
    const policies = readPolicies(r, services);
    const settings: Settings = {
        canaryWeight: r.integer("canaryWeight", DEFAULTS.canaryWeight, 0, 100, "percent of traffic on the candidate version of canary services", 50),
        activeColor: r.oneOf("activeColor", DEFAULTS.activeColor, COLORS, "the color of blue/green services that gets all traffic"),
        istioVersion: r.pattern("istioVersion", DEFAULTS.istioVersion, SEMVER, "must be an Istio release version such as 1.30.3 (the Helm chart version)", DEFAULTS.istioVersion),
        replicas: r.integer("replicas", DEFAULTS.replicas, 1, 50, "pods per service version", 3),
        image: r.pattern("image", DEFAULTS.image, IMAGE_WITH_TAG, "must be an image with a pinned tag or digest, such as hashicorp/http-echo:1.0.0 (no implicit latest)", DEFAULTS.image),
        appNamespace,
        ingressHost,
        gatewayServiceType: r.oneOf("gatewayServiceType", DEFAULTS.gatewayServiceType, GATEWAY_SERVICE_TYPES, "the ingress gateway's Kubernetes Service type"),
        gatewayReplicas: r.integer("gatewayReplicas", DEFAULTS.gatewayReplicas, 1, 20, "ingress gateway pods at least; 2 or more survive a node drain", 2),
        platform: r.oneOf("platform", DEFAULTS.platform, PLATFORMS, "the Kubernetes distribution: kind (a local cluster), gke, eks, aks, openshift, or empty for a generic cluster"),
        gatewayHttpNodePort: r.integer("gatewayHttpNodePort", DEFAULTS.gatewayHttpNodePort, 30000, 32767, "the node port for HTTP when gatewayServiceType is NodePort", 30080),
        gatewayHttpsNodePort: r.integer("gatewayHttpsNodePort", DEFAULTS.gatewayHttpsNodePort, 30000, 32767, "the node port for HTTPS when gatewayServiceType is NodePort", 30443),
        services,
        policies,
        security: readSecurity(r, services, appNamespace, ingressHost, policies.production),
        observability: readObservability(r, policies.production),
        egress: readEgress(r),
    };
    if (settings.gatewayHttpNodePort === settings.gatewayHttpsNodePort) {
        r.fail("gatewayHttpsNodePort", show(String(settings.gatewayHttpsNodePort)), "must differ from gatewayHttpNodePort", setCommand("gatewayHttpsNodePort", settings.gatewayHttpNodePort === 30443 ? 30444 : 30443));
    }
    if (policies.edgeRuleAccess === "authenticated" && settings.security.jwt === undefined) {
        r.fail("edgeRuleAccess", show(policies.edgeRuleAccess), "needs jwt: edge rules match claims of a token the ingress gateway has validated", `${setCommand("edgeRuleAccess", "meshOnly")}, or configure jwt (see the README's JWT section)`);
    }
    if (policies.production && settings.gatewayReplicas < 2) {
        // One gateway pod means every node drain or rollout of it is an outage of the whole edge.
        r.fail("gatewayReplicas", show(String(settings.gatewayReplicas)), "a production stack runs at least 2 ingress gateway pods, so a node drain never takes the edge down", setCommand("gatewayReplicas", 2));
    }
    const [major, minor] = settings.istioVersion.split(".").map(Number);
    if (major < 1 || (major === 1 && minor < 22)) {
        // networking.istio.io/v1 and security.istio.io/v1 are served from Istio 1.22 on.
        r.fail("istioVersion", show(settings.istioVersion), "must be 1.22.0 or newer (this program uses the v1 Istio APIs)", setCommand("istioVersion", DEFAULTS.istioVersion));
    }
    for (const key of source.keys()) {
        if (!CONFIG_KEYS.includes(key)) {
            r.fail(key, source.isSecret(key) ? "[secret]" : show(source.get(key)), `is not a key this program reads; known keys: ${CONFIG_KEYS.join(", ")}`, `pulumi config rm ${key}`);
        }
    }
    if (r.problems.length > 0) throw new ConfigError(r.problems);
    return settings;
}
