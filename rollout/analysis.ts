// The decisions of a rollout, pure: is one interval's evidence a pass, a failure or no evidence at all, and
// does the rollout advance, hold or roll back. Missing data is never a pass.
import type { AnalysisSettings } from "../components/config/rollout-config";

/** One version's traffic over one interval, as Prometheus reports it. */
export interface VersionMetrics {
    readonly requests: number;
    /** Percent of requests that did not answer 5xx; unset without requests. */
    readonly successRate?: number;
    /** Unset when no latency was recorded. */
    readonly p95LatencyMs?: number;
}

export interface ServiceEvidence {
    readonly candidate?: VersionMetrics;
    readonly stable?: VersionMetrics;
    /** Why there is no evidence (Prometheus unreachable, a query failed), if so. */
    readonly error?: string;
}

export type Verdict =
    | { readonly kind: "pass"; readonly reasons: readonly string[] }
    | { readonly kind: "fail"; readonly reasons: readonly string[] }
    | { readonly kind: "inconclusive"; readonly reasons: readonly string[] };

const fmt = (n: number, digits = 1) => n.toFixed(digits).replace(/\.0+$/, "");

/** Judges the candidate of one service against the thresholds. */
export function judge(evidence: ServiceEvidence, analysis: AnalysisSettings): Verdict {
    if (evidence.error !== undefined) return { kind: "inconclusive", reasons: [`no data: ${evidence.error}`] };
    const candidate = evidence.candidate;
    const requests = candidate?.requests ?? 0;
    if (candidate === undefined || requests < analysis.minRequests) {
        return { kind: "inconclusive", reasons: [`${fmt(requests, 0)} candidate requests, fewer than minRequests ${analysis.minRequests}`] };
    }
    if (candidate.successRate === undefined || candidate.p95LatencyMs === undefined) {
        return { kind: "inconclusive", reasons: [`no ${candidate.successRate === undefined ? "success rate" : "latency"} for the candidate`] };
    }
    const failures: string[] = [];
    if (candidate.successRate < analysis.minSuccessRate) failures.push(`success rate ${fmt(candidate.successRate, 2)}% < ${fmt(analysis.minSuccessRate, 2)}%`);
    if (candidate.p95LatencyMs > analysis.maxP95LatencyMs) failures.push(`p95 ${fmt(candidate.p95LatencyMs)}ms > ${fmt(analysis.maxP95LatencyMs)}ms`);
    if (failures.length > 0) return { kind: "fail", reasons: failures };
    return { kind: "pass", reasons: [`success rate ${fmt(candidate.successRate, 2)}%, p95 ${fmt(candidate.p95LatencyMs)}ms over ${fmt(requests, 0)} requests`] };
}

export type Decision = "advance" | "hold" | "rollback";

export interface AnalysisState {
    /** Failed checks so far, per service, over the whole rollout (as Flagger counts them). */
    readonly failedChecks: Readonly<Record<string, number>>;
    /** When the current step started, or last passed; the progress deadline runs from here. */
    readonly progressSinceMs: number;
}

export interface StepDecision {
    readonly decision: Decision;
    readonly state: AnalysisState;
    readonly reason: string;
}

/**
 * One interval's decision over every service of the rollout: advance when all pass; roll back when any has
 * failed `failedChecks` times or the step has gone `progressDeadline` without passing; otherwise hold.
 */
export function decide(verdicts: Readonly<Record<string, Verdict>>, state: AnalysisState, analysis: AnalysisSettings, nowMs: number): StepDecision {
    const failedChecks = { ...state.failedChecks };
    for (const [service, verdict] of Object.entries(verdicts)) if (verdict.kind === "fail") failedChecks[service] = (failedChecks[service] ?? 0) + 1;
    const next = { failedChecks, progressSinceMs: state.progressSinceMs };
    const exhausted = Object.entries(failedChecks).find(([, count]) => count >= analysis.failedChecks);
    if (exhausted !== undefined) {
        return { decision: "rollback", state: next, reason: `${exhausted[0]} failed ${exhausted[1]} check${exhausted[1] === 1 ? "" : "s"} (failedChecks ${analysis.failedChecks}): ${verdicts[exhausted[0]].reasons.join(", ")}` };
    }
    const notPassing = Object.entries(verdicts).filter(([, v]) => v.kind !== "pass");
    if (notPassing.length === 0) return { decision: "advance", state: { failedChecks, progressSinceMs: nowMs }, reason: "every service passed" };
    const why = notPassing.map(([service, v]) => `${service}: ${v.kind === "fail" ? "failed" : "inconclusive"} (${v.reasons.join(", ")})`).join("; ");
    if (nowMs - state.progressSinceMs >= analysis.progressDeadlineMs) {
        return { decision: "rollback", state: next, reason: `no passing check within the progress deadline of ${fmt(analysis.progressDeadlineMs / 1000)}s: ${why}` };
    }
    return { decision: "hold", state: next, reason: why };
}

/**
 * The most requests a candidate can serve before a rollback if it turns bad at a step of `percent`: the
 * failed checks it takes, each an interval of its share of the traffic.
 */
export function worstCaseRequests(percent: number, requestsPerSecond: number, intervalMs: number, analysis: AnalysisSettings): number {
    return Math.ceil(((requestsPerSecond * percent) / 100) * (intervalMs / 1000) * analysis.failedChecks);
}
