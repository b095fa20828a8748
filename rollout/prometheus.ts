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

/** One instant query's series (at `atMs`, or now); NaN values (no data) left out. */
export async function instantQuery(baseUrl: string, query: string, signal?: AbortSignal, atMs?: number): Promise<Sample[]> {
    const timeout = AbortSignal.timeout(QUERY_TIMEOUT_MS);
    const params: Record<string, string> = atMs === undefined ? { query } : { query, time: (atMs / 1000).toFixed(3) };
    const response = await fetch(prometheusApiUrl(baseUrl, "api/v1/query", params), { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
    const body = (await response.json().catch(() => undefined)) as { status?: string; error?: string; data?: { result?: { metric?: Record<string, string>; value?: [number, string] }[] } } | undefined;
    if (!response.ok || body?.status !== "success") throw new Error(`Prometheus answered ${response.status}${body?.error === undefined ? "" : `: ${body.error}`}`);
    return (body.data?.result ?? []).map((series) => ({ labels: series.metric ?? {}, value: Number(series.value?.[1]) })).filter((s) => Number.isFinite(s.value));
}

/**
 * How much each series of a counter `query` grew over the window ending at `endMs`: its value then less its value
 * `windowMs` before (a series not there yet started from 0). Exact where `increase` extrapolates; a counter reset
 * in the window shows as a negative count, which the evidence reads as no data.
 */
export async function windowGrowth(baseUrl: string, query: string, windowMs: number, endMs: number, signal?: AbortSignal): Promise<Sample[]> {
    const key = (labels: Sample["labels"]) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    const [start, end] = await Promise.all([instantQuery(baseUrl, query, signal, endMs - windowMs), instantQuery(baseUrl, query, signal, endMs)]);
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
export async function releaseEvidence(baseUrl: string, counters: ReleaseCounters, versions: { readonly stable: string; readonly candidate: string }, windowMs: number, endMs: number, signal?: AbortSignal): Promise<ServiceEvidence> {
    try {
        const perVersion = (samples: readonly Sample[]) => new Map(samples.flatMap((s) => (s.labels.destination_version === undefined ? [] : [[s.labels.destination_version, s.value] as const])));
        const [requestSamples, errorSamples, buckets, unattributed] = await Promise.all([
            windowGrowth(baseUrl, counters.requests, windowMs, endMs, signal),
            windowGrowth(baseUrl, counters.errors, windowMs, endMs, signal),
            windowGrowth(baseUrl, counters.latencyBuckets, windowMs, endMs, signal),
            counters.unattributedErrors === undefined ? Promise.resolve([]) : windowGrowth(baseUrl, counters.unattributedErrors, windowMs, endMs, signal),
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
    // Each custom metric's query as Prometheus parses it (an answer with no data is fine: the candidate serves nothing yet).
    for (const { service } of targets) {
        for (const [i, { metric, candidate }] of (metrics[service] ?? []).entries()) {
            try {
                await instantQuery(baseUrl, candidate, signal);
            } catch (error) {
                const message = error instanceof Error ? error.message : String(error);
                if (/^Prometheus answered 4\d\d/.test(message)) problems.push(`rollout.analysis.metrics[${i}] (${metric.name}): Prometheus refuses its query for ${service} (${candidate}): ${message.replace(/^Prometheus answered \d+: /, "")}. Fix: correct the query (try it in Prometheus's graph page), then start the rollout again`);
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

/** A custom metric's value: its query's one series now; none is no data, several a query to aggregate. */
async function metricValue(baseUrl: string, query: string, signal?: AbortSignal): Promise<number | undefined> {
    const samples = await instantQuery(baseUrl, query, signal);
    if (samples.length > 1) throw new Error(`the query returns ${samples.length} series, where one value is judged; aggregate it (sum, max, ...)`);
    return samples[0]?.value;
}

/** Each custom metric's value for the candidate, and for the stable version where the bound is relative to it. */
export async function metricReadings(baseUrl: string, queries: readonly MetricQuery[], signal?: AbortSignal): Promise<MetricReading[]> {
    return Promise.all(
        queries.map(async ({ metric, candidate, stable }): Promise<MetricReading> => {
            try {
                const [c, s] = await Promise.all([metricValue(baseUrl, candidate, signal), metric.maxRatioToStable === undefined ? Promise.resolve(undefined) : metricValue(baseUrl, stable, signal)]);
                return { name: metric.name, ...(c !== undefined && { candidate: c }), ...(s !== undefined && { stable: s }) };
            } catch (error) {
                return { name: metric.name, error: `Prometheus at ${baseUrl}: ${error instanceof Error ? error.message : String(error)}` };
            }
        }),
    );
}
