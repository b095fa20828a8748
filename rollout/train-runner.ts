// Carries a release train out: wave after wave, the candidate boarded on each stack of the wave (its stack file
// edited and applied at no share of traffic), `npm run rollout` run on each of them at once, the promoted version
// baked against the hard limits, then the gate into the next wave. A failure anywhere in a wave rolls the whole
// wave back and stops the train; the earlier waves keep the version unless the train returns them too. The
// train's state is a file committed with the stack files, so `status` reads it and `--resume` continues it from
// any clone.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, isRecord } from "../components/config/config-reader";
import type { ReleaseCounters } from "../components/specs/observability-specs";
import { releaseCounters } from "../components/specs/observability-specs";
import { checkedPlan } from "../components/specs/checked-plan";
import { planTraffic } from "../components/plan/plan";
import { projectName } from "../lib/mock-program";
import { editStackFile, StackFileError } from "../lib/stack-file";
import { judge, NEW_RECORD } from "./analysis";
import { applyEdits, ConfigEdit, configSource, isConfigValue, pathKey } from "./config-edit";
import { ACTIVE_PHASES, readRollout } from "./control";
import type { Clock } from "./driver";
import type { TaggedEngine } from "./engines";
import { alive, SetupError } from "./lock";
import { RolloutRefusal, rolloutTargets } from "./plan";
import { releaseEvidence } from "./prometheus";
import { Boarding, BoardingRefusal, boardingEdits, Candidate, checkPhase, returnPhases, StackBefore, Update } from "./train";
import type { TrainConfig, Wave } from "./train-config";

export const STATE_FILE = path.join(".release", "train.json");

/**
 * pending: not reached yet. proposed: written into its file by a pull request, not applied yet. boarded: the candidate is on the stack at no share of traffic. promoted / rolledBack:
 * what its rollout did. stopped: its rollout stopped for a person (the stack file changed under it, a request
 * unanswered, held): the train leaves that stack as the rollout left it. restored: the candidate taken off again, never having served. returned: taken off after it
 * was promoted, the version from before serving again.
 */
export type StackStatus = "pending" | "proposed" | "boarded" | "promoted" | "rolledBack" | "stopped" | "restored" | "returned";

export interface StackProgress {
    status: StackStatus;
    before?: StackBefore;
    /** The queries the promoted version is baked with: the service's while it ran two versions. */
    counters?: ReleaseCounters;
    /** What happened last, for people. */
    note?: string;
    /** Boarding, under way: its updates, computed once, and how many are applied. */
    boarding?: { readonly updates: readonly Update[]; done: number };
    /** Taking the candidate off, under way: its updates, computed once, and how many are applied (a resume goes on from there). */
    takingOff?: { readonly promoted: boolean; readonly updates: readonly Update[]; done: number };
}

/** pending, then proposed (a pull request), rolling, baking, done; or failed, or returned (a later wave failed). */
export type WaveStatus = "pending" | "proposed" | "approved" | "rolling" | "baking" | "done" | "failed" | "returned";

export interface WaveProgress {
    status: WaveStatus;
    bakeStartedAt?: string;
}

/**
 * running: a process carries it out (or was, when it died). awaitingApproval: stopped at a gate. proposed: the
 * next wave waits for its pull request to be merged. interrupted: Ctrl-C. failed, done: the outcomes.
 */
export type TrainPhase = "running" | "awaitingApproval" | "proposed" | "interrupted" | "failed" | "done";

export interface TrainState {
    readonly v: 1;
    readonly id: string;
    readonly candidate: Candidate;
    /** The train as it was declared when it started: it goes on under the same waves. */
    readonly train: TrainConfig;
    readonly startedAt: string;
    updatedAt: string;
    phase: TrainPhase;
    /** The wave under way (or next), by index. */
    wave: number;
    waves: WaveProgress[];
    stacks: Record<string, StackProgress>;
    /** Carried by pull requests (npm run release -- propose): each wave after the first is proposed, then merged. */
    pullRequests?: boolean;
    /** The branch of the pull request that carries the next wave, while it waits to be merged. */
    proposal?: { readonly branch: string; readonly wave: number };
    history: { readonly at: string; readonly actor: string; readonly text: string }[];
}

export const ACTIVE_TRAIN: readonly TrainPhase[] = ["running", "awaitingApproval", "proposed", "interrupted"];

export function newTrainState(id: string, candidate: Candidate, train: TrainConfig, now: Date): TrainState {
    return {
        v: 1,
        id,
        candidate,
        train,
        startedAt: now.toISOString(),
        updatedAt: now.toISOString(),
        phase: "running",
        wave: 0,
        waves: train.waves.map(() => ({ status: "pending" })),
        stacks: Object.fromEntries(train.waves.flatMap((w) => w.stacks.map((s) => [s, { status: "pending" }]))),
        history: [],
    };
}

export function readTrainState(dir: string): TrainState | undefined {
    const file = path.join(dir, STATE_FILE);
    if (!fs.existsSync(file)) return undefined;
    const unreadable = (why: string) => new SetupError(`${STATE_FILE} ${why}, so it is not a train state this program writes (version 1). Fix: restore it from Git (git log -- ${STATE_FILE}; git checkout <commit> -- ${STATE_FILE}), or remove it and commit that to forget the train`);
    let parsed: unknown;
    try {
        parsed = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (error) {
        throw unreadable(`does not parse as JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    const stacks = isRecord(parsed) && isRecord(parsed.stacks) ? parsed.stacks : {};
    const train = isRecord(parsed) && isRecord(parsed.train) ? parsed.train : {};
    const candidate = isRecord(parsed) && isRecord(parsed.candidate) ? parsed.candidate : {};
    const waves = Array.isArray(train.waves) ? (train.waves as unknown[]) : undefined;
    const whole =
        isRecord(parsed) &&
        parsed.v === 1 &&
        typeof candidate.service === "string" &&
        Array.isArray(parsed.waves) &&
        Array.isArray(parsed.history) &&
        waves?.length === parsed.waves.length &&
        waves.every((w) => isRecord(w) && Array.isArray(w.stacks) && (w.stacks as unknown[]).every((stack) => typeof stack === "string" && isRecord(stacks[stack])));
    if (!whole) throw unreadable("lacks fields a train's state has");
    return parsed as TrainState;
}

/** Written whole to a new file, then renamed over the old: a reader never sees half a state. */
export function writeTrainState(dir: string, state: TrainState): void {
    const file = path.join(dir, STATE_FILE);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    fs.renameSync(`${file}.tmp`, file);
}

/** The train's lines for `status`. */
export function trainStatusLines(state: TrainState): string[] {
    const { candidate } = state;
    const lines = [`Release train ${state.id}: ${candidate.service} ${candidate.version} (${candidate.image}), ${state.phase}${state.phase === "done" || state.phase === "failed" ? "" : ` at wave ${state.wave + 1} of ${state.train.waves.length}`}; updated ${state.updatedAt}`];
    state.train.waves.forEach((wave, i) => {
        const progress = state.waves[i];
        lines.push(`  wave ${i + 1} ${wave.name} (gate ${i === 0 ? "start" : wave.gate}, bake ${wave.bake}): ${progress.status}${progress.bakeStartedAt !== undefined && progress.status === "baking" ? ` since ${progress.bakeStartedAt}` : ""}`);
        for (const stack of wave.stacks) {
            const s = state.stacks[stack];
            lines.push(`    ${stack}: ${s.status}${s.note !== undefined ? ` (${s.note})` : ""}`);
        }
    });
    if (state.proposal !== undefined) lines.push(`  waiting for the pull request of branch ${state.proposal.branch} (wave ${state.proposal.wave + 1}) to be merged`);
    if (state.phase === "awaitingApproval") lines.push(`  next: npm run release -- approve --reason "<why>" (wave ${state.wave + 1} ${state.train.waves[state.wave].name} waits for it)`);
    if (state.phase === "interrupted" || state.phase === "running") lines.push(`  to continue it: npm run release -- --resume`);
    for (const h of state.history.slice(-8)) lines.push(`  ${h.at} ${h.actor}: ${h.text}`);
    return lines;
}

export interface TrainDeps {
    readonly dir: string;
    readonly engineFor: (stack: string) => TaggedEngine;
    /** `npm run rollout` with these arguments (its --cwd, --engine and --stack given), in this process; its exit code. */
    readonly rollout: (stack: string, args: readonly string[], signal: AbortSignal) => Promise<number>;
    readonly log: (line: string) => void;
    readonly actor: string;
    readonly clock: Clock;
    /** Aborted on Ctrl-C. */
    readonly signal: AbortSignal;
    readonly onInterrupt: "rollback" | "hold";
    /** Continue rollouts whose runner is gone on another host. */
    readonly takeOver: boolean;
    /** Called after each commit the train makes. */
    readonly committed?: () => void;
}

/**
 * Exit codes: 0 every wave released, 1 a wave failed (rolled back), 2 a wave's stack cannot take the candidate (nothing
 * of that wave moved; fix it and resume), 4 stopped at a gate or a proposal, 130 interrupted.
 */
export const TRAIN_EXIT = { done: 0, failed: 1, blocked: 2, gate: 4, interrupted: 130 } as const;

type WaveResult = { readonly kind: "released" } | { readonly kind: "failed"; readonly reason: string } | { readonly kind: "interrupted" } | { readonly kind: "blocked"; readonly reason: string };

const git = (dir: string, args: readonly string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/**
 * Why the train cannot commit in `dir`: not a repository, or a file it commits has edits of someone else's. A train
 * that goes on (`resumed`) finds its own state written since its last commit: that one is its own.
 */
export function trainCommitProblem(dir: string, stacks: readonly string[], resumed = false): string | undefined {
    try {
        git(dir, ["rev-parse", "--is-inside-work-tree"]);
    } catch {
        return `a release train commits every stack file it changes, and ${dir} is not in a Git repository. Fix: run it from a clone`;
    }
    const files = [...stacks.map((s) => `Pulumi.${s}.yaml`), ...(resumed ? [] : [STATE_FILE])];
    // No paths would be every path to git status.
    if (files.length === 0) return undefined;
    const pending = git(dir, ["status", "--porcelain", "--", ...files]).split("\n").filter((l) => l !== "" && !l.startsWith("??"));
    if (pending.length > 0) return `the train commits ${files.join(", ")}, and some have edits of their own (git status: ${pending.join("; ")}). Fix: commit or stash them first`;
    return undefined;
}

export class TrainRunner {
    constructor(
        private readonly state: TrainState,
        private readonly deps: TrainDeps,
    ) {}

    private get candidate(): Candidate {
        return this.state.candidate;
    }

    private record(text: string): void {
        const at = new Date(this.deps.clock.now()).toISOString();
        this.state.history.push({ at, actor: this.deps.actor, text });
        this.state.updatedAt = at;
        writeTrainState(this.deps.dir, this.state);
        this.deps.log(`[train] ${text}`);
    }

    /** Commits the state and these stacks' files (what changed of them), on the branch checked out. */
    commit(message: string, stacks: readonly string[]): void {
        const files = [STATE_FILE, ...stacks.map((s) => `Pulumi.${s}.yaml`)].filter((f) => fs.existsSync(path.join(this.deps.dir, f)));
        git(this.deps.dir, ["add", "--", ...files]);
        if (git(this.deps.dir, ["diff", "--cached", "--name-only", "--", ...files]) === "") return;
        git(this.deps.dir, ["commit", "--quiet", "-m", message, "--", ...files]);
        this.deps.committed?.();
    }

    private title(text: string): string {
        return `release(${this.candidate.service} ${this.candidate.version}): ${text}`;
    }

    /** The reason each rollout of this train starts with, by which a resumed train knows its own rollouts. */
    private rolloutReason(wave: Wave): string {
        return `release train ${this.state.id}, wave ${wave.name}`;
    }

    /**
     * Checks that every stack of the waves `from` to `to` (inclusive; default: the last) can take the candidate as
     * its file is now, changing nothing: a refusal names the stack and the key before anything moves. By pull
     * requests a wave is one merge, one update: a stack that needs its rules detoured around the boarding is refused.
     */
    async checkBoarding(from: number, to = this.state.train.waves.length - 1, byPullRequest = false): Promise<void> {
        for (const wave of this.state.train.waves.slice(from, to + 1)) {
            for (const stack of wave.stacks) {
                if (this.state.stacks[stack].status !== "pending") continue;
                const { boarding } = await this.boarding(stack);
                if (byPullRequest && boarding.updates.length > 1) {
                    throw new BoardingRefusal([
                        {
                            key: `routes.${this.candidate.service}, previewHeader or services.${this.candidate.service}.stickyCanary`,
                            value: "(rules to the version the train replaces)",
                            allowed: `on stack ${stack}, rules send requests to the subset whose version the train replaces; a pull request merges as one update, in which they could meet a version not running yet, so they must be pointed at the serving version for it and back after, which only npm run release without pull requests does`,
                            fix: `run the train with npm run release -- --service ${this.candidate.service} --version ${this.candidate.version} --image ${this.candidate.image}, or point those rules at the serving version first (${boarding.updates[0].edits.map((e) => pathKey(e.path)).join(", ")})`,
                        },
                    ]);
                }
            }
        }
    }

    /** What boarding would write to a stack, checked (for --dry-run). */
    async boardingOf(stack: string): Promise<Boarding> {
        return (await this.boarding(stack)).boarding;
    }

    private async boarding(stack: string) {
        const engine = this.deps.engineFor(stack);
        engine.checkWritable();
        const { config, secretKeys } = await engine.readConfig();
        // The train keeps the service's entry in its state, committed to Git, to put it back: no secret may be in it.
        const secret = ["services", "routes"].find((key) => secretKeys.includes(key));
        if (secret !== undefined) {
            throw new BoardingRefusal([{ key: secret, value: "(a secret)", allowed: `stack ${stack} keeps ${secret} secret (a value under it is encrypted), and the train writes ${this.candidate.service}'s entry whole and keeps the one before in its state, committed to Git, to put it back`, fix: `keep secrets out of ${secret} (a Kubernetes Secret the workload reads), or release this service with npm run rollout -- --stack ${stack} --service ${this.candidate.service}` }]);
        }
        const { settings } = checkedPlan(configSource(config, secretKeys));
        const boarding = boardingEdits(stack, projectName(), settings, config, secretKeys, this.candidate);
        const boarded = applyEdits(config, boarding.edits);
        const after = checkedPlan(configSource(boarded, secretKeys)).settings;
        // What the stack's rollout would refuse (a data-plane switch under way, a blue/green judge it lacks) is refused here, before boarding.
        rolloutTargets(after, boarded, [this.candidate.service], projectName());
        const counters = releaseCounters(planTraffic(after))[this.candidate.service];
        return { engine, boarding, counters };
    }

    /**
     * Puts the candidate on a stack: its file edited and applied (pulumi up), at no share of traffic. The updates are
     * recorded as each is applied, so a resumed train goes on with the next one rather than boarding from a file
     * half-way there.
     */
    private async board(stack: string, wave: Wave): Promise<void> {
        const progress = this.state.stacks[stack];
        const engine = this.deps.engineFor(stack);
        if (progress.boarding === undefined) {
            const { boarding, counters } = await this.boarding(stack);
            engine.checkWritable();
            progress.before = boarding.before;
            progress.counters = counters;
            progress.note = boarding.summary;
            progress.boarding = { updates: boarding.updates, done: 0 };
        }
        // Boarded from before the first update: one that fails part-way may have applied it, and taking it off is then due.
        progress.status = "boarded";
        writeTrainState(this.deps.dir, this.state);
        const applying = progress.boarding;
        for (const update of applying.updates.slice(applying.done)) {
            if (applying.updates.length > 1) this.deps.log(`[train] ${stack}: ${update.label}`);
            await engine.apply(update.edits, this.title(`${stack}: ${update.label}`));
            applying.done++;
            writeTrainState(this.deps.dir, this.state);
        }
        progress.boarding = undefined;
        this.record(`boarded ${stack} (wave ${wave.name}): ${progress.note ?? ""}`);
        this.commit(this.title(`board ${stack} (wave ${wave.name})\n\n${progress.note ?? ""}`), [stack]);
    }

    /** Does the stack's config run the candidate's version of the service? */
    private async holdsCandidate(stack: string): Promise<boolean> {
        const { config, secretKeys } = await this.deps.engineFor(stack).readConfig();
        return checkedPlan(configSource(config, secretKeys)).settings.services.some((s) => s.name === this.candidate.service && s.versions.includes(this.candidate.version));
    }

    /** Writes the candidate into a stack's file without applying it: a pull request's change. */
    async propose(stack: string): Promise<void> {
        const { engine, boarding, counters } = await this.boarding(stack);
        editStackFile(engine.stackFile, boarding.edits, projectName());
        const progress = this.state.stacks[stack];
        progress.before = boarding.before;
        progress.counters = counters;
        progress.status = "proposed";
        progress.note = boarding.summary;
    }

    /**
     * Goes on from where the state stands until the train is done, fails, reaches a gate or is interrupted. By pull
     * requests, every wave after the one under way is a gate: it is proposed, and rolled out once merged.
     */
    async run(pullRequests = false): Promise<number> {
        const { train } = this.state;
        this.state.phase = "running";
        while (this.state.wave < train.waves.length) {
            const i = this.state.wave;
            const wave = train.waves[i];
            const progress = this.state.waves[i];
            if (pullRequests && progress.status === "pending") return TRAIN_EXIT.gate;
            if (progress.status === "pending" && i > 0 && wave.gate === "approval") {
                this.state.phase = "awaitingApproval";
                this.record(`wave ${wave.name} waits for approval: npm run release -- approve --reason "<why>"`);
                this.commit(this.title(`wave ${wave.name} waits for approval`), []);
                return TRAIN_EXIT.gate;
            }
            // A failure whose taking back was interrupted: finished first.
            const result: WaveResult = progress.status === "failed" ? { kind: "failed", reason: "resumed after a failure" } : await this.runWave(i);
            if (result.kind === "blocked") {
                this.state.phase = "interrupted";
                this.record(`wave ${wave.name} cannot start, nothing of it moved: ${result.reason}`);
                this.commit(this.title(`wave ${wave.name} cannot start`), []);
                this.deps.log(`Fix the stack file as it says, commit it, then: npm run release -- --resume`);
                return TRAIN_EXIT.blocked;
            }
            if (result.kind === "interrupted") {
                this.state.phase = "interrupted";
                this.record(`interrupted in wave ${wave.name}: npm run release -- --resume continues it`);
                this.commit(this.title(`interrupted in wave ${wave.name}`), wave.stacks);
                return TRAIN_EXIT.interrupted;
            }
            if (result.kind === "failed") {
                await this.fail(i, result.reason);
                return TRAIN_EXIT.failed;
            }
            progress.status = "done";
            this.state.wave = i + 1;
            this.record(`wave ${wave.name} released and baked`);
            this.commit(this.title(`wave ${wave.name} released`), wave.stacks);
        }
        this.state.phase = "done";
        this.record(`released on every stack: ${train.waves.flatMap((w) => w.stacks).join(", ")}`);
        this.commit(this.title("released on every stack"), []);
        return TRAIN_EXIT.done;
    }

    /** Records an approval of the wave waiting at its gate. */
    approve(reason: string): void {
        const wave = this.state.train.waves[this.state.wave];
        this.state.waves[this.state.wave].status = "approved";
        this.record(`approved wave ${wave.name}: "${reason}"`);
        this.commit(this.title(`wave ${wave.name} approved by ${this.deps.actor}\n\n${reason}`), []);
    }

    private async runWave(i: number): Promise<WaveResult> {
        const wave = this.state.train.waves[i];
        const progress = this.state.waves[i];
        if (progress.status !== "baking") {
            // Every stack of the wave can take the candidate as its file is now, or none of them is touched.
            try {
                await this.checkBoarding(i, i);
            } catch (error) {
                if (error instanceof BoardingRefusal || error instanceof RolloutRefusal || error instanceof ConfigError || error instanceof SetupError || error instanceof StackFileError) return { kind: "blocked", reason: error.message };
                throw error;
            }
            progress.status = "rolling";
            for (const stack of wave.stacks) {
                if (this.deps.signal.aborted) return { kind: "interrupted" };
                const s = this.state.stacks[stack];
                try {
                    // Boarded, but the file does not hold the candidate: the process died before the update.
                    if (s.status === "pending" || s.boarding !== undefined || (s.status === "boarded" && !(await this.holdsCandidate(stack)))) {
                        await this.board(stack, wave);
                    } else if (s.status === "proposed") {
                        // Merged from a pull request: the file holds the candidate; this update deploys it at no share of traffic.
                        await this.deps.engineFor(stack).apply([], this.title(`board ${stack}`));
                        s.status = "boarded";
                        this.record(`boarded ${stack} (wave ${wave.name}), as merged: ${s.note ?? ""}`);
                    }
                } catch (error) {
                    return { kind: "failed", reason: `${stack} could not take the candidate: ${error instanceof Error ? error.message : String(error)}` };
                }
            }
            if (this.deps.signal.aborted) return { kind: "interrupted" };
            const rolled = await this.rollOut(wave);
            if (rolled.kind !== "released") return rolled;
            progress.status = "baking";
            progress.bakeStartedAt = new Date(this.deps.clock.now()).toISOString();
            this.record(`wave ${wave.name} promoted on ${wave.stacks.join(", ")}; baking ${wave.bake}`);
            this.commit(this.title(`wave ${wave.name} promoted, baking ${wave.bake}`), wave.stacks);
        }
        return this.bake(wave, Date.parse(progress.bakeStartedAt ?? new Date(this.deps.clock.now()).toISOString()));
    }

    /** The rollouts of a wave, all at once; the first to fail rolls the others back. */
    private async rollOut(wave: Wave): Promise<WaveResult> {
        const reason = this.rolloutReason(wave);
        const controllers = new Map(wave.stacks.map((s) => [s, new AbortController()]));
        const onInterrupt = () => {
            for (const c of controllers.values()) c.abort();
        };
        this.deps.signal.addEventListener("abort", onInterrupt, { once: true });
        let failure: string | undefined;
        const codes = new Map<string, number>();
        try {
            await Promise.all(
                wave.stacks.map(async (stack) => {
                    const controller = controllers.get(stack) ?? new AbortController();
                    const code = await this.rollOutStack(stack, reason, controller.signal).catch((error: unknown) => {
                        this.deps.log(`[${stack}] ${error instanceof Error ? error.message : String(error)}`);
                        return 2;
                    });
                    codes.set(stack, code);
                    if (code !== 0 && !this.deps.signal.aborted && failure === undefined) {
                        failure = `${stack}'s rollout ${code === 1 ? "rolled back" : code === 130 ? "was held" : `stopped (exit ${code})`}`;
                        this.deps.log(`[train] ${failure}: rolling back the rest of wave ${wave.name}`);
                        for (const [other, c] of controllers) if (other !== stack) c.abort();
                    }
                }),
            );
        } finally {
            this.deps.signal.removeEventListener("abort", onInterrupt);
        }
        for (const [stack, code] of codes) {
            const s = this.state.stacks[stack];
            const status = code === 0 ? "promoted" : code === 1 ? "rolledBack" : await this.afterExit(stack, reason);
            s.status = status;
            s.note = { promoted: "promoted", rolledBack: "rolled back", stopped: `its rollout stopped (exit ${code}) for a person: npm run rollout -- status --stack ${stack}`, boarded: code === 130 ? "held" : `its rollout did not start (exit ${code})` }[status as "promoted"];
        }
        writeTrainState(this.deps.dir, this.state);
        // Ctrl-C: held rollouts are the train's to resume; rolled-back ones end the wave as a failure would.
        if (this.deps.signal.aborted) return this.deps.onInterrupt === "hold" ? { kind: "interrupted" } : { kind: "failed", reason: "interrupted (Ctrl-C with --on-interrupt rollback): the wave's rollouts rolled back" };
        if (failure !== undefined) {
            // A rollout that held on the abort (--on-interrupt hold) is rolled back now.
            for (const [stack, code] of codes) {
                if (code !== 130) continue;
                const aborted = await this.deps.rollout(stack, ["abort", "--reason", `${reason}: ${failure}`, "--commit"], new AbortController().signal);
                // Not rolled back: its candidate may still take requests, so the stack is a person's, as the rollout left it.
                this.state.stacks[stack].status = aborted === 1 ? "rolledBack" : "stopped";
            }
            return { kind: "failed", reason: failure };
        }
        return { kind: "released" };
    }

    /**
     * Where a rollout that neither promoted nor rolled back left its stack, by its record: not started (refused before
     * any traffic moved: still boarded), an outcome after all, or stopped for a person (the stack as it left it).
     */
    private async afterExit(stack: string, reason: string): Promise<StackStatus> {
        const record = await readRollout(this.deps.engineFor(stack).tags).catch(() => undefined);
        if (record === undefined || record.actions[0]?.reason !== reason) return "boarded";
        if (record.phase === "promoted") return "promoted";
        if (record.phase === "rolledBack") return "rolledBack";
        // Held by Ctrl-C: the train's to resume, or to abort when the wave fails.
        return record.phase === "held" ? "boarded" : "stopped";
    }

    /** Starts the stack's rollout, or picks up the one this train started there before it was interrupted. */
    private async rollOutStack(stack: string, reason: string, signal: AbortSignal): Promise<number> {
        const s = this.state.stacks[stack];
        if (s.status === "promoted") return 0;
        if (s.status === "rolledBack") return 1;
        const record = await readRollout(this.deps.engineFor(stack).tags);
        const ours = record !== undefined && record.actions[0]?.reason === reason;
        const common = ["--commit", "--on-interrupt", this.deps.onInterrupt, "--actor", this.deps.actor];
        if (ours && record.phase === "promoted") return 0;
        if (ours && record.phase === "rolledBack") return 1;
        if (ours && ACTIVE_PHASES.includes(record.phase)) {
            this.deps.log(`[train] ${stack}: continuing its rollout (${record.phase} at step ${record.step})`);
            // A runner that died (a killed train, a lost CI job) leaves its stack file a step ahead of its record (killed
            // between writing the step and recording it) or behind it (a fresh checkout lacks the steps it never
            // committed). The record says where the rollout stands, and it applies its step again when continued: the
            // file is put back as the record says. Never under a live runner, nor for a held rollout (its file is its own).
            const gone = record.runner !== undefined && record.runner.host === os.hostname() && !alive(record.runner.pid);
            if (record.phase !== "held" && (this.deps.takeOver || gone)) {
                const written = (record.resume?.written ?? []).flatMap((w): ConfigEdit[] => ("value" in w && (w.value === undefined || isConfigValue(w.value)) ? [{ path: w.path, ...(w.value !== undefined && { value: w.value }) }] : []));
                if (written.length > 0) editStackFile(this.deps.engineFor(stack).stackFile, written, projectName());
            }
            return this.deps.rollout(stack, ["resume", "--reason", "release train resumed", ...common, ...(this.deps.takeOver ? ["--take-over"] : [])], signal);
        }
        return this.deps.rollout(stack, ["--service", this.candidate.service, "--reason", reason, ...common], signal);
    }

    /**
     * Watches the promoted version on every stack of the wave for the wave's bake time, interval by interval, against
     * the stack's hard limits (success rate, p95): `failedChecks` failed intervals, or no judged interval for a whole
     * `progressDeadline`, fail the wave. Missing data is never a pass.
     */
    private async bake(wave: Wave, startedAt: number): Promise<WaveResult> {
        const end = startedAt + wave.bakeMs;
        const results = await Promise.all(wave.stacks.map((stack) => this.bakeStack(stack, end)));
        if (this.deps.signal.aborted) return { kind: "interrupted" };
        const failed = results.find((r) => r !== undefined);
        return failed === undefined ? { kind: "released" } : { kind: "failed", reason: failed };
    }

    private async bakeStack(stack: string, end: number): Promise<string | undefined> {
        const { clock, signal } = this.deps;
        const counters = this.state.stacks[stack].counters;
        if (clock.now() >= end) return undefined;
        if (counters === undefined) return `${stack}: the train holds no queries to bake ${this.candidate.version} with`;
        const { config, secretKeys } = await this.deps.engineFor(stack).readConfig();
        const { rollout } = checkedPlan(configSource(config, secretKeys)).settings;
        const { analysis, intervalMs, prometheusUrl } = rollout;
        const version = this.candidate.version;
        let failedChecks = 0;
        let lastJudged = clock.now();
        while (clock.now() < end) {
            const wait = Math.min(intervalMs, Math.max(0, end - clock.now()));
            if (!(await clock.sleep(wait, signal))) return undefined;
            const at = clock.now();
            const evidence = await releaseEvidence(prometheusUrl, counters, { stable: version, candidate: version }, wait, at, signal);
            const verdict = judge(evidence.error !== undefined ? { error: evidence.error } : { ...(evidence.candidate && { candidate: evidence.candidate }) }, analysis, NEW_RECORD);
            if (verdict.limits === "pass") lastJudged = at;
            if (verdict.limits === "fail") {
                failedChecks++;
                this.deps.log(`[train] ${stack}: bake check failed (${failedChecks} of ${analysis.failedChecks}): ${verdict.reasons.join("; ")}`);
                if (failedChecks >= analysis.failedChecks) return `${stack}: ${version} failed the hard limits ${failedChecks} times while baking (${verdict.reasons.join("; ")})`;
            } else if (verdict.limits !== "pass" && at - lastJudged > analysis.progressDeadlineMs) {
                return `${stack}: ${version} could not be judged while baking for longer than progressDeadline (${verdict.reasons.join("; ")})`;
            }
        }
        return undefined;
    }

    /** The wave rolled back, the candidate taken off each of its stacks; the earlier waves too, when the train says so. */
    private async fail(i: number, reason: string): Promise<void> {
        const { train } = this.state;
        const wave = train.waves[i];
        this.state.waves[i].status = "failed";
        this.record(`wave ${wave.name} failed: ${reason}`);
        for (const stack of wave.stacks) await this.takeOff(stack);
        if (train.returnEarlierWaves) {
            for (let j = i - 1; j >= 0; j--) {
                for (const stack of train.waves[j].stacks) await this.takeOff(stack);
                this.state.waves[j].status = "returned";
            }
        }
        this.state.phase = "failed";
        const kept = train.returnEarlierWaves ? [] : train.waves.slice(0, i).flatMap((w) => w.stacks);
        this.record(`stopped${kept.length > 0 ? `; ${kept.join(", ")} keep ${this.candidate.version}` : ""}`);
        this.commit(this.title(`stopped: wave ${wave.name} failed\n\n${reason}`), train.waves.flatMap((w) => w.stacks));
    }

    /**
     * Takes the candidate off a stack, update by update (returnPhases), and commits its file. The updates are computed
     * once and recorded with each one applied, so a resumed train goes on with the next rather than computing them
     * again from a file half-way back. A stack whose rollout stopped for a person is left as it is.
     */
    private async takeOff(stack: string): Promise<void> {
        const s = this.state.stacks[stack];
        if (s.before === undefined || ["pending", "proposed", "stopped", "restored", "returned"].includes(s.status)) return;
        const engine = this.deps.engineFor(stack);
        if (s.takingOff === undefined) {
            const promoted = s.status === "promoted";
            const { config, secretKeys } = await engine.readConfig();
            const updates = returnPhases(this.candidate, s.before, config, secretKeys, promoted);
            let current = config;
            for (const update of updates) {
                current = applyEdits(current, update.edits);
                checkPhase(stack, update.label, current, secretKeys);
            }
            s.takingOff = { promoted, updates, done: 0 };
            writeTrainState(this.deps.dir, this.state);
        }
        const taking = s.takingOff;
        for (const update of taking.updates.slice(taking.done)) {
            this.deps.log(`[train] ${stack}: ${update.label}`);
            await engine.apply(update.edits, this.title(`${stack}: ${update.label}`));
            taking.done++;
            writeTrainState(this.deps.dir, this.state);
        }
        s.status = taking.promoted ? "returned" : "restored";
        s.takingOff = undefined;
        s.note = taking.promoted ? `returned to ${s.before.serving}` : `${this.candidate.version} taken off`;
        this.record(`${stack}: ${s.note}`);
        this.commit(this.title(`${stack}: ${s.note}`), [stack]);
    }
}
