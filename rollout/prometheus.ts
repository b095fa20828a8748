// Reads a release's evidence from Prometheus's HTTP API, with the releaseQueries the program exports.
import type { ReleaseCounters } from "../components/specs/observability-specs";
import type { ServiceEvidence, VersionCounts } from "./analysis";
import type { MetricQuery, MetricReading } from "./metrics";
import type { LatencyBucket } from "./statistics";

const QUERY_TIMEOUT_MS = 10_000;

export interface Sample {
    readonly labels: Readonly<Partial<Record<string, string>>>;
    readonly value: number;
}

/**
 * The URL of an API path under Prometheus's base URL, joined by URL rules: the base's path is a folder (with or
 * without its trailing slash), and its query parameters (a proxy's token) are kept beside the API's own.
 */
export function prometheusApiUrl(baseUrl: string, apiPath: string, params: Readonly<Record<string, string>>): URL {
    const url = new URL(baseUrl);
    url.pathname = `${url.pathname.replace(/\/*$/, "")}/${apiPath}`;
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return url;
}

/** One query as sent to Prometheus and what it answered (or why not): the decision log's record of it. */
export interface QueryTrace {
    readonly query: string;
    /** The instant it was evaluated at (ISO), when not "now". */
    readonly time?: string;
    readonly answer?: unknown;
    readonly error?: string;
}

interface QueryData {
    readonly resultType?: string;
    readonly result?: unknown;
}

/** One instant query's answer (at `atMs`, or now), as Prometheus's API gives it; `trace` gets the query and its answer. */
async function instantAnswer(baseUrl: string, query: string, signal?: AbortSignal, atMs?: number, trace?: QueryTrace[]): Promise<QueryData> {
    const timeout = AbortSignal.timeout(QUERY_TIMEOUT_MS);
    const params: Record<string, string> = atMs === undefined ? { query } : { query, time: (atMs / 1000).toFixed(3) };
    const sent = { query, ...(atMs !== undefined && { time: new Date(atMs).toISOString() }) };
    try {
        const response = await fetch(prometheusApiUrl(baseUrl, "api/v1/query", params), { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
        const body = (await response.json().catch(() => undefined)) as { status?: string; error?: string; data?: QueryData } | undefined;
        if (!response.ok || body?.status !== "success") throw new Error(`Prometheus answered ${response.status}${body?.error === undefined ? "" : `: ${body.error}`}`);
        trace?.push({ ...sent, answer: body.data?.result ?? null });
        return body.data ?? {};
    } catch (error) {
        trace?.push({ ...sent, error: error instanceof Error ? error.message : String(error) });
        throw error;
    }
}

/** A sample value as Prometheus writes it: a number, or +Inf, -Inf, NaN (which JavaScript's Number does not read). */
const sampleValue = (text: unknown): number => (text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : Number(text));

/** An instant vector's series; anything else (a scalar, a range) has none. */
function vectorSamples(data: QueryData): Sample[] {
    if (data.resultType !== undefined && data.resultType !== "vector") return [];
    const result = Array.isArray(data.result) ? (data.result as { metric?: Record<string, string>; value?: [number, string] }[]) : [];
    return result.map((series) => ({ labels: series.metric ?? {}, value: sampleValue(series.value?.[1]) }));
}

/** One instant query's series (at `atMs`, or now); NaN and infinite values (no count) left out. */
export async function instantQuery(baseUrl: string, query: string, signal?: AbortSignal, atMs?: number, trace?: QueryTrace[]): Promise<Sample[]> {
    return vectorSamples(await instantAnswer(baseUrl, query, signal, atMs, trace)).filter((s) => Number.isFinite(s.value));
}

/**
 * How much each series of a counter `query` grew over the window ending at `endMs`: its value then less its value
 * `windowMs` before (a series not there yet started from 0). Exact where `increase` extrapolates; a counter reset
 * in the window shows as a negative count, which the evidence reads as no data.
 */
export async function windowGrowth(baseUrl: string, query: string, windowMs: number, endMs: number, signal?: AbortSignal, trace?: QueryTrace[]): Promise<Sample[]> {
    const key = (labels: Sample["labels"]) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    const [start, end] = await Promise.all([instantQuery(baseUrl, query, signal, endMs - windowMs, trace), instantQuery(baseUrl, query, signal, endMs, trace)]);
    const before = new Map(start.map((s) => [key(s.labels), s.value]));
    return end.map((s) => ({ labels: s.labels, value: s.value - (before.get(key(s.labels)) ?? 0) }));
}

/** Per `destination_version`, one value. */
export async function byVersion(baseUrl: string, query: string, signal?: AbortSignal): Promise<Map<string, number>> {
    const values = new Map<string, number>();
    for (const s of await instantQuery(baseUrl, query, signal)) if (s.labels.destination_version !== undefined) values.set(s.labels.destination_version, s.value);
    return values;
}

/** Each version's histogram, bounds ascending (`+Inf` as Infinity). */
function histograms(samples: readonly Sample[]): Map<string, LatencyBucket[]> {
    const out = new Map<string, LatencyBucket[]>();
    for (const s of samples) {
        const version = s.labels.destination_version;
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        if (version === undefined || Number.isNaN(le)) continue;
        out.set(version, [...(out.get(version) ?? []), { le, count: s.value }]);
    }
    for (const buckets of out.values()) buckets.sort((a, b) => a.le - b.le);
    return out;
}

/**
 * A count a counter's increase can be: not negative, and not past 2^53, beyond which float64 no longer counts
 * whole requests (1e308 requests is a broken exporter, not traffic).
 */
const possibleCount = (value: number): boolean => value >= 0 && value <= Number.MAX_SAFE_INTEGER;

/**
 * The candidate's and the stable version's counts over the window of `windowMs` ending at `endMs`, as the
 * counters grew; a failure becomes `error`, never a pass. A version whose requests, errors or latency buckets hold
 * an impossible count (a negative one after a counter reset, say) has no data, never evidence.
 */
export async function releaseEvidence(baseUrl: string, counters: ReleaseCounters, versions: { readonly stable: string; readonly candidate: string }, windowMs: number, endMs: number, signal?: AbortSignal, trace?: QueryTrace[]): Promise<ServiceEvidence> {
    try {
        const perVersion = (samples: readonly Sample[]) => new Map(samples.flatMap((s) => (s.labels.destination_version === undefined ? [] : [[s.labels.destination_version, s.value] as const])));
        const [requestSamples, errorSamples, buckets, unattributed] = await Promise.all([
            windowGrowth(baseUrl, counters.requests, windowMs, endMs, signal, trace),
            windowGrowth(baseUrl, counters.errors, windowMs, endMs, signal, trace),
            windowGrowth(baseUrl, counters.latencyBuckets, windowMs, endMs, signal, trace),
            counters.unattributedErrors === undefined ? Promise.resolve([]) : windowGrowth(baseUrl, counters.unattributedErrors, windowMs, endMs, signal, trace),
        ]);
        const requests = perVersion(requestSamples);
        const errors = perVersion(errorSamples);
        // An impossible count here says as little as none; a possible one holds promotion back (see judge).
        const unattributedErrors = unattributed.map((s) => s.value).find(possibleCount) ?? 0;
        const latency = histograms(buckets);
        const countsOf = (version: string): VersionCounts | undefined => {
            const count = requests.get(version);
            const failed = errors.get(version) ?? 0;
            const buckets = latency.get(version) ?? [];
            if (count === undefined || ![count, failed, ...buckets.map((b) => b.count)].every(possibleCount)) return undefined;
            // A cumulative histogram never falls from one bound to the next (beyond what extrapolating each bucket's
            // increase on its own can do): one that does is a broken answer, not latency.
            if (buckets.some((b, i) => i > 0 && b.count < buckets[i - 1].count * 0.99 - 1)) return undefined;
            return { requests: count, errors: Math.min(failed, count), latency: buckets };
        };
        const candidate = countsOf(versions.candidate);
        const stable = countsOf(versions.stable);
        return { ...(candidate && { candidate }), ...(stable && { stable }), ...(unattributedErrors > 0 && { unattributedErrors }) };
    } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
        return { error: `Prometheus at ${baseUrl}: ${error instanceof Error ? error.message : String(error)}${cause}` };
    }
}

/**
 * The pre-flight, before any traffic moves: Prometheus answers the release's queries, and holds series of each
 * stable version (so the proxies report and Prometheus scrapes them: what every decision will read). The problems,
 * each with a fix; none when the rollout can be judged.
 */
export async function preflightProblems(baseUrl: string, targets: readonly { readonly service: string; readonly stableVersion: string }[], counters: Readonly<Record<string, ReleaseCounters>>, metrics: Readonly<Record<string, readonly MetricQuery[]>> = {}, signal?: AbortSignal): Promise<string[]> {
    const problems: string[] = [];
    // Each custom metric's query as Prometheus parses and answers it for the stable version, which serves now: one
    // value (the candidate's query differs only in {{version}}). A query with no value for the stable would have none
    // for a candidate as healthy either (a ratio of 5xx while there are none), and hold every interval.
    for (const { service } of targets) {
        for (const [i, { metric, candidate, stable }] of (metrics[service] ?? []).entries()) {
            const at = `rollout.analysis.metrics[${i}] (${metric.name})`;
            try {
                await instantAnswer(baseUrl, candidate, signal);
                const value = await metricValue(baseUrl, stable, signal);
                if (value === undefined) problems.push(`${at}: its query has no value for ${service}'s stable version now (${stable}), so a candidate as healthy would have none either and never be judged. Fix: make it answer where there is nothing to count (append \`or vector(0)\` to a sum), or query a metric the stable version reports`);
            } catch (error) {
                const message = error instanceof Error ? error.message : String(error);
                if (/^Prometheus answered 4\d\d/.test(message)) problems.push(`${at}: Prometheus refuses its query for ${service} (${candidate}): ${message.replace(/^Prometheus answered \d+: /, "")}. Fix: correct the query (try it in Prometheus's graph page), then start the rollout again`);
                else if (!/^Prometheus answered|fetch failed|aborted|timeout/i.test(message)) problems.push(`${at}: ${message}. Fix: change the query so it answers one instant value`);
            }
        }
    }
    for (const { service, stableVersion } of targets) {
        const query = counters[service].requests;
        let samples: Sample[];
        try {
            samples = await instantQuery(baseUrl, query, signal);
        } catch (error) {
            const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
            problems.push(`Prometheus at ${baseUrl} did not answer (${error instanceof Error ? error.message : String(error)}${cause}). Fix: port-forward it as the stack's dashboards output says (kubectl -n istio-system port-forward svc/prometheus 9090:9090), or set rollout.prometheusUrl`);
            break;
        }
        if (!samples.some((s) => s.labels.destination_version === stableVersion)) {
            problems.push(`Prometheus at ${baseUrl} holds no requests of ${service}'s stable version ${stableVersion} (${query}), so no interval could be judged. Fix: check that ${service} serves traffic, that its pods run Istio's sidecar and that Prometheus scrapes them, then start the rollout again`);
        }
    }
    return problems;
}

/**
 * A custom metric's value now: a scalar's, or the one series of an instant vector (an infinite value is a value, a
 * ratio over nothing; NaN is none). None is no data; several series, or a range vector, a query to change.
 */
async function metricValue(baseUrl: string, query: string, signal?: AbortSignal, trace?: QueryTrace[]): Promise<number | undefined> {
    const data = await instantAnswer(baseUrl, query, signal, undefined, trace);
    if (data.resultType === "scalar" && Array.isArray(data.result)) {
        const value = sampleValue((data.result as unknown[])[1]);
        return Number.isNaN(value) ? undefined : value;
    }
    if (data.resultType !== "vector") throw new Error(`the query returns a ${data.resultType ?? "result"} where one instant value is judged (a range such as [5m] needs a function over it, such as rate)`);
    const samples = vectorSamples(data).filter((s) => !Number.isNaN(s.value));
    if (samples.length > 1) throw new Error(`the query returns ${samples.length} series, where one value is judged; aggregate it (sum, max, ...)`);
    return samples[0]?.value;
}

/** Each custom metric's value for the candidate, and for the stable version where the bound is relative to it. */
export async function metricReadings(baseUrl: string, queries: readonly MetricQuery[], signal?: AbortSignal, trace?: QueryTrace[]): Promise<MetricReading[]> {
    return Promise.all(
        queries.map(async ({ metric, candidate, stable }): Promise<MetricReading> => {
            try {
                const [c, s] = await Promise.all([metricValue(baseUrl, candidate, signal, trace), metric.maxRatioToStable === undefined ? Promise.resolve(undefined) : metricValue(baseUrl, stable, signal, trace)]);
                return { name: metric.name, ...(c !== undefined && { candidate: c }), ...(s !== undefined && { stable: s }) };
            } catch (error) {
                return { name: metric.name, error: `Prometheus at ${baseUrl}: ${error instanceof Error ? error.message : String(error)}` };
            }
        }),
    );
}
