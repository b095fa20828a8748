// `npm run rollout -- --stack <stack> --service <name>`: a metric-gated release, step by step, each step a
// stack update (see rollout/driver.ts). Exit codes: 0 promoted, 1 rolled back, 2 bad input or set-up or stopped
// (the stack file changed under it, or could not be written), 130 held by Ctrl-C (continue with --resume).
import * as path from "path";
import { ConfigError } from "../components/config/config-reader";
import { AutomationEngine, RenderEngine, StackEngine } from "../rollout/engines";
import { prepareRollout, runRollout } from "../rollout/driver";
import { commitMessage, commitProblem, commitStackFile } from "../rollout/git";
import { clearHeld, readHeld, RolloutLock, SetupError, writeHeld } from "../rollout/lock";
import { RolloutRefusal } from "../rollout/plan";
import { observedRates, previewRollout } from "../rollout/preview";
import { preflightProblems } from "../rollout/prometheus";
import { ArgvReader, UsageError } from "../lib/cli";
import { PROJECT_ROOT, stackNames } from "../lib/mock-program";
import { StackFileError, StackFileWriteError } from "../lib/stack-file";

const USAGE = `Usage: npm run rollout -- --stack <name> --service <name> [--service <name> ...] [options]

  --stack <name>         the stack to release on (its Pulumi.<name>.yaml)
  --service <name>       a service whose candidate to release; repeat it to move several together, gated by
                         all their analyses (one failing rolls all back)
  --engine <name>        automation (default): each step is a pulumi up through the Automation API;
                         render: each step runs the program under the mocks, writes rendered/<stack> and
                         edits the stack file as pulumi config set would (a rehearsal without a cluster)
  --dry-run              print each step's split, the objects it changes, the queries and thresholds, and
                         the worst case before a rollback; change nothing (reads Pulumi.<stack>.yaml and
                         runs the program under the mocks: no Pulumi CLI or cluster needed)
  --request-rate <n>     requests per second for the dry run's worst case (default: observed in Prometheus)
  --commit               commit Pulumi.<stack>.yaml with the outcome and the deciding metrics
  --on-interrupt <what>  what Ctrl-C does: rollback (default) or hold (--resume continues)
  --resume               continue a rollout that Ctrl-C held
  --cwd <dir>            the project folder (default: this repository)
  --help                 show this help

Exit codes: 0 promoted, 1 rolled back, 2 bad input or set-up, or stopped because the stack file changed under
the rollout or could not be written (what it moved is rolled back where it can be), 130 held by Ctrl-C.`;

export interface RolloutOptions {
    readonly stack: string;
    readonly services: readonly string[];
    readonly engine: "automation" | "render";
    readonly dryRun: boolean;
    readonly requestRate?: number;
    readonly commit: boolean;
    readonly onInterrupt: "rollback" | "hold";
    readonly resume: boolean;
    readonly cwd: string;
}

export function parseRolloutArgs(argv: readonly string[]): RolloutOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let stack: string | undefined;
    const services: string[] = [];
    let engine: RolloutOptions["engine"] = "automation";
    let onInterrupt: RolloutOptions["onInterrupt"] = "rollback";
    let requestRate: number | undefined;
    let cwd = PROJECT_ROOT;
    const flags = { dryRun: false, commit: false, resume: false };
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--stack":
                stack = args.value(flag);
                break;
            case "--service":
                services.push(...args.value(flag).split(",").filter((s) => s !== ""));
                break;
            case "--engine": {
                const value = args.value(flag);
                if (value !== "automation" && value !== "render") throw args.error(`--engine ${JSON.stringify(value)}: must be automation (pulumi up through the Automation API) or render (a rehearsal under the mocks). Fix: --engine render`);
                engine = value;
                break;
            }
            case "--on-interrupt": {
                const value = args.value(flag);
                if (value !== "rollback" && value !== "hold") throw args.error(`--on-interrupt ${JSON.stringify(value)}: must be rollback or hold. Fix: --on-interrupt hold`);
                onInterrupt = value;
                break;
            }
            case "--request-rate": {
                const value = args.value(flag);
                requestRate = Number(value);
                if (!/^\d+(\.\d+)?$/.test(value) || !(requestRate > 0)) throw args.error(`--request-rate ${JSON.stringify(value)}: must be a positive number of requests per second. Fix: --request-rate 100`);
                break;
            }
            case "--cwd":
                cwd = path.resolve(args.value(flag));
                break;
            case "--dry-run":
                flags.dryRun = true;
                break;
            case "--commit":
                flags.commit = true;
                break;
            case "--resume":
                flags.resume = true;
                break;
            default:
                throw args.unknown(flag);
        }
    }
    const stackName = args.stack(stack, stackNames(cwd), cwd);
    if (services.length === 0 && !flags.resume) throw args.error("--service is required: the service whose candidate to release. Fix: --service user-service");
    if (requestRate !== undefined && !flags.dryRun) throw args.error("--request-rate applies to --dry-run only. Fix: add --dry-run, or leave --request-rate out");
    if (flags.dryRun && (flags.commit || flags.resume)) throw args.error(`--dry-run changes nothing, so it takes no ${flags.commit ? "--commit" : "--resume"}. Fix: leave it out`);
    return { stack: stackName, services, engine, onInterrupt, cwd, ...flags, ...(requestRate !== undefined && { requestRate }) };
}

const EXIT = { promoted: 0, rolledBack: 1, stopped: 2, held: 130 } as const;

/** A dry run reads the stack file and runs the program under the mocks, whatever the engine: no Pulumi CLI, no cluster. */
export function engineFor(options: RolloutOptions, log: (line: string) => void): StackEngine {
    return options.engine === "render" || options.dryRun ? new RenderEngine(options.cwd, options.stack, path.join(options.cwd, "rendered", options.stack)) : new AutomationEngine(options.cwd, options.stack, log);
}

export async function rollout(options: RolloutOptions, engine: StackEngine, signal: AbortSignal, out: (line: string) => void): Promise<number> {
    const held = readHeld(options.cwd, options.stack);
    if (options.resume && held === undefined) throw new SetupError(`--resume: no rollout of stack ${options.stack} is held. Fix: start one with --service <name>`);
    if (!options.resume && !options.dryRun && held !== undefined) {
        throw new SetupError(`A rollout of ${held.services.join(", ")} on stack ${options.stack} was held at step ${held.stepIndex + 1} (${held.heldAt}). Fix: continue it with --resume (Ctrl-C then rolls it back)`);
    }
    const services = options.resume && held !== undefined ? held.services : options.services;
    if (options.resume && options.services.length > 0 && options.services.join() !== services.join()) {
        throw new UsageError(`--service ${options.services.join(",")}: the held rollout is of ${services.join(", ")}. Fix: --resume without --service`, USAGE);
    }
    const prepared = await prepareRollout(engine, options.stack, services, options.resume ? held : undefined);
    if (options.dryRun) {
        let rates: Record<string, number> | undefined;
        let source: string;
        if (options.requestRate !== undefined) {
            rates = Object.fromEntries(services.map((s) => [s, options.requestRate ?? 0]));
            source = `${options.requestRate} requests/s (--request-rate)`;
        } else {
            try {
                rates = await observedRates(prepared);
                source = `the rates Prometheus observes now`;
            } catch (error) {
                source = `Prometheus at ${prepared.settings.rollout.prometheusUrl} did not answer: ${error instanceof Error ? error.message : String(error)}`;
            }
        }
        await previewRollout(prepared, rates, source, out);
        return 0;
    }
    const problem = options.commit ? commitProblem(engine.stackFile) : undefined;
    if (problem !== undefined) throw new SetupError(problem);
    engine.checkWritable();
    const lock = RolloutLock.acquire(options.cwd, options.stack, services);
    let outcome;
    // Set by the driver's hold, in a callback the compiler cannot follow.
    const kept = { held: false };
    try {
        const problems = await preflightProblems(prepared.settings.rollout.prometheusUrl, prepared.targets, prepared.counters, prepared.metricQueries, signal);
        if (problems.length > 0) throw new SetupError(`The rollout cannot start; nothing was changed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        out(`Rolling out ${services.join(", ")} on ${engine.description}${options.resume ? `, resumed at step ${(held?.stepIndex ?? 0) + 1}` : ""}`);
        outcome = await runRollout({
            prepared,
            engine,
            signal,
            onInterrupt: options.onInterrupt,
            ...(options.resume && held !== undefined && { resume: held }),
            hold: (state) => {
                writeHeld(options.cwd, state);
                kept.held = true;
            },
            log: out,
        });
        // Held by Ctrl-C, or stopped by the preview guard where --resume can continue: the state stays.
        if (!kept.held) clearHeld(options.cwd, options.stack);
    } finally {
        lock.release();
    }
    out(`${{ promoted: "PROMOTED", rolledBack: "ROLLED BACK", stopped: "STOPPED", held: "HELD" }[outcome.kind]}: ${outcome.reason}`);
    // A stopped rollout leaves a file someone else was changing: theirs to commit.
    if (options.commit && (outcome.kind === "promoted" || outcome.kind === "rolledBack")) out(`Committed ${path.basename(engine.stackFile)}: ${commitStackFile(engine.stackFile, commitMessage(options.stack, services, outcome))}`);
    return EXIT[outcome.kind];
}

/** Bad input and set-up problems, which exit 2 with the message alone. */
const EXPECTED = [UsageError, ConfigError, RolloutRefusal, SetupError, StackFileError, StackFileWriteError];

export async function main(argv: readonly string[], out: (line: string) => void, err: (line: string) => void, signal: AbortSignal): Promise<number> {
    try {
        const options = parseRolloutArgs(argv);
        if (options === "help") {
            out(USAGE);
            return 0;
        }
        return await rollout(options, engineFor(options, out), signal, out);
    } catch (error) {
        err(EXPECTED.some((type) => error instanceof type) ? (error as Error).message : error instanceof Error ? (error.stack ?? error.message) : String(error));
        return 2;
    }
}

if (require.main === module) {
    const controller = new AbortController();
    process.on("SIGINT", () => {
        if (controller.signal.aborted) process.exit(130);
        console.error("Interrupted: finishing the current update, then acting as --on-interrupt says (Ctrl-C again stops at once)");
        controller.abort();
    });
    void main(process.argv.slice(2), console.log, console.error, controller.signal).then((code) => {
        process.exitCode = code;
    });
}
