// The catalogue: which applications run, where the ingress exposes them, which versions each runs and how a
// release moves between them. The base of the config layer: the policy and security settings refer to it.
import { didYouMean, isRecord, Reader, show } from "./config-reader";
import {
    Autoscaling,
    DEFAULT_WORKLOAD,
    readAutoscaling,
    readStickyCanary,
    readVersion,
    readWorkload,
    StickyCanary,
    VersionSettings,
    WORKLOAD_FIELDS,
    WorkloadSettings,
} from "./workload-config";

export type ReleaseStrategy = "canary" | "blueGreen" | "single";
export type Color = "blue" | "green";

export const RELEASE_STRATEGIES: readonly ReleaseStrategy[] = ["canary", "blueGreen", "single"];
export const COLORS: readonly Color[] = ["blue", "green"];

/** One application in the catalogue: where the ingress exposes it, which versions run, and what they run. */
export interface ServiceSettings {
    readonly name: string;
    /** Path prefix on the ingress gateway, e.g. `/users`. */
    readonly path: string;
    /** canary: [stable, candidate]; blueGreen: [blue, green]; single: [only]. */
    readonly release: ReleaseStrategy;
    /** The version names, in the order `release` reads them. */
    readonly versions: readonly string[];
    /** Each version's own image, replicas, resources and env, in the same order. */
    readonly versionSettings: readonly VersionSettings[];
    readonly workload: WorkloadSettings;
    /** A canary's own weight; unset, the stack's canaryWeight. */
    readonly canaryWeight?: number;
    readonly stickyCanary?: StickyCanary;
    readonly autoscaling?: Autoscaling;
}

const labService = (name: string, path: string, release: ReleaseStrategy, versions: readonly string[]): ServiceSettings => ({
    name,
    path,
    release,
    versions,
    versionSettings: versions.map((v) => ({ name: v, env: {} })),
    workload: DEFAULT_WORKLOAD,
});

/** The catalogue a fresh stack gets: the labs' three services. */
export const DEFAULT_SERVICES: readonly ServiceSettings[] = [
    labService("user-service", "/users", "canary", ["v1", "v2"]),
    labService("product-service", "/products", "blueGreen", ["v1", "v2"]),
    labService("order-service", "/orders", "single", ["v1"]),
];

export interface Subset {
    /** Subset name in the DestinationRule (`v1`, or `blue` / `green` for blue/green services). */
    readonly name: string;
    /** Value of the pods' `version` label. */
    readonly version: string;
}

/** The subsets a service's routes may name: its versions, or its two colors. */
export function subsetsOf(service: ServiceSettings): Subset[] {
    if (service.release === "blueGreen") {
        const [blue, green] = service.versions;
        return [
            { name: "blue", version: blue },
            { name: "green", version: green },
        ];
    }
    return service.versions.map((version) => ({ name: version, version }));
}

/** The version that receives mirrored traffic: a canary's candidate, or the idle color of a blue/green pair. */
export function candidateSubset(service: ServiceSettings, activeColor: Color): string | undefined {
    switch (service.release) {
        case "canary":
            return service.versions[1];
        case "blueGreen":
            return activeColor === "blue" ? "green" : "blue";
        case "single":
            return undefined;
    }
}

/** Service and version names: DNS-1035 labels, as a Service name must be (a letter first). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A path prefix without its trailing slashes: prefixes match whole path segments, and a trailing slash changes nothing. */
export function segmentBase(prefix: string): string {
    return prefix.replace(/\/+$/, "");
}

/** Is `path` the prefix itself or under it, segment by segment (/users/42 is under /users, /usersearch is not)? */
export function underPrefix(path: string, prefix: string): boolean {
    const base = segmentBase(prefix);
    return path === base || path.startsWith(`${base}/`);
}

const PATH_PREFIX = /^\/[A-Za-z0-9._~\-/]*$/;
/** The characters the Gateway API allows in an exact or prefix path (its CEL rule), without %-escapes. */
const PATH_CHARACTERS = /^[-A-Za-z0-9/._~!$&'()*+,;=:@]+$/;

/**
 * Why an exact or prefix path would never match, or be refused, on either routing API; or undefined. Istio's
 * sidecars and gateways normalise each request's path (RFC 3986, meshConfig.pathNormalization BASE) before
 * matching, so a `.` or `..` segment or a %-escape in a route is never seen in a request; the Gateway API's CEL
 * rules refuse `//`, `/./`, `/../`, `#`, `%2F` and characters outside its set.
 */
export function pathProblem(path: string): string | undefined {
    if (!path.startsWith("/")) return "does not start with /";
    if (path.includes("//")) return "has an empty segment (//)";
    if (path.split("/").some((segment) => segment === "." || segment === "..")) return "has a . or .. segment, which Istio resolves in every request's path before matching, so the route never matches (and the Gateway API refuses it)";
    if (path.includes("%")) return "has a %-escape: Istio decodes escapes of plain characters before matching and the Gateway API refuses %2F; write the character itself";
    if (/[?#]/.test(path)) return "has a ? or #: a query or fragment is never part of the path a route matches";
    if (!PATH_CHARACTERS.test(path)) return "has a character outside a URL path's (letters, digits and -._~!$&'()*+,;=:@/)";
    if (path.length > 1024) return `is ${path.length} characters, and the Gateway API takes paths of 1024`;
    return undefined;
}

const VERSION_COUNT: Record<ReleaseStrategy, number> = { canary: 2, blueGreen: 2, single: 1 };
const SERVICE_FIELDS = ["path", "release", "versions", ...WORKLOAD_FIELDS, "canaryWeight", "stickyCanary", "autoscaling"];
const SERVICES_FIX =
    "pulumi config set --path 'services.user-service.path' /users (and .release, .versions[0], .versions[1]); " +
    "see docs/configuration.md, Services are data";

export function readServices(reader: Reader): readonly ServiceSettings[] {
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
        if (!SERVICE_NAME.test(name)) {
            const renamed = name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+|-+$/g, "").slice(0, 63) || "my-service";
            reader.fail(at, show(name), "a service name must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters", `rename it: pulumi config rm --path '${at}', then set its fields under services.${renamed}`);
        }
        if (!isRecord(entry)) {
            reader.fail(at, show(entry), "must be an object { path, release, versions }", SERVICES_FIX);
            continue;
        }
        for (const field of Object.keys(entry)) {
            if (!SERVICE_FIELDS.includes(field)) {
                reader.fail(`${at}.${field}`, show(entry[field]), `unknown field${didYouMean(field, SERVICE_FIELDS)}; a service has ${SERVICE_FIELDS.join(", ")}`, `pulumi config rm --path '${at}.${field}'`);
            }
        }
        const { path, release, versions } = entry;
        const problem = typeof path !== "string" ? "is not a string" : !PATH_PREFIX.test(path) || segmentBase(path) === "" ? "is not a URL path prefix other than '/' (letters, digits and -._~ in segments)" : pathProblem(path);
        if (problem !== undefined) {
            reader.fail(`${at}.path`, show(path), `must be a URL path prefix other than '/', such as /users, that a request can match: it ${problem}`, `pulumi config set --path '${at}.path' /${name.replace(/-service$/, "")}`);
        }
        const strategy = RELEASE_STRATEGIES.find((s) => s === release);
        if (strategy === undefined) {
            reader.fail(`${at}.release`, show(release), `must be one of ${RELEASE_STRATEGIES.join(", ")}`, `pulumi config set --path '${at}.release' canary`);
        }
        const wanted = strategy === undefined ? undefined : VERSION_COUNT[strategy];
        // Each version refused for a field of its own is reported there, once; it keeps its name, so the routes and
        // mirrors that name it are not refused as well.
        const reported: boolean[] = [];
        const versionList = Array.isArray(versions)
            ? versions.map((v: unknown, i) => {
                  const problemsBefore = reader.problems.length;
                  const read = readVersion(reader, `${at}.versions[${i}]`, v, SERVICE_NAME);
                  reported[i] = reader.problems.length > problemsBefore;
                  return read ?? (reported[i] && isRecord(v) && typeof v.name === "string" && SERVICE_NAME.test(v.name) ? { name: v.name, env: {} } : undefined);
              })
            : undefined;
        const names = versionList?.map((v) => v?.name);
        const listRefused = versionList === undefined || names === undefined || names.some((v, i) => v === undefined && !reported[i]) || new Set(names).size !== names.length || (wanted !== undefined && names.length !== wanted);
        if (listRefused) {
            const shape = strategy === "blueGreen" ? "[blue version, green version]" : strategy === "canary" ? "[stable version, candidate version]" : "[version]";
            reader.fail(`${at}.versions`, show(versions), `must be a list of ${wanted ?? "1 or 2"} distinct versions, each a label (a DNS label such as v1) or { name, image?, replicas?, resources?, env? }: ${shape}`, `pulumi config set --path '${at}.versions[0]' v1`);
        }
        const workload = readWorkload(reader, at, entry);
        let canaryWeight: number | undefined;
        if (entry.canaryWeight !== undefined) {
            canaryWeight = reader.integerAt(`${at}.canaryWeight`, entry.canaryWeight, 0, 100, "percent of this service's traffic on its candidate", 10);
            if (strategy !== "canary") reader.fail(`${at}.canaryWeight`, show(entry.canaryWeight), "applies to a canary service only", `pulumi config rm --path '${at}.canaryWeight'`);
        }
        const stickyCanary = entry.stickyCanary === undefined ? undefined : readStickyCanary(reader, `${at}.stickyCanary`, entry.stickyCanary);
        if (entry.stickyCanary !== undefined && strategy !== "canary") {
            reader.fail(`${at}.stickyCanary`, show(entry.stickyCanary), "applies to a canary service only", `pulumi config rm --path '${at}.stickyCanary'`);
        }
        const autoscaling = entry.autoscaling === undefined ? undefined : readAutoscaling(reader, `${at}.autoscaling`, entry.autoscaling);
        const versionSettings = versionList?.flatMap((v) => (v === undefined ? [] : [v]));
        // A CPU utilization target is a percent of the CPU request: every version must request CPU.
        const withoutCpu = versionSettings?.find((v) => {
            const resources = v.resources ?? workload.resources;
            return resources !== undefined && resources.requests?.cpu === undefined;
        });
        if (autoscaling !== undefined && withoutCpu !== undefined) {
            reader.fail(`${at}.autoscaling`, show(entry.autoscaling), `scales on CPU utilization, a percent of the CPU request, and version ${withoutCpu.name} requests no CPU`, `pulumi config set --path '${at}.resources.requests.cpu' 100m`);
        }
        // A service whose name, path, release and versions read stays in the catalogue even when another of its fields
        // is refused: the config is refused all the same, and what refers to the service is not refused as well.
        const allVersions = versionList !== undefined && versionSettings !== undefined && versionSettings.length === versionList.length;
        if (!(SERVICE_NAME.test(name) && problem === undefined && !listRefused && allVersions && typeof path === "string" && strategy !== undefined)) {
            reader.refusedServices.add(name);
        } else {
            services.push({
                name,
                path,
                release: strategy,
                versions: versionSettings.map((v) => v.name),
                versionSettings,
                workload,
                ...(canaryWeight !== undefined && { canaryWeight }),
                ...(stickyCanary && { stickyCanary }),
                ...(autoscaling && { autoscaling }),
            });
        }
    }
    // The gateway matches each service's path prefix by whole segments, one VirtualService per service, and
    // Istio orders one host's VirtualServices by creation time: where one path lies under another, which
    // service answers would be left to chance.
    services.forEach((s, i) => {
        const other = services.slice(0, i).find((o) => underPrefix(segmentBase(s.path), o.path) || underPrefix(segmentBase(o.path), s.path));
        if (other === undefined) return;
        const clash =
            segmentBase(other.path) === segmentBase(s.path)
                ? `must be unique; ${other.name} already uses it`
                : `must not overlap services.${other.name}.path ${JSON.stringify(other.path)}: the ingress matches path prefixes by whole segments, so which of the two services answers a request under both would be left to chance`;
        reader.fail(`services.${s.name}.path`, show(s.path), clash, `pulumi config set --path 'services.${s.name}.path' /${s.name}`);
    });
    return services;
}

