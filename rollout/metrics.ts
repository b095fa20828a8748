// Custom metrics (`rollout.analysis.metrics`): the stack's own PromQL bounds on the candidate, rendered per service
// and version when the rollout is prepared, asked each interval, and judged beside the built-in hard limits. Pure.
import type { CustomMetric } from "../components/config/rollout-config";

/** One metric's query for a service's candidate and for its stable version. */
export interface MetricQuery {
    readonly metric: CustomMetric;
    readonly candidate: string;
    readonly stable: string;
}

/** What Prometheus answered for one metric this interval: each version's value, or why there is none. */
export interface MetricReading {
    readonly name: string;
    readonly candidate?: number;
    readonly stable?: number;
    readonly error?: string;
}

/** The query with each {{placeholder}} filled in. */
export function renderMetric(query: string, values: Readonly<Record<"version" | "service" | "namespace" | "interval", string>>): string {
    return query.replace(/\{\{\s*(version|service|namespace|interval)\s*\}\}/g, (_, name: keyof typeof values) => values[name]);
}

export function metricQueries(metrics: readonly CustomMetric[], service: string, namespace: string, interval: string, versions: { readonly stable: string; readonly candidate: string }): MetricQuery[] {
    return metrics.map((metric) => ({
        metric,
        candidate: renderMetric(metric.query, { version: versions.candidate, service, namespace, interval }),
        stable: renderMetric(metric.query, { version: versions.stable, service, namespace, interval }),
    }));
}

/** The bound, for people: "<= 100", ">= 5", "<= 1.5x the stable's". */
export function boundText(metric: CustomMetric): string {
    if (metric.max !== undefined) return `<= ${metric.max}`;
    if (metric.min !== undefined) return `>= ${metric.min}`;
    return `<= ${metric.maxRatioToStable ?? NaN}x the stable's`;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toPrecision(4).replace(/\.?0+$/, ""));

/**
 * One metric's verdict on one interval: within its bound, beyond it (a failed check, as a built-in limit's), or no
 * data (no value for the candidate, or for the stable when the bound is relative to it), which never passes.
 */
export function metricVerdict(metric: CustomMetric, reading: MetricReading | undefined): { readonly status: "pass" | "fail" | "noData"; readonly reason: string } {
    const label = `metric ${metric.name}`;
    if (reading?.error !== undefined) return { status: "noData", reason: `${label}: no data: ${reading.error}` };
    const candidate = reading?.candidate;
    if (candidate === undefined) return { status: "noData", reason: `${label}: no value for the candidate` };
    if (metric.maxRatioToStable !== undefined) {
        const stable = reading?.stable;
        if (stable === undefined) return { status: "noData", reason: `${label}: no value for the stable version to compare with` };
        const limit = stable * metric.maxRatioToStable;
        return candidate <= limit ? { status: "pass", reason: `${label} ${fmt(candidate)} (stable ${fmt(stable)})` } : { status: "fail", reason: `${label} ${fmt(candidate)} > ${fmt(limit)} (${metric.maxRatioToStable}x the stable's ${fmt(stable)})` };
    }
    if (metric.max !== undefined) return candidate <= metric.max ? { status: "pass", reason: `${label} ${fmt(candidate)}` } : { status: "fail", reason: `${label} ${fmt(candidate)} > ${metric.max}` };
    const min = metric.min ?? -Infinity;
    return candidate >= min ? { status: "pass", reason: `${label} ${fmt(candidate)}` } : { status: "fail", reason: `${label} ${fmt(candidate)} < ${min}` };
}
