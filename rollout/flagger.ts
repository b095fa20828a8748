// Flagger's canary analysis as its scheduler runs it (pkg/controller/scheduler.go), for the benchmark to run on
// the same simulated traffic as ours. Its Istio tutorial's defaults: every `interval` (1m), the
// request-success-rate metric (non-5xx share over 1m) must be >= 99 % and request-duration (p99 over 30s)
// <= 500 ms; a failed or empty check counts one failed check and holds the weight; a passing one adds
// `stepWeight` (10) up to `maxWeight` (50), and a pass at `maxWeight` promotes. The threshold (5) is checked
// at the start of each run, so the rollback comes one interval after the failed check that reaches it.
import type { VersionCounts } from "./analysis";
import { addBuckets, histogramQuantile } from "./statistics";
import type { TrafficStream } from "./simulation";

export interface FlaggerAnalysis {
    readonly intervalMs: number;
    readonly threshold: number;
    readonly stepWeight: number;
    readonly maxWeight: number;
    readonly minSuccessRate: number;
    readonly successRateWindowMs: number;
    readonly maxP99LatencyMs: number;
    readonly latencyWindowMs: number;
}

export const FLAGGER_DEFAULTS: FlaggerAnalysis = {
    intervalMs: 60_000,
    threshold: 5,
    stepWeight: 10,
    maxWeight: 50,
    minSuccessRate: 99,
    successRateWindowMs: 60_000,
    maxP99LatencyMs: 500,
    latencyWindowMs: 30_000,
};

/** The percents Flagger routes to the canary: one step weight at a time up to the maximum. */
export function flaggerWeights(analysis: FlaggerAnalysis): number[] {
    const weights: number[] = [];
    for (let w = analysis.stepWeight; w < analysis.maxWeight; w += analysis.stepWeight) weights.push(w);
    return [...weights, analysis.maxWeight];
}

export interface RunResult {
    readonly outcome: "promoted" | "rolledBack" | "undecided";
    /** When the decision was taken, from the start of the rollout. */
    readonly decidedAtMs: number;
    /** The candidate's share over time: [from ms, percent], in order. */
    readonly weights: readonly (readonly [number, number])[];
}

/** Flagger's tutorial load tester (`hey -q 10 -c 2` on the canary): 20 requests per second to the canary alone. */
export const LOAD_TESTER_RATE = 20;

/**
 * One Flagger rollout on `stream`, until it promotes or rolls back, or `horizonMs` passes. With `loadTest` (a
 * stream of load-tester requests, all to the canary), its checks count those requests beside the users'.
 */
export function runFlagger(stream: TrafficStream, analysis: FlaggerAnalysis, horizonMs: number, loadTest?: TrafficStream): RunResult {
    const ticksPer = (ms: number) => Math.round(ms / stream.tickMs);
    // The first run routes stepWeight to the canary without an analysis (nothing has reached it yet).
    let weight = analysis.stepWeight;
    const weights: [number, number][] = [[0, weight]];
    let failedChecks = 0;
    for (let now = analysis.intervalMs; now <= horizonMs; now += analysis.intervalMs) {
        if (failedChecks >= analysis.threshold) return { outcome: "rolledBack", decidedAtMs: now, weights };
        const end = ticksPer(now);
        const canary = (windowMs: number): VersionCounts => {
            // Flagger's Istio metrics count at the version's own proxy (reporter="destination"): every attempt of a retried request.
            const users = stream.window(end - ticksPer(windowMs), end, weight, false, "destination").candidate;
            if (loadTest === undefined) return users;
            const tester = loadTest.window(end - ticksPer(windowMs), end, 100, false, "destination").candidate;
            return { requests: users.requests + tester.requests, errors: users.errors + tester.errors, latency: addBuckets(users.latency, tester.latency) };
        };
        const successWindow = canary(analysis.successRateWindowMs);
        const latencyWindow = canary(analysis.latencyWindowMs);
        // No requests, or only 5xx (the success-rate query's numerator is then empty), is "no values found": a failed check.
        const ok = successWindow.requests - successWindow.errors;
        const successRate = ok > 0 ? (100 * ok) / successWindow.requests : undefined;
        const p99 = histogramQuantile(0.99, latencyWindow.latency);
        const passed = successRate !== undefined && successRate >= analysis.minSuccessRate && p99 !== undefined && p99 <= analysis.maxP99LatencyMs;
        if (!passed) {
            failedChecks++;
            continue;
        }
        if (weight >= analysis.maxWeight) return { outcome: "promoted", decidedAtMs: now, weights };
        weight = Math.min(weight + analysis.stepWeight, analysis.maxWeight);
        weights.push([now, weight]);
    }
    return { outcome: "undecided", decidedAtMs: horizonMs, weights };
}
