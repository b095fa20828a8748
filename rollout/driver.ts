// The rollout loop: apply a step through the engine, wait an interval, judge each candidate by Prometheus,
// then advance, hold or roll back; after the last step, promote as config. Every change is a config edit
// applied by the engine, so the stack file always holds what was last applied, rolled back or promoted.
import { isDeepStrictEqual } from "util";
import { ConfigError } from "../components/config/config-reader";
import type { Settings } from "../components/config/config";
import type { NotifyEvent, WebhookKind } from "../components/config/rollout-config";
import { checkedPlan } from "../components/specs/checked-plan";
import { planTraffic } from "../components/plan/plan";
import { ProgramRun, projectName, runProgramWith } from "../lib/mock-program";
import { StackFileError, StackFileWriteError } from "../lib/stack-file";
import { promDuration, ReleaseCounters, releaseCounters, ReleaseQueries, releaseQueries } from "../components/specs/observability-specs";
import { AnalysisState, bakeIntervals, decide, judge, promotable, recordOf, SequentialTest, ServiceEvidence, testBounds, Verdict } from "./analysis";
import { OperatorRequest, RolloutChannel, ServiceStatus, TakenOver, TestStatus } from "./control";
import { objectChanges, planMismatch } from "./diff";
import { applyEdits, ChangedUnderRollout, ConfigEdit, ConfigPath, configSource, Expectation, pathKey, plain, StackConfig, valueAt, valueDigest } from "./config-edit";
import type { StackEngine } from "./engines";
import type { HeldRollout } from "./lock";
import { RolloutPhases, rolloutPhases, RolloutRefusal, RolloutTarget, rolloutTargets } from "./plan";
import { metricReadings, QueryTrace, releaseEvidence } from "./prometheus";
import type { DecisionEntry, DecisionLog, ServiceWeights } from "./decision-log";
import type { MetricReading } from "./metrics";
import { MetricQuery, metricQueries } from "./metrics";
import { histogramQuantile } from "./statistics";
import { callWebhook, WebhookAnswer, WebhookPayload } from "./webhooks";

/** Everything a rollout needs, checked before anything is changed. */
export interface PreparedRollout {
    readonly stack: string;
    readonly config: StackConfig;
    readonly settings: Settings;
    readonly targets: readonly RolloutTarget[];
    readonly phases: RolloutPhases;
    readonly queries: Readonly<Record<string, ReleaseQueries>>;
    /** The counters the driver reads each interval's counts from (releaseQueries' first three, exactly). */
    readonly counters: Readonly<Record<string, ReleaseCounters>>;
    /** Each service's custom metrics, their queries rendered for its candidate and stable version. */
    readonly metricQueries: Readonly<Record<string, readonly MetricQuery[]>>;
    /** The stack's keys that hold a secret: the rollout's record keeps only digests of their values. */
    readonly secretKeys: readonly string[];
}

/** What identifies a target's release: a held rollout resumes only if the stack still releases the same. */
const releaseOf = (t: RolloutTarget) => ({ service: t.service, release: t.release, stable: t.stableVersion, candidate: t.candidateVersion, weightPath: t.weightPath, activeColor: t.activeColor });

/**
 * Reads the stack's config, checks it and the services asked for, and builds every phase's config; each phase
 * is checked as the program checks it (every check it makes before creating anything), so a rollout never
 * starts towards a config `pulumi up` refuses.
 */
export async function prepareRollout(engine: StackEngine, stack: string, services: readonly string[], resume?: HeldRollout, rollbackOnly = false): Promise<PreparedRollout> {
    const { config, secretKeys } = await engine.readConfig();
    const { settings } = checkedPlan(configSource(config, secretKeys));
    const checked = rolloutTargets(settings, config, services, projectName());
    if (resume !== undefined) {
        // Held before these were recorded: the file predates them, and is taken as judged by the stack's own.
        const { steps, intervalMs, interval } = settings.rollout;
        const judgedBy = [
            { key: "rollout.steps", held: resume.steps, now: steps, show: (v: unknown) => JSON.stringify(v) },
            { key: "rollout.interval", held: resume.intervalMs, now: intervalMs, show: (v: unknown) => (v === intervalMs ? interval : `${String(v)}ms`) },
        ].filter((k) => !rollbackOnly && k.held !== undefined && !isDeepStrictEqual(plain(k.held), plain(k.now)));
        if (judgedBy.length > 0) {
            throw new RolloutRefusal(
                judgedBy.map((k) => ({
                    key: k.key,
                    value: k.show(k.now),
                    allowed: `the held rollout was judged with ${k.key} ${k.show(k.held)}: its step, its proof step and its bake mean nothing under another`,
                    fix: `set it back (${k.key} ${k.show(k.held)}) to resume, or roll the held rollout back (npm run rollout -- abort --stack ${stack} --reason "${k.key} changed") and start a new one`,
                })),
            );
        }
        const changed = resume.targets.filter((held) => !isDeepStrictEqual(plain(releaseOf(held)), plain(releaseOf(checked.find((t) => t.service === held.service) ?? held))));
        if (changed.length > 0) {
            throw new RolloutRefusal(
                changed.map((held) => {
                    const now = checked.find((t) => t.service === held.service);
                    return {
                        key: `services.${held.service}`,
                        value: now === undefined ? "(changed)" : `${now.stableVersion} -> ${now.candidateVersion}`,
                        allowed: `the held rollout released ${held.stableVersion} -> ${held.candidateVersion}, and the stack has changed since it was held, so its plan no longer applies`,
                        fix: `put services.${held.service} back as the held rollout left it and resume, or forget the held rollout (pulumi stack tag rm rollout.state; a rehearsal's tags are in .rollout/${stack}.tags.json) and start a new one: npm run rollout -- --stack ${stack} --service ${held.service}`,
                    };
                }),
            );
        }
    }
    // A resumed rollout goes back to where it started, not to where it was held.
    const targets = resume?.targets ?? checked;
    const phases = rolloutPhases(targets, config, settings);
    const check = (label: string, phaseConfig: StackConfig): void => {
        try {
            checkedPlan(configSource(phaseConfig, secretKeys));
        } catch (error) {
            if (!(error instanceof ConfigError)) throw error;
            throw new RolloutRefusal(error.problems.map((p) => ({ ...p, allowed: `${p.allowed} (in the config ${label} would apply)` })));
        }
    };
    phases.steps.forEach((s, i) => {
        check(`step ${i + 1} (${s.percent}%)`, s.config);
    });
    if (phases.switch) check("the blue/green switch", phases.switch.config);
    if (phases.drain) check("promotion (every request to the candidates first)", phases.drain.config);
    check("promotion", phases.promotion.config);
    check("rollback", phases.rollback.config);
    const plan = planTraffic(settings);
    const { metrics } = settings.rollout.analysis;
    const metricQueriesOf = (t: RolloutTarget) => metricQueries(metrics, t.service, plan.services.find((s) => s.name === t.service)?.namespace ?? "", promDuration(settings.rollout.intervalMs), { stable: t.stableVersion, candidate: t.candidateVersion });
    return { stack, config, settings, targets, phases, secretKeys, queries: releaseQueries(plan, settings.rollout.intervalMs), counters: releaseCounters(plan), metricQueries: Object.fromEntries(targets.map((t) => [t.service, metricQueriesOf(t)])) };
}

/** What the driver tells of an event, for a notification: where it stands, what happened, why, who, the numbers. */
export interface RolloutNews {
    readonly phase: string;
    readonly headline: string;
    readonly reason?: string;
    readonly actor?: string;
    readonly numbers: readonly string[];
}

/** stopped: the stack file changed under the rollout, or could not be written; it needs a person (exit 2). */
export type OutcomeKind = "promoted" | "rolledBack" | "held" | "stopped";

export interface Outcome {
    readonly kind: OutcomeKind;
    readonly reason: string;
    /** The metrics the last decision was made on, a line per service. */
    readonly metrics: readonly string[];
}

export interface Clock {
    now(): number;
    /** Resolves after `ms`, or early (false) when `signal` aborts. */
    sleep(ms: number, signal: AbortSignal): Promise<boolean>;
}

export const realClock: Clock = {
    now: () => Date.now(),
    sleep: (ms, signal) =>
        new Promise((resolve) => {
            if (signal.aborted) {
                resolve(false);
                return;
            }
            const onAbort = () => {
                clearTimeout(timer);
                resolve(false);
            };
            const timer = setTimeout(() => {
                signal.removeEventListener("abort", onAbort);
                resolve(true);
            }, ms);
            signal.addEventListener("abort", onAbort, { once: true });
        }),
};

export interface DriverOptions {
    readonly prepared: PreparedRollout;
    readonly engine: StackEngine;
    /** Aborted on Ctrl-C. */
    readonly signal: AbortSignal;
    readonly onInterrupt: "rollback" | "hold";
    /** A held rollout to continue. */
    readonly resume?: HeldRollout;
    /**
     * The rollout's record on the stack: published as it goes (the state to resume from included), and polled for
     * operators' requests. Without one (the benchmark's simulated runs) nobody can watch or steer the rollout.
     */
    readonly channel?: RolloutChannel;
    /** A request to act on at once: an operator's abort or promote of a held rollout, carried out by this process. */
    readonly request?: OperatorRequest;
    /** The decision log: a line per update, decision, action and the outcome (and the start, from the channel's last action). */
    readonly decisions?: DecisionLog;
    /** Tells the team's channels (rollout.notify): called, never awaited, at the start, each step, an action, the outcome. */
    readonly notify?: (event: NotifyEvent, what: RolloutNews) => void;
    readonly log: (line: string) => void;
    readonly clock?: Clock;
    readonly webhook?: (kind: WebhookKind, payload: WebhookPayload) => Promise<WebhookAnswer | undefined>;
    readonly evidence?: (target: RolloutTarget, counters: ReleaseCounters, signal: AbortSignal) => Promise<ServiceEvidence>;
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const fmt = (n: number | undefined, digits: number) => (n === undefined ? "-" : n.toFixed(digits).replace(/\.0+$/, ""));

function describe(target: RolloutTarget, evidence: ServiceEvidence, verdict: Verdict): string {
    if (evidence.error !== undefined) return `${target.service}: ${verdict.reasons.join(", ")}`;
    const side = (version: string, m: ServiceEvidence["candidate"]) => {
        const p95 = m === undefined ? undefined : histogramQuantile(0.95, m.latency);
        return `${version} ${fmt(m?.requests, 0)} req, ${fmt(m?.errors, 0)} 5xx, p95 ${fmt(p95, 1)}ms`;
    };
    const { errors, latency } = verdict.record;
    return `${target.service}: candidate ${side(target.candidateVersion, evidence.candidate)} | stable ${side(target.stableVersion, evidence.stable)} -> limits ${verdict.limits}, errors test ${errors.outcome}, latency test ${latency.outcome} (${verdict.reasons.join(", ")})`;
}

/** promote: an operator asked for the promotion now (promote --full). */
type Judged = { readonly decision: "advance" | "rollback" | "interrupted" | "promote"; readonly reason: string };

/** How often a waiting rollout looks for operators' requests. */
export const REQUEST_POLL_MS = 5_000;

/** How a wait ended: its time passed, Ctrl-C, or an operator's abort or promote --full. */
type Waited = "elapsed" | "interrupted" | "abort" | "promoteNow";

/** Omit over each member of a union, so a discriminated union stays one. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A test's evidence for `status`, against the bounds where it concludes. */
const testStatus = (t: SequentialTest, promotionAt: number, rollbackAt: number, ownAt: number): TestStatus => ({ outcome: t.outcome, rollback: t.rollback, rollbackAt, promotion: t.promotion, promotionAt, own: t.own ?? 0, ownAt });

/** The key a rollout edit owns: the path up to the first list index (a list is owned whole). */
function ownedPath(path: ConfigPath): ConfigPath {
    const index = path.findIndex((part) => typeof part === "number");
    return index === -1 ? path : (path.slice(0, index) as unknown as ConfigPath);
}

/** A preview planned changes an update should not make (or missed one it should): nothing was applied. */
export class UnexpectedPlan extends Error {
    constructor(
        readonly update: string,
        readonly problems: readonly string[],
    ) {
        super(`the preview of "${update}" does not plan exactly that update's changes, so nothing was applied: ${problems.join("; ")}`);
        this.name = "UnexpectedPlan";
    }
}

class Rollout {
    private state: AnalysisState;
    /** The program's runs under the mocks, by config: what each update should change. */
    private readonly runs = new Map<string, Promise<ProgramRun>>();
    private lastMetrics: string[] = [];
    private readonly clock: Clock;
    private readonly p: PreparedRollout;

    /** Each key the rollout edits, with its value as the rollout last read or wrote it. */
    private readonly owned = new Map<string, Expectation>();
    /** Keys someone else changed during the rollout: theirs now, left as they are by the rollback. */
    private readonly yielded = new Set<string>();

    /** Where the rollout stands: the step being applied or judged, or steps.length from the promotion on. */
    private at = 0;
    /** Another runner took the rollout over: its outcome is theirs to tell. */
    private takenOver = false;
    /** The last step applied, for the outcome's words after a skip (kept across a hold). */
    private appliedStep?: number;
    /** Set when the rollout is held for `resume`: the step it continues from. */
    private heldAt?: number;
    /** Operators' requests in force: a pause (no advance, no promotion), a promotion asked for, an abort. */
    private paused?: OperatorRequest;
    private promote?: "analysis" | "full";
    private aborted?: OperatorRequest;
    /** For the decision log: each service as the last interval judged it, with the queries it sent. */
    private judged: DecisionEntry["services"] = [];
    /** For the decision log: the phase's label, and each service's shares of requests as the last update left them. */
    private label = "start";
    private weights: Record<string, ServiceWeights>;

    constructor(private readonly o: DriverOptions) {
        this.clock = o.clock ?? realClock;
        this.p = o.prepared;
        this.state = { services: o.resume?.analysis ?? {}, progressSinceMs: this.clock.now() };
        this.at = o.resume?.stepIndex ?? 0;
        // A promotion asked for before the hold is still asked for.
        this.promote = o.resume?.promote;
        this.appliedStep = o.resume?.appliedStep;
        // A resumed rollout stands where its last step applied left it (a guard's stop holds it before the next).
        const resumedAt = o.resume === undefined ? undefined : o.prepared.phases.steps[o.resume.appliedStep ?? Math.min(o.resume.stepIndex, o.prepared.phases.steps.length - 1)];
        this.weights = this.weightsAt(resumedAt?.percent ?? 0);
        const { steps, switch: switched, drain, promotion, rollback } = o.prepared.phases;
        for (const edit of [...steps.flatMap((s) => s.edits), ...(switched?.edits ?? []), ...(drain?.edits ?? []), ...promotion.edits, ...rollback.edits]) {
            const path = ownedPath(edit.path);
            this.owned.set(pathKey(path), { path, value: plain(valueAt(o.prepared.config, path)) });
        }
        // Resumed: each key is expected as the rollout left it when it was held, not as the file holds it now.
        for (const left of o.resume?.written ?? []) {
            const key = pathKey(left.path);
            if (this.owned.has(key)) this.owned.set(key, "digest" in left ? left : { path: left.path, value: plain(left.value) });
        }
    }

    private get services(): string[] {
        return this.p.targets.map((t) => t.service);
    }

    /** Each service's shares at a step of `percent`: a canary's candidate takes it; a blue/green one is mirrored it. */
    private weightsAt(percent: number, after: "step" | "switch" | "promotion" = "step"): Record<string, ServiceWeights> {
        const all = (t: RolloutTarget): ServiceWeights => {
            if (after === "promotion" || (after === "switch" && t.release === "blueGreen")) return { stable: 0, candidate: 100 };
            return t.release === "canary" ? { stable: 100 - percent, candidate: percent } : { stable: 100, candidate: 0, mirrored: percent };
        };
        return Object.fromEntries(this.p.targets.map((t) => [t.service, after === "switch" && t.release === "canary" ? this.weights[t.service] : all(t)]));
    }

    /** A line of the decision log, at the driver's time. */
    /** A decision in the log, with each service as the last interval judged it (none yet, in a run resumed at the promotion). */
    private decided(decision: "advance" | "hold" | "rollback", reason: string): void {
        this.logged({ event: "decision", phase: this.label, step: this.at + 1, weights: this.weights, decision, reason, services: this.judged });
    }

    private told(event: NotifyEvent, news: Omit<RolloutNews, "phase" | "numbers">): void {
        this.o.notify?.(event, { phase: this.label, numbers: this.lastMetrics, ...news });
    }

    private logged(entry: DistributiveOmit<Parameters<DecisionLog["append"]>[0], "at">): void {
        this.o.decisions?.append({ ...entry, at: new Date(this.clock.now()).toISOString() });
    }

    private async webhook(kind: WebhookKind, percent?: number): Promise<WebhookAnswer | undefined> {
        const payload: WebhookPayload = { stack: this.p.stack, services: this.services, phase: kind, ...(percent !== undefined && { percent }) };
        if (this.o.webhook !== undefined) return this.o.webhook(kind, payload);
        const hook = this.p.settings.rollout.webhooks[kind];
        return hook === undefined ? undefined : callWebhook(hook, payload);
    }

    /** What `resume` continues from at `stepIndex`: the analysis so far, and each owned key as it was last written. */
    private resumeState(stepIndex: number): HeldRollout {
        // A key holding a secret is kept as its value's digest: the record is in the stack's tags, which are not encrypted.
        const secret = (path: ConfigPath) => this.p.secretKeys.includes(path[0]);
        const written = [...this.owned].filter(([key]) => !this.yielded.has(key)).map(([, e]): Expectation => (secret(e.path) && "value" in e ? { path: e.path, digest: valueDigest(e.value) } : e));
        const { steps, intervalMs } = this.p.settings.rollout;
        return { stack: this.p.stack, services: this.services, targets: this.p.targets, stepIndex, analysis: this.state.services, heldAt: new Date(this.clock.now()).toISOString(), written, steps, intervalMs, ...(this.promote !== undefined && { promote: this.promote }), ...(this.appliedStep !== undefined && { appliedStep: this.appliedStep }) };
    }

    /** Publishes where the rollout stands on the stack, with what `resume` needs to continue it from anywhere. */
    private async publish(change: Parameters<RolloutChannel["publish"]>[0] = {}): Promise<void> {
        await this.o.channel?.publish({ phase: this.paused === undefined ? "running" : "paused", step: this.at + 1, resume: this.resumeState(this.at), ...change });
    }

    /**
     * Acts on an operator's request. pause, resume and promote (once shown no worse and baked) change what the
     * next decisions may do; abort and promote --full end the wait at once (the answer).
     */
    private async act(request: OperatorRequest): Promise<Waited | undefined> {
        const ack = async (result: string) => {
            this.told("action", { headline: `${request.actor}: ${request.action}${request.full === true ? " --full" : ""} (${this.p.targets.map((t) => `${t.service} ${t.candidateVersion}`).join(", ")} on ${this.p.stack})`, reason: `${request.reason} -> ${result}`, actor: request.actor });
            this.logged({ event: "action", phase: this.label, step: this.at + 1, weights: this.weights, actor: request.actor, action: request.action, ...(request.full === true && { full: true }), reason: request.reason, result });
            await this.acknowledge(request, result);
        };
        switch (request.action) {
            case "pause":
                if (this.paused !== undefined) {
                    await ack(`already paused by ${this.paused.actor}`);
                    return undefined;
                }
                this.paused = request;
                await ack("paused: each interval is still judged, and a failing candidate still rolled back, but the rollout neither advances nor promotes until resumed");
                return undefined;
            case "resume":
                if (this.paused === undefined) {
                    await ack("not paused: nothing to resume");
                    return undefined;
                }
                this.paused = undefined;
                await ack("resumed");
                return undefined;
            case "promote":
                // A promotion asked for lifts a pause: it is the operator's go-ahead.
                this.paused = undefined;
                if (request.full === true) {
                    this.promote = "full";
                    await ack("promoting now, without the remaining steps, the analysis or the bake");
                    return "promoteNow";
                }
                this.promote = "analysis";
                await ack("the remaining steps are skipped: the candidates are promoted from this step once every test shows them no worse and they are baked");
                return undefined;
            case "abort":
                this.aborted = request;
                await ack("rolling back now");
                return "abort";
        }
    }

    /** Answers a request in the record on the stack, with where the rollout stands after acting on it. */
    private async acknowledge(request: OperatorRequest, result: string): Promise<void> {
        await this.o.channel?.acknowledge(request, result, { phase: this.paused === undefined ? "running" : "paused", resume: this.resumeState(this.at), ...(this.promote !== undefined && { promote: this.promote }) });
    }

    /** Waits `ms`, looking for operators' requests before each slice of REQUEST_POLL_MS. */
    private async wait(ms: number): Promise<Waited> {
        const until = this.clock.now() + ms;
        const channel = this.o.channel;
        if (channel === undefined) return (await this.clock.sleep(ms, this.o.signal)) ? "elapsed" : "interrupted";
        for (;;) {
            const request = await channel.request();
            const answer = request === undefined ? undefined : await this.act(request);
            if (answer !== undefined) return answer;
            const left = until - this.clock.now();
            if (left <= 0) return "elapsed";
            if (!(await this.clock.sleep(Math.min(left, REQUEST_POLL_MS), this.o.signal))) return "interrupted";
        }
    }

    private abortReason(): string {
        const by = this.aborted;
        return by === undefined ? "aborted" : `aborted by ${by.actor}: ${by.reason}`;
    }

    /**
     * The preview guard: an engine that previews (a real `pulumi up`) must plan exactly the objects, and properties,
     * the edits change in the program's own run under the mocks. Any other change (a pending edit in the checkout, a
     * new chart version, another key's typo) would ship with the update: a step stops before anything is applied; a
     * rollback goes ahead, saying so.
     */
    private async guard(edits: readonly ConfigEdit[], message: string, config: StackConfig, secretKeys: readonly string[], onMismatch: "stop" | "warn"): Promise<void> {
        const preview = this.o.engine.preview?.bind(this.o.engine);
        if (preview === undefined) return;
        const runOf = (c: StackConfig) => {
            const key = JSON.stringify(c);
            let run = this.runs.get(key);
            if (run === undefined) {
                run = runProgramWith(this.p.stack, { ...c }, secretKeys);
                this.runs.set(key, run);
            }
            return run;
        };
        const expected = objectChanges(await runOf(config), await runOf(applyEdits(config, edits)));
        const problems = planMismatch(expected, await preview(edits));
        if (problems.length === 0) return;
        if (onMismatch === "stop") throw new UnexpectedPlan(message, problems);
        this.o.log(`The ${message} also applies what the rollout did not ask for (it goes ahead: a failing candidate is taken out of traffic first): ${problems.join("; ")}`);
    }

    /**
     * Applies edits to the stack file as it is now: the engine refuses them (ChangedUnderRollout), writing nothing,
     * unless each key the rollout owns still holds what it last read or wrote. `onMismatch`: what the preview guard
     * does with a plan the edits did not ask for.
     */
    private async apply(edits: readonly ConfigEdit[], message: string, moves: { readonly label: string; readonly weights: Record<string, ServiceWeights> }, onMismatch: "stop" | "warn" = "stop"): Promise<void> {
        if (edits.length === 0) return;
        // Still this process's rollout (not taken over), before anything changes.
        await this.publish();
        const { config, secretKeys } = await this.o.engine.readConfig();
        await this.guard(edits, message, config, secretKeys, onMismatch);
        const expected = [...this.owned].filter(([key]) => !this.yielded.has(key)).map(([, entry]) => entry);
        // Refused before writing (a key changed, a file that does not read or cannot be written): the file holds what
        // it held. Anything else failed after the config was written (the update itself): it holds the edits.
        const written = (error?: unknown) => !(error instanceof ChangedUnderRollout || error instanceof StackFileError || error instanceof StackFileWriteError);
        const record = () => {
            const intended = applyEdits(config, edits);
            for (const edit of edits) {
                const key = pathKey(ownedPath(edit.path));
                const entry = this.owned.get(key);
                if (entry !== undefined) this.owned.set(key, { path: entry.path, value: plain(valueAt(intended, entry.path)) });
            }
        };
        try {
            const objects = await this.o.engine.apply(edits, `${message} (npm run rollout)`, expected);
            record();
            this.label = moves.label;
            this.weights = moves.weights;
            this.o.log(`[${time(this.clock.now())}] ${message}: ${objects.length === 0 ? "no object changed" : objects.join(", ")}`);
            this.logged({ event: "update", phase: this.label, step: this.at + 1, weights: this.weights, update: message, objects });
        } catch (error) {
            if (error instanceof ChangedUnderRollout) for (const key of error.paths) this.yielded.add(key);
            if (written(error)) record();
            throw error;
        }
        await this.publish();
    }

    /** One service as the last interval judged it, for `status`. */
    private serviceStatus(target: RolloutTarget, evidence: ServiceEvidence, verdict: Verdict, failedChecks: number): ServiceStatus {
        const { analysis, intervalMs } = this.p.settings.rollout;
        const bounds = testBounds(analysis);
        const beta = analysis.missedRegressionPercent / 100;
        const side = (version: string, m: ServiceEvidence["candidate"]) => ({ version, ...(m !== undefined && { requests: m.requests, errors: m.errors }), ...(m !== undefined && histogramQuantile(0.95, m.latency) !== undefined && { p95Ms: histogramQuantile(0.95, m.latency) }) });
        const { errors, latency, watchedIntervals } = verdict.record;
        return {
            service: target.service,
            candidate: side(target.candidateVersion, evidence.candidate),
            stable: side(target.stableVersion, evidence.stable),
            limits: verdict.limits,
            reasons: verdict.reasons,
            ...(verdict.applied !== undefined && { applied: verdict.applied }),
            failedChecks: { count: failedChecks, max: analysis.failedChecks },
            errors: testStatus(errors, Math.log(beta / 4), bounds.rollback, Math.log(2 / beta)),
            latency: testStatus(latency, Math.log(beta / 2), bounds.rollback, Math.log(2 / beta)),
            watched: { intervals: watchedIntervals ?? 0, bake: bakeIntervals(analysis, intervalMs) },
        };
    }

    /** Waits and judges intervals at one phase until it passes, must roll back, or is interrupted. */
    private async judgePhase(label: string, requiresProof: boolean): Promise<Judged> {
        const { analysis, intervalMs } = this.p.settings.rollout;
        this.state = { ...this.state, progressSinceMs: this.clock.now() };
        for (;;) {
            const loadTest = await this.webhook("loadTest");
            const next = this.clock.now() + intervalMs;
            this.o.log(`[${time(this.clock.now())}] ${label}: next decision at ${time(next)}`);
            await this.publish({ nextDecisionAt: new Date(next).toISOString() });
            const waited = await this.wait(intervalMs);
            if (waited === "interrupted") return { decision: "interrupted", reason: "interrupted" };
            if (waited === "abort") return { decision: "rollback", reason: this.abortReason() };
            if (waited === "promoteNow") return { decision: "promote", reason: "promote --full" };
            const verdicts: Record<string, Verdict> = {};
            const judged: Record<string, { target: RolloutTarget; evidence: ServiceEvidence; queries: QueryTrace[] }> = {};
            this.lastMetrics = [];
            await Promise.all(
                this.p.targets.map(async (target) => {
                    const url = this.p.settings.rollout.prometheusUrl;
                    // Every query as sent and its answer, for the decision log.
                    const queries: QueryTrace[] = [];
                    const fromPrometheus = async (t: RolloutTarget, c: ReleaseCounters, s: AbortSignal): Promise<ServiceEvidence> => {
                        const [counts, metrics] = await Promise.all([releaseEvidence(url, c, { stable: t.stableVersion, candidate: t.candidateVersion }, intervalMs, Date.now(), s, queries), metricReadings(url, this.p.metricQueries[t.service] ?? [], s, queries)]);
                        return metrics.length === 0 ? counts : { ...counts, metrics };
                    };
                    const evidence = await (this.o.evidence ?? fromPrometheus)(target, this.p.counters[target.service], this.o.signal);
                    let verdict = judge(evidence, analysis, recordOf(this.state, target.service));
                    // A load test that cannot run means the interval's evidence is not what it should be: a failed check, as in Flagger.
                    if (loadTest !== undefined && !loadTest.ok) verdict = { ...verdict, limits: "fail", reasons: [loadTest.detail, ...verdict.reasons] };
                    verdicts[target.service] = verdict;
                    judged[target.service] = { target, evidence, queries };
                    this.lastMetrics.push(describe(target, evidence, verdict));
                }),
            );
            // An operator's promotion (without --full) needs the proof here, whatever the step.
            const decision = decide(verdicts, this.state, analysis, this.clock.now(), requiresProof || this.promote === "analysis", intervalMs);
            this.state = decision.state;
            for (const line of this.lastMetrics) this.o.log(`    ${line}`);
            // Paused: what would advance holds; a rollback still goes ahead.
            const pausedBy = decision.decision === "advance" ? this.paused : undefined;
            const said = pausedBy !== undefined ? `hold: paused by ${pausedBy.actor} (${pausedBy.reason})` : `${decision.decision}${decision.decision === "advance" ? "" : `: ${decision.reason}`}`;
            this.o.log(`[${time(this.clock.now())}] ${label}: ${said}`);
            const evidence = this.p.targets.map((t) => this.serviceStatus(t, judged[t.service].evidence, verdicts[t.service], recordOf(this.state, t.service).failedChecks));
            const withQueries = evidence.map((e) => {
                const { queries, evidence: read } = judged[e.service];
                const metrics: readonly MetricReading[] | undefined = read.metrics;
                return { ...e, queries, ...(metrics !== undefined && { metrics }) };
            });
            this.judged = withQueries;
            this.decided(pausedBy !== undefined ? "hold" : decision.decision, pausedBy !== undefined ? `paused by ${pausedBy.actor} (${pausedBy.reason})` : decision.reason);
            await this.publish({ evidence, decision: `${label}: ${said}` });
            if (pausedBy !== undefined || decision.decision === "hold") continue;
            return { decision: decision.decision, reason: decision.reason };
        }
    }

    private async interrupted(stepIndex: number): Promise<Outcome> {
        if (this.o.onInterrupt === "hold") {
            this.heldAt = stepIndex;
            return { kind: "held", reason: `interrupted at ${stepIndex < this.p.phases.steps.length ? `step ${stepIndex + 1}` : "promotion"}; the stack stays as it is. Continue with npm run rollout -- resume --stack ${this.p.stack}`, metrics: this.lastMetrics };
        }
        return this.rollback("interrupted (Ctrl-C)");
    }

    /**
     * `undo` first: edits that take back a promotion whose update failed. Keys someone else changed during the
     * rollout are left as they set them. A rollback that cannot be written stops the rollout where it stands.
     */
    private async rollback(reason: string, undo: readonly ConfigEdit[] = [], stopped = false): Promise<Outcome> {
        for (;;) {
            const edits = [...undo, ...this.p.phases.rollback.edits].filter((e) => !this.yielded.has(pathKey(ownedPath(e.path))));
            try {
                await this.apply(edits, "rollback", { label: "rollback", weights: this.weightsAt(0) }, "warn");
                break;
            } catch (error) {
                if (error instanceof TakenOver) throw error;
                // Someone else changed a key meanwhile: it is theirs now (yielded), and the rest is rolled back.
                if (error instanceof ChangedUnderRollout) {
                    stopped = true;
                    continue;
                }
                const why = error instanceof Error ? error.message : String(error);
                this.o.log(`The rollback could not be applied (${why})`);
                const byHand = this.p.phases.rollback.edits.map((e) => (e.value === undefined ? `pulumi config rm --path '${pathKey(e.path)}'` : `pulumi config set --path '${pathKey(e.path)}' ${JSON.stringify(e.value)}`));
                return {
                    kind: "stopped",
                    reason: `${reason}; the rollback could not be applied either (${why}), so the stack stays as the last update left it. Fix: make the stack file readable and writable again, then roll back by hand: ${byHand.join("; ")}; pulumi up`,
                    metrics: this.lastMetrics,
                };
            }
        }
        const notified = await this.webhook("rollback");
        if (notified !== undefined && !notified.ok) this.o.log(`    ${notified.detail}`);
        const kept = this.yielded.size > 0 ? `; left as someone else set ${this.yielded.size === 1 ? "it" : "them"} during the rollout: ${[...this.yielded].join(", ")}` : "";
        return { kind: stopped ? "stopped" : "rolledBack", reason: `${reason}${stopped ? "; rolled back what the rollout moved" : ""}${kept}`, metrics: this.lastMetrics };
    }

    /**
     * The confirmPromotion gate: asked each interval until it says yes, or the progress deadline passes; and a pause,
     * which holds the promotion (without the deadline running) until it is lifted.
     */
    private async confirmed(): Promise<Judged> {
        const { analysis, intervalMs } = this.p.settings.rollout;
        let since = this.clock.now();
        for (;;) {
            const answer = await this.webhook("confirmPromotion");
            const pausedBy = this.paused;
            if (pausedBy !== undefined) {
                since = this.clock.now();
                this.o.log(`[${time(this.clock.now())}] promotion waits: paused by ${pausedBy.actor} (${pausedBy.reason})`);
                this.decided("hold", `the promotion waits: paused by ${pausedBy.actor} (${pausedBy.reason})`);
            } else if (answer === undefined || answer.ok) {
                if (answer !== undefined) this.decided("advance", `promotion confirmed: ${answer.detail}`);
                return { decision: "advance", reason: "promotion confirmed" };
            } else {
                if (this.clock.now() - since >= analysis.progressDeadlineMs) {
                    const why = `promotion not confirmed within the progress deadline: ${answer.detail}`;
                    this.decided("rollback", why);
                    return { decision: "rollback", reason: why };
                }
                this.o.log(`[${time(this.clock.now())}] promotion waits for confirmation: ${answer.detail}`);
                this.decided("hold", `the promotion waits for confirmation: ${answer.detail}`);
            }
            // An operator's promotion does not pass the gate: the gate is someone else's (a change freeze, an approval).
            const waited = await this.wait(intervalMs);
            if (waited === "interrupted") return { decision: "interrupted", reason: "interrupted" };
            if (waited === "abort") return { decision: "rollback", reason: this.abortReason() };
        }
    }

    /** Is any canary below every request now? Then the promotion moves every request to the candidates first. */
    private async belowFull(): Promise<boolean> {
        const { config } = await this.o.engine.readConfig();
        return this.p.targets.some((t) => t.release === "canary" && t.weightPath !== undefined && Number(valueAt(config, t.weightPath) ?? 0) < 100);
    }

    private async proceed(): Promise<Outcome> {
        const { steps } = this.p.phases;
        const start = this.o.resume?.stepIndex ?? 0;
        if (this.o.resume === undefined) {
            const pre = await this.webhook("preRollout");
            if (pre !== undefined && !pre.ok) return { kind: "rolledBack", reason: `${pre.detail}; nothing was changed`, metrics: [] };
        }
        const what = this.p.targets.map((t) => `${t.service} ${t.candidateVersion}`).join(", ");
        // A promotion whose update fails is taken back to the config before it, then rolled back.
        let undo: ConfigEdit[] = [];
        try {
            // A held rollout continued by an operator's abort or promote: acted on before anything moves.
            const asked = this.o.request === undefined ? undefined : await this.act(this.o.request);
            if (asked === "abort") return await this.rollback(this.abortReason());
            // promote --full, asked now or before a hold: straight to the promotion.
            let skipped = asked === "promoteNow" || this.promote === "full";
            for (let i = start; i < steps.length && !skipped; i++) {
                this.at = i;
                const step = steps[i];
                await this.apply(step.edits, `step ${i + 1}/${steps.length}: ${what} at ${step.percent}%`, { label: `step ${i + 1}/${steps.length} (${step.percent}%)`, weights: this.weightsAt(step.percent) });
                this.appliedStep = i;
                this.told("step", { headline: `${what} at ${step.percent}% on ${this.p.stack} (step ${i + 1} of ${steps.length})` });
                const judged = await this.judgePhase(`step ${i + 1}/${steps.length} (${step.percent}%)`, i === this.p.phases.proofStep);
                if (judged.decision === "interrupted") return await this.interrupted(i);
                if (judged.decision === "rollback") return await this.rollback(`at step ${i + 1} (${step.percent}%): ${judged.reason}`);
                // An operator's promotion skips the steps left (this one passed with the proof it asks for, or --full).
                skipped = this.promote !== undefined && i < steps.length - 1;
                if (skipped) this.o.log(`[${time(this.clock.now())}] promotion asked for: steps ${i + 2} to ${steps.length} skipped`);
            }
            this.at = steps.length;
            const full = this.promote === "full";
            // Whatever the step index says (a resumed rollout starts where it was held): no promotion of a candidate
            // the tests have not shown no worse, or that has not been watched for the bake, unless an operator said
            // promote --full (recorded, with the reason, in the rollout's record and its commit).
            const unproven = full ? [] : this.p.targets.filter((t) => !promotable(recordOf(this.state, t.service), this.p.settings.rollout.analysis, this.p.settings.rollout.intervalMs));
            if (unproven.length > 0) {
                const why = `${unproven.map((t) => t.service).join(", ")} reached the promotion without being shown no worse and baked (a held rollout resumed past its proof step?): not promoted`;
                this.decided("rollback", why);
                return await this.rollback(why);
            }
            await this.publish();
            const confirmation = await this.confirmed();
            if (confirmation.decision === "interrupted") return await this.interrupted(steps.length);
            if (confirmation.decision === "rollback") return await this.rollback(confirmation.reason);
            const switched = this.p.phases.switch;
            if (switched !== undefined) {
                await this.apply(switched.edits, `switch: ${what} active`, { label: "after the switch", weights: this.weightsAt(0, "switch") });
                const judged = full ? undefined : await this.judgePhase("after the switch", false);
                if (judged?.decision === "interrupted") return await this.rollback("interrupted after the switch");
                if (judged?.decision === "rollback") return await this.rollback(`after the switch: ${judged.reason}`);
            }
            const { drain, promotion } = this.p.phases;
            // Make before break: no route names the old versions when the promotion removes them, from whichever step.
            const draining = drain !== undefined && (await this.belowFull()) ? drain : undefined;
            // Whole keys (a list back as it was, not element by element), each once, as the stack holds them now.
            const { config: beforePromotion } = await this.o.engine.readConfig();
            const undone = new Map([...(draining?.edits ?? []), ...promotion.edits].map((e) => [pathKey(ownedPath(e.path)), ownedPath(e.path)]));
            undo = [...undone.values()].map((path) => {
                const value = valueAt(beforePromotion, path);
                return value === undefined ? { path } : { path, value };
            });
            const promoted = { label: "promotion", weights: this.weightsAt(100, "promotion") };
            if (draining !== undefined) await this.apply(draining.edits, `promote: ${what} take every request first`, promoted);
            await this.apply(promotion.edits, `promote: ${what}`, promoted);
        } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            // Someone else carries it out now: whatever this process would do next (a rollback included) is theirs.
            if (error instanceof TakenOver) {
                this.takenOver = true;
                return { kind: "stopped", reason: `stopped: ${message}`, metrics: this.lastMetrics };
            }
            // A change the rollout did not ask for would ship with any update, the rollback's too: held where it stands.
            if (error instanceof UnexpectedPlan) {
                this.heldAt = this.at;
                const place = this.at === 0 && this.o.resume === undefined ? "nothing was changed" : `the stack stays as the last update left it (${this.at < steps.length ? `before step ${this.at + 1}` : "before the promotion"})`;
                return { kind: "stopped", reason: `stopped: ${message}; ${place}. Fix: undo those changes in the checkout (git status, git diff), or apply them on their own first (pulumi up), then continue with npm run rollout -- resume --stack ${this.p.stack}`, metrics: this.lastMetrics };
            }
            // The stack file changed under the rollout, no longer reads, or could not be written: a person decides.
            if (error instanceof ChangedUnderRollout || error instanceof StackFileError || error instanceof StackFileWriteError) {
                this.o.log(`Stopped: ${message}; rolling back what the rollout moved`);
                return this.rollback(`stopped: ${message}`, undo, true);
            }
            this.o.log(`An update failed (${message}); rolling back`);
            return this.rollback(`an update failed: ${message}`, undo);
        }
        const asker = this.o.channel?.current.actions.filter((a) => a.action === "promote").at(-1);
        const skippedBy = asker === undefined ? "" : ` on ${asker.actor}'s ${asker.full === true ? "promote --full" : "promote"} (${asker.reason})`;
        // The last step applied (by this run, or before the hold it continues): an operator's promotion may leave the rest.
        const lastStep = this.appliedStep ?? Math.min(start, steps.length - 1);
        const after = lastStep >= steps.length - 1 ? `after ${steps.length} step${steps.length === 1 ? "" : "s"}` : `after step ${lastStep + 1} of ${steps.length}`;
        return { kind: "promoted", reason: `${what} promoted ${after}${this.promote === undefined ? "" : skippedBy}`, metrics: this.lastMetrics };
    }

    /** Carries the rollout to its outcome, and leaves that on the stack: held with what resume needs, or the outcome. */
    async run(): Promise<Outcome> {
        const started = this.o.channel?.current.actions.at(-1);
        const { steps, intervalMs, analysis } = this.p.settings.rollout;
        if (started !== undefined) {
            const targets = this.p.targets.map((t) => ({ service: t.service, release: t.release, stable: t.stableVersion, candidate: t.candidateVersion }));
            this.logged({ event: "start", phase: this.label, step: this.at + 1, weights: this.weights, actor: started.actor, action: started.action, reason: started.reason, targets, steps, intervalMs, analysis });
            this.told("start", { headline: `Rollout of ${targets.map((t) => `${t.service} ${t.candidate}`).join(", ")} on ${this.p.stack}: ${started.action === "start" ? "started" : started.action === "retry" ? "retried" : "continued"}`, reason: started.reason, actor: started.actor });
        }
        let outcome: Outcome;
        try {
            outcome = await this.proceed();
        } catch (error) {
            // Taken over while rolling back (the rollback's own publishes): the new runner has the record.
            if (!(error instanceof TakenOver)) throw error;
            this.takenOver = true;
            const taken: Outcome = { kind: "stopped", reason: `stopped: ${error.message}`, metrics: this.lastMetrics };
            this.logged({ event: "outcome", phase: this.label, step: this.at + 1, weights: this.weights, outcome: taken.kind, reason: taken.reason });
            return taken;
        }
        const held = this.heldAt !== undefined;
        const phase = held ? "held" : outcome.kind === "held" ? "held" : outcome.kind;
        this.paused = undefined;
        try {
            await this.o.channel?.publish({ phase, step: (this.heldAt ?? this.at) + 1, decision: `${outcome.kind}: ${outcome.reason}`, ...(held ? { resume: this.resumeState(this.heldAt ?? this.at) } : { resume: undefined, nextDecisionAt: undefined, runner: undefined, promote: undefined }) });
        } catch (error) {
            // Taken over: the record is the new runner's to write.
            if (!(error instanceof TakenOver)) throw error;
        }
        this.logged({ event: "outcome", phase: this.label, step: this.at + 1, weights: this.weights, outcome: outcome.kind, reason: outcome.reason });
        const what = `${this.p.targets.map((t) => `${t.service} ${t.candidateVersion}`).join(", ")} on ${this.p.stack}`;
        const told = held || outcome.kind === "held" ? (["hold", "held"] as const) : outcome.kind === "promoted" ? (["promotion", "promoted"] as const) : (["rollback", outcome.kind === "stopped" ? "stopped" : "rolled back"] as const);
        if (!this.takenOver) this.told(told[0], { headline: `${what}: ${told[1]}`, reason: outcome.reason });
        return outcome;
    }
}

/** Runs the rollout to its outcome. The caller holds the stack's lock. */
export function runRollout(options: DriverOptions): Promise<Outcome> {
    return new Rollout(options).run();
}
