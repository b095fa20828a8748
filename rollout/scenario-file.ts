// `npm run bench:rollout -- --scenarios FILE`: anyone's own traffic as benchmark scenarios, from JSON. Every
// problem is reported at once with where it is (the scenario and field), the value, what is allowed and a fix.
import * as fs from "fs";
import * as path from "path";
import { isRecord, show } from "../components/config/config-reader";
import type { Scenario } from "./benchmark";
import type { Bursts, Phase, TrafficModel, VersionProfile } from "./simulation";

export class ScenarioFileError extends Error {
    constructor(file: string, problems: readonly string[]) {
        super(`${path.basename(file)}: ${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was run:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ScenarioFileError";
    }
}

const EXAMPLE = `[{ "name": "my traffic", "regression": true, "requestsPerSecond": 50, "stable": { "errorRate": 0.002, "medianMs": 80, "sigma": 0.6 }, "candidate": { "errorRate": 0.012 } }]`;

/** Reads a scenario file: a JSON list of scenarios (see docs/rollout.md, The benchmark). */
export function readScenarios(file: string): Scenario[] {
    let parsed: unknown;
    try {
        parsed = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
    } catch (error) {
        throw new ScenarioFileError(file, [`is not a readable JSON file (${error instanceof Error ? error.message : String(error)}). Fix: write a JSON list such as ${EXAMPLE}`]);
    }
    const problems: string[] = [];
    const fail = (at: string, value: unknown, allowed: string, fix: string) => problems.push(`${at} = ${show(value)}: ${allowed}. Fix: ${fix}`);
    if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > 100) {
        fail("(the file)", parsed, "must be a list of 1 to 100 scenarios", `write a list such as ${EXAMPLE}`);
        throw new ScenarioFileError(file, problems);
    }
    const number = (at: string, value: unknown, min: number, max: number, meaning: string, example: number): number | undefined => {
        if (typeof value === "number" && Number.isFinite(value) && value >= min && value <= max) return value;
        fail(at, value, `must be a number from ${min} to ${max} (${meaning})`, `"${at.split(".").at(-1) ?? at}": ${example}`);
        return undefined;
    };
    /** A version's profile; `partial`: fields left out keep the stable's. */
    const profile = (at: string, value: unknown, partial: boolean): Partial<VersionProfile> | undefined => {
        if (value === undefined && partial) return {};
        if (!isRecord(value)) {
            fail(at, value, "must be an object { errorRate, medianMs, sigma }", `"${at.split(".").at(-1) ?? at}": { "errorRate": 0.001, "medianMs": 50, "sigma": 0.6 }`);
            return undefined;
        }
        const unknown = Object.keys(value).filter((k) => !["errorRate", "medianMs", "sigma"].includes(k));
        for (const k of unknown) fail(`${at}.${k}`, value[k], "is not a field of a version (errorRate, medianMs, sigma)", `remove "${k}"`);
        const result: { errorRate?: number; medianMs?: number; sigma?: number } = {};
        for (const [field, min, max, meaning, example] of [
            ["errorRate", 0, 1, "share of requests answered 5xx", 0.001],
            ["medianMs", 0.1, 600_000, "median latency in milliseconds", 50],
            ["sigma", 0.01, 5, "spread: the standard deviation of log latency", 0.6],
        ] as const) {
            if (value[field] === undefined && partial) continue;
            const read = number(`${at}.${field}`, value[field], min, max, meaning, example);
            if (read !== undefined) result[field] = read;
        }
        return result;
    };
    const scenarios: Scenario[] = [];
    parsed.forEach((entry: unknown, i) => {
        const at = `[${i}]`;
        if (!isRecord(entry)) {
            fail(at, entry, "must be an object { name, regression, requestsPerSecond, stable, candidate?, phases?, bursts?, retries? }", `write it as ${EXAMPLE.slice(1, -1)}`);
            return;
        }
        const before = problems.length;
        for (const k of Object.keys(entry).filter((k) => !["name", "regression", "requestsPerSecond", "stable", "candidate", "phases", "bursts", "retries"].includes(k))) {
            fail(`${at}.${k}`, entry[k], "is not a field of a scenario (name, regression, requestsPerSecond, stable, candidate, phases, bursts, retries)", `remove "${k}"`);
        }
        if (typeof entry.name !== "string" || entry.name.trim() === "" || entry.name.length > 100) fail(`${at}.name`, entry.name, "must be a name of 1 to 100 characters", `"name": "my traffic"`);
        if (typeof entry.regression !== "boolean") fail(`${at}.regression`, entry.regression, "must be true (the candidate is worse: rolling it back is right) or false", `"regression": true`);
        const requestsPerSecond = number(`${at}.requestsPerSecond`, entry.requestsPerSecond, 0.01, 100_000, "requests per second to the service", 20);
        const retries = entry.retries === undefined ? 0 : number(`${at}.retries`, entry.retries, 0, 10, "times the mesh retries a 5xx, each version's errorRate being each attempt's", 2);
        if (retries !== undefined && !Number.isInteger(retries)) fail(`${at}.retries`, entry.retries, "must be a whole number of retries from 0 to 10", `"retries": ${Math.round(retries)}`);
        const stable = profile(`${at}.stable`, entry.stable, false);
        const fullStable = stable?.errorRate !== undefined && stable.medianMs !== undefined && stable.sigma !== undefined ? { errorRate: stable.errorRate, medianMs: stable.medianMs, sigma: stable.sigma } : undefined;
        const candidate = profile(`${at}.candidate`, entry.candidate, true);
        const phases: Phase[] = [];
        if (entry.phases !== undefined) {
            if (!Array.isArray(entry.phases)) fail(`${at}.phases`, entry.phases, "must be a list of { fromMinute, toMinute?, stable?, candidate? }", `"phases": [{ "fromMinute": 1, "toMinute": 2, "stable": { "errorRate": 0.05 } }]`);
            else
                entry.phases.forEach((phase: unknown, j) => {
                    const pat = `${at}.phases[${j}]`;
                    if (!isRecord(phase)) {
                        fail(pat, phase, "must be an object { fromMinute, toMinute?, stable?, candidate? }", `{ "fromMinute": 1, "toMinute": 2 }`);
                        return;
                    }
                    for (const k of Object.keys(phase).filter((k) => !["fromMinute", "toMinute", "stable", "candidate"].includes(k))) {
                        fail(`${pat}.${k}`, phase[k], "is not a field of a phase (fromMinute, toMinute, stable, candidate)", `remove "${k}"`);
                    }
                    const fromMinute = number(`${pat}.fromMinute`, phase.fromMinute, 0, 1439, "the minute the phase starts, within the day the benchmark counts", 1);
                    const toMinute = phase.toMinute === undefined ? Infinity : number(`${pat}.toMinute`, phase.toMinute, (fromMinute ?? 0) + 1, 1441, "the minute it ends (leave it out for the rest of the run)", 2);
                    const s = profile(`${pat}.stable`, phase.stable, true);
                    const c = profile(`${pat}.candidate`, phase.candidate, true);
                    if (fromMinute !== undefined && toMinute !== undefined) phases.push({ fromMinute, toMinute, ...(s && { stable: s }), ...(c && { candidate: c }) });
                });
        }
        let bursts: Bursts | undefined;
        if (entry.bursts !== undefined) {
            if (!isRecord(entry.bursts)) {
                fail(`${at}.bursts`, entry.bursts, "must be an object { share, candidate }", `"bursts": { "share": 0.1, "candidate": { "errorRate": 0.1 } }`);
            } else {
                for (const k of Object.keys(entry.bursts).filter((k) => !["share", "candidate"].includes(k))) {
                    fail(`${at}.bursts.${k}`, entry.bursts[k], "is not a field of bursts (share, candidate)", `remove "${k}"`);
                }
                const share = number(`${at}.bursts.share`, entry.bursts.share, 0, 1, "the share of minutes the candidate bursts in", 0.1);
                const c = profile(`${at}.bursts.candidate`, entry.bursts.candidate ?? {}, true);
                if (share !== undefined && c !== undefined) bursts = { share, candidate: c };
            }
        }
        if (problems.length !== before || fullStable === undefined || candidate === undefined || requestsPerSecond === undefined || retries === undefined || typeof entry.name !== "string" || typeof entry.regression !== "boolean") return;
        const traffic: TrafficModel = { requestsPerSecond, stable: fullStable, candidate: { ...fullStable, ...candidate }, ...(phases.length > 0 && { phases }), ...(bursts && { bursts }), ...(retries > 0 && { retries }) };
        scenarios.push({ name: entry.name, regression: entry.regression, traffic });
    });
    // By the file's own entries, valid or not, so the index named is the entry's.
    const names = parsed.map((entry: unknown) => (isRecord(entry) && typeof entry.name === "string" ? entry.name : undefined));
    names.forEach((name, i) => {
        if (name !== undefined && names.indexOf(name) !== i) fail(`[${i}].name`, name, "is the name of another scenario", `"name": "${name} (2)"`);
    });
    if (problems.length > 0) throw new ScenarioFileError(file, problems);
    return scenarios;
}
