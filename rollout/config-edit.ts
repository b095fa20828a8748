// A stack's config as the driver sees it, and the edits a rollout makes to it, in `pulumi config set --path`
// terms: each edit is a path and a value (or a removal), so the Automation API and the stack-file writer apply
// the very same edits.
import { createHash } from "crypto";
import { isDeepStrictEqual } from "util";
import { ConfigSource, isRecord } from "../components/config/config-reader";

/** A config value as the stack file holds it: scalars, or objects and lists for structured keys. */
export type ConfigValue = string | number | boolean | readonly ConfigValue[] | { readonly [key: string]: ConfigValue };

/** Config keys without the project prefix. */
export type StackConfig = Readonly<Record<string, ConfigValue>>;

export function isConfigValue(value: unknown): value is ConfigValue {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return true;
    if (Array.isArray(value)) return value.every(isConfigValue);
    return isRecord(value) && Object.values(value).every(isConfigValue);
}

/** A stack file's parsed config as the driver's StackConfig; a value YAML can hold but config cannot (null) is refused. */
export function asStackConfig(parsed: Readonly<Record<string, unknown>>): StackConfig {
    const wrong = Object.entries(parsed).find(([, value]) => !isConfigValue(value));
    if (wrong !== undefined) throw new Error(`config key ${wrong[0]} holds ${JSON.stringify(wrong[1])}, which is not a config value (a string, number, boolean, list or object)`);
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, ConfigValue] => isConfigValue(entry[1])));
}

/** A key, then the fields and list indexes inside it: `["services", "user-service", "canaryWeight"]`. */
export type ConfigPath = readonly [string, ...(string | number)[]];

export interface ConfigEdit {
    readonly path: ConfigPath;
    /** Unset: the edit removes the value, as `pulumi config rm --path` does. */
    readonly value?: ConfigValue;
}

/** A path as `pulumi config set --path` spells it: `services.user-service.canaryWeight`, `steps[0]`, `["a.b"]`. */
export function pathKey(path: readonly (string | number)[]): string {
    return path
        .map((part, i) => (typeof part === "number" ? `[${part}]` : /^[A-Za-z0-9_-]+$/.test(part) ? (i === 0 ? part : `.${part}`) : `[${JSON.stringify(part)}]`))
        .join("");
}

/**
 * The value as Pulumi stores it: a top-level key is always a string; inside a path, integers and booleans keep
 * their type and everything else is a string (`pulumi config set --path` infers exactly that).
 */
export function storedValue(path: ConfigPath, value: ConfigValue): ConfigValue {
    if (path.length === 1 && typeof value !== "object") return String(value);
    return value;
}

/** The config with the edits applied, in order; the input is not changed. */
export function applyEdits(config: StackConfig, edits: readonly ConfigEdit[]): StackConfig {
    let result: Record<string, ConfigValue> = { ...config };
    for (const edit of edits) result = setIn(result, edit.path, edit.value === undefined ? undefined : storedValue(edit.path, edit.value)) as Record<string, ConfigValue>;
    return result;
}

function setIn(container: ConfigValue | undefined, path: readonly (string | number)[], value: ConfigValue | undefined): ConfigValue | undefined {
    if (path.length === 0) return value;
    const [head, ...rest] = path;
    if (typeof head === "number") {
        const list = Array.isArray(container) ? [...(container as ConfigValue[])] : [];
        const next = setIn(list[head], rest, value);
        if (next === undefined) list.splice(head, 1);
        else list[head] = next;
        return list;
    }
    const record: Record<string, ConfigValue> = isRecord(container) ? { ...(container as Record<string, ConfigValue>) } : {};
    const next = setIn(Object.hasOwn(record, head) ? record[head] : undefined, rest, value);
    // defineProperty: a field named __proto__ is a field like any other, not the object's prototype.
    if (next === undefined) Reflect.deleteProperty(record, head);
    else Object.defineProperty(record, head, { value: next, enumerable: true, writable: true, configurable: true });
    return record;
}

/** The value at a path, or undefined. */
export function valueAt(config: StackConfig, path: readonly (string | number)[]): ConfigValue | undefined {
    let current: unknown = config;
    for (const part of path) {
        if (typeof part === "number" ? !Array.isArray(current) : !isRecord(current)) return undefined;
        // Own fields only: a service named constructor is not Object's constructor.
        if (!Object.hasOwn(current as object, part)) return undefined;
        current = (current as Record<string | number, unknown>)[part];
    }
    return current as ConfigValue | undefined;
}

/** A config value as plain data (or undefined), so values read back and values written compare equal. */
export const plain = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/**
 * A key the rollout owns, with the value it last read or wrote there; or, for a key that holds a secret, only that
 * value's digest (what the rollout's record on the stack keeps, so a decrypted secret never reaches its tags).
 */
export type Expectation = { readonly path: ConfigPath; readonly value: unknown } | { readonly path: ConfigPath; readonly digest: string };

/** A value's digest, for an expectation of a secret key. */
export const valueDigest = (value: unknown): string => `sha256:${createHash("sha256").update(JSON.stringify(plain(value) ?? null)).digest("hex")}`;

const holds = (config: StackConfig, expected: Expectation): boolean => ("digest" in expected ? valueDigest(valueAt(config, expected.path)) === expected.digest : isDeepStrictEqual(plain(valueAt(config, expected.path)), expected.value));

/** Keys the rollout owns that someone else changed since the rollout last read or wrote them. */
export class ChangedUnderRollout extends Error {
    constructor(readonly paths: readonly string[]) {
        super(`${paths.join(", ")} changed in the stack since the rollout last wrote ${paths.length === 1 ? "it" : "them"}; the rollout does not overwrite another change`);
        this.name = "ChangedUnderRollout";
    }
}

/** Throws ChangedUnderRollout when a key of `config` no longer holds what is expected of it. */
export function checkExpected(config: StackConfig, expected: readonly Expectation[]): void {
    const changed = expected.filter((e) => !holds(config, e)).map(({ path }) => pathKey(path));
    if (changed.length > 0) throw new ChangedUnderRollout(changed);
}

/** What the program receives for a key: the CLI passes strings, objects and lists as JSON. */
export function cliString(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

/** The config as the program's ConfigSource, so the driver validates it with the program's own reader. */
export function configSource(config: Readonly<Record<string, unknown>>, secretKeys: readonly string[] = []): ConfigSource {
    return {
        get: (key) => (Object.hasOwn(config, key) ? cliString(config[key]) : undefined),
        keys: () => Object.keys(config),
        isSecret: (key) => secretKeys.includes(key),
    };
}
