// `npm run probe -- --url URL --path /users -n 1000 --expect v2=10`: sends N requests, tallies which version
// answered each (the services answer "<service> <version>" or "<service> <version> (<color>)"), prints the
// observed split with 99 % confidence intervals, and exits non-zero when an expected share lies outside its
// interval. It is how a real cluster proves the split the stack config asked for.
import { ArgvReader, UsageError } from "../lib/cli";

const USAGE = `Usage: npm run probe -- --url <url> [--path /users] [-n 1000] [-c 20] [--expect v2=10 ...] [--header 'name: value' ...]

  --url <url>            base URL of the ingress, e.g. http://localhost:30080
  --path <path>          path to request (default /)
  -n, --requests <n>     number of requests, 1-100000 (default 1000)
  -c, --concurrency <n>  requests in flight at once, 1-500 (default 20)
  --expect <label>=<pct> expected percent for a label (v1, v2, blue, green, ...); repeatable
  --header 'name: value' header to send with every request; repeatable
  --timeout <ms>         per-request timeout, 1-60000 (default 5000)
  --help                 show this help`;

export interface ProbeOptions {
    url: URL;
    requests: number;
    concurrency: number;
    expect: Record<string, number>;
    headers: Record<string, string>;
    timeoutMs: number;
}

function integerFlag(args: ArgvReader, flag: string, min: number, max: number): number {
    const text = args.value(flag);
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) throw args.error(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
    return value;
}

export function parseProbeArgs(argv: readonly string[]): ProbeOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let base: string | undefined;
    let path = "/";
    let requests = 1000;
    let concurrency = 20;
    let timeoutMs = 5000;
    const expect: Record<string, number> = {};
    const headers: Record<string, string> = {};
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--url":
                base = args.value(flag);
                break;
            case "--path":
                path = args.value(flag);
                if (!path.startsWith("/")) throw args.error(`--path must start with /, got "${path}"`);
                break;
            case "-n":
            case "--requests":
                requests = integerFlag(args, flag, 1, 100_000);
                break;
            case "-c":
            case "--concurrency":
                concurrency = integerFlag(args, flag, 1, 500);
                break;
            case "--timeout":
                timeoutMs = integerFlag(args, flag, 1, 60_000);
                break;
            case "--expect": {
                const text = args.value(flag);
                const match = /^([A-Za-z0-9._-]+)=(\d+(?:\.\d+)?)$/.exec(text);
                if (match === null || Number(match[2]) > 100) throw args.error(`--expect takes label=percent with a percent from 0 to 100, got "${text}" (for example --expect v2=10)`);
                expect[match[1]] = Number(match[2]);
                break;
            }
            case "--header": {
                const text = args.value(flag);
                const colon = text.indexOf(":");
                if (colon <= 0) throw args.error(`--header takes 'name: value', got "${text}"`);
                headers[text.slice(0, colon).trim().toLowerCase()] = text.slice(colon + 1).trim();
                break;
            }
            default:
                throw args.unknown(flag);
        }
    }
    if (base === undefined) throw args.error("--url is required");
    let url: URL;
    try {
        url = new URL(path, base);
    } catch {
        throw args.error(`--url must be an absolute http(s) URL, got "${base}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw args.error(`--url must be http or https, got "${base}"`);
    const total = Object.values(expect).reduce((a, b) => a + b, 0);
    if (total > 100) throw args.error(`--expect percents add up to ${total}, more than 100`);
    return { url, requests, concurrency, expect, headers, timeoutMs };
}

/** The label a response counts under: its color for blue/green services, else its version. */
export function labelOf(body: string): string {
    const text = body.trim();
    const colored = /\bv\d[\w.-]*\s+\((\w+)\)$/.exec(text);
    if (colored !== null) return colored[1];
    const versioned = /\b(v\d[\w.-]*)$/.exec(text);
    return versioned === null ? "unrecognised" : versioned[1];
}

/** Wilson score interval for a proportion, at 99 % confidence (z = 2.576), in percent. */
export function wilson99(count: number, total: number): [number, number] {
    const z = 2.576;
    const p = count / total;
    const denominator = 1 + (z * z) / total;
    const centre = p + (z * z) / (2 * total);
    const margin = z * Math.sqrt((p * (1 - p)) / total + (z * z) / (4 * total * total));
    return [Math.max(0, ((centre - margin) / denominator) * 100), Math.min(100, ((centre + margin) / denominator) * 100)];
}

export interface ProbeRow {
    label: string;
    count: number;
    percent: number;
    low: number;
    high: number;
    expected?: number;
    ok: boolean;
}

export interface ProbeResult {
    total: number;
    rows: ProbeRow[];
    ok: boolean;
}

export class UnreachableError extends Error {}

async function requestOnce(options: ProbeOptions): Promise<string> {
    try {
        const response = await fetch(options.url, { headers: options.headers, signal: AbortSignal.timeout(options.timeoutMs) });
        const body = await response.text();
        return response.ok ? labelOf(body) : `http-${response.status}`;
    } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
        throw new UnreachableError(`cannot reach ${options.url.href}: ${cause}`);
    }
}

export async function probe(options: ProbeOptions, progress: (done: number, total: number) => void = () => undefined): Promise<ProbeResult> {
    // One request first: a wrong URL fails fast with its cause instead of N times.
    const tally = new Map<string, number>([[await requestOnce(options), 1]]);
    let started = 1;
    let done = 1;
    progress(done, options.requests);
    const worker = async () => {
        while (started < options.requests) {
            started++;
            const label = await requestOnce(options).catch(() => "unreachable");
            tally.set(label, (tally.get(label) ?? 0) + 1);
            done++;
            progress(done, options.requests);
        }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.requests) }, worker));
    const total = options.requests;
    const labels = [...new Set([...tally.keys(), ...Object.keys(options.expect)])].sort();
    const rows = labels.map((label) => {
        const count = tally.get(label) ?? 0;
        const [low, high] = wilson99(count, total);
        // Own labels only: a response labelled constructor expects nothing unless --expect named it.
        const expected = Object.hasOwn(options.expect, label) ? options.expect[label] : undefined;
        return { label, count, percent: (count / total) * 100, low, high, ...(expected !== undefined && { expected }), ok: expected === undefined || (expected >= low && expected <= high) };
    });
    return { total, rows, ok: rows.every((r) => r.ok) };
}

export function formatResult(result: ProbeResult): string {
    const lines = [`LABEL          COUNT   OBSERVED   99% CI            EXPECTED`];
    for (const r of result.rows) {
        const ci = `${r.low.toFixed(1)}-${r.high.toFixed(1)}%`;
        const expected = r.expected === undefined ? "" : `${String(r.expected)}% ${r.ok ? "ok" : "OUTSIDE"}`;
        lines.push(`${r.label.padEnd(13)}  ${String(r.count).padStart(5)}   ${r.percent.toFixed(1).padStart(6)}%   ${ci.padEnd(16)}  ${expected}`.trimEnd());
    }
    lines.push(result.ok ? `${result.total} requests: the split matches.` : `${result.total} requests: an expected share lies outside its 99% interval.`);
    return lines.join("\n");
}

async function main(): Promise<number> {
    try {
        const options = parseProbeArgs(process.argv.slice(2));
        if (options === "help") {
            console.log(USAGE);
            return 0;
        }
        const step = Math.max(1, Math.floor(options.requests / 10));
        const result = await probe(options, (done, total) => {
            if (done % step === 0 || done === total) process.stderr.write(`\r${done}/${total} requests`);
        });
        process.stderr.write("\n");
        console.log(formatResult(result));
        return result.ok ? 0 : 1;
    } catch (error) {
        if (error instanceof UsageError || error instanceof UnreachableError) {
            console.error(error.message);
            return 2;
        }
        throw error;
    }
}

if (require.main === module) {
    void main().then((code) => {
        process.exitCode = code;
    });
}
