// What a change to a stack's config does to its releases: the services whose candidate it adds (a new version,
// a service that starts running two) or whose split it moves (a weight, the active color, a mirrored share). A pull
// request that does either gets the rollout's plan beside its preview (`npm run rollout -- plan`).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Settings } from "../components/config/config";
import { planTraffic } from "../components/plan/plan";
import { checkedPlan } from "../components/specs/checked-plan";
import { projectName } from "../lib/mock-program";
import { readStackFile } from "../lib/stack-file";
import { asStackConfig, configSource, StackConfig } from "./config-edit";
import { prepareRollout } from "./driver";
import type { StackEngine } from "./engines";
import { SetupError } from "./lock";
import { RolloutRefusal } from "./plan";
import { previewRollout } from "./preview";

export interface CandidateChange {
    readonly service: string;
    readonly kind: "adds" | "moves";
    /** For people: "adds candidate v3 (canary)", "moves v1 90% / v2 10% to v1 50% / v2 50%". */
    readonly detail: string;
}

const splitText = (split: Readonly<Record<string, number>>) => Object.entries(split).map(([version, weight]) => `${version} ${weight}%`).join(" / ");

/** The services of `head` that run two versions and whose candidate `base` did not have, or whose split or mirror it moved. */
export function candidateChanges(base: Settings | undefined, head: Settings): CandidateChange[] {
    const before = base === undefined ? [] : planTraffic(base).services;
    return planTraffic(head).services.flatMap((service): CandidateChange[] => {
        if (service.release === "single") return [];
        const old = before.find((s) => s.name === service.name);
        const versions = (s: typeof service) => s.subsets.map((subset) => subset.version).join(",");
        const candidate = service.subsets.at(-1)?.version ?? "";
        if (old === undefined || old.release === "single" || versions(old) !== versions(service)) return [{ service: service.name, kind: "adds", detail: `adds candidate ${candidate} (${service.release})` }];
        const mirrorOf = (s: typeof service) => JSON.stringify(s.rules.map((r) => r.mirror ?? null));
        if (splitText(old.split) !== splitText(service.split) || mirrorOf(old) !== mirrorOf(service)) return [{ service: service.name, kind: "moves", detail: `moves ${splitText(old.split)} to ${splitText(service.split)}${mirrorOf(old) === mirrorOf(service) ? "" : " (and the mirrored share)"}` }];
        return [];
    });
}

const settingsOf = (config: StackConfig, secretKeys: readonly string[]) => checkedPlan(configSource(config, secretKeys)).settings;

/** The stack's settings at Git revision `base`: undefined where the stack file is not there yet, or does not read. */
function settingsAt(cwd: string, stack: string, base: string): Settings | undefined {
    const name = `Pulumi.${stack}.yaml`;
    let text: string;
    try {
        text = execFileSync("git", ["-C", cwd, "show", `${base}:./${name}`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
        const raw = error instanceof Error && "stderr" in error ? error.stderr : undefined;
        const stderr = typeof raw === "string" ? raw : Buffer.isBuffer(raw) ? raw.toString() : "";
        // A stack the base does not have yet: every candidate of it is new.
        if (/does not exist in|exists on disk, but not in/.test(stderr)) return undefined;
        throw new SetupError(`--base ${base}: git cannot show ${name} there (${stderr.trim() || (error instanceof Error ? error.message : String(error))}). Fix: fetch it first (git fetch origin main --depth=1) and pass --base FETCH_HEAD, or name a revision this clone has`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-plan-"));
    try {
        fs.writeFileSync(path.join(dir, name), text);
        const old = readStackFile(path.join(dir, name), projectName());
        return settingsOf(asStackConfig(old.config), old.secretKeys);
    } catch {
        // A base the program would refuse: the change is compared with nothing, as a new stack's.
        return undefined;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * The stack file (as `engine` reads it) against its version at `base`: when the change adds or moves a candidate,
 * the dry run of rolling those services out, or the rollout's refusal (the plan's news too); undefined otherwise.
 */
export async function changePlan(engine: StackEngine, cwd: string, stack: string, base: string, requestRate?: number): Promise<{ readonly changes: readonly CandidateChange[]; readonly lines: readonly string[] } | undefined> {
    const before = settingsAt(cwd, stack, base);
    const { config, secretKeys } = await engine.readConfig();
    const changes = candidateChanges(before, settingsOf(config, secretKeys));
    if (changes.length === 0) return undefined;
    const services = changes.map((c) => c.service);
    const lines: string[] = [];
    try {
        const prepared = await prepareRollout(engine, stack, services);
        const rates = requestRate === undefined ? undefined : Object.fromEntries(services.map((s) => [s, requestRate]));
        await previewRollout(prepared, rates, requestRate === undefined ? "a plan has no Prometheus to observe (give --request-rate)" : `${requestRate} requests/s (--request-rate)`, (l) => lines.push(l));
    } catch (error) {
        if (!(error instanceof RolloutRefusal)) throw error;
        lines.push(error.message);
    }
    return { changes, lines };
}
