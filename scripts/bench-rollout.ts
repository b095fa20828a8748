// `npm run bench:rollout`: simulated rollouts of a canary, judged by our analysis (the driver of `npm run
// rollout` itself) and by Flagger's default algorithm on the same traffic; a table per scenario, or JSON.
import { RolloutRefusal } from "../rollout/plan";
import { ALL_SCENARIOS, BenchSetup, benchmark, DEFAULT_RATE, HORIZON_MS, prepareSimulated, ScenarioResult, STABLE, targetChecks } from "../rollout/benchmark";
import { FLAGGER_DEFAULTS, LOAD_TESTER_RATE } from "../rollout/flagger";
import { ArgvReader, UsageError } from "../lib/cli";
import { PROJECT_ROOT, stackNames } from "../lib/mock-program";
import { StackFileError } from "../lib/stack-file";
import { ConfigError } from "../components/config/config-reader";
import { readScenarios, ScenarioFileError } from "../rollout/scenario-file";
import { benchReport, writeReportPage } from "../rollout/report";
import * as fs from "fs";
import * as path from "path";

const USAGE = `Usage: npm run bench:rollout -- [--stack <name>] [--service <name>] [--runs <n>] [--json]

  --stack <name>    whose rollout settings (steps, interval, analysis) to judge with (default: dev)
  --service <name>  the canary to roll out (default: user-service)
  --runs <n>        simulated rollouts per scenario, 10 to 100000 (default: 1000)
  --scenarios FILE  your own traffic instead of the built-in scenarios: a JSON list of { name, regression,
                    requestsPerSecond, stable: { errorRate, medianMs, sigma }, candidate?, phases?, bursts?,
                    retries? }
                    (see docs/rollout.md, The benchmark)
  --flagger-load-tester
                    Flagger with its tutorial load tester (hey -q 10 -c 2: 20 requests/s to the canary)
                    counted in its checks, as its Istio tutorial runs it
  --load-tester     the same load tester for both algorithms (ours through a loadTest webhook)
  --json            print the results as JSON
  --report FILE     also draw the results, ours against Flagger per scenario, as one self-contained HTML page
  --help            show this help`;

export interface BenchOptions {
    readonly stack: string;
    readonly service: string;
    readonly runs: number;
    readonly json: boolean;
    /** A scenario file to run instead of the built-in scenarios. */
    readonly scenarios?: string;
    /** Where to write the HTML report, if anywhere. */
    readonly report?: string;
    readonly loadTester: BenchSetup["loadTester"];
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    const options: { stack: string; service: string; runs: number; json: boolean; scenarios?: string; report?: string; loadTester: BenchSetup["loadTester"] } = { stack: "dev", service: "user-service", runs: 1000, json: false, loadTester: "none" };
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--stack":
                options.stack = args.value(flag);
                break;
            case "--service":
                options.service = args.value(flag);
                break;
            case "--runs": {
                const text = args.value(flag);
                const runs = /^\d+$/.test(text) ? Number(text) : NaN;
                if (!(runs >= 10 && runs <= 100_000)) throw args.error(`--runs ${text}: must be a whole number from 10 to 100000. Fix: --runs 1000`);
                options.runs = runs;
                break;
            }
            case "--json":
                options.json = true;
                break;
            case "--flagger-load-tester":
            case "--load-tester":
                if (options.loadTester !== "none") throw args.error("--flagger-load-tester and --load-tester: one or the other (--load-tester gives both algorithms the load tester). Fix: keep one");
                options.loadTester = flag === "--load-tester" ? "both" : "flagger";
                break;
            case "--report": {
                const file = path.resolve(args.value(flag));
                if (!fs.existsSync(path.dirname(file))) throw args.error(`--report ${JSON.stringify(file)}: its folder does not exist. Fix: --report bench-rollout.html`);
                options.report = file;
                break;
            }
            case "--scenarios": {
                const file = path.resolve(args.value(flag));
                if (!fs.existsSync(file)) throw args.error(`--scenarios ${JSON.stringify(file)}: there is no such file. Fix: --scenarios my-traffic.json (a JSON list of scenarios)`);
                options.scenarios = file;
                break;
            }
            default:
                throw args.unknown(flag);
        }
    }
    args.stack(options.stack, stackNames(), PROJECT_ROOT);
    return options;
}

const minutes = (m: number | undefined) => (m === undefined ? "-" : m.toFixed(1));

/** The README's table: one row per scenario and algorithm. */
export function table(results: readonly ScenarioResult[]): string {
    const rows = results.flatMap(({ scenario, ours, flagger }) =>
        (
            [
                ["ours", ours],
                ["Flagger", flagger],
            ] as const
        ).map(([name, s]) => `| ${scenario.name} | ${name} | ${scenario.regression ? Math.round(s.meanCandidateRequests).toString() : "-"} | ${scenario.regression ? `${Math.round(s.meanExcessErrorsHour)} / ${Math.round(s.meanExcessErrorsDay)}` : "-"} | ${minutes(s.meanDecisionMinutes)} | ${scenario.regression ? "-" : Math.round((1000 * s.rolledBack) / s.runs).toString()} | ${scenario.regression ? Math.round((1000 * s.promoted) / s.runs).toString() : "-"} |`),
    );
    return [
        "| scenario | algorithm | requests served by the bad candidate | excess 5xx, 1 h / 24 h | minutes to decision | healthy rolled back per 1,000 | bad promoted per 1,000 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ...rows,
    ].join("\n");
}

export async function main(argv: readonly string[], out: (line: string) => void): Promise<number> {
    let options: BenchOptions | "help";
    try {
        options = parseBenchArgs(argv);
    } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        out(error.message);
        return 2;
    }
    if (options === "help") {
        out(USAGE);
        return 0;
    }
    let scenarios = ALL_SCENARIOS;
    if (options.scenarios !== undefined) {
        try {
            scenarios = readScenarios(options.scenarios);
        } catch (error) {
            if (!(error instanceof ScenarioFileError)) throw error;
            out(error.message);
            return 2;
        }
    }
    const prepared = await prepareSimulated(options.stack, options.service);
    const setup: BenchSetup = { analysis: FLAGGER_DEFAULTS, loadTester: options.loadTester };
    const results = await benchmark(prepared, scenarios, options.runs, 1, setup);
    const checks = targetChecks(results, prepared.settings.rollout, setup);
    const { rollout } = prepared.settings;
    const header = [
        `${options.runs} simulated rollouts of ${options.service} per scenario, both algorithms on the same traffic (seeded: the same numbers every run).`,
        `Ours: stack ${options.stack}'s rollout, steps ${rollout.steps.join(", ")}% every ${rollout.interval}. Flagger: its defaults, step ${FLAGGER_DEFAULTS.stepWeight}% to ${FLAGGER_DEFAULTS.maxWeight}% every ${FLAGGER_DEFAULTS.intervalMs / 60_000}m, success rate >= ${FLAGGER_DEFAULTS.minSuccessRate}%, p99 <= ${FLAGGER_DEFAULTS.maxP99LatencyMs}ms, threshold ${FLAGGER_DEFAULTS.threshold}${options.loadTester === "none" ? "" : `, with its tutorial load tester's ${LOAD_TESTER_RATE} requests/s on the canary counted in its checks${options.loadTester === "both" ? " (ours too, through a loadTest webhook)" : ""}`}.`,
        `Stable: ${STABLE.errorRate * 100}% 5xx, log-normal latency (median ${STABLE.medianMs}ms); ${DEFAULT_RATE} requests/s unless the scenario says; a promoted bad candidate serves everyone until ${HORIZON_MS / 60_000} minutes.`,
    ];
    if (options.report !== undefined) writeReportPage(benchReport({ runs: options.runs, results, setup: header, checks }), options.report);
    if (options.json) {
        out(JSON.stringify({ runs: options.runs, horizonMinutes: HORIZON_MS / 60_000, stable: STABLE, defaultRate: DEFAULT_RATE, ours: { ...prepared.settings.rollout, loadTesterRequestsPerSecond: options.loadTester === "both" ? LOAD_TESTER_RATE : 0 }, flagger: { ...FLAGGER_DEFAULTS, loadTesterRequestsPerSecond: options.loadTester === "none" ? 0 : LOAD_TESTER_RATE }, results, targets: checks }, null, 2));
        return 0;
    }
    for (const line of header) out(line);
    out("");
    out(table(results));
    out("");
    for (const c of checks) out(`${c.met ? "met   " : "missed"}  ${c.scenario}: ${c.target} (${c.detail})`);
    if (options.report !== undefined) out(`\nDrawn in ${path.relative(process.cwd(), options.report)}`);
    return 0;
}

if (require.main === module) {
    main(process.argv.slice(2), (line) => {
        console.log(line);
    }).then(
        (code) => process.exit(code),
        (error: unknown) => {
            // Bad input (the stack's config or file, the service asked for) exits 2 with its message, as render's does.
            if (error instanceof RolloutRefusal || error instanceof StackFileError || error instanceof ConfigError) {
                console.error(error.message);
                process.exit(2);
            }
            throw error;
        },
    );
}
