// Command-line parsing shared by the scripts: a bad flag is a UsageError that carries the usage text; and how a
// command runs as a process (who acts, its exit code, Ctrl-C).
import { execFileSync } from "child_process";
import * as os from "os";

export class UsageError extends Error {
    constructor(message: string, usage: string) {
        super(`${message}\n\n${usage}`);
        this.name = "UsageError";
    }
}

/** Walks argv flag by flag; `value` takes the argument after the current flag. */
export class ArgvReader {
    private index = 0;

    constructor(
        private readonly argv: readonly string[],
        private readonly usage: string,
    ) {}

    next(): string | undefined {
        return this.index < this.argv.length ? this.argv[this.index++] : undefined;
    }

    value(flag: string): string {
        const value = this.argv[this.index] as string | undefined;
        if (value === undefined || value.startsWith("--")) throw this.error(`${flag} needs a value`);
        this.index++;
        return value;
    }

    /** The value after `flag`, one of `allowed` (`meaning` says what each is, for the error). */
    choice<T extends string>(flag: string, allowed: readonly T[], meaning: string, example: T): T {
        const value = this.value(flag);
        const chosen = allowed.find((a) => a === value);
        if (chosen === undefined) throw this.error(`${flag} ${JSON.stringify(value)}: must be ${meaning}. Fix: ${flag} ${example}`);
        return chosen;
    }

    error(message: string): UsageError {
        return new UsageError(message, this.usage);
    }

    unknown(flag: string): UsageError {
        return this.error(`Unknown argument ${JSON.stringify(flag)}`);
    }

    /** `--stack`'s value, required and one of `stacks` (the Pulumi.<name>.yaml files in `dir`). */
    stack(value: string | undefined, stacks: readonly string[], dir: string): string {
        const fix = `Fix: --stack ${stacks[0] ?? "dev"}`;
        if (value === undefined) throw this.error(`--stack is required. ${fix}`);
        if (!stacks.includes(value)) throw this.error(`--stack ${JSON.stringify(value)}: there is no Pulumi.${value}.yaml in ${dir} (stacks: ${stacks.join(", ") || "none"}). ${fix}`);
        return value;
    }
}

/** Who acts: `given` (--actor), else the checkout's git user, else the CI's actor, else this machine's user; at most `limit` characters. */
export function actorOf(given: string | undefined, cwd: string, limit: number): string {
    if (given !== undefined) return given;
    let name = "";
    try {
        name = execFileSync("git", ["-C", cwd, "config", "user.name"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
        // No git, or no user.name: the CI's actor, if any.
    }
    name ||= process.env.GITHUB_ACTOR ?? "";
    name ||= `${os.userInfo().username}@${os.hostname()}`;
    return name.slice(0, limit);
}

export type Command = (argv: readonly string[], out: (line: string) => void, err: (line: string) => void, signal: AbortSignal) => Promise<number>;

/**
 * A command's main: `run` with the options `parse` reads (or the usage, for --help). A problem of the kinds in
 * `expected` (bad input, set-up) exits 2 with its message alone; anything else with its stack, to be reported.
 */
export function commandMain<T>(parse: (argv: readonly string[]) => T | "help", usage: string, run: (options: T, out: (line: string) => void, signal: AbortSignal) => Promise<number>, expected: readonly (abstract new (...args: never[]) => Error)[]): Command {
    return async (argv, out, err, signal) => {
        try {
            const options = parse(argv);
            if (options === "help") {
                out(usage);
                return 0;
            }
            return await run(options, out, signal);
        } catch (error) {
            err(error instanceof Error && expected.some((type) => error instanceof type) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error));
            return 2;
        }
    };
}

/** Runs `main` as this process: Ctrl-C aborts its signal (saying what that does; a second one exits 130 at once). */
export function runAsProcess(main: Command, onInterrupt: string): void {
    const controller = new AbortController();
    process.on("SIGINT", () => {
        if (controller.signal.aborted) process.exit(130);
        console.error(onInterrupt);
        controller.abort();
    });
    void main(process.argv.slice(2), console.log, console.error, controller.signal).then((code) => {
        process.exitCode = code;
    });
}
