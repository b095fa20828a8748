// What runs behind each service: its container port and protocol, health checks, resources and environment,
// per-version images, replicas and environment, autoscaling, and a sticky canary. Pure validation.
import { durationMs, isRecord, Reader, setPathCommand, show } from "./config-reader";
import { imageProblem } from "./names";

export type Protocol = "http" | "http2" | "grpc";
export const PROTOCOLS: readonly Protocol[] = ["http", "http2", "grpc"];

export interface ResourceList {
    readonly cpu?: string;
    readonly memory?: string;
}
export interface Resources {
    readonly requests?: ResourceList;
    readonly limits?: ResourceList;
}

/** Readiness and liveness: an HTTP GET of a path, or gRPC's health checking protocol. */
export type Health = { readonly path: string } | { readonly grpc: true };

/** A service's workload, which each version may override in part. */
export interface WorkloadSettings {
    /** The container's port; the Service stays on port 80. */
    readonly port: number;
    readonly protocol: Protocol;
    readonly health: Health;
    readonly resources?: Resources;
    readonly env: Readonly<Record<string, string>>;
}

export interface VersionSettings {
    readonly name: string;
    /** Unset: the stack's `image`. */
    readonly image?: string;
    /** Unset: the stack's `replicas`. */
    readonly replicas?: number;
    readonly resources?: Resources;
    /** Added to (and overriding) the service's env. */
    readonly env: Readonly<Record<string, string>>;
}

/** A user the candidate served keeps being served by it, by a cookie its response sets (as Flagger does). */
export interface StickyCanary {
    readonly cookie: string;
    readonly maxAgeSeconds: number;
}

export interface Autoscaling {
    readonly minReplicas: number;
    readonly maxReplicas: number;
    /** Target average CPU utilization, percent of the requested CPU. */
    readonly cpuUtilization: number;
}

/** The labs' http-echo services: it listens where `-listen` says, and answers /health. */
export const DEFAULT_WORKLOAD: WorkloadSettings = { port: 8080, protocol: "http", health: { path: "/health" }, env: {} };

export const WORKLOAD_FIELDS = ["port", "protocol", "health", "resources", "env"] as const;
const VERSION_FIELDS = ["name", "image", "replicas", "resources", "env"];

/** Environment variable names as Kubernetes accepts them (and not `length`, which kubernetesx reads as a list). */
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
/**
 * Kubernetes' quantity grammar (apimachinery's resource.Quantity): a signed decimal number (`1`, `1.5`, `.5`, `5.`)
 * and a binary suffix (Ki..Ei), a decimal one (m, k, M..E) or an exponent (e3, E-2).
 */
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const SUFFIX: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
/** Kubernetes stores a quantity as a 64-bit count of its smallest unit: nothing larger is a quantity a pod can have. */
const MAX_QUANTITY = 2 ** 63;

/** A quantity's value in its base unit (cores, bytes), or undefined when it is not a quantity. */
export function quantityValue(text: string): number | undefined {
    const match = QUANTITY.exec(text);
    if (match === null) return undefined;
    // An optional group that did not take part is undefined, whatever the type of exec's result says.
    const [, number, suffix = ""] = match;
    const value = Number(number) * (suffix === "" ? 1 : /^[eE][+-]?\d+$/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix]);
    return Number.isFinite(value) ? value : undefined;
}

/** Ports the Istio sidecar (and its init container's iptables rules) take in every injected pod (Istio 1.30.3). */
export const ISTIO_RESERVED_PORTS: Readonly<Record<number, string>> = {
    15000: "Envoy's admin port",
    15001: "the sidecar's outbound listener",
    15004: "the sidecar agent's debug port",
    15006: "the sidecar's inbound listener",
    15008: "the HBONE tunnel port",
    15020: "the agent's merged metrics and status port",
    15021: "the sidecar's health port",
    15053: "the DNS proxy",
    15090: "Envoy's Prometheus port",
};

/** The kernel refuses to start a process with one environment string (NAME=value) longer than this (MAX_ARG_STRLEN). */
const MAX_ENV_ENTRY_BYTES = 128 * 1024;
/** Env of one service or version at most: two of them fit a Deployment well under etcd's 1.5 MiB request limit. */
const MAX_ENV_BYTES = 512 * 1024;
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const HEALTH_PATH = /^\/[A-Za-z0-9._~\-/]*$/;

function readEnv(r: Reader, at: string, value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (!isRecord(value)) {
        r.fail(at, show(value), "must be an object of NAME: value", setPathCommand(`${at}.LOG_LEVEL`, "info"));
        return {};
    }
    const env: [string, string][] = [];
    let bytes = 0;
    for (const [name, v] of Object.entries(value)) {
        if (!ENV_NAME.test(name) || name === "length") {
            r.fail(`${at}.${name}`, show(name), "must be an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit (and not `length`, which kubernetesx's env map cannot carry)", `pulumi config rm --path '${at}.${name}'`);
        } else if (typeof v !== "string") {
            r.fail(`${at}.${name}`, show(v), "must be a string (quote numbers and booleans: \"on\", \"3\")", setPathCommand(`${at}.${name}`, `'"${String(v)}"'`));
        } else if (Buffer.byteLength(`${name}=${v}`) + 1 > MAX_ENV_ENTRY_BYTES) {
            r.fail(`${at}.${name}`, show(v), `is ${Buffer.byteLength(v)} bytes; Linux refuses to start a process with an environment string (NAME=value) over ${MAX_ENV_ENTRY_BYTES / 1024} KiB`, `put the value in a ConfigMap and mount it, then pulumi config rm --path '${at}.${name}'`);
        } else {
            bytes += Buffer.byteLength(`${name}=${v}`) + 1;
            env.push([name, v]);
        }
    }
    if (bytes > MAX_ENV_BYTES) {
        r.fail(at, `${env.length} variables of ${bytes} bytes`, `the environment of a service or version may hold ${MAX_ENV_BYTES / 1024} KiB: every Deployment carries it, and etcd refuses an object over 1.5 MiB`, `move the largest values to a ConfigMap, then pulumi config rm --path '${at}.<NAME>'`);
        return {};
    }
    return Object.fromEntries(env);
}

function readResources(r: Reader, at: string, value: unknown): Resources | undefined {
    const fix = setPathCommand(`${at}.requests.cpu`, "100m");
    if (value === undefined || !r.fields(at, value, ["requests", "limits"], "{ requests?: { cpu?, memory? }, limits?: { cpu?, memory? } }", fix)) return undefined;
    const list = (kind: "requests" | "limits"): ResourceList | undefined => {
        const entry = value[kind];
        if (entry === undefined || !r.fields(`${at}.${kind}`, entry, ["cpu", "memory"], "{ cpu?, memory? }", fix)) return undefined;
        const cpu = entry.cpu === undefined ? undefined : readQuantity(r, `${at}.${kind}.cpu`, entry.cpu, "cpu");
        const memory = entry.memory === undefined ? undefined : readQuantity(r, `${at}.${kind}.memory`, entry.memory, "memory");
        return { ...(cpu !== undefined && { cpu }), ...(memory !== undefined && { memory }) };
    };
    const requests = list("requests");
    const limits = list("limits");
    for (const resource of ["cpu", "memory"] as const) {
        const [requested, limit] = [requests?.[resource], limits?.[resource]];
        // The API server's rule: a request may not exceed its limit.
        if (requested !== undefined && limit !== undefined && (quantityValue(requested) ?? 0) > (quantityValue(limit) ?? Infinity)) {
            r.fail(`${at}.requests.${resource}`, show(requested), `must be at most ${at}.limits.${resource} (${limit}): Kubernetes refuses a request above its limit`, setPathCommand(`${at}.requests.${resource}`, limit));
        }
    }
    return { ...(requests && { requests }), ...(limits && { limits }) };
}

/**
 * A CPU (cores) or memory (bytes) quantity in any form Kubernetes takes: `100m`, `0.5`, `2`, `1.5Gi`, `512M`,
 * `1e9`; given as text or, as YAML and `pulumi config set --path` store numbers, as a number. Memory is whole bytes
 * (`128m` is 0.128 bytes, a slip for 128Mi); both are positive and within Kubernetes' 64-bit bound.
 */
function readQuantity(r: Reader, at: string, value: unknown, resource: "cpu" | "memory"): string | undefined {
    const text = typeof value === "number" && Number.isFinite(value) ? String(value) : typeof value === "string" ? value.trim() : undefined;
    const amount = text === undefined ? undefined : quantityValue(text);
    const [example, unit, forms] = resource === "cpu" ? ["100m", "cores", "100m, 0.5, 2 or 1.5"] : ["128Mi", "bytes", "128Mi, 1.5Gi, 512M or 1e9"];
    let problem: string | undefined;
    if (amount === undefined) problem = `must be a Kubernetes quantity of ${unit}, such as ${forms}`;
    else if (amount <= 0) problem = `must be more than 0 ${unit}`;
    else if ((resource === "cpu" ? amount * 1000 : amount) >= MAX_QUANTITY) problem = `is more ${unit} than Kubernetes can count (a 64-bit number of ${resource === "cpu" ? "millicores" : "bytes"})`;
    else if (resource === "memory" && !Number.isInteger(Math.round(amount * 1e6) / 1e6)) problem = `is ${amount} bytes, not a whole number of bytes (m is milli: did you mean ${text?.replace(/m$/, "Mi") ?? example}?)`;
    if (problem !== undefined || text === undefined) {
        r.fail(at, show(value), problem ?? "must be a quantity", setPathCommand(at, example));
        return undefined;
    }
    return text;
}

function readHealth(r: Reader, at: string, value: unknown): Health {
    if (value === undefined) return DEFAULT_WORKLOAD.health;
    if (!r.fields(at, value, ["path", "grpc"], "{ path } or { grpc: true }", setPathCommand(`${at}.path`, "/healthz"))) return DEFAULT_WORKLOAD.health;
    if (value.grpc === true && value.path === undefined) return { grpc: true };
    const path = r.stringAt(`${at}.path`, value.path, HEALTH_PATH, "must be an HTTP path such as /healthz (or use { grpc: true } for gRPC health checking)", "/healthz");
    return path === undefined ? DEFAULT_WORKLOAD.health : { path };
}

/** The service-level workload fields of `entry`. */
export function readWorkload(r: Reader, at: string, entry: Record<string, unknown>): WorkloadSettings {
    let port = entry.port === undefined ? DEFAULT_WORKLOAD.port : (r.integerAt(`${at}.port`, entry.port, 1, 65535, "the container's port", 8080) ?? DEFAULT_WORKLOAD.port);
    if (Object.hasOwn(ISTIO_RESERVED_PORTS, port)) {
        r.fail(`${at}.port`, show(entry.port), `is ${ISTIO_RESERVED_PORTS[port]}, one of the ports Istio's sidecar takes in every pod of the mesh (15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090)`, setPathCommand(`${at}.port`, 8080));
        port = DEFAULT_WORKLOAD.port;
    }
    let protocol = DEFAULT_WORKLOAD.protocol;
    if (entry.protocol !== undefined) {
        const match = PROTOCOLS.find((p) => p === entry.protocol);
        if (match === undefined) r.fail(`${at}.protocol`, show(entry.protocol), `must be one of ${PROTOCOLS.join(", ")}: the Service port's name and appProtocol, as Istio reads them`, setPathCommand(`${at}.protocol`, "http"));
        else protocol = match;
    }
    const resources = readResources(r, `${at}.resources`, entry.resources);
    return { port, protocol, health: readHealth(r, `${at}.health`, entry.health), ...(resources && { resources }), env: readEnv(r, `${at}.env`, entry.env) };
}

/** One entry of `versions`: a plain version name (the stack's image), or an object that overrides the service. */
export function readVersion(r: Reader, at: string, value: unknown, namePattern: RegExp): VersionSettings | undefined {
    if (typeof value === "string") return namePattern.test(value) ? { name: value, env: {} } : undefined;
    if (!r.fields(at, value, VERSION_FIELDS, "a version name, or { name, image?, replicas?, resources?, env? }", setPathCommand(`${at}.name`, "v2"))) return undefined;
    const before = r.problems.length;
    const name = r.stringAt(`${at}.name`, value.name, namePattern, "must be a version label: a DNS label such as v2", "v2");
    let image: string | undefined;
    if (value.image !== undefined) {
        const problem = typeof value.image === "string" ? imageProblem(value.image) : "is not a string";
        if (problem === undefined && typeof value.image === "string") image = value.image;
        else r.fail(`${at}.image`, show(value.image), `${problem ?? ""}; an image must pin a tag or digest, such as ghcr.io/acme/user:1.5.0`, setPathCommand(`${at}.image`, "ghcr.io/acme/user:1.5.0"));
    }
    const replicas = value.replicas === undefined ? undefined : r.integerAt(`${at}.replicas`, value.replicas, 1, 50, "pods of this version", 3);
    const resources = readResources(r, `${at}.resources`, value.resources);
    const env = readEnv(r, `${at}.env`, value.env);
    if (r.problems.length !== before || name === undefined) return undefined;
    return { name, ...(image !== undefined && { image }), ...(replicas !== undefined && { replicas }), ...(resources && { resources }), env };
}

export function readStickyCanary(r: Reader, at: string, value: unknown): StickyCanary | undefined {
    const fix = setPathCommand(`${at}.cookie`, "canary");
    if (!r.fields(at, value, ["cookie", "maxAge"], "{ cookie, maxAge }", fix)) return undefined;
    let cookie = r.stringAt(`${at}.cookie`, value.cookie, COOKIE_NAME, "must be a cookie name such as canary", "canary");
    // RFC 6265bis: a browser ignores a __Secure- or __Host- cookie set without Secure, and the sticky cookie is not
    // Secure (the mesh cannot know the client's scheme), so such a name would never keep anyone on the candidate.
    if (cookie !== undefined && /^__(secure|host)-/i.test(cookie)) {
        r.fail(`${at}.cookie`, show(cookie), "starts with __Secure- or __Host-, which browsers keep only when the cookie is set with Secure; the sticky canary's cookie is set without it, so browsers would drop it and nobody would stay on the candidate", setPathCommand(`${at}.cookie`, cookie.replace(/^__(secure|host)-/i, "")));
        cookie = undefined;
    }
    const maxAge = r.durationAt(`${at}.maxAge`, value.maxAge, "how long a user stays on the candidate", { min: "1s", max: "8760h", example: "24h" });
    return cookie === undefined || maxAge === undefined ? undefined : { cookie, maxAgeSeconds: Math.round(durationMs(maxAge) / 1000) };
}

export function readAutoscaling(r: Reader, at: string, value: unknown): Autoscaling | undefined {
    const fix = setPathCommand(`${at}.maxReplicas`, 10);
    if (!r.fields(at, value, ["minReplicas", "maxReplicas", "cpuUtilization"], "{ minReplicas, maxReplicas, cpuUtilization? }", fix)) return undefined;
    const minReplicas = r.integerAt(`${at}.minReplicas`, value.minReplicas, 1, 100, "pods per version at least", 2);
    const maxReplicas = r.integerAt(`${at}.maxReplicas`, value.maxReplicas, 1, 1000, "pods per version at most", 10);
    const cpuUtilization = value.cpuUtilization === undefined ? 70 : r.integerAt(`${at}.cpuUtilization`, value.cpuUtilization, 10, 100, "target average CPU, percent of requests", 70);
    if (minReplicas === undefined || maxReplicas === undefined || cpuUtilization === undefined) return undefined;
    if (maxReplicas < minReplicas) {
        r.fail(`${at}.maxReplicas`, show(maxReplicas), `must be at least minReplicas (${String(minReplicas)})`, setPathCommand(`${at}.maxReplicas`, minReplicas * 2));
        return undefined;
    }
    return { minReplicas, maxReplicas, cpuUtilization };
}
