// Reads a release's evidence from Prometheus's HTTP API, with the releaseQueries the program exports.
import type { ReleaseQueries } from "../components/specs/observability-specs";
import type { ServiceEvidence, VersionMetrics } from "./analysis";

const QUERY_TIMEOUT_MS = 10_000;

/** One instant query: each series' `destination_version` and value; NaN values (no data) left out. */
export async function instantQuery(baseUrl: string, query: string, signal?: AbortSignal): Promise<Map<string, number>> {
    const timeout = AbortSignal.timeout(QUERY_TIMEOUT_MS);
    const response = await fetch(`${baseUrl}/api/v1/query?${new URLSearchParams({ query }).toString()}`, { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
    const body = (await response.json().catch(() => undefined)) as { status?: string; error?: string; data?: { result?: { metric?: Record<string, string>; value?: [number, string] }[] } } | undefined;
    if (!response.ok || body?.status !== "success") throw new Error(`Prometheus answered ${response.status}${body?.error === undefined ? "" : `: ${body.error}`}`);
    const values = new Map<string, number>();
    for (const series of body.data?.result ?? []) {
        const value = Number(series.value?.[1]);
        const version = series.metric?.destination_version;
        if (version !== undefined && Number.isFinite(value)) values.set(version, value);
    }
    return values;
}

/** The candidate's and the stable version's metrics over the queries' window; a failure becomes `error`, never a pass. */
export async function releaseEvidence(baseUrl: string, queries: ReleaseQueries, versions: { readonly stable: string; readonly candidate: string }, signal?: AbortSignal): Promise<ServiceEvidence> {
    try {
        const [requests, successRate, p95] = await Promise.all([queries.requests, queries.successRate, queries.p95LatencyMs].map((q) => instantQuery(baseUrl, q, signal)));
        const metricsOf = (version: string): VersionMetrics | undefined => {
            const count = requests.get(version);
            if (count === undefined) return undefined;
            const rate = successRate.get(version);
            const latency = p95.get(version);
            return { requests: count, ...(rate !== undefined && { successRate: rate * 100 }), ...(latency !== undefined && { p95LatencyMs: latency }) };
        };
        const candidate = metricsOf(versions.candidate);
        const stable = metricsOf(versions.stable);
        return { ...(candidate && { candidate }), ...(stable && { stable }) };
    } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
        return { error: `Prometheus at ${baseUrl}: ${error instanceof Error ? error.message : String(error)}${cause}` };
    }
}
