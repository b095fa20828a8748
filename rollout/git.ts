// `--commit`: the stack file, which holds what the rollout last applied, committed with the outcome and the
// metrics that decided it, so Git's history of the stack is the history of its releases.
import { execFileSync } from "child_process";
import * as path from "path";
import { Action, describeAction } from "./control";
import type { Outcome } from "./driver";

const git = (dir: string, args: readonly string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/**
 * Why `--commit` cannot be honoured, checked before anything changes: no repository, or the stack file has
 * uncommitted edits of its own. A continued rollout's file holds its own uncommitted edits (the keys it wrote, which
 * it has checked hold what it wrote): those are its to commit.
 */
export function commitProblem(stackFile: string, continued = false): string | undefined {
    const dir = path.dirname(stackFile);
    try {
        git(dir, ["rev-parse", "--is-inside-work-tree"]);
    } catch {
        return `--commit needs a Git repository, and ${dir} is not in one. Fix: leave out --commit, or run from a clone`;
    }
    if (continued) return undefined;
    const pending = git(dir, ["status", "--porcelain", "--", path.basename(stackFile)]);
    if (pending !== "" && !pending.startsWith("??")) {
        return `--commit would commit edits to ${path.basename(stackFile)} that are not the rollout's (git status: ${pending}). Fix: commit or stash them first`;
    }
    return undefined;
}

/** The commit's message: the outcome, the metrics that decided it, and who did what to the rollout and why. */
export function commitMessage(stack: string, services: readonly string[], outcome: Outcome, actions: readonly Action[] = []): string {
    const verb = { promoted: "promoted", rolledBack: "rolled back", held: "held", stopped: "stopped" }[outcome.kind];
    return [
        `rollout(${stack}): ${services.join(", ")} ${verb}`,
        "",
        outcome.reason,
        ...(outcome.metrics.length > 0 ? ["", "Deciding metrics:", ...outcome.metrics.map((m) => `  ${m}`)] : []),
        ...(actions.length > 0 ? ["", "Actions:", ...actions.map((a) => `  ${a.at} ${a.actor}: ${describeAction(a)}, "${a.reason}"${a.result === undefined ? "" : ` -> ${a.result}`}`)] : []),
    ].join("\n");
}

/**
 * Commits the stack file alone; returns the new commit's hash. A rollback usually leaves the file as it was
 * committed before the rollout: the commit is then empty, and still records the attempt and why it failed.
 */
export function commitStackFile(stackFile: string, message: string): string {
    const dir = path.dirname(stackFile);
    const file = path.basename(stackFile);
    git(dir, ["add", "--", file]);
    git(dir, ["commit", "--quiet", "--allow-empty", "-m", message, "--", file]);
    return git(dir, ["rev-parse", "HEAD"]);
}
