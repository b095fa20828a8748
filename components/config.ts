// Stack config -> a validated, typed settings model. Pure: no Pulumi resources are touched here, so a
// bad value fails before anything is registered, and tests can call it directly.

export type ReleaseStrategy = "canary" | "blueGreen" | "single";
export type Color = "blue" | "green";
export type GatewayServiceType = "LoadBalancer" | "NodePort" | "ClusterIP";

export const RELEASE_STRATEGIES: readonly ReleaseStrategy[] = ["canary", "blueGreen", "single"];
export const COLORS: readonly Color[] = ["blue", "green"];
export const GATEWAY_SERVICE_TYPES: readonly GatewayServiceType[] = ["LoadBalancer", "NodePort", "ClusterIP"];

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
    readonly gatewayHttpNodePort: number;
    readonly services: readonly ServiceSettings[];
}

/** The catalogue a fresh stack gets: the labs' three services. */
export const DEFAULT_SERVICES: readonly ServiceSettings[] = [
    { name: "user-service", path: "/users", release: "canary", versions: ["v1", "v2"] },
    { name: "product-service", path: "/products", release: "blueGreen", versions: ["v1", "v2"] },
    { name: "order-service", path: "/orders", release: "single", versions: ["v1"] },
];

/**
 * Defaults for every scalar key. `Pulumi.yaml` declares the same defaults for the CLI; a test keeps the
 * two equal. They live in code too because Pulumi's mocks (tests, `npm run render`) do not apply them.
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
    gatewayHttpNodePort: 30080,
} as const satisfies Omit<Settings, "services">;

/** Every key this program reads, for the error on an unknown key and the README/Pulumi.yaml checks. */
export const CONFIG_KEYS = [...Object.keys(DEFAULTS), "services"] as const;

/** Reads one raw stack config value as the Pulumi CLI passes it: a string (objects as JSON). */
export interface ConfigSource {
    get(key: string): string | undefined;
    /** Every key set for this project, so a misspelled key is refused instead of ignored. */
    keys(): readonly string[];
}

export interface ConfigProblem {
    readonly key: string;
    readonly value: string;
    readonly allowed: string;
    readonly fix: string;
}

export class ConfigError extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(
            `Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n` +
                problems.map((p) => `  - ${p.key} = ${p.value}: ${p.allowed}.\n    Fix: ${p.fix}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const PATH_PREFIX = /^\/[A-Za-z0-9._~\-/]*$/;
// A DNS name, optionally with a leading `*.` wildcard, or `*` alone (any host).
const HOST = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;
const IMAGE_WITH_TAG = /^[a-z0-9][a-z0-9._\-/:]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$/;

const show = (raw: string | undefined): string => (raw === undefined ? "(unset)" : JSON.stringify(raw));
const setCommand = (key: string, example: string | number): string => `pulumi config set ${key} ${example}`;

/** Collects problems so one run reports every bad key at once. */
class Reader {
    readonly problems: ConfigProblem[] = [];
    constructor(private readonly source: ConfigSource) {}

    raw(key: string): string | undefined {
        return this.source.get(key);
    }

    fail(key: string, value: string, allowed: string, fix: string): void {
        this.problems.push({ key, value, allowed, fix });
    }

    integer(key: keyof typeof DEFAULTS, min: number, max: number, meaning: string, example: number): number {
        const fallback = DEFAULTS[key] as number;
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
        if (!Number.isSafeInteger(value) || value < min || value > max) {
            this.fail(key, show(raw), `must be a whole number from ${min} to ${max} (${meaning})`, setCommand(key, example));
            return fallback;
        }
        return value;
    }

    oneOf<T extends string>(key: keyof typeof DEFAULTS, allowed: readonly T[], meaning: string): T {
        const fallback = DEFAULTS[key] as T;
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const match = allowed.find((a) => a === raw.trim());
        if (match === undefined) {
            this.fail(key, show(raw), `must be one of ${allowed.join(", ")} (${meaning})`, setCommand(key, allowed[0]));
            return fallback;
        }
        return match;
    }

    pattern(key: keyof typeof DEFAULTS, re: RegExp, allowed: string, example: string): string {
        const fallback = DEFAULTS[key] as string;
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        if (!re.test(text)) {
            this.fail(key, show(raw), allowed, setCommand(key, example));
            return fallback;
        }
        return text;
    }
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

const VERSION_COUNT: Record<ReleaseStrategy, number> = { canary: 2, blueGreen: 2, single: 1 };
const SERVICE_FIELDS = ["path", "release", "versions"];
const SERVICES_FIX =
    "pulumi config set --path 'services.user-service.path' /users (and .release, .versions[0], .versions[1]); " +
    "see the README's services example";

function readServices(reader: Reader): readonly ServiceSettings[] {
    const raw = reader.raw("services");
    if (raw === undefined) return DEFAULT_SERVICES;
    let parsed: unknown;
    try {
        parsed = JSON.parse(raw);
    } catch {
        reader.fail("services", show(raw), "must be an object of service name -> { path, release, versions }", SERVICES_FIX);
        return DEFAULT_SERVICES;
    }
    if (!isRecord(parsed) || Object.keys(parsed).length === 0) {
        reader.fail("services", show(raw), "must be a non-empty object of service name -> { path, release, versions }", SERVICES_FIX);
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
    const seen = new Map<string, string>();
    for (const s of services) {
        const other = seen.get(s.path);
        if (other !== undefined) {
            reader.fail(`services.${s.name}.path`, JSON.stringify(s.path), `must be unique; ${other} already uses it`, `pulumi config set --path 'services.${s.name}.path' /${s.name}`);
        }
        seen.set(s.path, s.name);
    }
    return services;
}

/** Reads and validates every key; throws one ConfigError listing all problems. */
export function readSettings(source: ConfigSource): Settings {
    const r = new Reader(source);
    const settings: Settings = {
        canaryWeight: r.integer("canaryWeight", 0, 100, "percent of traffic on the candidate version of canary services", 50),
        activeColor: r.oneOf("activeColor", COLORS, "the color of blue/green services that gets all traffic"),
        istioVersion: r.pattern("istioVersion", SEMVER, "must be an Istio release version such as 1.30.3 (the Helm chart version)", DEFAULTS.istioVersion),
        replicas: r.integer("replicas", 1, 50, "pods per service version", 3),
        image: r.pattern("image", IMAGE_WITH_TAG, "must be an image with a pinned tag or digest, such as hashicorp/http-echo:1.0.0 (no implicit latest)", DEFAULTS.image),
        appNamespace: r.pattern("appNamespace", DNS_LABEL, "must be a Kubernetes namespace name (DNS label)", DEFAULTS.appNamespace),
        ingressHost: r.pattern("ingressHost", HOST, "must be a host name such as api.example.com, a wildcard such as *.example.com, or * for any host", "api.example.com"),
        gatewayServiceType: r.oneOf("gatewayServiceType", GATEWAY_SERVICE_TYPES, "the ingress gateway's Kubernetes Service type"),
        gatewayHttpNodePort: r.integer("gatewayHttpNodePort", 30000, 32767, "the node port for HTTP when gatewayServiceType is NodePort", 30080),
        services: readServices(r),
    };
    const [major, minor] = settings.istioVersion.split(".").map(Number);
    if (major < 1 || (major === 1 && minor < 22)) {
        // networking.istio.io/v1 and security.istio.io/v1 are served from Istio 1.22 on.
        r.fail("istioVersion", show(settings.istioVersion), "must be 1.22.0 or newer (this program uses the v1 Istio APIs)", setCommand("istioVersion", DEFAULTS.istioVersion));
    }
    for (const key of source.keys()) {
        if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
            r.fail(key, show(source.get(key)), `is not a key this program reads; known keys: ${CONFIG_KEYS.join(", ")}`, `pulumi config rm ${key}`);
        }
    }
    if (r.problems.length > 0) throw new ConfigError(r.problems);
    return settings;
}
