// `npm run bench`: times the whole program's evaluation under Pulumi's mocks, with peak memory, for 3, 30 and
// 300 services (a synthetic catalogue on the dev stack), each size in its own process so memory is its own.
// Beside each size it measures the Pulumi SDK alone registering as many bare resources with no program around
// them: the floor any program of that size pays, so a regression can be told apart as ours or the SDK's.
// It runs the program compiled by tsc: ts-node's source-map support makes every stack trace Pulumi captures
// (several per resource) about twice as slow.
import { spawnSync } from "child_process";
import * as k8s from "@pulumi/kubernetes";
import { PROJECT_ROOT, ProgramRun, runProgram, runUnderMocks } from "./mock-program";

/** One evaluation: how many resources it registered, how long it took, and the process's peak resident memory. */
export interface Measurement {
    resources: number;
    seconds: number;
    peakMb: number;
}

export interface BenchRow {
    services: number;
    program: Measurement;
    /** The same number of bare resources registered by the SDK with no program around them. */
    sdkAlone: Measurement;
}

type Subject = "program" | "sdk-alone";

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

async function timed(run: () => Promise<ProgramRun>): Promise<Measurement> {
    const start = process.hrtime.bigint();
    const result = await run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { resources: result.resources.length, seconds, peakMb: process.resourceUsage().maxRSS / 1024 };
}

/** The program for `services` synthetic services, in this process. */
export function measureProgram(services: number): Promise<Measurement> {
    // The dev stack's routes and mesh edges name the lab services, which a synthetic catalogue does not have.
    return timed(() => runProgram("dev", { services: syntheticServices(services), routes: {}, meshEdges: [] }));
}

/** `resources` VirtualServices with no parent, dependency or Output among them, under the same mocks, in this process. */
export function measureSdkAlone(resources: number): Promise<Measurement> {
    return timed(() =>
        runUnderMocks("bench", {}, [], () => {
            for (let i = 0; i < resources; i++) {
                const name = `bare-${String(i)}`;
                new k8s.apiextensions.CustomResource(name, {
                    apiVersion: "networking.istio.io/v1",
                    kind: "VirtualService",
                    metadata: { name, namespace: "apps" },
                    spec: { hosts: [name], http: [{ name: "release", route: [{ destination: { host: name, subset: "v1" }, weight: 100 }] }] },
                });
            }
            return {};
        }),
    );
}

export function formatTable(rows: readonly BenchRow[]): string {
    const lines = ["SERVICES  RESOURCES  SECONDS  PEAK MB  MS/SERVICE  SDK ALONE: SECONDS  PEAK MB"];
    for (const { services, program, sdkAlone } of rows) {
        lines.push(
            [
                String(services).padStart(8),
                String(program.resources).padStart(9),
                program.seconds.toFixed(2).padStart(7),
                program.peakMb.toFixed(0).padStart(7),
                ((program.seconds * 1000) / services).toFixed(1).padStart(10),
                sdkAlone.seconds.toFixed(2).padStart(18),
                sdkAlone.peakMb.toFixed(0).padStart(7),
            ].join("  "),
        );
    }
    lines.push("SDK alone: as many bare resources registered under the same mocks with no program around them.");
    return lines.join("\n");
}

function isMeasurement(value: unknown): value is Measurement {
    return typeof value === "object" && value !== null && ["resources", "seconds", "peakMb"].every((k) => typeof (value as Record<string, unknown>)[k] === "number");
}

/** Measures `subject` at `count` (services for the program, resources for the SDK alone) in a fresh Node process. */
export function measureInChild(subject: Subject, count: number): Measurement {
    // Compiled (npm run bench builds first) it runs on plain Node, as a large stack should be run; from source
    // (the tests) through ts-node.
    const loader = __filename.endsWith(".ts") ? ["-r", "ts-node/register/transpile-only"] : [];
    const child = spawnSync(process.execPath, [...loader, __filename, "--child", subject, String(count)], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
        maxBuffer: 16 * 1024 * 1024,
    });
    const lastLine = child.stdout.trim().split("\n").pop() ?? "";
    let measurement: unknown;
    try {
        measurement = JSON.parse(lastLine);
    } catch {
        measurement = undefined;
    }
    if (child.status !== 0 || !isMeasurement(measurement)) throw new Error(`benchmark of ${subject} at ${String(count)} failed:\n${child.stderr}`);
    return measurement;
}

export function benchRow(services: number): BenchRow {
    const program = measureInChild("program", services);
    return { services, program, sdkAlone: measureInChild("sdk-alone", program.resources) };
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    if (args[0] === "--child") {
        const count = Number(args[2]);
        console.log(JSON.stringify(await (args[1] === "sdk-alone" ? measureSdkAlone(count) : measureProgram(count))));
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
