// `npm run bench`: times the whole program's evaluation under Pulumi's mocks, with peak memory, for 3, 30 and
// 300 services (a synthetic catalogue on the dev stack), each in its own process so memory is its own. Beside
// each it replays the program's own registrations through the SDK with no program around them (the same
// resources, inputs, parents and dependencies, in the same order): the floor of that output, so the ratio of
// the two is what the program itself costs. It runs compiled by tsc: ts-node's source-map support makes every
// stack trace Pulumi captures (several per resource) about twice as slow.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT_ROOT, ProgramRun, RegisteredResource, runProgram, runUnderMocks } from "../lib/mock-program";

/** One evaluation: how many resources it registered, how long it took, and the process's peak resident memory. */
export interface Measurement {
    resources: number;
    seconds: number;
    peakMb: number;
}

export interface BenchRow {
    services: number;
    program: Measurement;
    /** The program's registrations replayed through the SDK alone. */
    replay: Measurement;
}

/** The ratio the benchmark holds the program to: its time and peak memory over its replay's. */
export const TARGET_RATIO = 1.15;

type Subject = "program" | "replay";

const RELEASES = ["canary", "blueGreen", "single"] as const;

/** A catalogue of `count` services, a third each canary, blue/green and single-version. */
export function syntheticServices(count: number): Record<string, { path: string; release: string; versions: string[] }> {
    return Object.fromEntries(
        Array.from({ length: count }, (_, i) => {
            const release = RELEASES[i % RELEASES.length];
            const name = `svc-${String(i).padStart(4, "0")}`;
            return [name, { path: `/${name}`, release, versions: release === "single" ? ["v1"] : ["v1", "v2"] }];
        }),
    );
}

async function timed(run: () => Promise<ProgramRun>): Promise<{ measurement: Measurement; result: ProgramRun }> {
    const start = process.hrtime.bigint();
    const result = await run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { measurement: { resources: result.resources.length, seconds, peakMb: process.resourceUsage().maxRSS / 1024 }, result };
}

/** The program for `services` synthetic services, in this process; its registrations are written to `log`. */
export async function measureProgram(services: number, log: string): Promise<Measurement> {
    // The dev stack's routes and mesh edges name the lab services, which a synthetic catalogue does not have.
    const { measurement, result } = await timed(() => runProgram("dev", { services: syntheticServices(services), routes: {}, meshEdges: [] }));
    fs.writeFileSync(log, JSON.stringify(result.resources));
    return measurement;
}

/** A resource registered as recorded: the SDK's own registration, with no provider class around it. */
class RecordedResource extends pulumi.CustomResource {}

/**
 * Registers `resources` as recorded, and nothing else: each with its inputs, every property its provider class
 * named (outputs as placeholders), the options that class added (provider version, aliases, secret outputs, a
 * read's ID), its parent and its dependencies, in the program's order.
 */
export function replay(resources: readonly RegisteredResource[]): void {
    const byName = new Map<string, pulumi.Resource>();
    for (const r of resources) {
        const parent = r.parent === undefined ? undefined : byName.get(r.parent);
        const dependsOn = r.dependsOn.flatMap((d) => byName.get(d) ?? []);
        const { propertyNames, version, aliasTypes, additionalSecretOutputs, readId, ignoreChanges } = r.registration;
        const props = Object.fromEntries(propertyNames.map((name) => [name, r.inputs[name]]));
        const opts: pulumi.CustomResourceOptions = { parent, dependsOn, version, aliases: aliasTypes.map((type) => ({ type })), additionalSecretOutputs: [...additionalSecretOutputs], ignoreChanges: [...ignoreChanges], ...(readId !== undefined && { id: readId }) };
        const resource = r.custom ? new RecordedResource(r.type, r.name, props, opts) : new pulumi.ComponentResource(r.type, r.name, {}, { parent, dependsOn });
        byName.set(`${r.type}::${r.name}`, resource);
    }
}

/** The registrations in `log`, replayed under the same mocks, in this process. */
export async function measureReplay(log: string): Promise<Measurement> {
    const resources = JSON.parse(fs.readFileSync(log, "utf8")) as RegisteredResource[];
    const { measurement } = await timed(() =>
        runUnderMocks("dev", {}, [], {}, () => {
            replay(resources);
            return {};
        }),
    );
    return measurement;
}

const ratio = (program: number, floor: number) => `${(program / floor).toFixed(2)}x`;

export function formatTable(rows: readonly BenchRow[]): string {
    const lines = ["SERVICES  RESOURCES  SECONDS  PEAK MB  REPLAY: SECONDS  PEAK MB  RATIO: TIME  MEMORY"];
    for (const { services, program, replay: floor } of rows) {
        lines.push(
            [
                String(services).padStart(8),
                String(program.resources).padStart(9),
                program.seconds.toFixed(2).padStart(7),
                program.peakMb.toFixed(0).padStart(7),
                floor.seconds.toFixed(2).padStart(15),
                floor.peakMb.toFixed(0).padStart(7),
                ratio(program.seconds, floor.seconds).padStart(11),
                ratio(program.peakMb, floor.peakMb).padStart(6),
            ].join("  "),
        );
    }
    lines.push(`Replay: the program's own registrations through the SDK with no program around them. Target: ${TARGET_RATIO.toFixed(2)}x or better.`);
    return lines.join("\n");
}

function isMeasurement(value: unknown): value is Measurement {
    return typeof value === "object" && value !== null && ["resources", "seconds", "peakMb"].every((k) => typeof (value as Record<string, unknown>)[k] === "number");
}

/** Measures `subject` in a fresh Node process: the program at `arg` services, or the replay of log `arg`. */
export function measureInChild(subject: Subject, arg: string, log: string): Measurement {
    const child = spawnSync(process.execPath, [__filename, "--child", subject, arg, log], { cwd: PROJECT_ROOT, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
    const lastLine = child.stdout.trim().split("\n").pop() ?? "";
    let measurement: unknown;
    try {
        measurement = JSON.parse(lastLine);
    } catch {
        measurement = undefined;
    }
    if (child.status !== 0 || !isMeasurement(measurement)) throw new Error(`benchmark of ${subject} ${arg} failed:\n${child.stderr}`);
    return measurement;
}

export function benchRow(services: number): BenchRow {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-"));
    try {
        const log = path.join(dir, "registrations.json");
        const program = measureInChild("program", String(services), log);
        return { services, program, replay: measureInChild("replay", "", log) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    if (args[0] === "--child") {
        const [, subject, arg, log] = args;
        console.log(JSON.stringify(await (subject === "replay" ? measureReplay(log) : measureProgram(Number(arg), log))));
        return;
    }
    const sizes = args.length > 0 ? args.map(Number) : [3, 30, 300];
    if (sizes.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 2000)) {
        console.error(`Usage: npm run bench [-- <services> ...] (whole numbers from 1 to 2000; default 3 30 300), got ${args.join(" ")}`);
        process.exitCode = 2;
        return;
    }
    console.log(formatTable(sizes.map(benchRow)));
}

if (require.main === module) {
    void main();
}
