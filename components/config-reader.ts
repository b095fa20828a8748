// Reading raw stack config values with errors a person can act on: every problem names the key (or the path
// inside an object key), the value given, what is allowed and the command that fixes it.

/** Reads one raw stack config value as the Pulumi CLI passes it: a string (objects as JSON). */
export interface ConfigSource {
    get(key: string): string | undefined;
    /** Every key set for this project, so a misspelled key is refused instead of ignored. */
    keys(): readonly string[];
    /** Was the key set with `pulumi config set --secret`? */
    isSecret(key: string): boolean;
}

export interface ConfigProblem {
    readonly key: string;
    readonly value: string;
    readonly allowed: string;
    readonly fix: string;
}

export class ConfigError extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(
            `Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n` +
                problems.map((p) => `  - ${p.key} = ${p.value}: ${p.allowed}.\n    Fix: ${p.fix}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How a value is shown in an error: raw strings quoted, parsed values as JSON. */
export function show(value: unknown): string {
    return value === undefined ? "(unset)" : JSON.stringify(value);
}

export const setCommand = (key: string, example: string | number | boolean): string => `pulumi config set ${key} ${String(example)}`;
export const setPathCommand = (path: string, example: string | number | boolean): string => `pulumi config set --path '${path}' ${String(example)}`;

export const DURATION = /^\d+(\.\d+)?(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration that matches DURATION. */
export function durationMs(duration: string): number {
    const [, amount, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration) ?? [];
    return Number(amount) * UNIT_MS[unit];
}

/** Collects problems so one run reports every bad key at once. */
export class Reader {
    readonly problems: ConfigProblem[] = [];
    constructor(private readonly source: ConfigSource) {}

    raw(key: string): string | undefined {
        return this.source.get(key);
    }

    isSecret(key: string): boolean {
        return this.source.isSecret(key);
    }

    fail(key: string, value: string, allowed: string, fix: string): void {
        this.problems.push({ key, value, allowed, fix });
    }

    integer(key: string, fallback: number, min: number, max: number, meaning: string, example: number): number {
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
        if (!Number.isSafeInteger(value) || value < min || value > max) {
            this.fail(key, show(raw), `must be a whole number from ${min} to ${max} (${meaning})`, setCommand(key, example));
            return fallback;
        }
        return value;
    }

    boolean(key: string, fallback: boolean, meaning: string): boolean {
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        if (text !== "true" && text !== "false") {
            this.fail(key, show(raw), `must be true or false (${meaning})`, setCommand(key, !fallback));
            return fallback;
        }
        return text === "true";
    }

    oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[], meaning: string): T {
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const match = allowed.find((a) => a === raw.trim());
        if (match === undefined) {
            const choices = allowed.map((a) => (a === "" ? '"" (none)' : a)).join(", ");
            this.fail(key, show(raw), `must be one of ${choices} (${meaning})`, setCommand(key, allowed.find((a) => a !== "") ?? '""'));
            return fallback;
        }
        return match;
    }

    pattern(key: string, fallback: string, re: RegExp, allowed: string, example: string): string {
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        if (!re.test(text)) {
            this.fail(key, show(raw), allowed, setCommand(key, example));
            return fallback;
        }
        return text;
    }

    /**
     * A structured key as the CLI passes it (JSON), or the raw string when it is not JSON. Objects come back
     * without a prototype, so a key such as `__proto__` or `constructor` is a plain string like any other.
     */
    json(key: string): unknown {
        const raw = this.raw(key);
        if (raw === undefined) return undefined;
        try {
            return JSON.parse(raw, (_name, value: unknown) => (isRecord(value) ? Object.assign(Object.create(null) as Record<string, unknown>, value) : value));
        } catch {
            return raw;
        }
    }

    /** An object-valued key (the CLI passes it as JSON); undefined when unset or not an object. */
    object(key: string, shape: string, fix: string): Record<string, unknown> | undefined {
        const raw = this.raw(key);
        if (raw === undefined) return undefined;
        const parsed = this.json(key);
        if (!isRecord(parsed)) {
            this.fail(key, show(raw), `must be an object: ${shape}`, fix);
            return undefined;
        }
        return parsed;
    }

    // Checks on values inside object-valued keys; `at` is the --path of the value.

    fields(at: string, value: unknown, allowed: readonly string[], shape: string, fix: string): value is Record<string, unknown> {
        if (!isRecord(value)) {
            this.fail(at, show(value), `must be an object: ${shape}`, fix);
            return false;
        }
        const before = this.problems.length;
        for (const field of Object.keys(value)) {
            if (!allowed.includes(field)) {
                this.fail(`${at}.${field}`, show(value[field]), `unknown field; allowed: ${allowed.join(", ")}`, `pulumi config rm --path '${at}.${field}'`);
            }
        }
        return this.problems.length === before;
    }

    integerAt(at: string, value: unknown, min: number, max: number, meaning: string, example: number): number | undefined {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
            this.fail(at, show(value), `must be a whole number from ${min} to ${max} (${meaning})`, setPathCommand(at, example));
            return undefined;
        }
        return value;
    }

    percentAt(at: string, value: unknown, meaning: string): number | undefined {
        if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 100) {
            this.fail(at, show(value), `must be a percent from 0 to 100 (${meaning})`, setPathCommand(at, 10));
            return undefined;
        }
        return value;
    }

    durationAt(at: string, value: unknown, meaning: string): string | undefined {
        if (typeof value !== "string" || !DURATION.test(value) || /^0+(\.0+)?[a-z]+$/.test(value)) {
            this.fail(at, show(value), `must be a positive duration such as 5s, 250ms or 1m (${meaning})`, setPathCommand(at, "5s"));
            return undefined;
        }
        return value;
    }

    stringAt(at: string, value: unknown, re: RegExp, allowed: string, example: string): string | undefined {
        if (typeof value !== "string" || !re.test(value)) {
            this.fail(at, show(value), allowed, setPathCommand(at, example));
            return undefined;
        }
        return value;
    }
}
