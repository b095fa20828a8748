// `npm run render -- --stack dev [--set canaryWeight=50]`: runs the program under Pulumi's mocks (no CLI,
// no cluster) and writes what `pulumi up` would apply: one YAML file per Kubernetes object and one per Helm
// release, under rendered/<stack>/. Every object is checked against its schema first.
import * as path from "path";
import { ConfigError, ConfigProblem } from "../components/config/config-reader";
import { PolicySummary, splitTable, TrafficSplit } from "../components/plan/outputs";
import { ConfigValue, PROJECT_ROOT, ProgramError, ProgramRun, runProgram, stackNames } from "../lib/mock-program";
import { StackFileError } from "../lib/stack-file";
import { ArgvReader, UsageError } from "../lib/cli";
import { outDirRefusal, writeRendered } from "../lib/render-writer";

const USAGE = `Usage: npm run render -- --stack <name> [--set key=value ...] [--out <dir>]

  --stack <name>     stack to render: one of the Pulumi.<name>.yaml files (${stackNames().join(", ")})
  --set key=value    override one config key for this render, as 'pulumi config set key value' would
  --out <dir>        where to write (default: rendered/<stack>): a new or empty folder, or an earlier render,
                     which is replaced whole; never the repository or a folder holding it
  --help             show this help`;

export interface RenderOptions {
    stack: string;
    overrides: Record<string, string>;
    out: string;
}

/** Parses the command line; throws UsageError naming the bad flag and what is allowed. */
export function parseArgs(argv: readonly string[]): RenderOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let stack: string | undefined;
    let out: string | undefined;
    const overrides: Record<string, string> = {};
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--stack":
                stack = args.value(flag);
                break;
            case "--out":
                out = args.value(flag);
                break;
            case "--set": {
                const assignment = args.value(flag);
                const eq = assignment.indexOf("=");
                if (eq <= 0) throw args.error(`--set takes key=value, got "${assignment}" (for example --set canaryWeight=50)`);
                // A key named __proto__ is a key like any other (and refused as unknown), not the object's prototype.
                Object.defineProperty(overrides, assignment.slice(0, eq), { value: assignment.slice(eq + 1), enumerable: true, writable: true, configurable: true });
                break;
            }
            default:
                throw args.unknown(flag);
        }
    }
    const stackName = args.stack(stack, stackNames(), PROJECT_ROOT);
    const target = out ?? path.join(PROJECT_ROOT, "rendered", stackName);
    const refusal = outDirRefusal(target);
    if (refusal !== undefined) throw args.error(refusal);
    return { stack: stackName, overrides, out: target };
}

const topKey = (key: string) => /^[^.[]*/.exec(key)?.[0] ?? key;

/**
 * A problem's fix in render's words when the value came from `--set`: `--set key=value` instead of
 * `pulumi config set key value`, which would change the stack rather than this render.
 */
export function renderFix(problem: ConfigProblem, overrides: Readonly<Record<string, string>>): ConfigProblem {
    const top = topKey(problem.key);
    if (!Object.hasOwn(overrides, top)) return problem;
    const plain = /^pulumi config set (\S+) (.+)$/.exec(problem.fix);
    if (plain !== null && plain[1] === top) return { ...problem, fix: `--set ${top}=${plain[2]}` };
    const path = /^pulumi config set --path '([^']+)' (.+)$/.exec(problem.fix);
    if (path !== null) return { ...problem, fix: `in --set ${top}=<JSON>, set ${path[1]} to ${path[2]}` };
    return { ...problem, fix: `${problem.fix.replace(/^pulumi config rm (--path )?/, "remove ")} from --set ${top}=...` };
}

export async function render(options: RenderOptions, log: (line: string) => void): Promise<string[]> {
    // Checked again here (parseArgs did) for callers that build the options themselves: nothing runs or is written.
    const refusal = outDirRefusal(options.out);
    if (refusal !== undefined) throw new UsageError(refusal, USAGE);
    const overrides: Record<string, ConfigValue> = options.overrides;
    let result: ProgramRun;
    try {
        result = await runProgram(options.stack, overrides);
    } catch (error) {
        if (error instanceof ProgramError && error.cause instanceof ConfigError) {
            throw new ProgramError(new ConfigError(error.cause.problems.map((p) => renderFix(p, options.overrides))), error.registered);
        }
        throw error;
    }
    const written = await writeRendered(result, options.out);
    log(`Rendered stack ${options.stack}: ${written.length} files in ${path.relative(process.cwd(), options.out) || "."}`);
    log("");
    log(splitTable(result.outputs.trafficSplit as TrafficSplit));
    log("");
    log("Routing rules and policies (first matching rule wins):");
    for (const [service, lines] of Object.entries(result.outputs.routingPolicies as PolicySummary)) {
        log(`  ${service}`);
        for (const line of lines) log(`    ${line}`);
    }
    const tryIt = result.outputs.tryIt;
    if (Array.isArray(tryIt)) {
        log("");
        log("Try it once deployed:");
        for (const line of tryIt) log(`  ${String(line)}`);
    }
    return written;
}

/**
 * Render's exit status for an error: 2 for input it refuses (flags, config, a stack file), with the message
 * alone; 1 for anything else, which is a bug worth its stack trace.
 */
export function exitStatus(error: unknown): { code: 1 | 2; message: string } {
    const cause = error instanceof ProgramError ? error.cause : error;
    if (cause instanceof UsageError || cause instanceof ConfigError || cause instanceof StackFileError) return { code: 2, message: cause.message };
    return { code: 1, message: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause) };
}

/** The command: parses `argv`, renders, and returns the exit status; `out` and `err` print a line each. */
export async function main(argv: readonly string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
    try {
        const options = parseArgs(argv);
        if (options === "help") {
            out(USAGE);
            return 0;
        }
        await render(options, out);
        return 0;
    } catch (error) {
        const { code, message } = exitStatus(error);
        err(message);
        return code;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2), console.log, console.error).then((code) => {
        process.exitCode = code;
    });
}
