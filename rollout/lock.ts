// One rollout per stack and working copy: a lock file taken atomically in .rollout/ beside the stack files
// (ignored by Git). Across machines (CI runners), the rollout workflow's concurrency group serializes rollouts of
// a stack, and the rollout's record on the stack (control.ts) refuses a new one while one is running or held.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { AnalysisState } from "./analysis";
import type { RolloutTarget } from "./plan";
import type { Expectation } from "./config-edit";

export const ROLLOUT_DIR = ".rollout";

/** The rollout could not start for a reason of its set-up (a lock held, a held rollout to resume). */
export class SetupError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "SetupError";
    }
}

interface LockInfo {
    readonly pid: number;
    readonly host: string;
    readonly startedAt: string;
    readonly services: readonly string[];
}

/** Whether a process of this host is still running. */
export function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}

export class RolloutLock {
    private constructor(private readonly file: string) {}

    /** Takes the stack's lock, or throws a SetupError naming who holds it. A lock left by a dead process on this host is taken over. */
    static acquire(dir: string, stack: string, services: readonly string[]): RolloutLock {
        const folder = path.join(dir, ROLLOUT_DIR);
        fs.mkdirSync(folder, { recursive: true });
        const file = path.join(folder, `${stack}.lock`);
        const info: LockInfo = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), services };
        for (let attempt = 0; attempt < 2; attempt++) {
            try {
                fs.writeFileSync(file, JSON.stringify(info), { flag: "wx" });
                return new RolloutLock(file);
            } catch (error) {
                if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
            }
            const holder = readLock(file);
            if (holder !== undefined && (holder.host !== os.hostname() || alive(holder.pid))) {
                throw new SetupError(
                    `Stack ${stack} is locked by another rollout (${holder.services.join(", ")}; pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}). ` +
                        `Two rollouts on one stack would interleave their steps. Fix: wait for it to end; if it is gone, delete ${path.relative(process.cwd(), file) || file}`,
                );
            }
            fs.rmSync(file, { force: true });
        }
        throw new SetupError(`Could not take the lock ${file}: another rollout took it at the same moment. Fix: run again`);
    }

    release(): void {
        fs.rmSync(this.file, { force: true });
    }
}

function readLock(file: string): LockInfo | undefined {
    try {
        return JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
    } catch {
        return undefined;
    }
}

/** Where a rollout stands, so `resume` continues it: kept in its record on the stack (control.ts). */
export interface HeldRollout {
    readonly stack: string;
    readonly services: readonly string[];
    /** The targets as they were when the rollout started (colors and mirror shares to go back to). */
    readonly targets: readonly RolloutTarget[];
    /** The step to (re)apply and judge; steps.length means promotion is next. */
    readonly stepIndex: number;
    /** What the analysis had learned: failed checks and the sequential tests so far. */
    readonly analysis: AnalysisState["services"];
    readonly heldAt: string;
    /** The keys the rollout owns, as it left them: a resume stops (changes nothing) if any was changed while held. */
    readonly written?: readonly Expectation[];
    /**
     * The steps and interval the rollout was judged by: its step index, its proof step and the bake (counted in
     * intervals) mean nothing under others, so a resume is refused if they changed while it was held.
     */
    readonly steps?: readonly number[];
    readonly intervalMs?: number;
    /** An operator's promotion asked for and not yet carried out: with --full, without the analysis. */
    readonly promote?: "analysis" | "full";
    /** The last step applied before the hold (an operator's promotion may have left the rest). */
    readonly appliedStep?: number;
}
