// The release train: `release-train.yaml` beside Pulumi.yaml names the stacks a release goes through, in waves
// that move together, with a bake after each and the gate into each later one. Read and checked whole before
// anything moves: every problem names the field, the value given, what is allowed and the fix.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ConfigProblem, didYouMean, DURATION, durationMs, isRecord, printable, show } from "../components/config/config-reader";

export const TRAIN_FILE = "release-train.yaml";

/** automatic: the next wave starts once this one is baked; approval: it waits for `npm run release -- approve`. */
export type Gate = "automatic" | "approval";
const GATES: readonly Gate[] = ["automatic", "approval"];

export interface Wave {
    readonly name: string;
    readonly stacks: readonly string[];
    /** How long the promoted version is watched against the hard limits before the next wave may start. */
    readonly bakeMs: number;
    /** As written, for messages and the state. */
    readonly bake: string;
    /** What lets the train into this wave; the first wave's is the train's start. */
    readonly gate: Gate;
}

export interface TrainConfig {
    readonly waves: readonly Wave[];
    /** On a failure, also return the waves before the failed one to the version they ran before the train. */
    readonly returnEarlierWaves: boolean;
}

export class TrainConfigError extends Error {
    constructor(
        readonly file: string,
        readonly problems: readonly ConfigProblem[],
    ) {
        super(
            `Invalid release train in ${file} (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n` +
                problems.map((p) => `  - ${printable(p.key)} = ${printable(p.value)}: ${printable(p.allowed)}.\n    Fix: ${printable(p.fix)}`).join("\n"),
        );
        this.name = "TrainConfigError";
    }
}

const TOP_FIELDS = ["waves", "returnEarlierWaves"];
const WAVE_FIELDS = ["name", "stacks", "bake", "gate"];
const NAME = /^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/;
const MAX_BAKE_MS = 24 * 3_600_000;

/**
 * The train as `text` (the file's content) declares it, checked against the project's stacks. Every problem is
 * reported at once.
 */
export function parseTrain(text: string, stacks: readonly string[], file = TRAIN_FILE): TrainConfig {
    const problems: ConfigProblem[] = [];
    const fail = (key: string, value: unknown, allowed: string, fix: string) => problems.push({ key, value: show(value), allowed, fix });
    let doc: unknown;
    try {
        doc = parse(text);
    } catch (error) {
        throw new TrainConfigError(file, [{ key: "(file)", value: "(not YAML)", allowed: `must be YAML: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, fix: `correct ${file}; docs/release-train.md shows one` }]);
    }
    const example = `waves: [{ name: staging, stacks: [${stacks[0] ?? "staging"}], bake: 10m }]`;
    if (!isRecord(doc)) throw new TrainConfigError(file, [{ key: "(file)", value: show(doc), allowed: "must be a mapping with waves", fix: `write ${example}` }]);
    for (const field of Object.keys(doc)) {
        if (!TOP_FIELDS.includes(field)) fail(field, doc[field], `unknown field${didYouMean(field, TOP_FIELDS)}; a train has ${TOP_FIELDS.join(", ")}`, `remove ${field}`);
    }
    const returnEarlierWaves = doc.returnEarlierWaves ?? false;
    if (typeof returnEarlierWaves !== "boolean") fail("returnEarlierWaves", returnEarlierWaves, "must be true (a failure also returns the earlier waves to the version they ran before) or false (they keep the new version)", "returnEarlierWaves: false");
    const waves: Wave[] = [];
    if (!Array.isArray(doc.waves) || doc.waves.length === 0) {
        fail("waves", doc.waves, "must be a list of one or more waves, each { name, stacks, bake?, gate? }", `write ${example}`);
        throw new TrainConfigError(file, problems);
    }
    const placed = new Map<string, string>();
    for (const [i, raw] of (doc.waves as unknown[]).entries()) {
        const at = `waves[${i}]`;
        if (!isRecord(raw)) {
            fail(at, raw, "must be a mapping { name, stacks, bake?, gate? }", `write ${at} as { name: wave-${i + 1}, stacks: [${stacks[0] ?? "staging"}] }`);
            continue;
        }
        for (const field of Object.keys(raw)) {
            if (!WAVE_FIELDS.includes(field)) fail(`${at}.${field}`, raw[field], `unknown field${didYouMean(field, WAVE_FIELDS)}; a wave has ${WAVE_FIELDS.join(", ")}`, `remove ${at}.${field}`);
        }
        const name = raw.name;
        if (typeof name !== "string" || !NAME.test(name)) fail(`${at}.name`, name, "must be a name of lowercase letters, digits and '-', starting with a letter, at most 40 characters (it names the wave's branch)", `${at}.name: wave-${i + 1}`);
        else if (waves.some((w) => w.name === name)) fail(`${at}.name`, name, "is the name of an earlier wave; each wave has its own", `${at}.name: ${name}-${i + 1}`);
        const list = raw.stacks;
        if (!Array.isArray(list) || list.length === 0) {
            fail(`${at}.stacks`, list, "must be a list of one or more stacks (their Pulumi.<stack>.yaml files), released together", `${at}.stacks: [${stacks[0] ?? "staging"}]`);
        } else {
            for (const [j, stack] of (list as unknown[]).entries()) {
                const where = `${at}.stacks[${j}]`;
                if (typeof stack !== "string" || !stacks.includes(stack)) fail(where, stack, `is not a stack of this project (there is no Pulumi.${String(stack)}.yaml; stacks: ${stacks.join(", ") || "none"})${typeof stack === "string" ? didYouMean(stack, stacks) : ""}`, `name one of ${stacks.join(", ")}, or create the stack first (pulumi stack init, which writes its file)`);
                else if (placed.has(stack)) fail(where, stack, `is already in ${placed.get(stack) ?? "an earlier wave"}: a release reaches each stack once`, `remove it from one of the two`);
                else placed.set(stack, `${at} (${typeof name === "string" ? name : "?"})`);
            }
        }
        const bake = raw.bake ?? "0s";
        const bakeMs = typeof bake === "string" && DURATION.test(bake) ? durationMs(bake) : NaN;
        if (!(bakeMs >= 0 && bakeMs <= MAX_BAKE_MS)) fail(`${at}.bake`, bake, "must be a duration from 0s to 24h (a number and ms, s, m or h): how long the promoted version is watched against the hard limits before the next wave", `${at}.bake: 30m`);
        const gate = raw.gate ?? "automatic";
        const knownGate = GATES.find((g) => g === gate);
        if (knownGate === undefined) fail(`${at}.gate`, gate, `must be automatic (the wave starts once the one before is baked) or approval (it waits for npm run release -- approve)${typeof gate === "string" ? didYouMean(gate, GATES) : ""}`, `${at}.gate: approval`);
        else if (i === 0 && raw.gate !== undefined && knownGate === "approval") fail(`${at}.gate`, gate, "is the first wave's, and the first wave starts when the train does (npm run release is its approval)", `remove ${at}.gate; put gate: approval on the wave that should wait`);
        if (typeof name === "string" && Array.isArray(list)) waves.push({ name, stacks: list.filter((s): s is string => typeof s === "string"), bakeMs, bake: typeof bake === "string" ? bake : "0s", gate: knownGate ?? "automatic" });
    }
    if (problems.length > 0) throw new TrainConfigError(file, problems);
    return { waves, returnEarlierWaves: returnEarlierWaves === true };
}

/** The project's train, from `dir`'s release-train.yaml; a missing file is refused with one to write. */
export function readTrain(dir: string, stacks: readonly string[]): TrainConfig {
    const file = path.join(dir, TRAIN_FILE);
    if (!fs.existsSync(file)) {
        throw new TrainConfigError(TRAIN_FILE, [{ key: "(file)", value: "(missing)", allowed: `a release train is declared in ${TRAIN_FILE} beside Pulumi.yaml`, fix: `write ${TRAIN_FILE} with waves: [{ name: first, stacks: [${stacks[0] ?? "staging"}], bake: 10m }] (docs/release-train.md)` }]);
    }
    return parseTrain(fs.readFileSync(file, "utf8"), stacks, TRAIN_FILE);
}
