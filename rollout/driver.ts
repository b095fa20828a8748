// The rollout loop: apply a step through the engine, wait an interval, judge each candidate by Prometheus,
// then advance, hold or roll back; after the last step, promote as config. Every change is a config edit
// applied by the engine, so the stack file always holds what was last applied, rolled back or promoted.
import { isDeepStrictEqual } from "util";
import { ConfigError } from "../components/config/config-reader";
import type { Settings } from "../components/config/config";
import type { WebhookKind } from "../components/config/rollout-config";
import { checkedPlan } from "../components/specs/checked-plan";
import { planTraffic } from "../components/plan/plan";
import { ProgramRun, projectName, runProgramWith } from "../lib/mock-program";
import { StackFileError, StackFileWriteError } from "../lib/stack-file";
import { promDuration, ReleaseCounters, releaseCounters, ReleaseQueries, releaseQueries } from "../components/specs/observability-specs";
import { AnalysisState, decide, judge, promotable, recordOf, ServiceEvidence, Verdict } from "./analysis";
import { objectChanges, planMismatch } from "./diff";
import { applyEdits, ChangedUnderRollout, ConfigEdit, ConfigPath, configSource, pathKey, plain, StackConfig, valueAt } from "./config-edit";
import type { StackEngine } from "./engines";
import { HeldRollout, ROLLOUT_DIR } from "./lock";
import { RolloutPhases, rolloutPhases, RolloutRefusal, RolloutTarget, rolloutTargets } from "./plan";
import { metricReadings, releaseEvidence } from "./prometheus";
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
}

/** What identifies a target's release: a held rollout resumes only if the stack still releases the same. */
const releaseOf = (t: RolloutTarget) => ({ service: t.service, release: t.release, stable: t.stableVersion, candidate: t.candidateVersion, weightPath: t.weightPath, activeColor: t.activeColor });

/**
 * Reads the stack's config, checks it and the services asked for, and builds every phase's config; each phase
 * is checked as the program checks it (every check it makes before creating anything), so a rollout never
 * starts towards a config `pulumi up` refuses.
 */
export async function prepareRollout(engine: StackEngine, stack: string, services: readonly string[], resume?: HeldRollout): Promise<PreparedRollout> {
    const { config, secretKeys } = await engine.readConfig();
    const { settings } = checkedPlan(configSource(config, secretKeys));
    const checked = rolloutTargets(settings, config, services, projectName());
    if (resume !== undefined) {
        // Held before these were recorded: the file predates them, and is taken as judged by the stack's own.
        const { steps, intervalMs, interval } = settings.rollout;
        const judgedBy = [
            { key: "rollout.steps", held: resume.steps, now: steps, show: (v: unknown) => JSON.stringify(v) },
            { key: "rollout.interval", held: resume.intervalMs, now: intervalMs, show: (v: unknown) => (v === intervalMs ? interval : `${String(v)}ms`) },
        ].filter((k) => k.held !== undefined && !isDeepStrictEqual(plain(k.held), plain(k.now)));
        if (judgedBy.length > 0) {
            throw new RolloutRefusal(
                judgedBy.map((k) => ({
                    key: k.key,
                    value: k.show(k.now),
                    allowed: `the held rollout was judged with ${k.key} ${k.show(k.held)}: its step, its proof step and its bake mean nothing under another`,
                    fix: `set it back (${k.key} ${k.show(k.held)}) to resume, or discard the held rollout (rm ${ROLLOUT_DIR}/${stack}.held.json) and start a new one`,
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
                        fix: `discard the held rollout (rm ${ROLLOUT_DIR}/${stack}.held.json) and start a new one: npm run rollout -- --stack ${stack} --service ${held.service}`,
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
    return { stack, config, settings, targets, phases, queries: releaseQueries(plan, settings.rollout.intervalMs), counters: releaseCounters(plan), metricQueries: Object.fromEntries(targets.map((t) => [t.service, metricQueriesOf(t)])) };
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
    /** Called with the state to keep when an interrupt holds the rollout. */
    readonly hold: (held: HeldRollout) => void;
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

type Judged = { readonly decision: "advance" | "rollback" | "interrupted"; readonly reason: string };

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
    private readonly owned = new Map<string, { readonly path: ConfigPath; value: unknown }>();
    /** Keys someone else changed during the rollout: theirs now, left as they are by the rollback. */
    private readonly yielded = new Set<string>();

    constructor(private readonly o: DriverOptions) {
        this.clock = o.clock ?? realClock;
        this.p = o.prepared;
        this.state = { services: o.resume?.analysis ?? {}, progressSinceMs: this.clock.now() };
        const { steps, switch: switched, drain, promotion, rollback } = o.prepared.phases;
        for (const edit of [...steps.flatMap((s) => s.edits), ...(switched?.edits ?? []), ...(drain?.edits ?? []), ...promotion.edits, ...rollback.edits]) {
            const path = ownedPath(edit.path);
            this.owned.set(pathKey(path), { path, value: plain(valueAt(o.prepared.config, path)) });
        }
        // Resumed: each key is expected as the rollout left it when it was held, not as the file holds it now.
        for (const left of o.resume?.written ?? []) {
            const entry = this.owned.get(pathKey(left.path));
            if (entry !== undefined) entry.value = plain(left.value);
        }
    }

    private get services(): string[] {
        return this.p.targets.map((t) => t.service);
    }

    private async webhook(kind: WebhookKind, percent?: number): Promise<WebhookAnswer | undefined> {
        const payload: WebhookPayload = { stack: this.p.stack, services: this.services, phase: kind, ...(percent !== undefined && { percent }) };
        if (this.o.webhook !== undefined) return this.o.webhook(kind, payload);
        const hook = this.p.settings.rollout.webhooks[kind];
        return hook === undefined ? undefined : callWebhook(hook, payload);
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
    private async apply(edits: readonly ConfigEdit[], message: string, onMismatch: "stop" | "warn" = "stop"): Promise<void> {
        if (edits.length === 0) return;
        const { config, secretKeys } = await this.o.engine.readConfig();
        await this.guard(edits, message, config, secretKeys, onMismatch);
        const expected = [...this.owned].filter(([key]) => !this.yielded.has(key)).map(([, entry]) => entry);
        // Refused before writing (a key changed, a file that does not read or cannot be written): the file holds what
        // it held. Anything else failed after the config was written (the update itself): it holds the edits.
        const written = (error?: unknown) => !(error instanceof ChangedUnderRollout || error instanceof StackFileError || error instanceof StackFileWriteError);
        const record = () => {
            const intended = applyEdits(config, edits);
            for (const edit of edits) {
                const entry = this.owned.get(pathKey(ownedPath(edit.path)));
                if (entry !== undefined) entry.value = plain(valueAt(intended, entry.path));
            }
        };
        try {
            const objects = await this.o.engine.apply(edits, `${message} (npm run rollout)`, expected);
            record();
            this.o.log(`[${time(this.clock.now())}] ${message}: ${objects.length === 0 ? "no object changed" : objects.join(", ")}`);
        } catch (error) {
            if (error instanceof ChangedUnderRollout) for (const key of error.paths) this.yielded.add(key);
            if (written(error)) record();
            throw error;
        }
    }

    /** Waits and judges intervals at one phase until it passes, must roll back, or is interrupted. */
    private async judgePhase(label: string, requiresProof: boolean): Promise<Judged> {
        const { analysis, intervalMs } = this.p.settings.rollout;
        this.state = { ...this.state, progressSinceMs: this.clock.now() };
        for (;;) {
            const loadTest = await this.webhook("loadTest");
            this.o.log(`[${time(this.clock.now())}] ${label}: next decision at ${time(this.clock.now() + intervalMs)}`);
            if (!(await this.clock.sleep(intervalMs, this.o.signal))) return { decision: "interrupted", reason: "interrupted" };
            const verdicts: Record<string, Verdict> = {};
            this.lastMetrics = [];
            await Promise.all(
                this.p.targets.map(async (target) => {
                    const url = this.p.settings.rollout.prometheusUrl;
                    const fromPrometheus = async (t: RolloutTarget, c: ReleaseCounters, s: AbortSignal): Promise<ServiceEvidence> => {
                        const [counts, metrics] = await Promise.all([releaseEvidence(url, c, { stable: t.stableVersion, candidate: t.candidateVersion }, intervalMs, Date.now(), s), metricReadings(url, this.p.metricQueries[t.service] ?? [], s)]);
                        return metrics.length === 0 ? counts : { ...counts, metrics };
                    };
                    const evidence = await (this.o.evidence ?? fromPrometheus)(target, this.p.counters[target.service], this.o.signal);
                    let verdict = judge(evidence, analysis, recordOf(this.state, target.service));
                    // A load test that cannot run means the interval's evidence is not what it should be: a failed check, as in Flagger.
                    if (loadTest !== undefined && !loadTest.ok) verdict = { ...verdict, limits: "fail", reasons: [loadTest.detail, ...verdict.reasons] };
                    verdicts[target.service] = verdict;
                    this.lastMetrics.push(describe(target, evidence, verdict));
                }),
            );
            const decision = decide(verdicts, this.state, analysis, this.clock.now(), requiresProof, intervalMs);
            this.state = decision.state;
            for (const line of this.lastMetrics) this.o.log(`    ${line}`);
            this.o.log(`[${time(this.clock.now())}] ${label}: ${decision.decision}${decision.decision === "advance" ? "" : `: ${decision.reason}`}`);
            if (decision.decision !== "hold") return { decision: decision.decision, reason: decision.reason };
        }
    }

    /** Keeps the rollout's state at `stepIndex` for --resume: the analysis so far, and each owned key as it was last written. */
    private holdState(stepIndex: number): void {
        const written = [...this.owned].filter(([key]) => !this.yielded.has(key)).map(([, entry]) => ({ path: entry.path, value: entry.value }));
        const { steps, intervalMs } = this.p.settings.rollout;
        this.o.hold({ stack: this.p.stack, services: this.services, targets: this.p.targets, stepIndex, analysis: this.state.services, heldAt: new Date(this.clock.now()).toISOString(), written, steps, intervalMs });
    }

    private async interrupted(stepIndex: number): Promise<Outcome> {
        if (this.o.onInterrupt === "hold") {
            this.holdState(stepIndex);
            return { kind: "held", reason: `interrupted at ${stepIndex < this.p.phases.steps.length ? `step ${stepIndex + 1}` : "promotion"}; the stack stays as it is. Continue with --resume`, metrics: this.lastMetrics };
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
                await this.apply(edits, "rollback", "warn");
                break;
            } catch (error) {
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

    /** The confirmPromotion gate: asked each interval until it says yes, or the progress deadline passes. */
    private async confirmed(): Promise<Judged> {
        const { analysis, intervalMs } = this.p.settings.rollout;
        const since = this.clock.now();
        for (;;) {
            const answer = await this.webhook("confirmPromotion");
            if (answer === undefined || answer.ok) return { decision: "advance", reason: "promotion confirmed" };
            if (this.clock.now() - since >= analysis.progressDeadlineMs) return { decision: "rollback", reason: `promotion not confirmed within the progress deadline: ${answer.detail}` };
            this.o.log(`[${time(this.clock.now())}] promotion waits for confirmation: ${answer.detail}`);
            if (!(await this.clock.sleep(intervalMs, this.o.signal))) return { decision: "interrupted", reason: "interrupted" };
        }
    }

    async run(): Promise<Outcome> {
        const { steps } = this.p.phases;
        const start = this.o.resume?.stepIndex ?? 0;
        if (this.o.resume === undefined) {
            const pre = await this.webhook("preRollout");
            if (pre !== undefined && !pre.ok) return { kind: "rolledBack", reason: `${pre.detail}; nothing was changed`, metrics: [] };
        }
        const what = this.p.targets.map((t) => `${t.service} ${t.candidateVersion}`).join(", ");
        // A promotion whose update fails is taken back to the config before it, then rolled back.
        let undo: ConfigEdit[] = [];
        // Where the rollout stands: the step being applied, or steps.length from the promotion on.
        let at = start;
        try {
            for (let i = start; i < steps.length; i++) {
                at = i;
                const step = steps[i];
                await this.apply(step.edits, `step ${i + 1}/${steps.length}: ${what} at ${step.percent}%`);
                const judged = await this.judgePhase(`step ${i + 1}/${steps.length} (${step.percent}%)`, i === this.p.phases.proofStep);
                if (judged.decision === "interrupted") return await this.interrupted(i);
                if (judged.decision === "rollback") return await this.rollback(`at step ${i + 1} (${step.percent}%): ${judged.reason}`);
            }
            at = steps.length;
            // Whatever the step index says (a resumed rollout starts where it was held): no promotion of a candidate
            // the tests have not shown no worse, or that has not been watched for the bake.
            const unproven = this.p.targets.filter((t) => !promotable(recordOf(this.state, t.service), this.p.settings.rollout.analysis, this.p.settings.rollout.intervalMs));
            if (unproven.length > 0) {
                return await this.rollback(`${unproven.map((t) => t.service).join(", ")} reached the promotion without being shown no worse and baked (a held rollout resumed past its proof step?): not promoted`);
            }
            const confirmation = await this.confirmed();
            if (confirmation.decision === "interrupted") return await this.interrupted(steps.length);
            if (confirmation.decision === "rollback") return await this.rollback(confirmation.reason);
            const switched = this.p.phases.switch;
            if (switched !== undefined) {
                await this.apply(switched.edits, `switch: ${what} active`);
                const judged = await this.judgePhase("after the switch", false);
                if (judged.decision === "interrupted") return await this.rollback("interrupted after the switch");
                if (judged.decision === "rollback") return await this.rollback(`after the switch: ${judged.reason}`);
            }
            const beforePromotion = (switched ?? steps[steps.length - 1]).config;
            const { drain, promotion } = this.p.phases;
            // Whole keys (a list back as it was, not element by element), each once.
            const undone = new Map([...(drain?.edits ?? []), ...promotion.edits].map((e) => [pathKey(ownedPath(e.path)), ownedPath(e.path)]));
            undo = [...undone.values()].map((path) => {
                const value = valueAt(beforePromotion, path);
                return value === undefined ? { path } : { path, value };
            });
            // Make before break: no route names the old versions when the promotion removes them.
            if (drain !== undefined) await this.apply(drain.edits, `promote: ${what} take every request first`);
            await this.apply(promotion.edits, `promote: ${what}`);
        } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            // A change the rollout did not ask for would ship with any update, the rollback's too: held where it stands.
            if (error instanceof UnexpectedPlan) {
                this.holdState(at);
                const place = at === 0 && this.o.resume === undefined ? "nothing was changed" : `the stack stays as the last update left it (${at < steps.length ? `before step ${at + 1}` : "before the promotion"})`;
                return { kind: "stopped", reason: `stopped: ${message}; ${place}. Fix: undo those changes in the checkout (git status, git diff), or apply them on their own first (pulumi up), then continue with npm run rollout -- --stack ${this.p.stack} --resume`, metrics: this.lastMetrics };
            }
            // The stack file changed under the rollout, no longer reads, or could not be written: a person decides.
            if (error instanceof ChangedUnderRollout || error instanceof StackFileError || error instanceof StackFileWriteError) {
                this.o.log(`Stopped: ${message}; rolling back what the rollout moved`);
                return this.rollback(`stopped: ${message}`, undo, true);
            }
            this.o.log(`An update failed (${message}); rolling back`);
            return this.rollback(`an update failed: ${message}`, undo);
        }
        return { kind: "promoted", reason: `${what} promoted after ${steps.length} step${steps.length === 1 ? "" : "s"}`, metrics: this.lastMetrics };
    }
}

/** Runs the rollout to its outcome. The caller holds the stack's lock. */
export function runRollout(options: DriverOptions): Promise<Outcome> {
    return new Rollout(options).run();
}
