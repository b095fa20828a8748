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

/**
 * Text from config made safe to print: control characters (newlines, escape sequences), line and paragraph
 * separators and other invisible format characters become escapes, so an echoed value cannot forge lines or
 * move the terminal's cursor.
 */
export function printable(text: string): string {
    return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

export class ConfigError extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(
            `Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n` +
                problems.map((p) => `  - ${printable(p.key)} = ${printable(p.value)}: ${printable(p.allowed)}.\n    Fix: ${printable(p.fix)}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/** Edit distance, for "did you mean" on a misspelled key or field. */
function distance(a: string, b: string): number {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const next = [i];
        for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
        row = next;
    }
    return row[b.length];
}

/** The known name closest to a misspelled one, when it is close enough to be what was meant. */
function nearest(name: string, known: readonly string[]): string | undefined {
    let best: { name: string; distance: number } | undefined;
    for (const candidate of known) {
        const d = distance(name, candidate);
        if (best === undefined || d < best.distance) best = { name: candidate, distance: d };
    }
    return best !== undefined && best.distance <= Math.max(2, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

export const didYouMean = (name: string, known: readonly string[]): string => {
    const guess = nearest(name, known);
    return guess === undefined ? "" : ` (did you mean ${guess}?)`;
};

export function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The longest value an error echoes in full. */
const MAX_SHOWN = 200;

/** How a value is shown in an error: raw strings quoted, parsed values as JSON, long ones cut. */
export function show(value: unknown): string {
    if (value === undefined) return "(unset)";
    const text = JSON.stringify(value);
    return text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN)}... (${text.length} characters)`;
}

export const setCommand = (key: string, example: string | number | boolean): string => `pulumi config set ${key} ${String(example)}`;
export const setPathCommand = (path: string, example: string | number | boolean): string => `pulumi config set --path '${path}' ${String(example)}`;

export const DURATION = /^\d+(\.\d+)?(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The durations a field accepts, and one it suggests. */
export interface DurationRange {
    readonly min: string;
    readonly max: string;
    readonly example: string;
}

/**
 * Milliseconds of a duration that matches DURATION, exactly: rounded to the microsecond, so 16.1s is 16100 and
 * not the 16100.000000000002 binary floating point makes of 16.1 * 1000.
 */
export function durationMs(duration: string): number {
    const [, amount, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration) ?? [];
    return Math.round(Number(amount) * UNIT_MS[unit] * 1000) / 1000;
}

/** The whole number in range nearest a number written with decimals ("50.0", 12.7), for a fix that keeps what was meant. */
function nearestWhole(text: string, min: number, max: number): number | undefined {
    const number = /^-?\d+\.\d+$/.test(text.trim()) ? Number(text) : NaN;
    return Number.isFinite(number) ? Math.min(max, Math.max(min, Math.round(number))) : undefined;
}

/** How a value the stack file holds encrypted (secure:) reads where only the Pulumi CLI could decrypt it. */
export const SECRET_VALUE = "[secret]";

/** Collects problems so one run reports every bad key at once. */
export class Reader {
    readonly problems: ConfigProblem[] = [];
    /**
     * Services the catalogue names but refused for a problem of their own: what names them elsewhere (routes,
     * mirrors, mesh edges) is not refused as well, so the fix offered is never to delete healthy config.
     */
    readonly refusedServices = new Set<string>();
    constructor(private readonly source: ConfigSource) {}

    raw(key: string): string | undefined {
        return this.source.get(key);
    }

    isSecret(key: string): boolean {
        return this.source.isSecret(key);
    }

    /** Records a problem; the value of a key set with --secret is never echoed. */
    fail(key: string, value: string, allowed: string, fix: string): void {
        const top = /^[^.[]*/.exec(key)?.[0] ?? key;
        const secret = this.source.keys().includes(top) && this.source.isSecret(top);
        // A stack file's secure: value reaches render and the benchmark as "[secret]": say so, rather than only that it is malformed.
        const encrypted = secret && value === JSON.stringify(SECRET_VALUE);
        this.problems.push({ key, value: secret ? "[secret]" : value, allowed: encrypted ? `${allowed}; the stack file holds it encrypted (secure:), which only the Pulumi CLI decrypts` : allowed, fix: encrypted ? `render it with --set ${top}=<value>, or run pulumi preview` : fix });
    }

    integer(key: string, fallback: number, min: number, max: number, meaning: string, example: number): number {
        const raw = this.raw(key);
        if (raw === undefined) return fallback;
        const text = raw.trim();
        const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
        if (!Number.isSafeInteger(value) || value < min || value > max) {
            this.fail(key, show(raw), `must be a whole number from ${min} to ${max} (${meaning})`, setCommand(key, nearestWhole(text, min, max) ?? example));
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
                this.fail(`${at}.${field}`, show(value[field]), `unknown field${didYouMean(field, allowed)}; allowed: ${allowed.join(", ")}`, `pulumi config rm --path '${at}.${field}'`);
            }
        }
        return this.problems.length === before;
    }

    integerAt(at: string, value: unknown, min: number, max: number, meaning: string, example: number): number | undefined {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
            this.fail(at, show(value), `must be a whole number from ${min} to ${max} (${meaning})`, setPathCommand(at, nearestWhole(String(value), min, max) ?? example));
            return undefined;
        }
        return value;
    }

    /**
     * A number from `min` to `max`, given as a number or as its text: `pulumi config set --path` stores a decimal
     * such as 0.5 as a string.
     */
    decimalAt(at: string, value: unknown, min: number, max: number, meaning: string, example: number): number | undefined {
        const number = typeof value === "number" ? value : typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
        if (!Number.isFinite(number) || number < min || number > max) {
            this.fail(at, show(value), `must be a number from ${min} to ${max} (${meaning})`, setPathCommand(at, example));
            return undefined;
        }
        return number;
    }

    /** A percent, decimals allowed, as a number or as the text `pulumi config set --path` stores a decimal as ("99.5"). */
    percentAt(at: string, value: unknown, meaning: string): number | undefined {
        const number = typeof value === "number" ? value : typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
        if (!Number.isFinite(number) || number < 0 || number > 100) {
            this.fail(at, show(value), `must be a percent from 0 to 100, decimals allowed (${meaning})`, setPathCommand(at, Number.isFinite(number) ? Math.min(100, Math.max(0, number)) : 10));
            return undefined;
        }
        return number;
    }

    /** A duration between `range.min` and `range.max` (each a duration such as 50ms or 1h), in one syntax for every field. */
    durationAt(at: string, value: unknown, meaning: string, range: DurationRange): string | undefined {
        const ms = typeof value === "string" && DURATION.test(value) ? durationMs(value) : NaN;
        // Whole milliseconds: the Gateway API's durations and Prometheus's ranges have no finer unit.
        if (!(ms >= durationMs(range.min) && ms <= durationMs(range.max) && Number.isInteger(ms))) {
            this.fail(at, show(value), `must be a duration from ${range.min} to ${range.max} in whole milliseconds, such as ${range.example}: a number and ms, s, m or h (${meaning})`, setPathCommand(at, range.example));
            return undefined;
        }
        return String(value);
    }

    stringAt(at: string, value: unknown, re: RegExp, allowed: string, example: string): string | undefined {
        if (typeof value !== "string" || !re.test(value)) {
            this.fail(at, show(value), allowed, setPathCommand(at, example));
            return undefined;
        }
        return value;
    }
}
