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
import { ConfigError } from "../components/config/config-reader";
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

type Service = ReturnType<typeof planTraffic>["services"][number];

/** The version being released: a canary's last, a blue/green service's idle color's (the one at 0 of the split). */
function candidateOf(s: Service): string {
    const idle = s.release === "blueGreen" ? s.subsets.find((subset) => (s.split[subset.name] ?? 0) === 0) : s.subsets.at(-1);
    return idle?.version ?? "";
}

/** What runs as the candidate: its image, command, env and resources (a new build under the same version name is a new candidate). */
const workloadOf = (s: Service) => JSON.stringify(s.workloads.find((w) => w.version === candidateOf(s)) ?? null);
/** The share of live requests the release rule mirrors: other rules (header routes, previews) are not the release's. */
const mirrorOf = (s: Service) => JSON.stringify(s.rules.find((r) => r.match === undefined)?.mirror ?? null);

/**
 * The services of `head` that run two versions and whose candidate `base` did not run (a new version, or a new
 * build of it), or whose split, or release rule's mirrored share, it moved.
 */
export function candidateChanges(base: Settings | undefined, head: Settings): CandidateChange[] {
    const before = base === undefined ? [] : planTraffic(base).services;
    return planTraffic(head).services.flatMap((service): CandidateChange[] => {
        if (service.release === "single") return [];
        const old = before.find((s) => s.name === service.name);
        const candidate = candidateOf(service);
        if (old === undefined || old.release === "single" || candidateOf(old) !== candidate) return [{ service: service.name, kind: "adds", detail: `adds candidate ${candidate} (${service.release})` }];
        if (workloadOf(old) !== workloadOf(service)) return [{ service: service.name, kind: "adds", detail: `changes candidate ${candidate}'s workload (its image, command, env or resources)` }];
        if (splitText(old.split) !== splitText(service.split) || mirrorOf(old) !== mirrorOf(service)) return [{ service: service.name, kind: "moves", detail: `moves ${splitText(old.split)} to ${splitText(service.split)}${mirrorOf(old) === mirrorOf(service) ? "" : " (and the mirrored share)"} by hand` }];
        return [];
    });
}

/**
 * The settings a plan compares. A secret key is left out: read without the Pulumi CLI it is "[secret]", which the
 * program would refuse (a TLS certificate, a JWKS), and no secret decides a release's split.
 */
const settingsOf = (config: StackConfig, secretKeys: readonly string[]) => checkedPlan(configSource(Object.fromEntries(Object.entries(config).filter(([key]) => !secretKeys.includes(key))))).settings;

/** The stack's settings at Git revision `base`: undefined where the stack file is not there yet, or does not read. */
function settingsAt(cwd: string, stack: string, base: string): Settings | undefined {
    const name = `Pulumi.${stack}.yaml`;
    let text: string;
    try {
        text = execFileSync("git", ["-C", cwd, "show", `${base}:./${name}`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
        if (error instanceof Error && "code" in error && error.code === "ENOENT") throw new SetupError("plan compares the stack file with its version in Git, and git is not installed here. Fix: install git (apt-get install git), then run it from a clone");
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
        if (error instanceof RolloutRefusal) lines.push(error.message);
        // A stack whose secrets the program checks (a TLS certificate, a JWKS): the dry run needs them decrypted.
        else if (error instanceof ConfigError && secretKeys.length > 0) lines.push(`No dry run: it checks the whole config, and this stack keeps ${secretKeys.join(", ")} secret, which only the Pulumi CLI decrypts (the dry run reads the stack file without it). The pulumi preview beside this comment shows the change itself.`);
        else throw error;
    }
    return { changes, lines };
}
