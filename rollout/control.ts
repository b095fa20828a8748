// The state a rollout shares with its operators, on the stack (its tags, see stack-tags.ts): where it stands
// (phase, step, each candidate's and stable's counts, each test's evidence against its bounds, the next decision),
// everything `resume` needs to continue it from any machine, and who did what and why. Operators act through a
// request tag the running rollout polls: promote, abort, pause, resume. It acknowledges each in the record, so the
// command that sent it can say what happened.
import { randomUUID } from "crypto";
import * as os from "os";
import type { Limits } from "./analysis";
import type { HeldRollout } from "./lock";
import { readRecord, RecordError, StackTags, TAG_VALUE_LIMIT, writeRecord } from "./stack-tags";

export const STATE_TAG = "rollout.state";
export const REQUEST_TAG = "rollout.request";

/**
 * running / paused: a process is carrying it out. held: no process is (Ctrl-C with --on-interrupt hold, or a
 * preview that planned more than the step); `resume` continues it. The rest are outcomes.
 */
export type Phase = "running" | "paused" | "held" | "promoted" | "rolledBack" | "stopped";
export const ACTIVE_PHASES: readonly Phase[] = ["running", "paused", "held"];

export type OperatorAction = "promote" | "abort" | "pause" | "resume";

/** One thing a person did to the rollout, and what came of it. */
export interface Action {
    readonly id: string;
    readonly action: "start" | "retry" | OperatorAction;
    /** promote --full: without the remaining steps, the analysis or the bake. */
    readonly full?: boolean;
    readonly actor: string;
    readonly reason: string;
    readonly at: string;
    readonly result?: string;
}

export interface VersionStatus {
    readonly version: string;
    readonly requests?: number;
    readonly errors?: number;
    readonly p95Ms?: number;
}

/**
 * A sequential test's evidence (log likelihood ratios) against the bounds where it concludes: `rollback` rolls back
 * at `rollbackAt`; the candidate is shown no worse when `promotion` reaches `promotionAt` (against the stable), or
 * when `own` (its own requests against a rate at the margin) reaches `ownAt`.
 */
export interface TestStatus {
    readonly outcome: "open" | "notWorse" | "worse";
    readonly rollback: number;
    readonly rollbackAt: number;
    readonly promotion: number;
    readonly promotionAt: number;
    readonly own: number;
    readonly ownAt: number;
}

export interface ServiceStatus {
    readonly service: string;
    readonly candidate: VersionStatus;
    readonly stable: VersionStatus;
    /** The hard limits' verdict on the last interval, and why. */
    readonly limits: Limits;
    readonly reasons: readonly string[];
    /** The hard limits as the interval applied them, when it had the requests to check them. */
    readonly applied?: { readonly minSuccessRate: number; readonly maxP95Ms: number };
    readonly failedChecks: { readonly count: number; readonly max: number };
    readonly errors: TestStatus;
    readonly latency: TestStatus;
    /** Intervals the candidate has been watched serving, of the bake's. */
    readonly watched: { readonly intervals: number; readonly bake: number };
}

export interface RolloutRecord {
    readonly v: 1;
    /** The rollout's id, kept by a resume: its decision log is .rollout/<stack>/<id>.jsonl where it ran. */
    readonly id: string;
    readonly stack: string;
    readonly services: readonly string[];
    readonly phase: Phase;
    /** The step being applied or judged (1-based); steps.length + 1 from the promotion on. */
    readonly step: number;
    readonly steps: readonly number[];
    readonly nextDecisionAt?: string;
    readonly updatedAt: string;
    /** The process carrying it out (running, paused). */
    readonly runner?: { readonly host: string; readonly pid: number };
    /** A promotion asked for and not yet carried out. */
    readonly promote?: "analysis" | "full";
    readonly actions: readonly Action[];
    /** Each service as the last interval judged it. */
    readonly evidence: readonly ServiceStatus[];
    /** The last decision, or the outcome's reason. */
    readonly decision?: string;
    /** What `resume` continues from: written at every step, so a rollout whose runner is gone can be taken over. */
    readonly resume?: HeldRollout;
}

/** What an operator asks the running rollout to do. */
export interface OperatorRequest {
    readonly id: string;
    /** The id of the rollout it was sent to: any other rollout ignores it (and removes it). */
    readonly rollout: string;
    readonly action: OperatorAction;
    readonly full?: boolean;
    readonly actor: string;
    readonly reason: string;
    readonly at: string;
}

/** Limits that keep a request within one tag. */
export const ACTOR_LIMIT = 40;
export const REASON_LIMIT = 120;

export const newId = () => randomUUID().slice(0, 8);
export const thisRunner = () => ({ host: os.hostname(), pid: process.pid });

const isRolloutRecord = (value: unknown): value is RolloutRecord => typeof value === "object" && value !== null && "v" in value && value.v === 1;

export async function readRollout(tags: StackTags): Promise<RolloutRecord | undefined> {
    const record = await readRecord(tags, STATE_TAG);
    if (record === undefined) return undefined;
    if (!isRolloutRecord(record)) throw new RecordError(`the rollout record in ${tags.where} is not one this program writes (version 1). Fix: run the rollout command of the version that wrote it, or forget the record: ${tags.removal(STATE_TAG)}`);
    return record;
}

const OPERATOR_ACTIONS: readonly string[] = ["promote", "abort", "pause", "resume"];

/** A request as this program writes them: anything else in the tag is not acted on. */
function isRequest(value: unknown): value is OperatorRequest {
    if (typeof value !== "object" || value === null) return false;
    const fields = new Map<string, unknown>(Object.entries(value));
    const text = (key: keyof OperatorRequest) => {
        const field = fields.get(key);
        return typeof field === "string" && field !== "";
    };
    const action = fields.get("action");
    return text("id") && text("rollout") && text("actor") && text("reason") && text("at") && typeof action === "string" && OPERATOR_ACTIONS.includes(action) && (fields.get("full") === undefined || fields.get("full") === true);
}

/** The request tag's request, "other" when the tag holds something this program did not write, undefined when empty. */
export async function readRequest(tags: StackTags): Promise<OperatorRequest | "other" | undefined> {
    const all = await tags.list();
    if (!Object.hasOwn(all, REQUEST_TAG)) return undefined;
    try {
        const value: unknown = JSON.parse(all[REQUEST_TAG]);
        return isRequest(value) ? value : "other";
    } catch {
        return "other";
    }
}

/** The request as its tag holds it; throws when it would not fit one (Pulumi counts a value's bytes). */
export function requestTagValue(request: OperatorRequest): string {
    const value = JSON.stringify(request);
    const bytes = Buffer.byteLength(value);
    if (bytes > TAG_VALUE_LIMIT) throw new Error(`the ${request.action} request is ${bytes} bytes, more than a stack tag's ${TAG_VALUE_LIMIT}: shorten --reason`);
    return value;
}

/** The longest --reason, in bytes of its JSON, that fits a request of this actor beside the rest (id, rollout id, action, time). */
export function reasonRoom(actor: string): number {
    const widest: OperatorRequest = { id: "00000000", rollout: "20261202T000000Z-00000000", action: "promote", full: true, actor, reason: "", at: new Date(0).toISOString() };
    return TAG_VALUE_LIMIT - Buffer.byteLength(JSON.stringify(widest));
}

/** Another process took the rollout over (`--take-over`) while this one still ran it: this one must change nothing more. */
export class TakenOver extends Error {
    constructor(readonly runner: { readonly host: string; readonly pid: number }) {
        super(`the rollout was taken over by pid ${runner.pid} on ${runner.host} (--take-over); this process changes nothing more`);
        this.name = "TakenOver";
    }
}

/**
 * The running rollout's side: publishes the record as it changes and polls for requests. A write that fails (the
 * backend is unreachable) is logged, and the rollout goes on: its decisions do not depend on being watched.
 */
export class RolloutChannel {
    private record: RolloutRecord;
    private failing = false;
    private published = false;

    constructor(
        private readonly tags: StackTags,
        initial: RolloutRecord,
        private readonly log: (line: string) => void,
    ) {
        this.record = initial;
    }

    get current(): RolloutRecord {
        return this.record;
    }

    /** Throws TakenOver, writing nothing, once another runner has written the record since this one last did. */
    async publish(change: Partial<Omit<RolloutRecord, "v" | "stack" | "services">>): Promise<void> {
        const mine = this.record.runner;
        if (this.published && mine !== undefined) {
            const stored = await readRollout(this.tags).catch(() => undefined);
            const theirs = stored?.runner;
            if (theirs !== undefined && (theirs.host !== mine.host || theirs.pid !== mine.pid)) throw new TakenOver(theirs);
        }
        this.record = { ...this.record, ...change, updatedAt: new Date().toISOString() };
        try {
            await writeRecord(this.tags, STATE_TAG, this.record);
            this.published = true;
            if (this.failing) this.log(`The rollout's state is on the stack again (${this.tags.where})`);
            this.failing = false;
        } catch (error) {
            if (!this.failing) this.log(`The rollout's state could not be written to the stack (${error instanceof Error ? error.message : String(error)}): operators see the last state written, and their requests wait until it can be read again`);
            this.failing = true;
        }
    }

    /**
     * The operator's request waiting for this rollout, if any. One it already acted on, one sent to another rollout
     * (left by a command that gave up waiting) and anything this program did not write are removed, never acted on.
     */
    async request(): Promise<OperatorRequest | undefined> {
        let request: OperatorRequest | "other" | undefined;
        try {
            request = await readRequest(this.tags);
        } catch {
            return undefined;
        }
        if (request === undefined) return undefined;
        if (request === "other" || request.rollout !== this.record.id || this.record.actions.some((a) => a.id === request.id)) {
            if (request !== "other" && request.rollout !== this.record.id) this.log(`Ignored ${request.actor}'s ${request.action} of ${request.at}: it was sent to another rollout (${request.rollout})`);
            await this.tags.remove(REQUEST_TAG).catch(() => undefined);
            return undefined;
        }
        return request;
    }

    /** Records the request and what came of it, then removes it: the record first, so the sender sees the answer. */
    async acknowledge(request: OperatorRequest, result: string, change: Partial<Omit<RolloutRecord, "v" | "stack" | "services" | "actions">> = {}): Promise<void> {
        const action: Action = { ...request, result };
        await this.publish({ ...change, actions: [...this.record.actions, action] });
        await this.tags.remove(REQUEST_TAG).catch(() => undefined);
        this.log(`${request.actor} asked to ${describeAction(action)} (${request.reason}): ${result}`);
    }
}

export const describeAction = (a: Pick<Action, "action" | "full">) => `${a.action}${a.full === true ? " --full" : ""}`;

const fmt = (n: number | undefined, digits: number) => (n === undefined ? "-" : n.toFixed(digits).replace(/\.0+$/, ""));

/** The record for people: `npm run rollout -- status`. */
export function statusLines(record: RolloutRecord, nowMs: number): string[] {
    const ago = (iso: string) => `${Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000))}s ago`;
    const where = record.step > record.steps.length ? "promotion" : `step ${record.step}/${record.steps.length} (${record.steps[record.step - 1]}%)`;
    const lines = [`Rollout of ${record.services.join(", ")} on stack ${record.stack}: ${record.phase}${ACTIVE_PHASES.includes(record.phase) ? ` at ${where}` : ""}`];
    if (record.runner !== undefined && (record.phase === "running" || record.phase === "paused")) lines.push(`  runner: pid ${record.runner.pid} on ${record.runner.host}, last heard ${ago(record.updatedAt)}`);
    else lines.push(`  updated ${record.updatedAt} (${ago(record.updatedAt)})`);
    if (record.promote !== undefined) lines.push(`  promotion requested${record.promote === "full" ? " (--full)" : ": once every candidate is shown no worse and baked, skipping the remaining steps"}`);
    if (record.nextDecisionAt !== undefined && (record.phase === "running" || record.phase === "paused")) lines.push(`  next decision: ${record.nextDecisionAt}`);
    if (record.decision !== undefined) lines.push(`  last decision: ${record.decision}`);
    for (const s of record.evidence) {
        const side = (v: VersionStatus) => `${v.version} ${fmt(v.requests, 0)} req, ${fmt(v.errors, 0)} 5xx, p95 ${fmt(v.p95Ms, 1)}ms`;
        const test = (name: string, t: TestStatus) => `${name} test ${t.outcome}: evidence of worse ${fmt(t.rollback, 2)} (rolls back at ${fmt(t.rollbackAt, 2)}), of no worse ${fmt(t.promotion, 2)} (shown at ${fmt(t.promotionAt, 2)}), its own ${fmt(t.own, 2)} (shown at ${fmt(t.ownAt, 2)})`;
        lines.push(`  ${s.service}: candidate ${side(s.candidate)} | stable ${side(s.stable)}`);
        lines.push(`    hard limits ${s.limits}${s.applied === undefined ? "" : ` (success rate >= ${fmt(s.applied.minSuccessRate, 2)}%, p95 <= ${fmt(s.applied.maxP95Ms, 1)}ms)`}: ${s.reasons.join(", ")}; failed checks ${s.failedChecks.count} of ${s.failedChecks.max}`);
        lines.push(`    ${test("errors", s.errors)}`, `    ${test("latency", s.latency)}`);
        lines.push(`    watched serving ${s.watched.intervals} of the ${s.watched.bake} intervals of the bake`);
    }
    if (record.actions.length > 0) lines.push("  actions:", ...record.actions.map((a) => `    ${a.at} ${a.actor}: ${describeAction(a)}, "${a.reason}"${a.result === undefined ? "" : ` -> ${a.result}`}`));
    return lines;
}
