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
const CPU = /^([1-9]\d{0,5}m|\d{1,3}(\.\d{1,3})?)$/;
const MEMORY = /^[1-9]\d{0,6}(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const HEALTH_PATH = /^\/[A-Za-z0-9._~\-/]*$/;

function readEnv(r: Reader, at: string, value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (!isRecord(value)) {
        r.fail(at, show(value), "must be an object of NAME: value", setPathCommand(`${at}.LOG_LEVEL`, "info"));
        return {};
    }
    const env: [string, string][] = [];
    for (const [name, v] of Object.entries(value)) {
        if (!ENV_NAME.test(name) || name === "length") {
            r.fail(`${at}.${name}`, show(name), "must be an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit (and not `length`, which kubernetesx's env map cannot carry)", `pulumi config rm --path '${at}.${name}'`);
        } else if (typeof v !== "string") {
            r.fail(`${at}.${name}`, show(v), "must be a string (quote numbers and booleans: \"on\", \"3\")", setPathCommand(`${at}.${name}`, `'"${String(v)}"'`));
        } else {
            env.push([name, v]);
        }
    }
    return Object.fromEntries(env);
}

function readResources(r: Reader, at: string, value: unknown): Resources | undefined {
    const fix = setPathCommand(`${at}.requests.cpu`, "100m");
    if (value === undefined || !r.fields(at, value, ["requests", "limits"], "{ requests?: { cpu?, memory? }, limits?: { cpu?, memory? } }", fix)) return undefined;
    const list = (kind: "requests" | "limits"): ResourceList | undefined => {
        const entry = value[kind];
        if (entry === undefined || !r.fields(`${at}.${kind}`, entry, ["cpu", "memory"], "{ cpu?, memory? }", fix)) return undefined;
        const cpu = entry.cpu === undefined ? undefined : r.stringAt(`${at}.${kind}.cpu`, entry.cpu, CPU, "must be a CPU quantity such as 100m or 0.5", "100m");
        const memory = entry.memory === undefined ? undefined : r.stringAt(`${at}.${kind}.memory`, entry.memory, MEMORY, "must be a memory quantity such as 128Mi or 1Gi", "128Mi");
        return { ...(cpu !== undefined && { cpu }), ...(memory !== undefined && { memory }) };
    };
    const requests = list("requests");
    const limits = list("limits");
    return { ...(requests && { requests }), ...(limits && { limits }) };
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
    const port = entry.port === undefined ? DEFAULT_WORKLOAD.port : (r.integerAt(`${at}.port`, entry.port, 1, 65535, "the container's port", 8080) ?? DEFAULT_WORKLOAD.port);
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
    const cookie = r.stringAt(`${at}.cookie`, value.cookie, COOKIE_NAME, "must be a cookie name such as canary", "canary");
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
