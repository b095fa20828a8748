// `npm run bench`: times the whole program's evaluation under Pulumi's mocks, with peak memory, for 3, 30 and
// 300 services (a synthetic catalogue on the dev stack), each size in its own process so memory is its own.
// It runs the program compiled by tsc: ts-node's source-map support makes every stack trace Pulumi captures
// (several per resource) about twice as slow.
import { spawnSync } from "child_process";
import { PROJECT_ROOT, runProgram } from "./mock-program";

export interface BenchRow {
    services: number;
    resources: number;
    seconds: number;
    peakMb: number;
}

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

/** One measurement in this process. */
export async function measure(count: number): Promise<BenchRow> {
    const start = process.hrtime.bigint();
    // The dev stack's routes and mesh edges name the lab services, which a synthetic catalogue does not have.
    const result = await runProgram("dev", { services: syntheticServices(count), routes: {}, meshEdges: [] });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { services: count, resources: result.resources.length, seconds, peakMb: process.resourceUsage().maxRSS / 1024 };
}

export function formatTable(rows: readonly BenchRow[]): string {
    const lines = ["SERVICES  RESOURCES  SECONDS  PEAK MB  MS/SERVICE"];
    for (const r of rows) {
        lines.push(
            `${String(r.services).padStart(8)}  ${String(r.resources).padStart(9)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.peakMb.toFixed(0).padStart(7)}  ${((r.seconds * 1000) / r.services).toFixed(1).padStart(10)}`,
        );
    }
    return lines.join("\n");
}

function isBenchRow(value: unknown): value is BenchRow {
    return typeof value === "object" && value !== null && ["services", "resources", "seconds", "peakMb"].every((k) => typeof (value as Record<string, unknown>)[k] === "number");
}

/** Runs one size in a fresh Node process and returns its measurement. */
export function measureInChild(count: number): BenchRow {
    // Compiled (npm run bench builds first) it runs on plain Node, as a large stack should be run; from source
    // (the tests) through ts-node.
    const loader = __filename.endsWith(".ts") ? ["-r", "ts-node/register/transpile-only"] : [];
    const child = spawnSync(process.execPath, [...loader, __filename, "--child", String(count)], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
        maxBuffer: 16 * 1024 * 1024,
    });
    const lastLine = child.stdout.trim().split("\n").pop() ?? "";
    let row: unknown;
    try {
        row = JSON.parse(lastLine);
    } catch {
        row = undefined;
    }
    if (child.status !== 0 || !isBenchRow(row)) throw new Error(`benchmark of ${String(count)} services failed:\n${child.stderr}`);
    return row;
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    if (args[0] === "--child") {
        console.log(JSON.stringify(await measure(Number(args[1]))));
        return;
    }
    const sizes = args.length > 0 ? args.map(Number) : [3, 30, 300];
    if (sizes.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 2000)) {
        console.error(`Usage: npm run bench [-- <services> ...] (whole numbers from 1 to 2000; default 3 30 300), got ${args.join(" ")}`);
        process.exitCode = 2;
        return;
    }
    const rows = sizes.map(measureInChild);
    console.log(formatTable(rows));
}

if (require.main === module) {
    void main();
}
