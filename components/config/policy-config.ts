// Routing policies from stack config: match rules, blue/green preview, mirroring, faults, resilience and
// local rate limits, each keyed by service name. Pure validation into typed settings.
import { DurationRange, durationMs, isRecord, Reader, setCommand, setPathCommand, show } from "./config-reader";
import { pathProblem, segmentBase, ServiceSettings, subsetsOf, underPrefix } from "./catalogue";
import { RE2JS } from "re2js";

export type StringMatch = { readonly exact: string } | { readonly prefix: string } | { readonly regex: string };

export interface CookieMatch {
    readonly name: string;
    readonly match: { readonly exact: string } | { readonly regex: string };
}

/** A request-matching rule: every condition given must hold (AND); the first matching rule wins. */
export interface RouteRuleSettings {
    readonly name: string;
    readonly headers: Readonly<Record<string, StringMatch>>;
    readonly cookie?: CookieMatch;
    readonly path?: StringMatch;
    /** The subset that matching requests go to. */
    readonly to: string;
    /** At the ingress, anonymous requests may satisfy this rule whatever edgeRuleAccess says. */
    readonly public: boolean;
}

/**
 * Who may satisfy the header, cookie and preview rules at the ingress: anyone (`public`), callers with a
 * validated JWT carrying edgeRuleClaim (`authenticated`), or nobody, the rules applying inside the mesh only
 * (`meshOnly`). At the ingress these rules are how anyone reaches a version that is not released yet.
 */
export type EdgeRuleAccess = "public" | "authenticated" | "meshOnly";
export const EDGE_RULE_ACCESS: readonly EdgeRuleAccess[] = ["public", "authenticated", "meshOnly"];

/** A claim of the validated JWT that a caller must carry for edge rules to apply (authenticated access). */
export interface ClaimMatch {
    readonly name: string;
    readonly value: string;
}

export interface FaultSettings {
    readonly delay?: { readonly percent: number; readonly fixedDelay: string };
    readonly abort?: { readonly percent: number; readonly httpStatus: number };
}

export interface ResilienceSettings {
    readonly timeout?: string;
    readonly retries?: { readonly attempts: number; readonly perTryTimeout?: string; readonly retryOn?: string };
    readonly connectionPool?: { readonly maxConnections?: number; readonly http1MaxPendingRequests?: number; readonly maxRequestsPerConnection?: number };
    readonly outlierDetection?: {
        readonly consecutive5xxErrors?: number;
        readonly interval?: string;
        readonly baseEjectionTime?: string;
        readonly maxEjectionPercent?: number;
    };
}

/** Envoy local rate limit token bucket, per pod. */
export interface RateLimitSettings {
    readonly maxTokens: number;
    readonly tokensPerFill: number;
    readonly fillInterval: string;
}

export interface ServicePolicies {
    readonly routes: readonly RouteRuleSettings[];
    /** Percent of plain traffic copied to the candidate version; responses discarded. */
    readonly mirrorPercent?: number;
    readonly fault?: FaultSettings;
    readonly resilience: ResilienceSettings;
    readonly rateLimit?: RateLimitSettings;
}

export interface PolicySettings {
    /** Header that reaches either color of blue/green services explicitly, e.g. `x-preview: green`. */
    readonly previewHeader?: string;
    readonly edgeRuleAccess: EdgeRuleAccess;
    /** With authenticated access; unset means the configured issuer's `iss` claim: any valid token. */
    readonly edgeRuleClaim?: ClaimMatch;
    readonly production: boolean;
    readonly allowFaultsInProduction: boolean;
    readonly byService: Readonly<Record<string, ServicePolicies>>;
}

/** Defaults of the scalar policy keys (declared in Pulumi.yaml too). */
export const POLICY_DEFAULTS = { previewHeader: "", edgeRuleAccess: "public", production: false, allowFaultsInProduction: false } as const;

export const POLICY_KEYS = ["routes", "mirror", "faults", "resilience", "rateLimits", "previewHeader", "edgeRuleAccess", "edgeRuleClaim", "production", "allowFaultsInProduction"] as const;

/** Claim names as Istio's `@request.auth.claims.` matches them; dots reach nested claims. */
const CLAIM_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Header names as Istio matches them: lowercase HTTP tokens. */
/** A lowercase HTTP token of at most 256 characters (the Gateway API's limit on a header name). */
export const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,256}$/;
/** The Gateway API's limit on a header match's value. */
const MAX_HEADER_VALUE = 4096;
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const RETRY_ON = new Set([
    "5xx", "gateway-error", "reset", "connect-failure", "envoy-ratelimited", "retriable-4xx", "refused-stream",
    "retriable-status-codes", "retriable-headers", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
]);
/**
 * Each duration field's range. Istio refuses durations under 1ms; Envoy's token bucket refills at most every
 * 50ms; a fault delay beyond a minute is an outage rather than a test; an hour bounds every timeout.
 */
const DURATIONS = {
    faultDelay: { min: "1ms", max: "60s", example: "2s" },
    timeout: { min: "1ms", max: "1h", example: "5s" },
    ejection: { min: "1ms", max: "1h", example: "30s" },
    fillInterval: { min: "50ms", max: "1h", example: "1s" },
} as const satisfies Record<string, DurationRange>;

/** The route rule names this program writes itself. */
export const RESERVED_RULE_NAMES = ["release", "preview-blue", "preview-green", "sticky-canary"];

/**
 * Why RE2 refuses `pattern`, in RE2's own words, or undefined when it compiles. Istio validates regexes with
 * RE2's syntax and Envoy runs them with RE2; re2js is a port of that parser.
 */
export function re2Refusal(pattern: string): string | undefined {
    try {
        RE2JS.compile(pattern);
        return undefined;
    } catch (error) {
        return error instanceof Error ? error.message : String(error);
    }
}

/** Does the pattern have a `|` outside any group or class, so that one whole alternative can match anything? */
function hasTopLevelAlternative(pattern: string): boolean {
    let depth = 0;
    let inClass = false;
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === "\\") i++;
        else if (inClass) inClass = c !== "]";
        else if (c === "[") inClass = true;
        else if (c === "(") depth++;
        else if (c === ")") depth--;
        else if (c === "|" && depth === 0) return true;
    }
    return false;
}

/**
 * The text that every string a regex matches must start with (Istio matches the whole path): its leading
 * literal characters, up to the first operator, or up to a character a quantifier may drop or repeat.
 */
function regexLiteralPrefix(pattern: string): string {
    if (hasTopLevelAlternative(pattern)) return "";
    let prefix = "";
    for (let i = pattern.startsWith("^") ? 1 : 0; i < pattern.length; ) {
        const escaped = pattern[i] === "\\" && /^[^A-Za-z0-9]$/.test(pattern[i + 1] ?? "");
        const literal = escaped ? pattern[i + 1] : ".[](){}*+?|^$\\".includes(pattern[i]) ? undefined : pattern[i];
        if (literal === undefined) break;
        i += escaped ? 2 : 1;
        const next = pattern[i];
        if (next === "*" || next === "?" || next === "{") break;
        prefix += literal;
        if (next === "+") break;
    }
    return prefix;
}

/** Does every path the match accepts lie under the service's ingress path prefix, by whole segments? */
function pathWithin(match: StringMatch, servicePath: string): boolean {
    if ("exact" in match) return underPrefix(match.exact, servicePath);
    if ("prefix" in match) return underPrefix(segmentBase(match.prefix), servicePath);
    // A regex may match more than its literal start: only a start that already ends a segment of the prefix keeps it inside.
    return regexLiteralPrefix(match.regex).startsWith(`${segmentBase(servicePath)}/`);
}

function readStringMatch(r: Reader, at: string, value: unknown, allowPrefix: boolean): StringMatch | undefined {
    const kinds = allowPrefix ? ["exact", "prefix", "regex"] : ["exact", "regex"];
    const shape = `exactly one of { ${kinds.map((k) => `${k}: <string>`).join(" } | { ")} }`;
    if (!r.fields(at, value, kinds, shape, setPathCommand(`${at}.exact`, "beta"))) return undefined;
    const entries = Object.entries(value);
    if (entries.length !== 1 || typeof entries[0][1] !== "string" || entries[0][1] === "") {
        r.fail(at, show(value), `must be ${shape}, with a non-empty string`, setPathCommand(`${at}.exact`, "beta"));
        return undefined;
    }
    const [kind, text] = entries[0] as [string, string];
    if (text.length > MAX_HEADER_VALUE) {
        r.fail(`${at}.${kind}`, show(text), `is ${text.length} characters, and the Gateway API takes a match of at most ${MAX_HEADER_VALUE}`, setPathCommand(`${at}.${kind}`, "beta"));
        return undefined;
    }
    const refusal = kind === "regex" ? re2Refusal(text) : undefined;
    if (refusal !== undefined) {
        r.fail(`${at}.regex`, show(text), `must be a regular expression RE2 accepts, as Istio and Envoy use it; RE2 says: ${refusal}`, setPathCommand(`${at}.regex`, "'^.+$'"));
        return undefined;
    }
    return kind === "exact" ? { exact: text } : kind === "prefix" ? { prefix: text } : { regex: text };
}

function readRule(r: Reader, at: string, value: unknown, service: ServiceSettings, taken: Set<string>): RouteRuleSettings | undefined {
    const fix = setPathCommand(`${at}.to`, service.release === "blueGreen" ? "green" : service.versions[service.versions.length - 1]);
    if (!r.fields(at, value, ["name", "headers", "cookie", "path", "to", "public"], "{ name, headers?, cookie?, path?, to, public? }", fix)) return undefined;
    const before = r.problems.length;
    const name = r.stringAt(`${at}.name`, value.name, RULE_NAME, "must be a lowercase name of letters, digits and '-'", "beta-users");
    if (name !== undefined && (taken.has(name) || RESERVED_RULE_NAMES.includes(name))) {
        r.fail(`${at}.name`, show(name), `must be unique within the service and not one of ${RESERVED_RULE_NAMES.join(", ")}`, setPathCommand(`${at}.name`, `${name}-2`));
    }
    if (name !== undefined) taken.add(name);

    const headers: [string, StringMatch][] = [];
    if (value.headers !== undefined) {
        if (!isRecord(value.headers)) {
            r.fail(`${at}.headers`, show(value.headers), "must be an object of header name -> { exact | prefix | regex }", setPathCommand(`${at}.headers.x-user-type.exact`, "beta"));
        } else {
            for (const [header, match] of Object.entries(value.headers)) {
                if (!HEADER_NAME.test(header)) {
                    r.fail(`${at}.headers.${header}`, show(header), "header names must be lowercase HTTP tokens of at most 256 characters, as Istio matches them and the Gateway API takes them (x-user-type, not X-User-Type)", `pulumi config rm --path '${at}.headers.${header}', then set it in lowercase`);
                }
                if (header === "cookie") {
                    r.fail(`${at}.headers.cookie`, show(match), "match cookies with the rule's cookie field", setPathCommand(`${at}.cookie.name`, "experiment"));
                }
                const parsed = readStringMatch(r, `${at}.headers.${header}`, match, true);
                if (parsed !== undefined) headers.push([header, parsed]);
            }
        }
    }
    let cookie: CookieMatch | undefined;
    if (value.cookie !== undefined && r.fields(`${at}.cookie`, value.cookie, ["name", "exact", "regex"], "{ name, exact | regex }", setPathCommand(`${at}.cookie.name`, "experiment"))) {
        const { name: cookieName, ...rest } = value.cookie;
        const validName = r.stringAt(`${at}.cookie.name`, cookieName, /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "must be a cookie name", "experiment");
        const match = readStringMatch(r, `${at}.cookie`, rest, false);
        if (validName !== undefined && match !== undefined && !("prefix" in match)) cookie = { name: validName, match };
    }
    let path = value.path === undefined ? undefined : readStringMatch(r, `${at}.path`, value.path, true);
    const literal = path === undefined || "regex" in path ? undefined : "exact" in path ? ["exact", path.exact] : ["prefix", path.prefix];
    const pathRefusal = literal === undefined ? undefined : pathProblem(literal[1]);
    if (literal !== undefined && pathRefusal !== undefined) {
        r.fail(`${at}.path.${literal[0]}`, show(literal[1]), `must be a path a request can match: it ${pathRefusal}`, setPathCommand(`${at}.path.prefix`, `${service.path}/beta`));
        path = undefined;
    }
    // The rule's path replaces the service's ingress prefix in its match: a path outside it would capture
    // requests on the shared host that belong to another service.
    if (path !== undefined && !pathWithin(path, service.path)) {
        r.fail(
            `${at}.path`,
            show(value.path),
            `must stay under ${service.name}'s path ${service.path}, by whole segments: an exact or prefix path is ${segmentBase(service.path)} or starts with ${segmentBase(service.path)}/, a regex begins with ${segmentBase(service.path)}/ literally (${segmentBase(service.path)}/beta/.*, not (?i)${service.path}, ${segmentBase(service.path)}.* or a|b)`,
            setPathCommand(`${at}.path.prefix`, `${service.path}/beta`),
        );
    }
    if (value.headers === undefined && value.cookie === undefined && value.path === undefined) {
        r.fail(at, show(value), "a rule needs at least one condition (headers, cookie or path); plain requests follow the release split", setPathCommand(`${at}.headers.x-user-type.exact`, "beta"));
    }
    const subsets = subsetsOf(service).map((s) => s.name);
    const to = value.to;
    if (typeof to !== "string" || !subsets.includes(to)) {
        r.fail(`${at}.to`, show(to), `must name one of ${service.name}'s subsets: ${subsets.join(", ")}`, fix);
    }
    if (value.public !== undefined && typeof value.public !== "boolean") {
        r.fail(`${at}.public`, show(value.public), "must be true or false (true lets anonymous requests at the ingress satisfy this rule whatever edgeRuleAccess says)", setPathCommand(`${at}.public`, true));
    }
    if (r.problems.length !== before || name === undefined || typeof to !== "string") return undefined;
    // fromEntries defines each header as a property of its own, whatever its name (`__proto__` included).
    return { name, headers: Object.fromEntries(headers), ...(cookie === undefined ? {} : { cookie }), ...(path === undefined ? {} : { path }), to, public: value.public === true };
}

function readFault(r: Reader, at: string, value: unknown): FaultSettings | undefined {
    const fix = setPathCommand(`${at}.delay.percent`, 10);
    if (!r.fields(at, value, ["delay", "abort"], "{ delay?: { percent, fixedDelay }, abort?: { percent, httpStatus } }", fix)) return undefined;
    let delay: FaultSettings["delay"];
    let abort: FaultSettings["abort"];
    if (value.delay !== undefined && r.fields(`${at}.delay`, value.delay, ["percent", "fixedDelay"], "{ percent, fixedDelay }", fix)) {
        const percent = r.percentAt(`${at}.delay.percent`, value.delay.percent, "share of requests delayed");
        const fixedDelay = r.durationAt(`${at}.delay.fixedDelay`, value.delay.fixedDelay, "how long each delayed request waits", DURATIONS.faultDelay);
        if (percent !== undefined && fixedDelay !== undefined) delay = { percent, fixedDelay };
    }
    if (value.abort !== undefined && r.fields(`${at}.abort`, value.abort, ["percent", "httpStatus"], "{ percent, httpStatus }", fix)) {
        const percent = r.percentAt(`${at}.abort.percent`, value.abort.percent, "share of requests aborted");
        const httpStatus = r.integerAt(`${at}.abort.httpStatus`, value.abort.httpStatus, 200, 599, "the HTTP status returned", 503);
        if (percent !== undefined && httpStatus !== undefined) abort = { percent, httpStatus };
    }
    if (value.delay === undefined && value.abort === undefined) {
        r.fail(at, show(value), "a fault needs a delay, an abort or both", fix);
    }
    return delay === undefined && abort === undefined ? undefined : { ...(delay && { delay }), ...(abort && { abort }) };
}

function readResilience(r: Reader, at: string, value: unknown): ResilienceSettings {
    const fix = setPathCommand(`${at}.timeout`, "5s");
    const sections = ["timeout", "retries", "connectionPool", "outlierDetection"];
    if (!r.fields(at, value, sections, "{ timeout?, retries?, connectionPool?, outlierDetection? }", fix)) return {};
    const result: { -readonly [K in keyof ResilienceSettings]: ResilienceSettings[K] } = {};
    if (value.timeout !== undefined) result.timeout = r.durationAt(`${at}.timeout`, value.timeout, "overall request timeout", DURATIONS.timeout);
    const { retries, connectionPool: pool, outlierDetection: outlier } = value;
    if (retries !== undefined && r.fields(`${at}.retries`, retries, ["attempts", "perTryTimeout", "retryOn"], "{ attempts, perTryTimeout?, retryOn? }", setPathCommand(`${at}.retries.attempts`, 3))) {
        const attempts = r.integerAt(`${at}.retries.attempts`, retries.attempts, 0, 10, "retries after the first try", 3);
        const perTryTimeout = retries.perTryTimeout === undefined ? undefined : r.durationAt(`${at}.retries.perTryTimeout`, retries.perTryTimeout, "timeout of each try", DURATIONS.timeout);
        let retryOn: string | undefined;
        if (retries.retryOn !== undefined) {
            const conditions = typeof retries.retryOn === "string" ? retries.retryOn.split(",") : [];
            if (conditions.length === 0 || conditions.some((c) => !RETRY_ON.has(c) && !/^[45]\d\d$/.test(c))) {
                r.fail(`${at}.retries.retryOn`, show(retries.retryOn), `must be a comma-separated list of ${[...RETRY_ON].join(", ")} or HTTP status codes`, setPathCommand(`${at}.retries.retryOn`, "5xx,reset,connect-failure"));
            } else {
                retryOn = conditions.join(",");
            }
        }
        if (attempts !== undefined) result.retries = { attempts, ...(perTryTimeout && { perTryTimeout }), ...(retryOn && { retryOn }) };
    }
    if (pool !== undefined && r.fields(`${at}.connectionPool`, pool, ["maxConnections", "http1MaxPendingRequests", "maxRequestsPerConnection"], "{ maxConnections?, http1MaxPendingRequests?, maxRequestsPerConnection? }", setPathCommand(`${at}.connectionPool.maxConnections`, 100))) {
        const limit = (field: string, meaning: string) => (pool[field] === undefined ? undefined : r.integerAt(`${at}.connectionPool.${field}`, pool[field], 1, 1_000_000, meaning, 100));
        result.connectionPool = {
            maxConnections: limit("maxConnections", "TCP connections per destination host"),
            http1MaxPendingRequests: limit("http1MaxPendingRequests", "requests queued while waiting for a connection"),
            maxRequestsPerConnection: limit("maxRequestsPerConnection", "requests per connection before it is recycled"),
        };
    }
    if (outlier !== undefined && r.fields(`${at}.outlierDetection`, outlier, ["consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent"], "{ consecutive5xxErrors?, interval?, baseEjectionTime?, maxEjectionPercent? }", setPathCommand(`${at}.outlierDetection.consecutive5xxErrors`, 5))) {
        result.outlierDetection = {
            consecutive5xxErrors: outlier.consecutive5xxErrors === undefined ? undefined : r.integerAt(`${at}.outlierDetection.consecutive5xxErrors`, outlier.consecutive5xxErrors, 1, 1000, "5xx responses in a row that eject a pod", 5),
            interval: outlier.interval === undefined ? undefined : r.durationAt(`${at}.outlierDetection.interval`, outlier.interval, "time between ejection sweeps", DURATIONS.ejection),
            baseEjectionTime: outlier.baseEjectionTime === undefined ? undefined : r.durationAt(`${at}.outlierDetection.baseEjectionTime`, outlier.baseEjectionTime, "minimum ejection time", DURATIONS.ejection),
            maxEjectionPercent: outlier.maxEjectionPercent === undefined ? undefined : r.integerAt(`${at}.outlierDetection.maxEjectionPercent`, outlier.maxEjectionPercent, 0, 100, "percent of pods that may be ejected", 50),
        };
    }
    return result;
}

/**
 * Envoy makes the first try and then up to `attempts` retries, each cut at perTryTimeout, all within the
 * route's timeout: retries that cannot fit in the timeout are never made, so such a budget is refused.
 */
function checkRetryBudget(r: Reader, at: string, resilience: ResilienceSettings): void {
    const { timeout, retries } = resilience;
    if (timeout === undefined || retries?.perTryTimeout === undefined) return;
    const tries = retries.attempts + 1;
    const worst = tries * durationMs(retries.perTryTimeout);
    if (worst <= durationMs(timeout)) return;
    const fitting = Math.floor(durationMs(timeout) / tries);
    r.fail(
        `${at}.retries`,
        show({ attempts: retries.attempts, perTryTimeout: retries.perTryTimeout, timeout }),
        `the first try and ${retries.attempts} retries of ${retries.perTryTimeout} each take up to ${worst / 1000}s, more than the timeout ${timeout}: (attempts + 1) x perTryTimeout must fit in timeout`,
        `${setPathCommand(`${at}.retries.perTryTimeout`, `${fitting}ms`)} (or fewer attempts, or a longer timeout)`,
    );
}

function readRateLimit(r: Reader, at: string, value: unknown): RateLimitSettings | undefined {
    if (!r.fields(at, value, ["maxTokens", "tokensPerFill", "fillInterval"], "{ maxTokens, tokensPerFill, fillInterval }", setPathCommand(`${at}.maxTokens`, 100))) return undefined;
    const maxTokens = r.integerAt(`${at}.maxTokens`, value.maxTokens, 1, 1_000_000, "bucket size: the largest burst a pod accepts", 100);
    const tokensPerFill = r.integerAt(`${at}.tokensPerFill`, value.tokensPerFill, 1, 1_000_000, "tokens added each interval", 100);
    const fillInterval = r.durationAt(`${at}.fillInterval`, value.fillInterval, "how often tokens are added; Envoy needs at least 50ms", DURATIONS.fillInterval);
    if (maxTokens === undefined || tokensPerFill === undefined || fillInterval === undefined) return undefined;
    return { maxTokens, tokensPerFill, fillInterval };
}

/**
 * Reads a key holding `service name -> value`, refusing names that are not in the catalogue. `"*"`, where
 * allowed, applies to every service.
 */
function perService(r: Reader, key: string, services: readonly ServiceSettings[], shape: string, example: string, allowStar: boolean): Map<string, { at: string; value: unknown }> {
    const result = new Map<string, { at: string; value: unknown }>();
    const object = r.object(key, shape, example);
    if (object === undefined) return result;
    const names = services.map((s) => s.name);
    for (const [name, value] of Object.entries(object)) {
        if (r.refusedServices.has(name)) continue;
        if (!names.includes(name) && !(allowStar && name === "*")) {
            r.fail(`${key}.${name}`, show(value), `names no service in the catalogue; services: ${names.join(", ")}${allowStar ? ', or "*" for all' : ""}`, `pulumi config rm --path '${key}.${name}'`);
            continue;
        }
        result.set(name, { at: `${key}.${name}`, value });
    }
    return result;
}

function readEdgeRuleClaim(r: Reader): ClaimMatch | undefined {
    const fix = setPathCommand("edgeRuleClaim.name", "groups");
    const value = r.object("edgeRuleClaim", "{ name, value }", fix);
    if (value === undefined || !r.fields("edgeRuleClaim", value, ["name", "value"], "{ name, value }", fix)) return undefined;
    const name = r.stringAt("edgeRuleClaim.name", value.name, CLAIM_NAME, "must be a JWT claim name such as groups (dots for nested claims)", "groups");
    const claimValue = r.stringAt("edgeRuleClaim.value", value.value, /^\S+$/, "must be the value the claim must hold, such as release-testers", "release-testers");
    return name === undefined || claimValue === undefined ? undefined : { name, value: claimValue };
}

export function readPolicies(r: Reader, services: readonly ServiceSettings[]): PolicySettings {
    const production = r.boolean("production", POLICY_DEFAULTS.production, "marks a production stack: fault injection is refused there");
    const allowFaultsInProduction = r.boolean("allowFaultsInProduction", POLICY_DEFAULTS.allowFaultsInProduction, "lets a production stack inject faults, for a deliberate game day");
    // An empty header name (the default) turns the preview rules off.
    const previewHeaderRaw = r.raw("previewHeader") ?? POLICY_DEFAULTS.previewHeader;
    const previewHeader = previewHeaderRaw === "" ? undefined : r.pattern("previewHeader", POLICY_DEFAULTS.previewHeader, HEADER_NAME, "must be a lowercase header name of at most 256 characters, such as x-preview", "x-preview");
    const edgeRuleAccess = r.oneOf("edgeRuleAccess", POLICY_DEFAULTS.edgeRuleAccess, EDGE_RULE_ACCESS, "who may satisfy header, cookie and preview rules at the ingress");
    const edgeRuleClaim = readEdgeRuleClaim(r);
    if (edgeRuleClaim !== undefined && edgeRuleAccess !== "authenticated") {
        r.fail("edgeRuleClaim", show(edgeRuleClaim), `applies only with edgeRuleAccess authenticated (it is ${edgeRuleAccess})`, setCommand("edgeRuleAccess", "authenticated"));
    }

    const routes = perService(r, "routes", services, "service -> [ { name, headers?, cookie?, path?, to } ]", setPathCommand("routes.user-service[0].name", "beta-users"), false);
    const mirror = perService(r, "mirror", services, "service -> percent of its traffic copied to the candidate", setPathCommand("mirror.user-service", 10), false);
    const faults = perService(r, "faults", services, "service -> { delay?, abort? }", setPathCommand("faults.order-service.delay.percent", 10), false);
    const resilience = perService(r, "resilience", services, 'service (or "*") -> { timeout?, retries?, connectionPool?, outlierDetection? }', setPathCommand("resilience.*.timeout", "5s"), true);
    const rateLimits = perService(r, "rateLimits", services, "service -> { maxTokens, tokensPerFill, fillInterval }", setPathCommand("rateLimits.user-service.maxTokens", 100), false);

    const everyService = resilience.get("*");
    const defaults = everyService === undefined ? {} : readResilience(r, everyService.at, everyService.value);
    if (everyService !== undefined) checkRetryBudget(r, everyService.at, defaults);
    const byService: Record<string, ServicePolicies> = {};
    for (const service of services) {
        const rules: RouteRuleSettings[] = [];
        const routeList = routes.get(service.name);
        if (routeList !== undefined) {
            if (!Array.isArray(routeList.value)) {
                r.fail(routeList.at, show(routeList.value), "must be a list of rules, evaluated in order", setPathCommand(`${routeList.at}[0].name`, "beta-users"));
            } else {
                const taken = new Set<string>();
                routeList.value.forEach((rule: unknown, i) => {
                    const parsed = readRule(r, `${routeList.at}[${i}]`, rule, service, taken);
                    if (parsed !== undefined) rules.push(parsed);
                });
            }
        }
        let mirrorPercent: number | undefined;
        const mirrorEntry = mirror.get(service.name);
        if (mirrorEntry !== undefined) {
            mirrorPercent = r.percentAt(mirrorEntry.at, mirrorEntry.value, "share of plain traffic copied to the candidate");
            if (service.release === "single") {
                r.fail(mirrorEntry.at, show(mirrorEntry.value), `${service.name} runs one version, so it has no candidate to mirror to`, `pulumi config rm --path '${mirrorEntry.at}'`);
            }
        }
        let fault: FaultSettings | undefined;
        const faultEntry = faults.get(service.name);
        if (faultEntry !== undefined) {
            fault = readFault(r, faultEntry.at, faultEntry.value);
            if (production && !allowFaultsInProduction) {
                r.fail(faultEntry.at, show(faultEntry.value), "fault injection is refused on a production stack (production is true)", `pulumi config rm --path '${faultEntry.at}' (or, for a deliberate game day, ${setCommand("allowFaultsInProduction", true)})`);
            }
        }
        const own = resilience.get(service.name);
        // A service's own settings replace the "*" defaults section by section.
        const merged = { ...defaults, ...(own === undefined ? {} : readResilience(r, own.at, own.value)) };
        if (own !== undefined) checkRetryBudget(r, own.at, merged);
        const rateLimitEntry = rateLimits.get(service.name);
        byService[service.name] = {
            routes: rules,
            ...(mirrorPercent !== undefined && { mirrorPercent }),
            ...(fault && { fault }),
            resilience: merged,
            ...(rateLimitEntry && { rateLimit: readRateLimit(r, rateLimitEntry.at, rateLimitEntry.value) }),
        };
    }
    if (production && edgeRuleAccess === "public") {
        // Each open edge rule hands an unreleased version to anyone on the internet who sends the header.
        const open = [
            ...(previewHeader !== undefined && previewHeader !== "" ? [`previewHeader ${previewHeader}`] : []),
            ...services.flatMap((s) => byService[s.name].routes.filter((rule) => !rule.public).map((rule) => `routes.${s.name} rule ${rule.name}`)),
        ];
        if (open.length > 0) {
            r.fail(
                "edgeRuleAccess",
                show(edgeRuleAccess),
                `a production stack lets no anonymous request at the ingress satisfy an edge rule (${open.join(", ")}): use authenticated (a JWT claim) or meshOnly, or mark a rule that is meant for everyone with public: true`,
                setCommand("edgeRuleAccess", "authenticated"),
            );
        }
    }
    return {
        ...(previewHeader !== undefined && previewHeader !== "" && { previewHeader }),
        edgeRuleAccess,
        ...(edgeRuleClaim && { edgeRuleClaim }),
        production,
        allowFaultsInProduction,
        byService,
    };
}
