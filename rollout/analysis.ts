// The decisions of a rollout, pure: what one interval says about each candidate, and whether the rollout
// advances, holds or rolls back. Two kinds of evidence: the candidate against the stable version over the same
// intervals (sequential tests on the error rate and on the share of slow requests, valid when looked at after
// every interval), and fixed thresholds as hard limits on each interval. Missing data is never a pass.
// `npm run rollout` and the simulator of `npm run bench:rollout` both decide with these functions.
import type { AnalysisSettings } from "../components/config/rollout-config";
import { MetricReading, metricVerdict } from "./metrics";
import { addBuckets, binomialUpperTail, histogramQuantile, LatencyBucket, slowerThan, smoothedRate, upperConfidenceBound } from "./statistics";

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
    /** 5xx the callers' proxies answered themselves in the window, which no version's counts hold. */
    readonly unattributedErrors?: number;
    /** The stack's custom metrics this interval (rollout.analysis.metrics), by name. */
    readonly metrics?: readonly MetricReading[];
}

/**
 * One comparison of the candidate with the stable version, as two running log likelihood ratios of "worse"
 * against "as good", both on the same evidence: of the events (5xx, slow requests) each interval had in all, how
 * many fell to the candidate. Compared over the same intervals, an incident both versions share moves neither.
 * - `rollback`: under "as good" that split follows the versions' shares of requests whatever the stable's rate,
 *   so by Ville's inequality the ratio ever reaches log(2/alpha) with chance at most alpha/2, however often it is
 *   looked at. It keeps running after the candidate is shown no worse, until the promotion: a regression that
 *   starts late is still caught, and watching costs nothing.
 * - `promotion`: "worse" is the split the candidate would have if it were worse by exactly the margin. For slow
 *   requests (slowRatio times the stable's share) that split does not depend on the stable's share: at
 *   log(beta/2) the candidate is shown no worse (where the stable is practically never slow, `own` shows it from
 *   the candidate's requests against slowRatio times 1 %, at log(2/beta)). For errors (a margin in points above the stable's rate) it does: it is taken
 *   at the highest stable rate the interval's own events allow (a bound that holds for every interval with a
 *   chance of at least 1 - beta/4, whatever the rates do from one interval to the next), and the test concludes at
 *   log(beta/4). Besides, `own` shows a candidate no worse from its own requests alone when its rate is well below
 *   the margin (which "worse", the stable's rate plus the margin, cannot be), at log(2/beta). Either way a candidate
 *   worse by the margin is shown no worse with a chance of at most beta, with no assumption about the stable.
 */
export interface SequentialTest {
    readonly rollback: number;
    readonly promotion: number;
    /** Errors only: the candidate's own evidence that its rate is below the margin (see judge). */
    readonly own?: number;
    /** Intervals judged so far. */
    readonly looks?: number;
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
    /** Intervals in which the candidate served requests and was judged: how long it has been watched (bakeTime). */
    readonly watchedIntervals?: number;
}

/** A share of slow requests below which the stable counts as never slow. */
const RARELY_SLOW = 0.01;

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
    /**
     * The hard limits as this interval applied them (relative to the stable: the lower of minSuccessRate and the
     * stable's rate less the margin; the higher of maxP95Latency and slowRatio times the stable's p95), when checked.
     */
    readonly applied?: { readonly minSuccessRate: number; readonly maxP95Ms: number };
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
    /** The candidate's share of the interval's events that "worse" expects: the rollback's alternative, and the promotion's worst case. */
    readonly rollbackWorseShare: number;
    readonly promotionWorseShare: number;
}

/** The candidate's share of an interval's events when its rate is `candidateRate` and the stable's `stableRate`. */
const eventShare = (candidateTrials: number, stableTrials: number, candidateRate: number, stableRate: number) =>
    (candidateTrials * candidateRate) / (candidateTrials * candidateRate + stableTrials * stableRate);

function advanceTest(test: SequentialTest, o: Observation, bounds: ReturnType<typeof testBounds>, ownShown = false): SequentialTest {
    // Shown worse is final. Shown no worse stays so, while the rollback's evidence keeps running.
    if (test.outcome === "worse") return test;
    let { rollback, promotion } = test;
    if (o.candidate.trials > 0 && o.stable.trials > 0) {
        const sameShare = o.candidate.trials / (o.candidate.trials + o.stable.trials);
        const split = (worseShare: number) => (worseShare <= sameShare ? 0 : o.candidate.events * Math.log(worseShare / sameShare) + o.stable.events * Math.log((1 - worseShare) / (1 - sameShare)));
        rollback += split(o.rollbackWorseShare);
        if (test.outcome === "open") promotion += split(o.promotionWorseShare);
    }
    const outcome = rollback >= bounds.rollback ? "worse" : test.outcome === "notWorse" || ownShown || promotion <= bounds.promotion ? "notWorse" : "open";
    return { ...test, rollback, promotion, looks: (test.looks ?? 0) + 1, outcome };
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
    // What "worse" depends on is known before the split is judged: the stable's history, or (the promotion's ceiling)
    // this interval's events in all and its requests, which the split is judged conditionally on.
    const margin = analysis.errorMarginPoints / 100;
    // The rollback's alternative: the stable's rate so far (smoothed only to choose it). With no history yet, both
    // versions' rate this interval, which the split is judged conditionally on: a burst in the first interval is
    // weighed against the stable's rate, not against the margin.
    const estimate = prior.stable.requests > 0 ? smoothedRate(prior.stable.errors, prior.stable.requests) : smoothedRate(candidate.errors + now.errors, candidate.requests + now.requests);
    // The promotion's worst case: the highest stable rate this interval's events allow (every request errs at
    // least at the stable's rate), where "worse by the margin" is the smallest ratio to tell apart from "as good".
    // Interval t's bound may fail with chance beta/4 / (t (t + 1)): all of them hold with chance 1 - beta/4.
    const beta = analysis.missedRegressionPercent / 100;
    const look = (prior.errors.looks ?? 0) + 1;
    const ceiling = upperConfidenceBound(candidate.errors + now.errors, candidate.requests + now.requests, beta / 4 / (look * (look + 1)));
    // The candidate's own evidence against "its rate is the margin or more", with "a quarter of it" as the alternative.
    const below = margin / 4;
    const own = (prior.errors.own ?? 0) + candidate.errors * Math.log(below / margin) + Math.max(0, candidate.requests - candidate.errors) * Math.log((1 - below) / (1 - margin));
    const errorsTest = advanceTest(
        { ...prior.errors, promotion: prior.errors.promotion },
        {
            candidate: { events: candidate.errors, trials: candidate.requests },
            stable: { events: now.errors, trials: now.requests },
            rollbackWorseShare: eventShare(candidate.requests, now.requests, Math.min(estimate + margin, 1), estimate),
            promotionWorseShare: eventShare(candidate.requests, now.requests, Math.min(ceiling + margin, 1), ceiling),
        },
        { rollback: bounds.rollback, promotion: Math.log(beta / 4) },
        own >= Math.log(2 / beta),
    );
    const errors: SequentialTest = { ...errorsTest, own };
    // "Slow" begins at a bound read from the stable's history: it cannot favour either version's present.
    const bound = slowBound(prior.stable.latency, analysis.slowRatio);
    const total = (h: readonly LatencyBucket[]) => h.at(-1)?.count ?? 0;
    const slowShare = bound === undefined ? 0 : slowerThan(stable.latency, bound) / Math.max(1, total(stable.latency));
    // slowRatio times the stable's share: the split "worse" expects does not depend on that share at all.
    const slowWorseShare = eventShare(total(candidate.latency), total(now.latency), analysis.slowRatio, 1);
    // Where the stable is practically never slow (under 1 % past even the lowest bound), a ratio of its share cannot be
    // shown: there "worse" is slowRatio times 1 %, and the candidate shows it is not from its own requests.
    const rarelySlow = bound !== undefined && upperConfidenceBound(slowerThan(prior.stable.latency, bound), total(prior.stable.latency), analysis.missedRegressionPercent / 200) < RARELY_SLOW;
    const slowFloor = Math.min(analysis.slowRatio * RARELY_SLOW, 0.5);
    const candidateSlow = bound === undefined ? 0 : slowerThan(candidate.latency, bound);
    const ownSlow = rarelySlow ? (prior.latency.own ?? 0) + candidateSlow * Math.log(1 / 4) + Math.max(0, total(candidate.latency) - candidateSlow) * Math.log((1 - slowFloor / 4) / (1 - slowFloor)) : (prior.latency.own ?? 0);
    const latency: SequentialTest =
        bound === undefined
            ? prior.latency
            : {
                  ...advanceTest(
                      prior.latency,
                      {
                          candidate: { events: candidateSlow, trials: total(candidate.latency) },
                          stable: { events: slowerThan(now.latency, bound), trials: total(now.latency) },
                          rollbackWorseShare: slowWorseShare,
                          promotionWorseShare: slowWorseShare,
                      },
                      // The ratio test and the candidate's own evidence share the budget: beta / 2 each.
                      { rollback: bounds.rollback, promotion: Math.log(beta / 2) },
                      ownSlow >= Math.log(2 / beta),
                  ),
                  own: ownSlow,
              };
    const reasons: string[] = [];
    // 5xx no version's counts hold (a timeout's or a failed connection's, answered by the caller's proxy) may be the
    // candidate's: an interval with any is no evidence that it is no worse. Its rollback evidence still counts.
    const unattributed = evidence.unattributedErrors ?? 0;
    const blind = (test: SequentialTest, before: SequentialTest): SequentialTest => (unattributed > 0 && test.outcome !== "worse" ? { ...test, promotion: before.promotion, own: before.own, outcome: before.outcome === "notWorse" ? "notWorse" : "open" } : test);
    if (unattributed > 0) reasons.push(`${fmt(unattributed, 0)} 5xx answered by the callers' proxies (timeouts, failed connections) carry no version: no evidence of no worse this interval`);
    const watchedIntervals = (prior.watchedIntervals ?? 0) + (candidate.requests > 0 ? 1 : 0);
    const record: ServiceRecord = { ...prior, stable, errors: blind(errors, prior.errors), latency: blind(latency, prior.latency), watchedIntervals };
    if (errors.outcome === "worse") reasons.push(`errors ${fmt(percent(candidate.errors, candidate.requests), 2)}% this interval against the stable's ${fmt(percent(stable.errors, stable.requests), 2)}%: worse by ${fmt(analysis.errorMarginPoints, 2)} points or more (sequential test)`);
    if (latency.outcome === "worse") reasons.push(`${fmt(percent(slowerThan(candidate.latency, bound ?? 0), total(candidate.latency)), 2)}% of requests slower than ${fmt(bound ?? 0)}ms this interval against the stable's ${fmt(100 * slowShare, 2)}%: ${fmt(analysis.slowRatio, 2)}x as many or more (sequential test)`);
    if (candidate.requests <= 0) return { limits: "noData", reasons: [...reasons, "no candidate requests"], record };
    if (candidate.requests < analysis.minRequests) return { limits: "thin", reasons: [...reasons, `${fmt(candidate.requests, 0)} candidate requests, fewer than minRequests ${analysis.minRequests} for the hard limits`], record };
    const p95 = histogramQuantile(0.95, candidate.latency);
    if (p95 === undefined) return { limits: "noData", reasons: [...reasons, "no latency recorded for the candidate"], record };
    // The hard limits, relative to the stable over the same interval: a stable that itself misses minSuccessRate
    // (or maxP95Latency) does not fail every candidate as good as it; a candidate a margin worse than it still fails.
    // A success rate fails only when it is below the limit beyond chance (a candidate exactly at the limit errs this
    // often less than 1 % of the time), so that checks summed over a long rollout do not fail a healthy candidate.
    const successRate = 100 - percent(candidate.errors, candidate.requests);
    const successLimit = now.requests > 0 ? Math.min(analysis.minSuccessRate, 100 - percent(now.errors, now.requests) - analysis.errorMarginPoints) : analysis.minSuccessRate;
    const beyondChance = binomialUpperTail(candidate.errors, candidate.requests, Math.max(0, 1 - successLimit / 100)) < 0.01;
    const p95Limit = Math.max(analysis.maxP95LatencyMs, (histogramQuantile(0.95, now.latency) ?? 0) * analysis.slowRatio);
    const successFailed = successRate < successLimit && beyondChance;
    if (successFailed) reasons.push(`success rate ${fmt(successRate, 2)}% < ${fmt(successLimit, 2)}%`);
    if (p95 > p95Limit) reasons.push(`p95 ${fmt(p95)}ms > ${fmt(p95Limit)}ms`);
    // The stack's own metrics, checked on the same intervals as the built-in limits; one without a value holds, never passes.
    const custom = analysis.metrics.map((m) => metricVerdict(m, evidence.metrics?.find((r) => r.name === m.name)));
    const customFailed = custom.filter((v) => v.status === "fail");
    const failed = successFailed || p95 > p95Limit || customFailed.length > 0;
    const applied = { minSuccessRate: successLimit, maxP95Ms: p95Limit };
    if (failed) return { limits: "fail", reasons: [...reasons, ...customFailed.map((v) => v.reason)], record, applied };
    const missing = custom.filter((v) => v.status === "noData");
    if (missing.length > 0) return { limits: "noData", reasons: [...reasons, ...missing.map((v) => v.reason)], record, applied };
    return { limits: "pass", reasons: [...reasons, `success rate ${fmt(successRate, 2)}% (limit ${fmt(successLimit, 2)}%), p95 ${fmt(p95)}ms (limit ${fmt(p95Limit)}ms)`, ...custom.map((v) => v.reason)], record, applied };
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

/** Intervals a candidate must be watched serving before its promotion: bakeTime, in whole intervals. */
export const bakeIntervals = (analysis: AnalysisSettings, intervalMs: number) => Math.ceil(analysis.bakeTimeMs / intervalMs);

const baked = (r: ServiceRecord, analysis: AnalysisSettings, intervalMs: number) => (r.watchedIntervals ?? 0) >= bakeIntervals(analysis, intervalMs);

/** May this candidate be promoted: shown no worse by every test, and watched serving for the bake? */
export const promotable = (r: ServiceRecord, analysis: AnalysisSettings, intervalMs: number) => testsNotWorse(r) && baked(r, analysis, intervalMs);

/**
 * One interval's decision over every service of the rollout. Roll back when a sequential test finds a
 * candidate worse, a service reaches `failedChecks` failed checks, or the step goes `progressDeadline` without
 * progress. Advance when every candidate served requests this interval within its hard limits (or too few to
 * check them); at a step that `requiresProof` (the last one where the stable version still serves), only once
 * every sequential test has shown its candidate no worse and each candidate has been watched serving for `bakeTime`
 * (`intervalMs` each interval). Otherwise hold.
 */
export function decide(verdicts: Readonly<Record<string, Verdict>>, state: AnalysisState, analysis: AnalysisSettings, nowMs: number, requiresProof: boolean, intervalMs: number): StepDecision {
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
    if (served && (!requiresProof || entries.every(([service]) => promotable(judged[service], analysis, intervalMs)))) {
        return { decision: "advance", state: { services, progressSinceMs: nowMs }, reason: "every service passed" };
    }
    if (served) {
        // Gathering evidence is progress: the deadline is for candidates that fail or go unobserved.
        const waiting = entries
            .filter(([service]) => !promotable(judged[service], analysis, intervalMs))
            .map(([service]) => {
                const r = judged[service];
                const tests = testsNotWorse(r) ? "shown no worse" : `not yet shown no worse than its stable version (errors test ${r.errors.outcome}, latency test ${r.latency.outcome})`;
                return `${service}: ${tests}${baked(r, analysis, intervalMs) ? "" : `; baking: watched serving ${r.watchedIntervals ?? 0} of the ${bakeIntervals(analysis, intervalMs)} intervals of bakeTime ${fmt(analysis.bakeTimeMs / 60_000, 2)}m`}`;
            })
            .join("; ");
        return { decision: "hold", state: { services, progressSinceMs: nowMs }, reason: waiting };
    }
    const stalled = why((v) => v.limits === "fail" || v.limits === "noData");
    if (nowMs - state.progressSinceMs >= analysis.progressDeadlineMs) {
        return { decision: "rollback", state: { services, progressSinceMs: state.progressSinceMs }, reason: `no progress within the progress deadline of ${fmt(analysis.progressDeadlineMs / 1000)}s: ${stalled}` };
    }
    return { decision: "hold", state: { services, progressSinceMs: state.progressSinceMs }, reason: stalled };
}

/** What the hard limits bound at one step, for a candidate that turns bad there (the sequential tests usually stop it sooner). */
export interface StepExposure {
    /** Candidate requests an interval, at the step's expected rate. */
    readonly perInterval: number;
    /** Whether an interval has the `minRequests` the hard limits need, at that rate. */
    readonly limitsFire: boolean;
    /**
     * The most requests it serves at the step before a rollback or the next step: `failedChecks` intervals where the
     * limits fire; where they cannot, one interval at a step that then advances, and no bound at the proof step (it
     * holds until the sequential tests decide, which bound it only in probability) or at a last one (100 %, or a
     * blue/green switch: it passes after one interval, and nothing checks it after that).
     */
    readonly requests?: number;
}

/** A step's place: one that advances, the proof step, or the last, whose pass is the promotion. */
export type StepKind = "step" | "proof" | "final";

export function stepExposure(percent: number, requestsPerSecond: number, intervalMs: number, analysis: AnalysisSettings, kind: StepKind): StepExposure {
    const perInterval = ((requestsPerSecond * percent) / 100) * (intervalMs / 1000);
    const limitsFire = perInterval >= analysis.minRequests;
    const requests = limitsFire ? Math.ceil(perInterval * analysis.failedChecks) : kind === "step" ? Math.ceil(perInterval) : undefined;
    return { perInterval, limitsFire, ...(requests !== undefined && { requests }) };
}
