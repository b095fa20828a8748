// The decisions of a rollout, pure: what one interval says about each candidate, and whether the rollout
// advances, holds or rolls back. Two kinds of evidence: the candidate against the stable version over the same
// intervals (sequential tests on the error rate and on the share of slow requests, valid when looked at after
// every interval), and fixed thresholds as hard limits on each interval. Missing data is never a pass.
// `npm run rollout` and the simulator of `npm run bench:rollout` both decide with these functions.
import type { AnalysisSettings } from "../components/config/rollout-config";
import { addBuckets, bernoulliLogRatio, histogramQuantile, LatencyBucket, slowerThan, smoothedRate } from "./statistics";

/** One version's requests over one interval, as Prometheus counts them. */
export interface VersionCounts {
    readonly requests: number;
    /** Requests answered 5xx. */
    readonly errors: number;
    /** Istio's request duration histogram over the interval; empty when none was recorded. */
    readonly latency: readonly LatencyBucket[];
}

export interface ServiceEvidence {
    readonly candidate?: VersionCounts;
    readonly stable?: VersionCounts;
    /** Why there is no evidence (Prometheus unreachable, a query failed), if so. */
    readonly error?: string;
}

/**
 * One comparison of the candidate with the stable version, as two running log likelihood ratios, each of "worse"
 * against "as good":
 * - `rollback`: conditioned on how many events (5xx, slow requests) the interval had in all, how many fell to
 *   the candidate. Under "as good" that split follows the versions' shares of requests whatever the stable's
 *   rate, so by Ville's inequality it ever reaches log(1/alpha) with chance at most alpha, however often it is
 *   looked at: the rollback.
 * - `promotion`: the candidate's events against the stable's rate and that rate worsened by the margin; at
 *   log(beta) the candidate is shown no worse by the margin, with a chance of at most beta of being wrong.
 */
export interface SequentialTest {
    readonly rollback: number;
    readonly promotion: number;
    readonly outcome: "open" | "notWorse" | "worse";
}

/** What the rollout has learned about one service so far. */
export interface ServiceRecord {
    /** Failed hard-limit checks over the whole rollout (as Flagger counts them). */
    readonly failedChecks: number;
    /** The stable version's requests over the rollout's intervals: the rates the candidate is compared with. */
    readonly stable: VersionCounts;
    readonly errors: SequentialTest;
    readonly latency: SequentialTest;
}

const NO_REQUESTS: VersionCounts = { requests: 0, errors: 0, latency: [] };

export const NEW_RECORD: ServiceRecord = {
    failedChecks: 0,
    stable: NO_REQUESTS,
    errors: { rollback: 0, promotion: 0, outcome: "open" },
    latency: { rollback: 0, promotion: 0, outcome: "open" },
};

/** The hard limits on one interval: within them, beyond them, too few requests to say (`thin`), or nothing to judge. */
export type Limits = "pass" | "fail" | "thin" | "noData";

export interface Verdict {
    readonly limits: Limits;
    readonly reasons: readonly string[];
    /** The record after this interval (`decide` counts the failed checks, from its state). */
    readonly record: ServiceRecord;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits).replace(/\.0+$/, "");
const percent = (part: number, whole: number) => (whole > 0 ? (100 * part) / whole : 0);

/** Where a test rolls back and where it shows a candidate no worse; the two tests (errors, latency) split the false-rollback budget. */
export function testBounds(analysis: AnalysisSettings): { readonly rollback: number; readonly promotion: number } {
    return { rollback: Math.log(2 / (analysis.falseRollbackPercent / 100)), promotion: Math.log(analysis.missedRegressionPercent / 100) };
}

interface Observation {
    /** Events and trials of the candidate and of the stable version this interval. */
    readonly candidate: { readonly events: number; readonly trials: number };
    readonly stable: { readonly events: number; readonly trials: number };
    /** The share of the candidate's events that "worse" expects, given the interval's events in all. */
    readonly worseShare: number;
    /** The stable's rate of events, and the candidate's when worse by the margin. */
    readonly rate: number;
    readonly worseRate: number;
}

function advanceTest(test: SequentialTest, o: Observation, bounds: ReturnType<typeof testBounds>): SequentialTest {
    // A concluded test stays concluded, as Wald's test stops: evidence after "no worse" gates nothing, and the
    // hard limits still watch every interval.
    if (test.outcome !== "open") return test;
    let { rollback, promotion } = test;
    if (o.candidate.trials > 0 && o.stable.trials > 0) {
        const sameShare = o.candidate.trials / (o.candidate.trials + o.stable.trials);
        rollback += o.candidate.events * Math.log(o.worseShare / sameShare) + o.stable.events * Math.log((1 - o.worseShare) / (1 - sameShare));
    }
    if (o.candidate.trials > 0) promotion += bernoulliLogRatio(o.candidate.events, o.candidate.trials, o.rate, o.worseRate);
    const outcome = rollback >= bounds.rollback ? "worse" : promotion <= bounds.promotion ? "notWorse" : "open";
    return { rollback, promotion, outcome };
}

/**
 * Where "slow" begins: near the p95 of `histogram`, the highest bucket bound with at least 5 % of requests above
 * it (enough to compare shares of quickly) and few enough that `slowRatio` times as many is still a share; when
 * no bound has 5 %, the lowest with fewer than 1 / `slowRatio`.
 */
export function slowBound(histogram: readonly LatencyBucket[], slowRatio: number): number | undefined {
    const total = histogram.at(-1)?.count ?? 0;
    if (total <= 0) return undefined;
    const share = (b: LatencyBucket) => 1 - b.count / total;
    const expressible = histogram.filter((b) => b.le !== Infinity && share(b) * slowRatio < 1);
    return expressible.filter((b) => share(b) >= 0.05).at(-1)?.le ?? expressible.at(0)?.le;
}

/**
 * Judges one interval of one service. The sequential tests compare the candidate with the stable version over
 * the rollout so far: errors (worse when `errorMargin` points above the stable's rate) and slow requests (past
 * `slowBound`; worse when `slowRatio` times the stable's share). The hard limits (success rate, p95) apply to
 * intervals of at least `minRequests` candidate requests.
 */
export function judge(evidence: ServiceEvidence, analysis: AnalysisSettings, prior: ServiceRecord): Verdict {
    if (evidence.error !== undefined) return { limits: "noData", reasons: [`no data: ${evidence.error}`], record: prior };
    const candidate = evidence.candidate ?? NO_REQUESTS;
    const now = evidence.stable ?? NO_REQUESTS;
    const stable: VersionCounts = { requests: prior.stable.requests + now.requests, errors: prior.stable.errors + now.errors, latency: addBuckets(prior.stable.latency, now.latency) };
    const bounds = testBounds(analysis);
    // The stable's rate before this interval; on the first, both versions' (which "as good" cannot tell apart).
    const errorRate = prior.stable.requests > 0 ? smoothedRate(prior.stable.errors, prior.stable.requests) : smoothedRate(candidate.errors + now.errors, candidate.requests + now.requests);
    const errorWorseRate = Math.min(errorRate + analysis.errorMarginPoints / 100, 0.999);
    const stableErrorRate = smoothedRate(stable.errors, stable.requests);
    const errors = advanceTest(
        prior.errors,
        {
            candidate: { events: candidate.errors, trials: candidate.requests },
            stable: { events: now.errors, trials: now.requests },
            worseShare: (candidate.requests * errorWorseRate) / (candidate.requests * errorWorseRate + now.requests * errorRate),
            rate: stableErrorRate,
            worseRate: Math.min(stableErrorRate + analysis.errorMarginPoints / 100, 0.999),
        },
        bounds,
    );
    // "Slow" is judged at a bound read from both versions' histograms together, so the bound cannot favour either.
    const bound = slowBound(addBuckets(addBuckets(prior.stable.latency, now.latency), candidate.latency), analysis.slowRatio);
    const total = (h: readonly LatencyBucket[]) => h.at(-1)?.count ?? 0;
    const slowShare = bound === undefined ? 0 : smoothedRate(slowerThan(stable.latency, bound), total(stable.latency));
    const latency =
        bound === undefined
            ? prior.latency
            : advanceTest(
                  prior.latency,
                  {
                      candidate: { events: slowerThan(candidate.latency, bound), trials: total(candidate.latency) },
                      stable: { events: slowerThan(now.latency, bound), trials: total(now.latency) },
                      worseShare: (total(candidate.latency) * analysis.slowRatio) / (total(candidate.latency) * analysis.slowRatio + total(now.latency)),
                      rate: slowShare,
                      // A p95 has 5 % of requests above it: where the bucket bounds show the stable with fewer, "worse" is still measured from 5 %.
                      worseRate: Math.min(Math.max(slowShare, 0.05) * analysis.slowRatio, 0.999),
                  },
                  bounds,
              );
    const record: ServiceRecord = { ...prior, stable, errors, latency };
    const reasons: string[] = [];
    if (errors.outcome === "worse") reasons.push(`errors ${fmt(percent(candidate.errors, candidate.requests), 2)}% this interval against the stable's ${fmt(percent(stable.errors, stable.requests), 2)}%: worse by ${fmt(analysis.errorMarginPoints, 2)} points or more (sequential test)`);
    if (latency.outcome === "worse") reasons.push(`${fmt(percent(slowerThan(candidate.latency, bound ?? 0), total(candidate.latency)), 2)}% of requests slower than ${fmt(bound ?? 0)}ms this interval against the stable's ${fmt(100 * slowShare, 2)}%: ${fmt(analysis.slowRatio, 2)}x as many or more (sequential test)`);
    if (candidate.requests <= 0) return { limits: "noData", reasons: [...reasons, "no candidate requests"], record };
    if (candidate.requests < analysis.minRequests) return { limits: "thin", reasons: [...reasons, `${fmt(candidate.requests, 0)} candidate requests, fewer than minRequests ${analysis.minRequests} for the hard limits`], record };
    const p95 = histogramQuantile(0.95, candidate.latency);
    if (p95 === undefined) return { limits: "noData", reasons: [...reasons, "no latency recorded for the candidate"], record };
    const successRate = 100 - percent(candidate.errors, candidate.requests);
    if (successRate < analysis.minSuccessRate) reasons.push(`success rate ${fmt(successRate, 2)}% < ${fmt(analysis.minSuccessRate, 2)}%`);
    if (p95 > analysis.maxP95LatencyMs) reasons.push(`p95 ${fmt(p95)}ms > ${fmt(analysis.maxP95LatencyMs)}ms`);
    const failed = successRate < analysis.minSuccessRate || p95 > analysis.maxP95LatencyMs;
    return { limits: failed ? "fail" : "pass", reasons: failed ? reasons : [...reasons, `success rate ${fmt(successRate, 2)}%, p95 ${fmt(p95)}ms`], record };
}

export type Decision = "advance" | "hold" | "rollback";

export interface AnalysisState {
    readonly services: Readonly<Partial<Record<string, ServiceRecord>>>;
    /** When the current step started, or last made progress; the progress deadline runs from here. */
    readonly progressSinceMs: number;
}

/** A service's record so far: its own entry only, so a service named constructor is not Object's constructor. */
export function recordOf(state: AnalysisState, service: string): ServiceRecord {
    return (Object.hasOwn(state.services, service) ? state.services[service] : undefined) ?? NEW_RECORD;
}

export interface StepDecision {
    readonly decision: Decision;
    readonly state: AnalysisState;
    readonly reason: string;
}

const testsNotWorse = (r: ServiceRecord) => r.errors.outcome === "notWorse" && r.latency.outcome === "notWorse";

/**
 * One interval's decision over every service of the rollout. Roll back when a sequential test finds a
 * candidate worse, a service reaches `failedChecks` failed checks, or the step goes `progressDeadline` without
 * progress. Advance when every candidate served requests this interval within its hard limits (or too few to
 * check them); at a step that `requiresProof` (the last one where the stable version still serves), only once
 * every sequential test has shown its candidate no worse. Otherwise hold.
 */
export function decide(verdicts: Readonly<Record<string, Verdict>>, state: AnalysisState, analysis: AnalysisSettings, nowMs: number, requiresProof: boolean): StepDecision {
    const entries = Object.entries(verdicts);
    const judged: Record<string, ServiceRecord> = Object.fromEntries(entries.map(([service, v]) => [service, { ...v.record, failedChecks: recordOf(state, service).failedChecks + (v.limits === "fail" ? 1 : 0) }]));
    const services = { ...state.services, ...judged };
    const why = (filter: (v: Verdict) => boolean) =>
        entries
            .filter(([, v]) => filter(v))
            .map(([service, v]) => `${service}: ${v.reasons.join(", ")}`)
            .join("; ");
    const worse = entries.find(([service]) => judged[service].errors.outcome === "worse" || judged[service].latency.outcome === "worse");
    if (worse !== undefined) return { decision: "rollback", state: { services, progressSinceMs: state.progressSinceMs }, reason: `${worse[0]} is worse than its stable version: ${worse[1].reasons.join(", ")}` };
    const exhausted = entries.find(([service]) => judged[service].failedChecks >= analysis.failedChecks);
    if (exhausted !== undefined) {
        const count = judged[exhausted[0]].failedChecks;
        return { decision: "rollback", state: { services, progressSinceMs: state.progressSinceMs }, reason: `${exhausted[0]} failed ${count} check${count === 1 ? "" : "s"} (failedChecks ${analysis.failedChecks}): ${exhausted[1].reasons.join(", ")}` };
    }
    // Served within the limits (or too few requests to check them): evidence is accumulating.
    const served = entries.every(([, v]) => v.limits === "pass" || v.limits === "thin");
    if (served && (!requiresProof || entries.every(([service]) => testsNotWorse(judged[service])))) {
        return { decision: "advance", state: { services, progressSinceMs: nowMs }, reason: "every service passed" };
    }
    if (served) {
        // Gathering evidence is progress: the deadline is for candidates that fail or go unobserved.
        const waiting = entries
            .filter(([service]) => !testsNotWorse(judged[service]))
            .map(([service]) => `${service}: not yet shown no worse than its stable version (errors test ${judged[service].errors.outcome}, latency test ${judged[service].latency.outcome})`)
            .join("; ");
        return { decision: "hold", state: { services, progressSinceMs: nowMs }, reason: waiting };
    }
    const stalled = why((v) => v.limits === "fail" || v.limits === "noData");
    if (nowMs - state.progressSinceMs >= analysis.progressDeadlineMs) {
        return { decision: "rollback", state: { services, progressSinceMs: state.progressSinceMs }, reason: `no progress within the progress deadline of ${fmt(analysis.progressDeadlineMs / 1000)}s: ${stalled}` };
    }
    return { decision: "hold", state: { services, progressSinceMs: state.progressSinceMs }, reason: stalled };
}

/**
 * The most requests a candidate can serve before a rollback if it turns bad at a step of `percent`, by the hard
 * limits alone: the failed checks it takes, each an interval of its share of the traffic. (The sequential tests
 * usually stop it sooner.)
 */
export function worstCaseRequests(percent: number, requestsPerSecond: number, intervalMs: number, analysis: AnalysisSettings): number {
    return Math.ceil(((requestsPerSecond * percent) / 100) * (intervalMs / 1000) * analysis.failedChecks);
}
