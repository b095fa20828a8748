// `npm run bench:rollout`'s measurements: rollouts of one canary simulated many times per scenario, each run
// driven twice on one stream of traffic, once by our driver (the very `runRollout` of `npm run rollout`, on a
// simulated clock, engine and Prometheus) and once by Flagger's algorithm, then summed up per scenario.
import { show } from "../components/config/config-reader";
import { stackFileConfig } from "../scripts/mock-program";
import type { ConfigEdit, Expectation, StackConfig } from "./config-edit";
import { applyEdits, asStackConfig, checkExpected, valueAt } from "./config-edit";
import { Clock, PreparedRollout, prepareRollout, runRollout } from "./driver";
import { RolloutRefusal } from "./plan";
import type { StackEngine } from "./engines";
import { FLAGGER_DEFAULTS, FlaggerAnalysis, flaggerWeights, RunResult, runFlagger } from "./flagger";
import { TrafficModel, TrafficStream, VersionProfile } from "./simulation";

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

const at = (requestsPerSecond: number, candidate: Partial<VersionProfile>): TrafficModel => ({ requestsPerSecond, stable: STABLE, candidate: { ...STABLE, ...candidate } });

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

/** One run of our driver on `stream`: the prepared rollout of one canary, its evidence read off the stream. */
export async function runOurs(prepared: PreparedRollout, stream: TrafficStream, horizonMs: number): Promise<RunResult> {
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
        hold: () => undefined,
        log: () => undefined,
        clock,
        webhook: () => Promise.resolve(undefined),
        evidence: () => {
            const percent = stack.weights.at(-1)?.[1] ?? 0;
            const window = stream.window(tick(now - prepared.settings.rollout.intervalMs), tick(now), percent);
            return Promise.resolve({ candidate: window.candidate, stable: window.stable });
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
        const until = Math.min(run.weights[i + 1]?.[0] ?? run.decidedAtMs, run.decidedAtMs);
        const ticks = [Math.round(from / stream.tickMs), Math.round(until / stream.tickMs)] as const;
        if (percent > 0 && ticks[1] > ticks[0]) served += stream.window(ticks[0], ticks[1], percent).candidate.requests;
    });
    if (run.outcome === "promoted") served += (stream.model.requestsPerSecond * (horizonMs - run.decidedAtMs)) / 1000;
    return served;
}

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
}

export interface ScenarioResult {
    readonly scenario: Scenario;
    readonly ours: AlgorithmSummary;
    readonly flagger: AlgorithmSummary;
}

function summarize(runs: readonly RunResult[], served: readonly number[]): AlgorithmSummary {
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
    };
}

/** The tick of the simulated traffic: fine enough for both algorithms' intervals and windows. */
function tickMs(intervals: readonly number[]): number {
    const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
    return intervals.reduce(gcd);
}

/** Each algorithm's run of one seed of one scenario, on one stream. */
export async function runPair(prepared: PreparedRollout, scenario: Scenario, seed: number, flagger: FlaggerAnalysis = FLAGGER_DEFAULTS) {
    const cuts = [...new Set([0, 100, ...prepared.settings.rollout.steps, ...flaggerWeights(flagger)])].sort((a, b) => a - b);
    const stream = new TrafficStream(scenario.traffic, cuts, tickMs([prepared.settings.rollout.intervalMs, flagger.intervalMs, flagger.successRateWindowMs, flagger.latencyWindowMs]), seed);
    const ours = await runOurs(prepared, stream, HORIZON_MS);
    const theirs = runFlagger(stream, flagger, HORIZON_MS);
    return { stream, ours, flagger: theirs };
}

/** `runs` seeds of every scenario; seed i of a scenario is the same traffic for both algorithms. */
export async function benchmark(prepared: PreparedRollout, scenarios: readonly Scenario[], runs: number, firstSeed = 1): Promise<ScenarioResult[]> {
    const results: ScenarioResult[] = [];
    for (const [index, scenario] of scenarios.entries()) {
        const ours: RunResult[] = [];
        const flagger: RunResult[] = [];
        const servedOurs: number[] = [];
        const servedFlagger: number[] = [];
        for (let i = 0; i < runs; i++) {
            const pair = await runPair(prepared, scenario, firstSeed + index * 1_000_003 + i);
            ours.push(pair.ours);
            flagger.push(pair.flagger);
            servedOurs.push(candidateRequests(pair.stream, pair.ours, HORIZON_MS));
            servedFlagger.push(candidateRequests(pair.stream, pair.flagger, HORIZON_MS));
        }
        results.push({ scenario, ours: summarize(ours, servedOurs), flagger: summarize(flagger, servedFlagger) });
    }
    return results;
}

export interface TargetCheck {
    readonly scenario: string;
    readonly target: string;
    readonly met: boolean;
    readonly detail: string;
}

/** The targets: at most half Flagger's bad requests; no more false rollbacks; a healthy candidate promoted no later. */
export function targetChecks(results: readonly ScenarioResult[]): TargetCheck[] {
    return results.flatMap(({ scenario, ours, flagger }): TargetCheck[] => {
        if (scenario.regression) {
            return [{ scenario: scenario.name, target: "bad requests <= half of Flagger's", met: ours.meanCandidateRequests <= flagger.meanCandidateRequests / 2, detail: `${Math.round(ours.meanCandidateRequests)} vs ${Math.round(flagger.meanCandidateRequests)}` }];
        }
        return [
            { scenario: scenario.name, target: "false rollbacks <= Flagger's", met: ours.rolledBack <= flagger.rolledBack, detail: `${ours.rolledBack} vs ${flagger.rolledBack} of ${ours.runs}` },
            { scenario: scenario.name, target: "promoted no later than Flagger", met: (ours.meanPromotionMinutes ?? Infinity) <= (flagger.meanPromotionMinutes ?? Infinity), detail: `${(ours.meanPromotionMinutes ?? NaN).toFixed(1)} vs ${(flagger.meanPromotionMinutes ?? NaN).toFixed(1)} min` },
        ];
    });
}
