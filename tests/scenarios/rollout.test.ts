// `npm run rollout` end to end with real parts: the CLI's own entry point on the render engine (the program
// under the mocks, the render, the stack file edited as `pulumi config set` would), Debian's Prometheus
// evaluating the driver's queries, and an exporter (in a thread of its own) serving Istio's metrics for traffic
// that follows the rendered routes. They run all at once (intervals of seconds), in a mocha of their own beside
// the suite's (scripts/suites.mjs).
//
// They hold on a machine several times slower or busier than a quiet one: traffic is counted in wall time, so
// an interval sees the same requests however slow the command is (200 a second: 100 candidate requests an
// interval at 25%); the progress deadline is long except where it is what a scenario tests; and where two rules
// may rightly decide first (the sequential test or the hard limits), either is accepted.
import { strict as assert } from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { main } from "../../scripts/rollout";
import { readRollout, RolloutRecord } from "../../rollout/control";
import { FileStackTags } from "../../rollout/stack-tags";
import type { LogEntry } from "../../rollout/decision-log";
import type { Panel } from "@grafana/schema";
import { canaryDashboard } from "../../components/specs/canary-dashboard";
import { promDuration } from "../../components/specs/observability-specs";
import { readSettings } from "../../components/config/config";
import { configSource } from "../../rollout/config-edit";
import { stackConfig } from "../../lib/mock-program";
import { decisionLogProblems } from "../support/decision-log-schema";
import { MeshMetricsExporter, VersionBehaviour, waitForSeries } from "../support/mesh-metrics";

const PROJECT = "istio-progressive-delivery";
const HEALTHY: VersionBehaviour = { errorRate: 0, latencyMs: 40 };
/** A custom metric: one version's median latency, as its callers saw it. */
const P50 = 'histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="source", destination_workload_namespace="{{namespace}}", destination_app="{{service}}", destination_version="{{version}}"}[{{interval}}])))';
const REQUESTS_PER_SECOND = 200;
/** A version whose attempts fail 30 % of the time: with two retries, 2.7 % of its callers see a 5xx. */
const FLAKY: VersionBehaviour = { errorRate: 0.3, latencyMs: 40 };

interface AppSpec {
    readonly app: string;
    readonly release: "canary" | "blueGreen";
    readonly candidate: VersionBehaviour;
    readonly requestsPerSecond: number;
    /** The stable version's behaviour (healthy unless given). */
    readonly stable?: VersionBehaviour;
    /** 5xx the mesh retries, on the same version. */
    readonly retries?: number;
}

interface Scenario {
    readonly name: string;
    readonly apps: readonly AppSpec[];
    readonly rollout?: Record<string, unknown>;
    readonly args?: readonly string[];
    /** The stack's data plane: ambient stacks route with HTTPRoutes and their waypoint reports the requests. */
    readonly dataPlane?: "ambient";
}

interface Result {
    /** Exit codes of the runs, in order; `code` is the last. */
    readonly codes: readonly number[];
    readonly code: number;
    readonly log: string;
    readonly config: Record<string, unknown>;
    readonly dir: string;
    /** The highest share of live traffic any canary candidate was given, in percent, as the exporter served it. */
    readonly maxCandidatePercent: number;
}

const exporter = new MeshMetricsExporter();
const hooks: http.Server[] = [];

/** The Prometheus npm test started, scraping the exporter's port. */
function prometheusUrl(): string {
    const url = process.env.ROLLOUT_TEST_PROMETHEUS;
    if (url === undefined) throw new Error("The rollout scenarios need the Prometheus that npm test starts: run them with npm test");
    return url;
}

/** Long enough that a slow machine never reaches it by accident; the scenarios that test it set their own. */
const ANALYSIS = { minRequests: 10, failedChecks: 2, progressDeadline: "60s", errorMargin: 10, bakeTime: "0s" };
/** Two intervals without a decision, then the rollback. */
const SHORT_DEADLINE = { analysis: { progressDeadline: "5s" } };

function stackFile(scenario: Scenario, prometheus: string, extra: Record<string, unknown>): string {
    const services = Object.fromEntries(scenario.apps.map((a) => [a.app, { path: `/${a.app}`, release: a.release, versions: ["v1", "v2"], ...(a.release === "canary" && { canaryWeight: 0 }) }]));
    const { analysis, ...rest } = { ...scenario.rollout, ...extra } as { analysis?: Record<string, unknown> };
    const rollout = { steps: [25, 100], interval: "2s", prometheusUrl: prometheus, ...rest, analysis: { ...ANALYSIS, ...analysis } };
    const ambient = scenario.dataPlane === "ambient" ? { dataPlane: "ambient", trafficApi: "gatewayApi", previewHeader: "x-preview" } : {};
    const config = { platform: "kind", observability: false, appNamespace: scenario.name, services, rollout, ...ambient };
    return stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, v])) });
}

const configOf = (dir: string): Record<string, unknown> => {
    const doc = parse(fs.readFileSync(path.join(dir, "Pulumi.rehearsal.yaml"), "utf8")) as { config: Record<string, unknown> };
    return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.slice(PROJECT.length + 1), v]));
};

async function rollout(dir: string, args: readonly string[], signal: AbortSignal = new AbortController().signal): Promise<{ codes: number[]; log: string }> {
    const lines: string[] = [];
    const code = await main(["--cwd", dir, "--stack", "rehearsal", "--engine", "render", ...args], (l) => lines.push(l), (l) => lines.push(l), signal);
    return { codes: [code], log: lines.join("\n") };
}

/** Sets a scenario up (its stack file, its traffic) and runs `npm run rollout` on it; `drive` may run it differently. */
async function play(scenario: Scenario, extra: Record<string, unknown> = {}, drive?: (dir: string) => Promise<{ codes: number[]; log: string }>): Promise<Result> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rollout-${scenario.name}-`));
    fs.writeFileSync(path.join(dir, "Pulumi.rehearsal.yaml"), stackFile(scenario, prometheusUrl(), extra));
    for (const app of scenario.apps) {
        await exporter.add({ namespace: scenario.name, app: app.app, requestsPerSecond: app.requestsPerSecond, versions: { v1: app.stable ?? HEALTHY, v2: app.candidate }, renderDir: path.join(dir, "rendered", "rehearsal"), stable: "v1", ...(app.retries !== undefined && { retries: app.retries }), reporting: scenario.dataPlane === "ambient" ? "waypoint" : "sidecars" });
    }
    await waitForSeries(prometheusUrl(), scenario.name);
    const { codes, log } = await (drive ?? ((d) => rollout(d, ["--service", scenario.apps.map((a) => a.app).join(",")])))(dir);
    const canaries = scenario.apps.filter((a) => a.release === "canary");
    const maxCandidatePercent = Math.max(0, ...(await Promise.all(canaries.map(async (a) => (await exporter.stats(scenario.name, a.app)).maxLivePercent.v2 ?? 0))));
    return { codes, code: codes[codes.length - 1], log, config: configOf(dir), dir, maxCandidatePercent };
}

/** The stack file committed, as a team's clone has it. */
function gitInit(dir: string): void {
    const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args]);
    git("init", "--quiet");
    git("config", "user.name", "rollout test");
    git("config", "user.email", "rollout@example.com");
    git("add", "Pulumi.rehearsal.yaml");
    git("commit", "--quiet", "-m", "stack");
}

/** Runs the rollout with --commit, the stack file committed first. */
function committed(dir: string): Promise<{ codes: number[]; log: string }> {
    gitInit(dir);
    return rollout(dir, ["--service", "shop", "--commit"]);
}

const lastCommit = (r: Result) => execFileSync("git", ["-C", r.dir, "log", "-1", "--format=%B"], { encoding: "utf8" });
const stackFileCommitted = (r: Result) => execFileSync("git", ["-C", r.dir, "status", "--porcelain", "Pulumi.rehearsal.yaml"], { encoding: "utf8" }) === "";

/** A webhook that answers every call with `status`, counting the calls. */
async function webhook(status: number): Promise<{ url: string; calls: () => number }> {
    let calls = 0;
    const server = http.createServer((req, res) => {
        calls++;
        req.resume();
        res.writeHead(status).end(status === 200 ? "ok" : "not now");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    hooks.push(server);
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, calls: () => calls };
}

/** `npm run rollout` as a process of its own (the compiled entry point), on a scenario's stack. */
function command(dir: string, args: readonly string[]): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(__dirname, "..", "..", "scripts", "rollout.js"), "--cwd", dir, "--stack", "rehearsal", "--engine", "render", ...args]);
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", (code) => {
            resolve({ code: code ?? -1, out });
        });
    });
}

/** The rollout's record as the stack's tags hold it (the render engine's: a file beside its lock). */
const recordOf = (dir: string) => readRollout(new FileStackTags(path.join(dir, ".rollout", "rehearsal.tags.json")));

/** Polls the record until `ready` holds (a minute at most). */
async function until(dir: string, ready: (r: RolloutRecord) => boolean): Promise<RolloutRecord> {
    for (let tries = 0; tries < 600; tries++) {
        const r = await recordOf(dir).catch(() => undefined);
        if (r !== undefined && ready(r)) return r;
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the rollout's record never got there: ${JSON.stringify(await recordOf(dir))}`);
}

/**
 * A rollout run by one process, steered by others: alice pauses it once step 1 is judged; while paused, three
 * intervals pass without a step; status (a third process) shows it; bob promotes it with --full.
 */
async function operated(dir: string): Promise<{ codes: number[]; log: string }> {
    gitInit(dir);
    const running = command(dir, ["--service", "shop", "--commit", "--actor", "release-bot", "--reason", "weekly release"]);
    await until(dir, (r) => r.evidence.length > 0);
    const pause = await command(dir, ["pause", "--reason", "look at the dashboards", "--actor", "alice"]);
    const paused = await until(dir, (r) => r.phase === "paused");
    const stepPaused = paused.step;
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const status = await command(dir, ["status"]);
    const still = await recordOf(dir);
    const promote = await command(dir, ["promote", "--full", "--reason", "hotfix INC-42", "--actor", "bob"]);
    const { code, out } = await running;
    const lines = [`--- pause (${pause.code}): ${pause.out}`, `--- paused at step ${stepPaused}, after three intervals: ${still?.phase ?? "?"} at step ${still?.step ?? "?"}`, `--- status (${status.code}):
${status.out}`, `--- promote (${promote.code}): ${promote.out}`, out];
    return { codes: [pause.code, status.code, promote.code, code], log: lines.join("\n") };
}

/** A rollout aborted from another process, then retried by a third, which carries the same services out to the end. */
async function abortedThenRetried(dir: string): Promise<{ codes: number[]; log: string }> {
    const running = command(dir, ["--service", "shop", "--actor", "release-bot"]);
    await until(dir, (r) => r.phase === "running" && r.nextDecisionAt !== undefined);
    const abort = await command(dir, ["abort", "--reason", "wrong build", "--actor", "carol"]);
    const first = await running;
    const retry = await command(dir, ["retry", "--reason", "rebuilt", "--actor", "carol"]);
    return { codes: [abort.code, first.code, retry.code], log: [`--- abort (${abort.code}): ${abort.out}`, first.out, `--- retry (${retry.code}):`, retry.out].join("\n") };
}

/** A notifier's endpoint that keeps what it is sent. */
const notified: unknown[] = [];
async function collector(): Promise<string> {
    const server = http.createServer((req, res) => {
        let text = "";
        req.on("data", (chunk: Buffer) => (text += chunk.toString()));
        req.on("end", () => {
            notified.push(JSON.parse(text));
            res.writeHead(200).end("ok");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    hooks.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
}

const canary = (app: string, candidate: VersionBehaviour, requestsPerSecond = REQUESTS_PER_SECOND): AppSpec => ({ app, release: "canary", candidate, requestsPerSecond });
const services = (r: Result) => r.config.services as Record<string, { release: string; versions: string[]; canaryWeight?: number }>;

/** Starts every scenario; each result is a promise of its own. */
async function startScenarios(): Promise<Map<string, Promise<Result>>> {
    await exporter.start(Number(process.env.ROLLOUT_TEST_EXPORTER_PORT));
    const refusing = await webhook(503);
    const notifyUrl = await collector();
    // A port nothing listens on any more: a webhook server's, closed.
    const gone = await webhook(200);
    hooks.pop()?.close();
    const closedPort = gone.url.replace(/\/$/, "");
    const scenarios: [string, () => Promise<Result>][] = [
        // Baked for 8 intervals: promoted only once watched serving that long, however soon the tests conclude.
        ["healthy", () => play({ name: "sc-healthy", apps: [canary("shop", HEALTHY)], rollout: { analysis: { bakeTime: "16s" } } }, {}, committed)],
        ["errors", () => play({ name: "sc-errors", apps: [canary("shop", { errorRate: 0.2, latencyMs: 40 })] }, {}, committed)],
        ["latency", () => play({ name: "sc-latency", apps: [canary("shop", { errorRate: 0, latencyMs: 900 })] })],
        ["no traffic", () => play({ name: "sc-idle", apps: [canary("shop", HEALTHY, 0)], rollout: SHORT_DEADLINE })],
        ["no prometheus", () => play({ name: "sc-blind", apps: [canary("shop", HEALTHY)], rollout: SHORT_DEADLINE }, { prometheusUrl: closedPort })],
        ["webhook", () => play({ name: "sc-hook", apps: [canary("shop", HEALTHY)], rollout: { webhooks: { loadTest: { url: refusing.url, timeout: "30s" } } } })],
        ["interrupted", () => play({ name: "sc-resume", apps: [canary("shop", HEALTHY)] }, { steps: [25, 50, 100] }, async (dir) => {
            const controller = new AbortController();
            // Ctrl-C once step 2 is applied.
            const watch = setInterval(() => {
                // The stack file may be read while the engine rewrites it: a read that does not parse waits for the next.
                try {
                    if ((configOf(dir).services as Record<string, { canaryWeight?: number }>).shop.canaryWeight === 50) controller.abort();
                } catch {
                    return;
                }
            }, 100);
            const first = await rollout(dir, ["--service", "shop", "--on-interrupt", "hold", "--actor", "rollout test"], controller.signal);
            clearInterval(watch);
            const held = configOf(dir);
            const resumed = await rollout(dir, ["resume", "--reason", "carry on", "--actor", "rollout test"]);
            return { codes: [...first.codes, ...resumed.codes], log: `${first.log}\n--- held: ${JSON.stringify(held.services)}\n${resumed.log}` };
        })],
        ["blue/green", () => play({ name: "sc-bluegreen", apps: [{ app: "shop", release: "blueGreen", candidate: HEALTHY, requestsPerSecond: REQUESTS_PER_SECOND }] })],
        // Both versions fail 30 % of attempts, and the mesh retries twice: callers see 2.7 %, the proxies 30 %.
        ["retried", () => play({ name: "sc-retried", apps: [{ ...canary("shop", FLAKY), stable: FLAKY, retries: 2 }] })],
        ["several", () => play({ name: "sc-several", apps: [canary("shop", HEALTHY), canary("cart", { errorRate: 0.2, latencyMs: 40 })] })],
        // The stack's own metrics: a median-latency bound a healthy candidate (40 ms) misses, beside one it meets; and a
        // query Prometheus cannot parse, refused before anything moves.
        ["custom metrics", () => play({ name: "sc-metrics", apps: [canary("shop", HEALTHY)], rollout: { analysis: { metrics: [{ name: "p50-latency", query: P50, max: 20 }, { name: "p50-vs-stable", query: P50, maxRatioToStable: 1.5 }] } } })],
        // Two processes and more against one stack: the rollout, and its operators.
        ["operated", () => play({ name: "sc-operated", apps: [canary("shop", HEALTHY)], rollout: { analysis: { bakeTime: "10m" }, notify: [{ kind: "webhook", url: notifyUrl }] } }, { steps: [25, 50, 100] }, operated)],
        ["aborted", () => play({ name: "sc-aborted", apps: [canary("shop", HEALTHY)] }, { steps: [25, 100] }, abortedThenRetried)],
        // On ambient: the same rollouts judged by the waypoint's reports, and a mirror no proxy reports refused.
        ["ambient healthy", () => play({ name: "sc-ambient", apps: [canary("shop", HEALTHY)], dataPlane: "ambient" })],
        ["ambient errors", () => play({ name: "sc-ambient-errors", apps: [canary("shop", { errorRate: 0.2, latencyMs: 40 })], dataPlane: "ambient" })],
        ["ambient mirror", () => play({ name: "sc-ambient-mirror", apps: [{ app: "shop", release: "blueGreen", candidate: HEALTHY, requestsPerSecond: REQUESTS_PER_SECOND }], dataPlane: "ambient" })],
        ["bad metric", () => play({ name: "sc-badmetric", apps: [canary("shop", HEALTHY)], rollout: { analysis: { metrics: [{ name: "typo", query: P50.replace("histogram_quantile", "histogram_quantil"), max: 20 }] } } })],
    ];
    return new Map(scenarios.map(([name, run]) => [name, run()]));
}

let started: Promise<Map<string, Promise<Result>>> | undefined;

// The scenarios start together before the first check.
before(() => {
    started = startScenarios();
    // Checked by the tests below; until then a failure is not yet anyone's to report.
    void started.then(
        (all) => {
            for (const r of all.values()) r.catch(() => undefined);
        },
        () => undefined,
    );
});

after(async () => {
    await exporter.stop();
    for (const hook of hooks) hook.close();
});

async function result(name: string): Promise<Result> {
    const r = await (await started)?.get(name);
    assert.ok(r !== undefined, name);
    return r;
}

/** What a rollback at step 1 (25%) may rightly say for a candidate `service` that is worse: the sequential test, or the hard limits' failed checks. */
const worseAtStep1 = (service: string, test: string, limit: string) =>
    new RegExp(`ROLLED BACK: at step 1 \\(25%\\): ${service} (is worse than its stable version: ${test}.*\\(sequential test\\)|failed 2 checks \\(failedChecks 2\\): .*${limit})`);

describe("npm run rollout, against a real Prometheus", function () {
    this.timeout(120_000);

    it("promotes a healthy candidate: it becomes the only version, and the commit names the outcome and metrics", async () => {
        const r = await result("healthy");
        assert.equal(r.code, 0, r.log);
        assert.deepEqual(services(r).shop, { path: "/shop", release: "single", versions: ["v2"] });
        assert.match(lastCommit(r), /^rollout\(rehearsal\): shop promoted/);
        // Held at step 1 until baked: eight intervals judged there, the holds counting the intervals watched.
        const watched = [...r.log.matchAll(/step 1\/2 \(25%\): hold: shop: .*baking: watched serving (\d+) of the 8 intervals of bakeTime/g)].map((m) => Number(m[1]));
        assert.ok(watched.at(-1) === 7 && watched.every((n, i) => n - (watched[i - 1] ?? 0) <= 1), r.log);
        assert.match(r.log, /step 1\/2 \(25%\): advance/);
        assert.match(lastCommit(r), /shop: candidate v2 \d+ req, 0 5xx, p95 \d+(\.\d+)?ms/);
        assert.ok(stackFileCommitted(r));
    });

    it("judges a canary by what its callers saw: a 5xx the mesh retried into a success is none, one left a 5xx is one", async () => {
        const r = await result("retried");
        assert.equal(r.code, 0, r.log);
        const seen = [...r.log.matchAll(/shop: candidate v2 (\d+) req, (\d+) 5xx/g)].map(([, requests, errors]) => Number(errors) / Number(requests));
        assert.ok(seen.length > 0 && seen.every((share) => share < 0.1), `the candidate's 5xx share as judged: ${seen.join(", ")} (its proxies saw 30 % of attempts fail; callers 2.7 %)`);
    });

    it("rolls back a candidate that answers errors at the step it was judged at, back to weight 0, and commits that", async () => {
        const r = await result("errors");
        assert.equal(r.code, 1, r.log);
        assert.equal(services(r).shop.canaryWeight, 0);
        assert.equal(r.maxCandidatePercent, 25, "never past the first step");
        assert.match(r.log, worseAtStep1("shop", "errors \\d+(\\.\\d+)?% this interval", "success rate \\d+(\\.\\d+)?% < 99%"));
        assert.ok((r.log.match(/-> limits fail/g) ?? []).length <= 2, "decided by the second failing interval");
        assert.match(lastCommit(r), /^rollout\(rehearsal\): shop rolled back\n\nat step 1 \(25%\)/);
        assert.ok(stackFileCommitted(r));
    });

    it("rolls back a latency regression at the step it was judged at", async () => {
        const r = await result("latency");
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, worseAtStep1("shop", "100% of requests slower than \\d+ms this interval", "p95 \\d+(\\.\\d+)?ms > 500ms"));
        assert.equal(services(r).shop.canaryWeight, 0);
        assert.equal(r.maxCandidatePercent, 25);
    });

    it("holds without traffic and rolls back at the progress deadline, never promoting on missing data", async () => {
        const r = await result("no traffic");
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, /limits noData, .*no candidate requests/);
        assert.match(r.log, /no progress within the progress deadline of 5s/);
        assert.doesNotMatch(r.log, /advance/);
        assert.equal(services(r).shop.release, "canary");
        assert.equal(services(r).shop.canaryWeight, 0);
    });

    it("refuses to start when Prometheus does not answer: exit 2 before any traffic moves", async () => {
        const r = await result("no prometheus");
        assert.equal(r.code, 2, r.log);
        assert.match(r.log, /The rollout cannot start; nothing was changed:\n {2}- Prometheus at http:\/\/127\.0\.0\.1:\d+ did not answer .*Fix: port-forward it/);
        assert.doesNotMatch(r.log, /step 1/);
        assert.equal(services(r).shop.canaryWeight, 0);
        assert.equal(r.maxCandidatePercent, 0);
    });

    it("judges the stack's own metrics each interval: a bound the candidate misses rolls it back; a query that does not parse is refused first", async () => {
        const r = await result("custom metrics");
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, /ROLLED BACK: at step 1 \(25%\): shop failed 2 checks \(failedChecks 2\): metric p50-latency \d+(\.\d+)? > 20/);
        assert.equal(services(r).shop.canaryWeight, 0);
        const bad = await result("bad metric");
        assert.equal(bad.code, 2, bad.log);
        assert.match(bad.log, /rollout\.analysis\.metrics\[0\] \(typo\): Prometheus refuses its query for shop .*parse error.*histogram_quantil/);
        assert.equal(bad.maxCandidatePercent, 0);
    });

    it("rolls back when a webhook refuses", async () => {
        const r = await result("webhook");
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, /loadTest webhook answered 503: not now/);
        assert.equal(services(r).shop.canaryWeight, 0);
        assert.equal(r.maxCandidatePercent, 25);
    });

    it("holds on Ctrl-C with --on-interrupt hold, and resume carries on to promotion", async () => {
        const r = await result("interrupted");
        assert.deepEqual(r.codes, [130, 0], r.log);
        assert.match(r.log, /--- held: \{"shop":\{[^}]*"canaryWeight":50\}\}/);
        assert.match(r.log, /continued at step 2/);
        assert.deepEqual(services(r).shop.versions, ["v2"]);
        assert.ok(!fs.existsSync(path.join(r.dir, ".rollout", "rehearsal.lock")), "the lock is released");
        const record = await recordOf(r.dir);
        assert.deepEqual([record?.phase, record?.resume], ["promoted", undefined], "nothing to resume once promoted");
        assert.deepEqual(record?.actions.map((a) => `${a.actor}: ${a.action}, ${a.reason}`), ["rollout test: start, (no reason given)", "rollout test: resume, carry on"]);
    });

    it("is steered by other processes through the stack: pause holds the step, status shows it, promote --full promotes, and the commit names who and why", async () => {
        const r = await result("operated");
        assert.deepEqual(r.codes, [0, 0, 0, 0], r.log);
        assert.match(r.log, /--- pause \(0\): Asking the rollout of shop .* to pause\.\.\.\npaused: each interval is still judged/);
        assert.match(r.log, /--- paused at step (\d), after three intervals: paused at step \1\n/);
        assert.match(r.log, /--- status \(0\):\nRollout of shop on stack rehearsal: paused at step \d\/3 \(\d+%\)\n {2}runner: pid \d+ on .*\n(.*\n)* {2}shop: candidate v2 \d+ req, 0 5xx, p95 [\d.]+ms \| stable v1 \d+ req, 0 5xx, p95 [\d.]+ms\n {4}hard limits pass \(success rate >= [\d.]+%, p95 <= [\d.]+ms\): .*\n {4}errors test (open|notWorse): evidence of worse -?[\d.]+ \(rolls back at [\d.]+\), of no worse -?[\d.]+ \(shown at -[\d.]+\), its own -?[\d.]+ \(shown at [\d.]+\)\n/);
        assert.match(r.log, /--- promote \(0\): .*\npromoting now, without the remaining steps, the analysis or the bake/);
        assert.deepEqual(services(r).shop, { path: "/shop", release: "single", versions: ["v2"] });
        const message = lastCommit(r);
        assert.match(message, /^rollout\(rehearsal\): shop promoted\n\nshop v2 promoted after step \d of 3 on bob's promote --full \(hotfix INC-42\)/);
        assert.match(message, /Actions:\n {2}\S+ release-bot: start, "weekly release"\n {2}\S+ alice: pause, "look at the dashboards" -> paused: .*\n {2}\S+ bob: promote --full, "hotfix INC-42" -> promoting now/);
        const record = await recordOf(r.dir);
        assert.equal(record?.phase, "promoted");
        // The runner's decision log: every line as the schema says, each decision with the queries it sent and Prometheus's answers.
        const log = path.join(r.dir, ".rollout", "rehearsal", `${record?.id ?? ""}.jsonl`);
        assert.deepEqual(decisionLogProblems(log), []);
        const lines = fs.readFileSync(log, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as LogEntry);
        const decision = lines.find((l) => l.event === "decision");
        assert.ok(decision?.event === "decision");
        const { queries } = decision.services[0];
        assert.ok(queries.length >= 6 && queries.every((q) => Array.isArray(q.answer) && q.time !== undefined), JSON.stringify(queries).slice(0, 500));
        assert.ok(queries.some((q) => q.query.includes("istio_requests_total") && JSON.stringify(q.answer).includes('"destination_version":"v2"')));
        assert.deepEqual(lines.filter((l) => l.event === "action").map((l) => l.event === "action" && `${l.actor} ${l.action}`), ["alice pause", "bob promote"]);
        assert.match(r.log, /Decision log: \.rollout\/rehearsal\/\d{8}T\d{6}Z-[0-9a-f]{8}\.jsonl; report: \.rollout\/rehearsal\/\d{8}T\d{6}Z-[0-9a-f]{8}\.html/);
        assert.ok(fs.existsSync(log.replace(/\.jsonl$/, ".html")), "the report is written beside the log");
        // The team's endpoint heard every event, the operators' actions with who and why, and where the report is.
        const heard = notified.filter((n) => (n as { rollout?: string }).rollout === record?.id) as { event: string; actor?: string; report: string }[];
        // The start, each step applied before alice's pause (one or two, as the first decision came), her pause, bob's promotion, the promotion.
        assert.match(heard.map((n) => n.event).join(","), /^start,step(,step)?,action,action,promotion$/);
        assert.deepEqual(heard.filter((n) => n.event === "action").map((n) => n.actor), ["alice", "bob"]);
        assert.ok(heard.every((n) => n.report === path.relative(r.dir, log.replace(/\.jsonl$/, ".html"))), JSON.stringify(heard.map((n) => n.report)));
    });

    it("is aborted from another process, rolled back at once, and retried by a third with the same services", async () => {
        const r = await result("aborted");
        assert.deepEqual(r.codes, [0, 1, 0], r.log);
        // At whichever step the abort found it (a busy machine starts the command late): rolled back there, at once.
        assert.match(r.log, /carol asked to abort \(wrong build\): rolling back now\n\[[\d:]+\] rollback: .*\nROLLED BACK: at step \d \(\d+%\): aborted by carol: wrong build/);
        assert.equal(r.maxCandidatePercent, 100, "the retry went through to promotion");
        assert.deepEqual(services(r).shop.versions, ["v2"]);
        const record = await recordOf(r.dir);
        assert.deepEqual([record?.phase, record?.actions.map((a) => `${a.actor} ${a.action}`)], ["promoted", ["carol retry"]]);
    });

    it("the canary dashboard's every query is PromQL Prometheus accepts and answers", async () => {
        const exprs: string[] = [];
        for (const [stack, namespace] of [["dev", "sc-healthy"], ["ambient", "sc-ambient"]]) {
            const settings = readSettings(configSource(stackConfig(stack)));
            const dashboard = canaryDashboard(settings.appNamespace, promDuration(settings.rollout.intervalMs), settings.dataPlane);
            const reporters = dashboard.templating?.list?.find((v) => v.name === "reporter")?.options?.map((o) => String(o.value)) ?? [];
            // As Grafana sends them, its variables filled in (a scenario's service, each reporter the stack offers).
            exprs.push(
                ...((dashboard.panels ?? []) as Panel[])
                    .flatMap((p) => (p.targets ?? []).map((t) => String(t.expr)))
                    .flatMap((e) => reporters.map((reporter) => e.replaceAll("$reporter", reporter).replaceAll("$namespace", namespace).replaceAll("$service", "shop"))),
            );
        }
        assert.equal(exprs.length, 12);
        await result("ambient healthy");
        for (const expr of exprs) {
            const response = await fetch(`${prometheusUrl()}/api/v1/query?query=${encodeURIComponent(expr)}`);
            const body = (await response.json()) as { status: string; error?: string; data?: { result: unknown[] } };
            assert.equal(body.status, "success", `${expr}: ${body.error ?? ""}`);
            // The ambient namespace's panels show the waypoint's series (its scenario has served by now).
            if (expr.includes("sc-ambient") && expr.includes("istio_requests_total") && !expr.includes("5..")) assert.ok((body.data?.result.length ?? 0) > 0, `${expr}: no series`);
        }
    });

    it("judges a blue/green idle color on mirrored traffic, then switches activeColor", async () => {
        const r = await result("blue/green");
        assert.equal(r.code, 0, r.log);
        assert.equal(r.config.activeColor, "green");
        assert.deepEqual(r.config.mirror, {}, "the mirror share is gone after the switch");
        assert.match(r.log, /after the switch: next decision/);
    });

    it("runs unchanged on an ambient stack, judged by the waypoint's reports: promotes a healthy canary, rolls back a failing one, refuses a mirror it cannot see", async () => {
        const healthy = await result("ambient healthy");
        assert.equal(healthy.code, 0, healthy.log);
        assert.deepEqual(services(healthy).shop, { path: "/shop", release: "single", versions: ["v2"] });
        assert.match(healthy.log, /shop: candidate v2 \d+ req, 0 5xx/);
        const failing = await result("ambient errors");
        assert.equal(failing.code, 1, failing.log);
        assert.match(failing.log, worseAtStep1("shop", "errors \\d+(\\.\\d+)?% this interval", "success rate \\d+(\\.\\d+)?% < 99%"));
        assert.equal(services(failing).shop.canaryWeight, 0);
        assert.equal(failing.maxCandidatePercent, 25);
        const mirror = await result("ambient mirror");
        assert.equal(mirror.code, 2, mirror.log);
        assert.match(mirror.log, /rollout\.blueGreenTraffic = "mirror": judges the idle color on mirrored requests, and with dataPlane ambient no proxy reports them/);
        assert.equal(mirror.config.activeColor, undefined, "nothing moved");
    });

    it("moves several services together and rolls all back when one fails", async () => {
        const r = await result("several");
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, worseAtStep1("cart", "errors \\d+(\\.\\d+)?% this interval", "success rate \\d+(\\.\\d+)?% < 99%"));
        assert.equal(services(r).shop.canaryWeight, 0);
        assert.equal(services(r).cart.canaryWeight, 0);
        assert.equal(r.maxCandidatePercent, 25);
    });
});
