// Command-line parsing shared by the scripts: a bad flag is a UsageError that carries the usage text.

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
