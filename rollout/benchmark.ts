// `npm run bench:rollout`'s measurements: rollouts of one canary simulated many times per scenario, each run
// driven twice on one stream of traffic, once by our driver (the very `runRollout` of `npm run rollout`, on a
// simulated clock, engine and Prometheus) and once by Flagger's algorithm, then summed up per scenario.
import { show } from "../components/config/config-reader";
import type { AnalysisSettings, RolloutSettings } from "../components/config/rollout-config";
import { stackFileConfig } from "../lib/mock-program";
import type { ConfigEdit, Expectation, StackConfig } from "./config-edit";
import { applyEdits, asStackConfig, checkExpected, valueAt } from "./config-edit";
import { Clock, PreparedRollout, prepareRollout, runRollout } from "./driver";
import { RolloutRefusal } from "./plan";
import type { StackEngine } from "./engines";
import { FLAGGER_DEFAULTS, FlaggerAnalysis, flaggerWeights, LOAD_TESTER_RATE, RunResult, runFlagger } from "./flagger";
import { TrafficModel, TrafficStream, VersionProfile, visibleErrorRate } from "./simulation";
import { addBuckets } from "./statistics";

export interface Scenario {
    readonly name: string;
    /** Is the candidate worse than the stable version (so rolling it back is right)? */
    readonly regression: boolean;
    readonly traffic: TrafficModel;
}

/** The stable version of every scenario: 0.1 % 5xx, log-normal latency with a 50 ms median and a 202 ms p99. */
export const STABLE: VersionProfile = { errorRate: 0.001, medianMs: 50, sigma: 0.6 };
/** Flagger's tutorial load test: hey -q 10 -c 2, 20 requests per second. */
export const DEFAULT_RATE = 20;

const at = (requestsPerSecond: number, candidate: Partial<VersionProfile>, stable: Partial<VersionProfile> = {}): TrafficModel => ({ requestsPerSecond, stable: { ...STABLE, ...stable }, candidate: { ...STABLE, ...stable, ...candidate } });
const onePoint = STABLE.errorRate + 0.01;

export const SCENARIOS: readonly Scenario[] = [
    { name: "healthy", regression: false, traffic: at(DEFAULT_RATE, {}) },
    { name: "errors +1 point", regression: true, traffic: at(DEFAULT_RATE, { errorRate: STABLE.errorRate + 0.01 }) },
    { name: "errors +5 points", regression: true, traffic: at(DEFAULT_RATE, { errorRate: STABLE.errorRate + 0.05 }) },
    { name: "latency +50%", regression: true, traffic: at(DEFAULT_RATE, { medianMs: STABLE.medianMs * 1.5 }) },
    { name: "low traffic (1/s), healthy", regression: false, traffic: at(1, {}) },
    { name: "low traffic (1/s), errors +5 points", regression: true, traffic: at(1, { errorRate: STABLE.errorRate + 0.05 }) },
    { name: "high traffic (1000/s), healthy", regression: false, traffic: at(1000, {}) },
    { name: "high traffic (1000/s), errors +1 point", regression: true, traffic: at(1000, { errorRate: STABLE.errorRate + 0.01 }) },
];

/**
 * The hard cases: the margin at low traffic, noisy stables, an incident both versions share, bursts, a regression
 * that starts late, a latency regression at the slow bound, and a candidate better than its stable.
 */
export const HARD_SCENARIOS: readonly Scenario[] = [
    { name: "low traffic (1/s), errors +1 point", regression: true, traffic: at(1, { errorRate: onePoint }) },
    { name: "stable at 5 % errors, +1 point", regression: true, traffic: at(DEFAULT_RATE, { errorRate: 0.06 }, { errorRate: 0.05 }) },
    { name: "stable at 5 % errors, healthy", regression: false, traffic: at(DEFAULT_RATE, {}, { errorRate: 0.05 }) },
    { name: "stable at 1 % errors, healthy", regression: false, traffic: at(DEFAULT_RATE, {}, { errorRate: 0.01 }) },
    { name: "stable at 1 % errors, +1 point", regression: true, traffic: at(DEFAULT_RATE, { errorRate: 0.02 }, { errorRate: 0.01 }) },
    {
        name: "shared incident (both +5 points in minute 1), +1 point",
        regression: true,
        traffic: { ...at(DEFAULT_RATE, { errorRate: onePoint }), phases: [{ fromMinute: 1, toMinute: 2, stable: { errorRate: STABLE.errorRate + 0.05 }, candidate: { errorRate: onePoint + 0.05 } }] },
    },
    { name: "bursty (10 % of minutes +10 points)", regression: true, traffic: { ...at(DEFAULT_RATE, {}), bursts: { share: 0.1, candidate: { errorRate: STABLE.errorRate + 0.1 } } } },
    { name: "bursty at 1000/s", regression: true, traffic: { ...at(1000, {}), bursts: { share: 0.1, candidate: { errorRate: STABLE.errorRate + 0.1 } } } },
    { name: "+1 point from minute 2, 1000/s", regression: true, traffic: { ...at(1000, {}), phases: [{ fromMinute: 2, toMinute: Infinity, candidate: { errorRate: onePoint } }] } },
    // Median 120 ms, sigma 0.6: the stable has 11.1 % of requests above 250 ms (the slow bound); sigma 0.9556
    // doubles that share exactly, the median kept: worse by exactly the slowRatio margin.
    { name: "latency: twice the slow share at 250 ms", regression: true, traffic: at(DEFAULT_RATE, { sigma: 0.9556 }, { medianMs: 120 }) },
    { name: "better candidate (half the errors)", regression: false, traffic: at(DEFAULT_RATE, { errorRate: STABLE.errorRate / 2 }) },
    // The mesh retries a 5xx twice: 5 % of attempts failing is 0.0125 % of requests failing for the callers, and 25 %
    // is 1.6 %. Flagger's metrics count every attempt at the version's own proxy (reporter="destination").
    { name: "retried twice, both fail 5 % of attempts, healthy", regression: false, traffic: { ...at(DEFAULT_RATE, {}, { errorRate: 0.05 }), retries: 2 } },
    { name: "retried twice, candidate fails 25 % of attempts", regression: true, traffic: { ...at(DEFAULT_RATE, { errorRate: 0.25 }, { errorRate: 0.05 }), retries: 2 } },
];

/** What `npm run bench:rollout` runs: the eight scenarios, then the hard cases. */
export const ALL_SCENARIOS: readonly Scenario[] = [...SCENARIOS, ...HARD_SCENARIOS];

/** A promoted bad candidate keeps serving everyone: bad requests are counted over the first hour of a release. */
export const HORIZON_MS = 60 * 60_000;

/** The driver's stack, in memory: applying edits only records when the candidate's share changed. */
class SimulatedStack implements StackEngine {
    readonly description = "simulation";
    readonly stackFile = "Pulumi.simulation.yaml";
    readonly weights: [number, number][] = [];

    constructor(
        private config: StackConfig,
        private readonly share: (config: StackConfig) => number,
        private readonly clock: Clock,
    ) {}

    checkWritable(): void {
        // Held in memory: always writable.
    }

    readConfig() {
        return Promise.resolve({ config: this.config, secretKeys: [] });
    }

    apply(edits: readonly ConfigEdit[], _message: string, expected: readonly Expectation[] = []) {
        checkExpected(this.config, expected);
        this.config = applyEdits(this.config, edits);
        this.weights.push([this.clock.now(), this.share(this.config)]);
        return Promise.resolve([]);
    }
}

/**
 * A stack's rollout of one canary, prepared as `npm run rollout` prepares it (every phase's config checked), for
 * the simulation: the benchmark judges with that stack's steps, interval and analysis.
 */
export async function prepareSimulated(stack: string, service: string): Promise<PreparedRollout> {
    const { config, secretKeys } = stackFileConfig(stack);
    const engine: StackEngine = { description: `stack ${stack}, simulated`, stackFile: `Pulumi.${stack}.yaml`, readConfig: () => Promise.resolve({ config: asStackConfig(config), secretKeys }), checkWritable: () => undefined, apply: () => Promise.resolve([]) };
    const prepared = await prepareRollout(engine, stack, [service]);
    if (prepared.targets[0].release !== "canary") throw new RolloutRefusal([{ key: "--service", value: show(service), allowed: "is a blue/green service; the benchmark compares canary analyses", fix: "--service user-service" }]);
    return prepared;
}

/**
 * One run of our driver on `stream`: the prepared rollout of one canary, its evidence read off the stream, and off
 * `loadTest` (a load tester's requests, all to the candidate, which its callers' proxies count) when given.
 */
export async function runOurs(prepared: PreparedRollout, stream: TrafficStream, horizonMs: number, loadTest?: TrafficStream): Promise<RunResult> {
    const target = prepared.targets[0];
    const weightPath = target.weightPath;
    if (prepared.targets.length !== 1 || weightPath === undefined) throw new Error("the benchmark rolls out one canary");
    let now = 0;
    const controller = new AbortController();
    const clock: Clock = {
        now: () => now,
        sleep: (ms) => {
            now += ms;
            if (now > horizonMs) controller.abort();
            return Promise.resolve(now <= horizonMs);
        },
    };
    const stack = new SimulatedStack(prepared.config, (config) => Number(valueAt(config, weightPath) ?? 0), clock);
    const tick = (ms: number) => Math.round(ms / stream.tickMs);
    const outcome = await runRollout({
        prepared,
        engine: stack,
        signal: controller.signal,
        onInterrupt: "hold",
        log: () => undefined,
        clock,
        webhook: () => Promise.resolve(undefined),
        evidence: () => {
            const percent = stack.weights.at(-1)?.[1] ?? 0;
            const [from, to] = [tick(now - prepared.settings.rollout.intervalMs), tick(now)];
            const window = stream.window(from, to, percent);
            const tester = loadTest?.window(from, to, 100).candidate;
            const candidate = tester === undefined ? window.candidate : { requests: window.candidate.requests + tester.requests, errors: window.candidate.errors + tester.errors, latency: addBuckets(window.candidate.latency, tester.latency) };
            return Promise.resolve({ candidate, stable: window.stable });
        },
    });
    // Nothing but the driver edits the simulated stack, so it cannot change under the rollout.
    if (outcome.kind === "stopped") throw new Error(`the simulated rollout stopped: ${outcome.reason}`);
    const result = outcome.kind === "held" ? "undecided" : outcome.kind;
    return { outcome: result, decidedAtMs: Math.min(now, horizonMs), weights: stack.weights };
}

/** Requests the candidate served within the horizon: at its weights until the decision, everyone's after a promotion. */
export function candidateRequests(stream: TrafficStream, run: RunResult, horizonMs: number): number {
    let served = 0;
    run.weights.forEach(([from, percent], i) => {
        const until = Math.min(run.weights[i + 1]?.[0] ?? run.decidedAtMs, run.decidedAtMs, horizonMs);
        const ticks = [Math.round(from / stream.tickMs), Math.round(until / stream.tickMs)] as const;
        if (percent > 0 && ticks[1] > ticks[0]) served += stream.window(ticks[0], ticks[1], percent).candidate.requests;
    });
    if (run.outcome === "promoted") served += (stream.model.requestsPerSecond * Math.max(0, horizonMs - run.decidedAtMs)) / 1000;
    return served;
}

/**
 * 5xx the candidate answered beyond what the stable version would have, from the start to `horizonMs`: minute by
 * minute, its requests times how much more often it failed than the stable did that minute (nothing for a minute
 * it failed no more often). After a promotion it serves every request until the horizon; undecided at the end of the
 * run, it keeps serving at its last weight.
 */
export function excessErrors(stream: TrafficStream, run: RunResult, horizonMs: number): number {
    const MINUTE = 60_000;
    // What callers see: a 5xx the mesh retried into a success is none.
    const worseBy = (minute: number) => {
        const { stable, candidate } = stream.profilesAt(minute);
        return Math.max(0, visibleErrorRate(candidate.errorRate, stream.model.retries) - visibleErrorRate(stable.errorRate, stream.model.retries));
    };
    let excess = 0;
    run.weights.forEach(([from, percent], i) => {
        const until = Math.min(run.weights[i + 1]?.[0] ?? run.decidedAtMs, run.decidedAtMs, horizonMs);
        for (let start = from; start < until; start = Math.min(until, (Math.floor(start / MINUTE) + 1) * MINUTE)) {
            const end = Math.min(until, (Math.floor(start / MINUTE) + 1) * MINUTE);
            const ticks = [Math.round(start / stream.tickMs), Math.round(end / stream.tickMs)] as const;
            if (percent > 0 && ticks[1] > ticks[0]) excess += stream.window(ticks[0], ticks[1], percent).candidate.requests * worseBy(Math.floor(start / MINUTE));
        }
    });
    // After the decision: a promoted candidate serves everyone; one still undecided keeps its last weight.
    const share = run.outcome === "promoted" ? 1 : run.outcome === "undecided" ? (run.weights.at(-1)?.[1] ?? 0) / 100 : 0;
    for (let start = run.decidedAtMs; share > 0 && start < horizonMs; start = (Math.floor(start / MINUTE) + 1) * MINUTE) {
        const end = Math.min(horizonMs, (Math.floor(start / MINUTE) + 1) * MINUTE);
        excess += ((share * stream.model.requestsPerSecond * (end - start)) / 1000) * worseBy(Math.floor(start / MINUTE));
    }
    return excess;
}

/** The horizons excess 5xx are counted to: the first hour of a release, and its first day. */
export const EXCESS_HORIZONS_MS = { hour: HORIZON_MS, day: 24 * 60 * 60_000 } as const;

/**
 * How long a run may go on: a rollout still judging after the hour keeps judging (neither algorithm has a limit
 * on gathering evidence), so each is run until it decides, or for a day, the last horizon anything is counted to.
 */
export const RUN_LIMIT_MS = EXCESS_HORIZONS_MS.day;

export interface AlgorithmSummary {
    readonly runs: number;
    readonly rolledBack: number;
    readonly promoted: number;
    readonly undecided: number;
    /** Mean minutes from the start to the decision (promotion or rollback). */
    readonly meanDecisionMinutes: number;
    /** Mean minutes to promotion, over the runs that promoted. */
    readonly meanPromotionMinutes?: number;
    /** Mean requests served by the candidate within the horizon (for a regression: by a bad candidate). */
    readonly meanCandidateRequests: number;
    /** Mean 5xx beyond the stable's rate the candidate answered within an hour, and within a day. */
    readonly meanExcessErrorsHour: number;
    readonly meanExcessErrorsDay: number;
}

export interface ScenarioResult {
    readonly scenario: Scenario;
    readonly ours: AlgorithmSummary;
    readonly flagger: AlgorithmSummary;
}

function summarize(runs: readonly RunResult[], served: readonly number[], excess: readonly { readonly hour: number; readonly day: number }[]): AlgorithmSummary {
    const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
    const promoted = runs.filter((r) => r.outcome === "promoted");
    return {
        runs: runs.length,
        rolledBack: runs.filter((r) => r.outcome === "rolledBack").length,
        promoted: promoted.length,
        undecided: runs.filter((r) => r.outcome === "undecided").length,
        meanDecisionMinutes: mean(runs.map((r) => r.decidedAtMs / 60_000)),
        ...(promoted.length > 0 && { meanPromotionMinutes: mean(promoted.map((r) => r.decidedAtMs / 60_000)) }),
        meanCandidateRequests: mean(served),
        meanExcessErrorsHour: mean(excess.map((e) => e.hour)),
        meanExcessErrorsDay: mean(excess.map((e) => e.day)),
    };
}

/** The tick of the simulated traffic: fine enough for both algorithms' intervals and windows. */
function tickMs(intervals: readonly number[]): number {
    const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
    return intervals.reduce(gcd);
}

/**
 * How the benchmark runs: Flagger's analysis, and who gets Flagger's tutorial load tester (20 requests/s to the
 * canary alone, counted in its checks): nobody, Flagger as its tutorial runs it, or both (ours through a loadTest
 * webhook that runs it each interval).
 */
export interface BenchSetup {
    readonly analysis: FlaggerAnalysis;
    readonly loadTester: "none" | "flagger" | "both";
}

export const BENCH_SETUP: BenchSetup = { analysis: FLAGGER_DEFAULTS, loadTester: "none" };

/** Each algorithm's run of one seed of one scenario, on one stream. */
export async function runPair(prepared: PreparedRollout, scenario: Scenario, seed: number, setup: BenchSetup = BENCH_SETUP) {
    const flagger = setup.analysis;
    const cuts = [...new Set([0, 100, ...prepared.settings.rollout.steps, ...flaggerWeights(flagger)])].sort((a, b) => a - b);
    const stream = new TrafficStream(scenario.traffic, cuts, tickMs([prepared.settings.rollout.intervalMs, flagger.intervalMs, flagger.successRateWindowMs, flagger.latencyWindowMs]), seed);
    // The load tester's requests are drawn apart from the users', from the same versions: they judge, they are not served to anyone.
    const loadTest = () => new TrafficStream({ ...scenario.traffic, requestsPerSecond: LOAD_TESTER_RATE }, [0, 100], stream.tickMs, (seed ^ 0x5bd1e995) >>> 0, seed);
    const ours = await runOurs(prepared, stream, RUN_LIMIT_MS, setup.loadTester === "both" ? loadTest() : undefined);
    const theirs = runFlagger(stream, flagger, RUN_LIMIT_MS, setup.loadTester === "none" ? undefined : loadTest());
    return { stream, ours, flagger: theirs };
}

/** `runs` seeds of every scenario; seed i of a scenario is the same traffic for both algorithms. */
export async function benchmark(prepared: PreparedRollout, scenarios: readonly Scenario[], runs: number, firstSeed = 1, setup: BenchSetup = BENCH_SETUP): Promise<ScenarioResult[]> {
    const results: ScenarioResult[] = [];
    for (const [index, scenario] of scenarios.entries()) {
        const ours: RunResult[] = [];
        const flagger: RunResult[] = [];
        const servedOurs: number[] = [];
        const servedFlagger: number[] = [];
        const excess = (stream: TrafficStream, run: RunResult) => ({ hour: excessErrors(stream, run, EXCESS_HORIZONS_MS.hour), day: excessErrors(stream, run, EXCESS_HORIZONS_MS.day) });
        const excessOurs: { hour: number; day: number }[] = [];
        const excessFlagger: { hour: number; day: number }[] = [];
        for (let i = 0; i < runs; i++) {
            const pair = await runPair(prepared, scenario, firstSeed + index * 1_000_003 + i, setup);
            ours.push(pair.ours);
            flagger.push(pair.flagger);
            servedOurs.push(candidateRequests(pair.stream, pair.ours, HORIZON_MS));
            servedFlagger.push(candidateRequests(pair.stream, pair.flagger, HORIZON_MS));
            excessOurs.push(excess(pair.stream, pair.ours));
            excessFlagger.push(excess(pair.stream, pair.flagger));
        }
        results.push({ scenario, ours: summarize(ours, servedOurs, excessOurs), flagger: summarize(flagger, servedFlagger, excessFlagger) });
    }
    return results;
}

export interface TargetCheck {
    readonly scenario: string;
    readonly target: string;
    readonly met: boolean;
    readonly detail: string;
}

/** Whether a count of `runs` is within a budget of `percent`, allowing for the runs' own noise (3 standard errors). */
export function withinBudget(count: number, runs: number, percent: number): boolean {
    const p = percent / 100;
    return count / runs <= p + 3 * Math.sqrt((p * (1 - p)) / runs);
}

/**
 * The fewest excess 5xx, on average, that any test keeping both budgets serves before it rolls back a candidate that
 * is steadily worse on errors, with the stable's rate known exactly (unknown, it takes more): Wald's bound on the
 * expected number of observations of a sequential test, times the excess rate. Undefined for a scenario whose
 * rates change over time, behind retries, or whose candidate is not worse on errors.
 */
export function leastExcessErrors(scenario: Scenario, analysis: AnalysisSettings): number | undefined {
    const { stable, candidate, phases, bursts, retries } = scenario.traffic;
    const [p0, p1] = [stable.errorRate, candidate.errorRate];
    // Behind retries a test that counts attempts learns more per request than one that counts what callers saw: no
    // one bound holds for both.
    if ((retries ?? 0) > 0 || (phases?.length ?? 0) > 0 || bursts !== undefined || !(p1 > p0) || p0 <= 0 || p1 >= 1) return undefined;
    const alpha = analysis.falseRollbackPercent / 100;
    const beta = analysis.missedRegressionPercent / 100;
    const kl = p1 * Math.log(p1 / p0) + (1 - p1) * Math.log((1 - p1) / (1 - p0));
    const observations = ((1 - beta) * Math.log((1 - beta) / alpha) + beta * Math.log(beta / (1 - alpha))) / kl;
    return observations * (p1 - p0);
}

/**
 * The targets: on every scenario, the error budget (a healthy candidate rolled back at most falseRollback, a bad one
 * promoted at most missedRegression, within the runs' noise) and, on a regression, no more excess 5xx in a day than
 * Flagger (with the least any test within the budgets serves, where that is known); on the eight, at most half
 * Flagger's bad requests, and a healthy candidate promoted once baked (within bakeTime, or Flagger's time if longer,
 * and two intervals).
 */
export function targetChecks(results: readonly ScenarioResult[], { analysis, intervalMs }: RolloutSettings, setup: BenchSetup = BENCH_SETUP): TargetCheck[] {
    return results.flatMap(({ scenario, ours, flagger }): TargetCheck[] => {
        const original = SCENARIOS.includes(scenario);
        if (scenario.regression) {
            // Wald's bound counts every observation as a request someone was served: a load tester's are not.
            const least = setup.loadTester === "none" ? leastExcessErrors(scenario, analysis) : undefined;
            const excessTarget = {
                scenario: scenario.name,
                target: "excess 5xx in a day <= Flagger's",
                met: ours.meanExcessErrorsDay <= flagger.meanExcessErrorsDay,
                detail: `${Math.round(ours.meanExcessErrorsDay)} vs ${Math.round(flagger.meanExcessErrorsDay)}${least === undefined ? "" : `; any test within the budgets serves at least ${Math.round(least)}`}`,
            };
            return [
                excessTarget,
                { scenario: scenario.name, target: `bad promoted <= missedRegression (${analysis.missedRegressionPercent} %)`, met: withinBudget(ours.promoted, ours.runs, analysis.missedRegressionPercent), detail: `${ours.promoted} of ${ours.runs}` },
                ...(original ? [{ scenario: scenario.name, target: "bad requests <= half of Flagger's", met: ours.meanCandidateRequests <= flagger.meanCandidateRequests / 2, detail: `${Math.round(ours.meanCandidateRequests)} vs ${Math.round(flagger.meanCandidateRequests)}` }] : []),
            ];
        }
        return [
            { scenario: scenario.name, target: `false rollbacks <= falseRollback (${analysis.falseRollbackPercent} %)`, met: withinBudget(ours.rolledBack, ours.runs, analysis.falseRollbackPercent), detail: `${ours.rolledBack} of ${ours.runs}` },
            ...(original
                ? [
                      {
                          scenario: scenario.name,
                          target: "promoted once baked",
                          // Two intervals' slack: one to decide, and one for an interval without candidate requests (at 5 % of 1 request/s, one in
                          // twenty), which does not count toward the bake.
                          met: (ours.meanPromotionMinutes ?? Infinity) <= Math.max(analysis.bakeTimeMs / 60_000, flagger.meanPromotionMinutes ?? Infinity) + (2 * intervalMs) / 60_000,
                          detail: `${(ours.meanPromotionMinutes ?? NaN).toFixed(1)} min; bakeTime ${analysis.bakeTimeMs / 60_000} min, Flagger ${(flagger.meanPromotionMinutes ?? NaN).toFixed(1)} min`,
                      },
                  ]
                : []),
        ];
    });
}
