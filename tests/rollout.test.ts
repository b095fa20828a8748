// The rollout driver's decisions and edits, without waiting: the pure core (edits, targets, analysis), the
// loop on a fake clock, and the command's refusals. tests/scenarios/rollout.test.ts runs it against Prometheus.
import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { readSettings, Settings } from "../components/config/config";
import { ROLLOUT_DEFAULTS } from "../components/config/rollout-config";
import { AnalysisState, decide, judge, NEW_RECORD, ServiceEvidence, stepExposure, VersionCounts } from "../rollout/analysis";
import { applyEdits, asStackConfig, checkExpected, ConfigEdit, ConfigPath, configSource, ConfigValue, Expectation, pathKey, StackConfig } from "../rollout/config-edit";
import { Clock, Outcome, prepareRollout, runRollout } from "../rollout/driver";
import { RenderEngine, StackEngine } from "../rollout/engines";
import { editStackFile } from "../lib/stack-file";
import { RolloutLock } from "../rollout/lock";
import { RolloutRefusal } from "../rollout/plan";
import { main } from "../scripts/rollout";
import { stackConfig } from "../lib/mock-program";
import { configProblems } from "./harness";
import { OperatorRequest, REQUEST_TAG, requestTagValue, RolloutRecord, STATE_TAG } from "../rollout/control";
import { FileStackTags, writeRecord } from "../rollout/stack-tags";
import { operatedClock, TEST_ROLLOUT_ID, TestChannel, testChannel } from "./support/channel";
import { DecisionLog, LogEntry } from "../rollout/decision-log";
import { decisionLogProblems } from "./support/decision-log-schema";

const PROJECT = "istio-progressive-delivery";
const analysis = ROLLOUT_DEFAULTS.analysis;
const settingsOf = (config: StackConfig): Settings => readSettings(configSource(config));

/** A stack held in memory: what a test reads back is what the driver applied. */
class MemoryEngine implements StackEngine {
    readonly description = "memory";
    readonly stackFile = "Pulumi.memory.yaml";
    readonly applied: { edits: readonly ConfigEdit[]; message: string }[] = [];
    constructor(
        public config: StackConfig,
        private readonly failOn?: string,
        private readonly secretKeys: readonly string[] = [],
    ) {}
    checkWritable(): void {
        // In memory: always writable.
    }
    readConfig() {
        return Promise.resolve({ config: this.config, secretKeys: this.secretKeys });
    }
    apply(edits: readonly ConfigEdit[], message: string, expected: readonly Expectation[] = []) {
        checkExpected(this.config, expected);
        // As the engines do: the config is set, then the update may fail.
        this.config = applyEdits(this.config, edits);
        if (this.failOn !== undefined && message.includes(this.failOn)) return Promise.reject(new Error("the cluster said no"));
        this.applied.push({ edits, message });
        return Promise.resolve([]);
    }
}

/** Time passes only when the driver sleeps. */
function fakeClock(abortAfterSleeps?: { count: number; controller: AbortController }): Clock & { sleeps: number } {
    let now = 0;
    const clock = {
        sleeps: 0,
        now: () => now,
        sleep: (ms: number) => {
            clock.sleeps++;
            now += ms;
            if (abortAfterSleeps !== undefined && clock.sleeps >= abortAfterSleeps.count) {
                abortAfterSleeps.controller.abort();
                return Promise.resolve(false);
            }
            return Promise.resolve(true);
        },
    };
    return clock;
}

/** A version's requests in an interval: `slowShare` of them between 50 and 100 ms, the rest under 50 ms. */
const counts = (requests: number, errors: number, slowShare = 0.1): VersionCounts => ({
    requests,
    errors,
    latency: [
        { le: 50, count: requests * (1 - slowShare) },
        { le: 100, count: requests },
        { le: Infinity, count: requests },
    ],
});
const healthy: ServiceEvidence = { candidate: counts(500, 0), stable: counts(4500, 5) };
const dev = () => asStackConfig(stackConfig("dev"));
/** A custom metric's query: the median latency of one version. */
const P50 = 'histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_workload_namespace="{{namespace}}", destination_app="{{service}}", destination_version="{{version}}"}[{{interval}}])))';
const fast = (config: StackConfig, steps = [20, 100], analysis: Record<string, ConfigValue> = {}): StackConfig => ({ ...config, rollout: { steps, interval: "1s", analysis: { failedChecks: 2, progressDeadline: "3s", minRequests: 10, ...analysis } } });

async function drive(engine: MemoryEngine, options: { evidence?: ServiceEvidence; webhook?: (kind: string) => boolean; clock?: Clock; signal?: AbortSignal; onInterrupt?: "rollback" | "hold"; stack?: TestChannel; request?: OperatorRequest; decisions?: DecisionLog; notify?: (event: string) => void } = {}): Promise<Outcome> {
    const prepared = await prepareRollout(engine, "memory", ["user-service"]);
    return runRollout({
        prepared,
        engine,
        ...(options.stack !== undefined && { channel: options.stack.channel }),
        ...(options.request !== undefined && { request: options.request }),
        ...(options.decisions !== undefined && { decisions: options.decisions }),
        ...(options.notify !== undefined && { notify: options.notify }),
        signal: options.signal ?? new AbortController().signal,
        onInterrupt: options.onInterrupt ?? "rollback",
        log: () => undefined,
        clock: options.clock ?? fakeClock(),
        evidence: () => Promise.resolve(options.evidence ?? healthy),
        webhook: (kind) => Promise.resolve(options.webhook === undefined ? undefined : { ok: options.webhook(kind), detail: `${kind} said ${String(options.webhook(kind))}` }),
    });
}

describe("rollout: config edits", () => {
    it("spells paths as pulumi config set --path does, and stores top-level values as strings", () => {
        assert.equal(pathKey(["services", "user-service", "canaryWeight"]), "services.user-service.canaryWeight");
        assert.equal(pathKey(["rollout", "steps", 0]), "rollout.steps[0]");
        assert.equal(pathKey(["mirror", "a.b"]), 'mirror["a.b"]');
        assert.deepEqual(applyEdits({ canaryWeight: 10 }, [{ path: ["canaryWeight"], value: 50 }]), { canaryWeight: "50" });
        assert.deepEqual(applyEdits({}, [{ path: ["services", "a", "canaryWeight"], value: 5 }]), { services: { a: { canaryWeight: 5 } } });
        assert.deepEqual(applyEdits({ mirror: { a: 5, b: 6 } }, [{ path: ["mirror", "a"] }]), { mirror: { b: 6 } });
    });

    it("edits a stack file as the in-memory edits do, keeping its comments and other keys", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-file-"));
        const file = path.join(dir, "Pulumi.t.yaml");
        fs.writeFileSync(file, `# top comment\nconfig:\n  # the weight\n  ${PROJECT}:canaryWeight: 10\n  ${PROJECT}:mirror:\n    product-service: 5\n  kubernetes:context: kept\n`);
        const edits: ConfigEdit[] = [
            { path: ["canaryWeight"], value: 25 },
            { path: ["mirror", "product-service"] },
            { path: ["services", "user-service", "canaryWeight"], value: 5 },
            { path: ["services", "user-service", "versions"], value: ["v2"] },
        ];
        editStackFile(file, edits, PROJECT);
        const text = fs.readFileSync(file, "utf8");
        assert.match(text, /# top comment/);
        assert.match(text, /# the weight/);
        const written = (parse(text) as { config: Record<string, unknown> }).config;
        assert.equal(written["kubernetes:context"], "kept");
        const ours = Object.fromEntries(Object.entries(written).filter(([k]) => k.startsWith(`${PROJECT}:`)).map(([k, v]) => [k.slice(PROJECT.length + 1), v]));
        assert.deepEqual(ours, applyEdits({ canaryWeight: 10, mirror: { "product-service": 5 } }, edits));
        assert.equal(written[`${PROJECT}:canaryWeight`], "25", "a top-level value is a string, as Pulumi stores it");
    });

    it("writes edited strings that a YAML 1.1 reader would misread quoted, and leaves the rest of the file as written", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-file-"));
        const file = path.join(dir, "Pulumi.t.yaml");
        fs.writeFileSync(file, `config:\n  kubernetes:flag: on\n`);
        const env = { FEATURE: "on", START: "12:30", MODE: "0777", PLAIN: "text" };
        // A service may be named on or yes (DNS labels): the keys an edit creates are quoted too.
        editStackFile(
            file,
            [
                { path: ["services", "user-service", "env"], value: env },
                { path: ["mirror", "on"], value: 50 },
            ],
            PROJECT,
        );
        const text = fs.readFileSync(file, "utf8");
        for (const version of ["1.1", "1.2"] as const) {
            const config = (parse(text, { version }) as { config: Record<string, Record<string, { env?: unknown } | number>> }).config;
            assert.deepEqual(config[`${PROJECT}:services`]["user-service"], { env }, `read as YAML ${version}`);
            assert.deepEqual(config[`${PROJECT}:mirror`], { on: 50 }, `read as YAML ${version}`);
        }
        assert.match(text, /^ {2}kubernetes:flag: on$/m, "a value the edit did not write keeps its form");
    });
});

describe("rollout: what moves", () => {
    it("moves the stack's canaryWeight, or a service's own weight, and promotes by making the candidate the only version", async () => {
        const engine = new MemoryEngine(fast(dev()));
        const p = await prepareRollout(engine, "memory", ["user-service"]);
        assert.deepEqual(p.phases.steps.map((s) => s.edits), [[{ path: ["canaryWeight"], value: 20 }], [{ path: ["canaryWeight"], value: 100 }]]);
        const promoted = settingsOf(p.phases.promotion.config);
        assert.deepEqual(promoted.services.find((s) => s.name === "user-service")?.versions, ["v2"]);
        assert.equal(promoted.services.find((s) => s.name === "user-service")?.release, "single");
        assert.equal(promoted.canaryWeight, 0, "the next candidate starts unreleased");
        assert.deepEqual(promoted.services.map((s) => s.name), ["user-service", "product-service", "order-service"], "the default catalogue is written out whole");
        assert.deepEqual(p.phases.rollback.edits, [{ path: ["canaryWeight"], value: 0 }]);

        const own = fast({ ...dev(), services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"], canaryWeight: 10 }, "cart-service": { path: "/cart", release: "canary", versions: ["v1", "v2"] } } });
        const moved = await prepareRollout(new MemoryEngine({ ...own, routes: {}, meshEdges: [] }), "memory", ["user-service"]);
        assert.deepEqual(moved.phases.steps[0].edits, [{ path: ["services", "user-service", "canaryWeight"], value: 20 }]);
    });

    it("mirrors a share of live traffic to a blue/green idle color, then switches; rollback switches back", async () => {
        const p = await prepareRollout(new MemoryEngine(fast(dev())), "memory", ["product-service"]);
        assert.deepEqual(p.phases.steps.map((s) => s.edits), [[{ path: ["mirror", "product-service"], value: 20 }], [{ path: ["mirror", "product-service"], value: 100 }]]);
        assert.equal(settingsOf(p.phases.switch?.config ?? {}).activeColor, "green");
        assert.deepEqual(p.phases.rollback.edits, [{ path: ["activeColor"], value: "blue" }, { path: ["mirror", "product-service"] }]);
        assert.deepEqual(p.targets[0], { service: "product-service", release: "blueGreen", stableVersion: "v1", candidateVersion: "v2", activeColor: "blue", mirrorBefore: undefined });
    });

    const refusal = async (config: StackConfig, services: string[]) => {
        try {
            await prepareRollout(new MemoryEngine(config), "memory", services);
        } catch (error) {
            assert.ok(error instanceof RolloutRefusal, String(error));
            return error.message;
        }
        assert.fail("the rollout was not refused");
    };

    it("refuses what it cannot roll out safely, before anything changes", async () => {
        assert.match(await refusal(dev(), ["cart-service"]), /--service = "cart-service": is not a service of this stack/);
        assert.match(await refusal(dev(), ["order-service"]), /runs one version, so there is nothing to roll out/);
        const two = { ...dev(), routes: {}, meshEdges: [], services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] }, "cart-service": { path: "/cart", release: "canary", versions: ["v1", "v2"] } } };
        assert.match(await refusal(two, ["user-service"]), /moves the stack's canaryWeight, which also moves cart-service.*\n.*Fix: .*services\.cart-service\.canaryWeight/);
        assert.match(await refusal({ ...dev(), previewHeader: "", rollout: { blueGreenTraffic: "preview" } }, ["product-service"]), /rollout.blueGreenTraffic = "preview": .*no previewHeader/);
        // Another provider's edge cannot mirror into the mesh: the idle color is judged on preview requests there.
        for (const stack of ["envoy-gateway", "kong"]) {
            assert.match(await refusal(asStackConfig(stackConfig(stack)), ["product-service"]), /rollout.blueGreenTraffic = "mirror": judges the idle color on mirrored requests, and with gatewayProvider (envoyGateway|kong) the edge cannot mirror.*\n.*Fix: pulumi config set --path 'rollout.blueGreenTraffic' preview/);
            assert.equal((await prepareRollout(new MemoryEngine({ ...asStackConfig(stackConfig(stack)), rollout: { blueGreenTraffic: "preview" } }), "memory", ["product-service"])).targets[0].service, "product-service");
        }
        // On ambient no proxy reports a mirrored copy; during ambientReady no one reporter counts every request.
        const ambient = asStackConfig(stackConfig("ambient"));
        assert.match(await refusal(ambient, ["product-service"]), /rollout.blueGreenTraffic = "mirror": judges the idle color on mirrored requests, and with dataPlane ambient no proxy reports them.*\n.*Fix: pulumi config set --path 'rollout.blueGreenTraffic' preview/);
        assert.equal((await prepareRollout(new MemoryEngine(ambient), "memory", ["user-service"])).targets[0].service, "user-service");
        assert.match(await refusal({ ...ambient, dataPlane: "ambientReady" }, ["user-service"]), /dataPlane = "ambientReady": is a data-plane switch under way.*\n.*Fix: finish the switch first: pulumi config set dataPlane ambient && pulumi up; or: pulumi config set dataPlane sidecar && pulumi up/);
        // A rule that names the version promotion deletes: the promoted config would be refused by the program.
        const toStable = { ...dev(), routes: { "user-service": [{ name: "old", headers: { "x-old": { exact: "1" } }, to: "v1" }] } };
        assert.match(await refusal(toStable, ["user-service"]), /routes\.user-service\[0\]\.to = "v1": .*\(in the config promotion would apply\)/);
        // At 100 % the stable version serves nobody, so a canary must be compared at some step below it.
        assert.match(await refusal({ ...dev(), rollout: { steps: [100] } }, ["user-service"]), /rollout\.steps = .*100.*: has no step below 100/);
        assert.equal((await prepareRollout(new MemoryEngine({ ...dev(), rollout: { steps: [100] } }), "memory", ["product-service"])).phases.proofStep, 0, "a mirrored blue/green step leaves the stable serving");
    });

    it("prints fixes that work: each refusal's commands, applied as printed to its stack, give a config the program and the rollout take", async () => {
        const two = { ...dev(), routes: {}, meshEdges: [], services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] }, "cart-service": { path: "/cart", release: "canary", versions: ["v1", "v2"] } } };
        const withCatalogue = { ...dev(), services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] }, "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] }, "order-service": { path: "/orders", release: "single", versions: [{ name: "v7" }] } } };
        for (const [what, config, service] of [
            // dev has no services key: a path into it would replace the default catalogue with one field.
            ["a one-version service on a stack with the default catalogue", dev(), "order-service"],
            ["a one-version service on a stack with its own catalogue", withCatalogue, "order-service"],
            ["a canary whose weight moves another", two, "user-service"],
            ["a preview rollout without a previewHeader", { ...dev(), previewHeader: "", rollout: { blueGreenTraffic: "preview" } }, "product-service"],
            ["a mirror rollout behind Kong", asStackConfig(stackConfig("kong")), "product-service"],
            ["a mirror rollout on ambient", asStackConfig(stackConfig("ambient")), "product-service"],
            ["a rollout while the data plane switches", { ...asStackConfig(stackConfig("ambient")), dataPlane: "ambientReady" }, "user-service"],
            ["steps without one below 100", { ...dev(), rollout: { steps: [100] } }, "user-service"],
        ] as const) {
            const refused = await refusal(config, [service]);
            const fix = /Fix: (.*)/.exec(refused)?.[1] ?? "";
            // The commands of the fix (its last alternative where it offers --service first), as the Pulumi CLI applies them.
            const commands = fix.slice(fix.indexOf("pulumi ")).split("; or: ")[0];
            const fixed = applyCommands(config, commands);
            assert.deepEqual(configProblems(fixed), [], `${what}: ${commands}`);
            const prepared = await prepareRollout(new MemoryEngine(fixed), "memory", [service]);
            assert.equal(prepared.targets[0].service, service, what);
        }
    });
});

/**
 * Applies `pulumi config ...` commands joined by && as the Pulumi CLI would: `set` stores a top-level value as text,
 * `set --path` types integers and booleans, `set-all --json` takes each key's objectValue, `rm --path` removes.
 */
function applyCommands(config: StackConfig, commands: string): StackConfig {
    const parsePath = (text: string): ConfigPath => {
        const parts = [...text.matchAll(/([A-Za-z0-9_-]+)|\[(\d+)\]|\["([^"]+)"\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3])));
        assert.ok(typeof parts[0] === "string", text);
        return [parts[0], ...parts.slice(1)];
    };
    let result = config;
    for (const command of commands.split(" && ").map((c) => c.trim())) {
        const set = /^pulumi config set (?:--path '([^']+)'|(\w+)) (\S+)$/.exec(command);
        const all = /^pulumi config set-all --json '(.*)'$/.exec(command);
        const rm = /^pulumi config rm --path '([^']+)'$/.exec(command);
        if (set !== null) {
            const value = set[2] !== undefined ? set[3] : /^-?\d+$/.test(set[3]) ? Number(set[3]) : set[3] === "true" || set[3] === "false" ? set[3] === "true" : set[3];
            result = applyEdits(result, [{ path: set[2] !== undefined ? [set[2]] : parsePath(set[1]), value }]);
        } else if (all !== null) {
            for (const [key, entry] of Object.entries(JSON.parse(all[1]) as Record<string, { objectValue: ConfigValue }>)) result = applyEdits(result, [{ path: [key.slice(key.indexOf(":") + 1)], value: entry.objectValue }]);
        } else if (rm !== null) {
            result = applyEdits(result, [{ path: parsePath(rm[1]) }]);
        } else {
            assert.equal(command, "pulumi up", `not a command the test knows: ${command}`);
        }
    }
    return result;
}

describe("rollout: analysis", () => {
    const once = (evidence: ServiceEvidence) => judge(evidence, analysis, NEW_RECORD);

    it("reads the error budget and margins, decimals given as text as pulumi config set --path stores them", () => {
        const read = settingsOf({ ...dev(), rollout: { analysis: { falseRollback: "0.5", missedRegression: 10, errorMargin: "2.5", slowRatio: "1.5" } } }).rollout.analysis;
        assert.deepEqual([read.falseRollbackPercent, read.missedRegressionPercent, read.errorMarginPoints, read.slowRatio], [0.5, 10, 2.5, 1.5]);
        // Custom metrics: a bound each, a query over one version.
        const metrics = settingsOf({ ...dev(), rollout: { analysis: { metrics: [{ name: "p50-latency", query: P50, max: "100.5" }, { name: "p50-vs-stable", query: P50, maxRatioToStable: 1.5 }] } } }).rollout.analysis.metrics;
        assert.deepEqual(metrics, [{ name: "p50-latency", query: P50, max: 100.5 }, { name: "p50-vs-stable", query: P50, maxRatioToStable: 1.5 }]);
        // PromQL's own syntax: a raw backtick string keeps its backslashes, and a # comment runs to the end of its line.
        const raw = 'sum(rate(x{path=~`\\d+(`, v="{{ version }}"}[{{interval}}])) # not closed: sum(';
        assert.deepEqual(settingsOf({ ...dev(), rollout: { analysis: { metrics: [{ name: "raw", query: raw, min: 0 }] } } }).rollout.analysis.metrics, [{ name: "raw", query: raw, min: 0 }]);
        // The bake: 30 minutes unless the stack says; 0s promotes as soon as the tests conclude.
        assert.equal(settingsOf(dev()).rollout.analysis.bakeTimeMs, 1_800_000);
        assert.equal(settingsOf({ ...dev(), rollout: { analysis: { bakeTime: "0s" } } }).rollout.analysis.bakeTimeMs, 0);
    });

    it("judges custom metrics as hard limits: beyond the bound a failed check, no value no data, never a pass", () => {
        const withMetrics = { ...analysis, metrics: [{ name: "p50", query: P50, max: 100 }, { name: "p50-vs-stable", query: P50, maxRatioToStable: 1.5 }, { name: "throughput", query: P50, min: 5 }] };
        const judged = (metrics: ServiceEvidence["metrics"]) => judge({ ...healthy, metrics }, withMetrics, NEW_RECORD);
        const within = judged([{ name: "p50", candidate: 80 }, { name: "p50-vs-stable", candidate: 80, stable: 60 }, { name: "throughput", candidate: 9 }]);
        assert.equal(within.limits, "pass");
        assert.match(within.reasons.join(", "), /metric p50 80, metric p50-vs-stable 80 \(stable 60\), metric throughput 9/);
        const beyond = judged([{ name: "p50", candidate: 120 }, { name: "p50-vs-stable", candidate: 100, stable: 60 }, { name: "throughput", candidate: 2 }]);
        assert.equal(beyond.limits, "fail");
        assert.match(beyond.reasons.join(", "), /metric p50 120 > 100, metric p50-vs-stable 100 > 90 \(1.5x the stable's 60\), metric throughput 2 < 5/);
        // No value for the candidate, or for the stable a ratio needs, or a query Prometheus could not answer: no data.
        assert.equal(judged([{ name: "p50", candidate: 80 }, { name: "p50-vs-stable", candidate: 80 }, { name: "throughput", candidate: 9 }]).limits, "noData");
        assert.equal(judged([{ name: "p50", error: "the query returns 3 series" }, { name: "p50-vs-stable", candidate: 80, stable: 60 }, { name: "throughput", candidate: 9 }]).limits, "noData");
        assert.equal(judged(undefined).limits, "noData");
        // The built-in limits still fail on their own.
        assert.equal(judge({ candidate: counts(200, 12), stable: counts(2000, 2), metrics: [{ name: "p50", candidate: 1 }, { name: "p50-vs-stable", candidate: 1, stable: 1 }, { name: "throughput", candidate: 9 }] }, withMetrics, NEW_RECORD).limits, "fail");
    });

    it("checks the hard limits on intervals with enough requests, and never passes on missing data", () => {
        assert.equal(once({ error: "Prometheus at x: fetch failed" }).limits, "noData");
        assert.equal(once({}).limits, "noData");
        assert.equal(once({ candidate: { requests: 200, errors: 0, latency: [] }, stable: counts(2000, 2) }).limits, "noData", "no latency recorded");
        assert.equal(once({ candidate: counts(99, 3), stable: counts(2000, 2) }).limits, "thin", "fewer than minRequests: one 5xx alone would break 99 %");
        assert.equal(once({ candidate: counts(200, 12), stable: counts(2000, 2) }).limits, "fail", "6 % errors: below 99 % beyond chance");
        // 98.5 % is below 99 %, but a candidate at the limit errs 3 times in 200 often: a check fails beyond chance only.
        assert.equal(once({ candidate: counts(200, 3), stable: counts(2000, 2) }).limits, "pass");
        // A stable at 1 % errors: a candidate as good as it is within the limit (99 % - the margin: 98 %).
        assert.equal(once({ candidate: counts(1000, 12), stable: counts(9000, 90) }).limits, "pass");
        assert.equal(once({ candidate: counts(1000, 40), stable: counts(9000, 90) }).limits, "fail");
        assert.equal(once({ candidate: { requests: 200, errors: 0, latency: [{ le: 500, count: 180 }, { le: 1000, count: 200 }, { le: Infinity, count: 200 }] }, stable: counts(2000, 2) }).limits, "fail", "p95 over 500ms");
        assert.equal(once({ candidate: counts(200, 2), stable: counts(2000, 2) }).limits, "pass");
    });

    it("finds a candidate worse than its stable version, or shows it no worse, from counts that the thresholds call fine", () => {
        // 1.2 % errors passes the hard limit (not below 99 % beyond chance), but against a stable at 0.05 % it is worse.
        const erroring = once({ candidate: counts(1000, 12), stable: counts(10_000, 5) });
        assert.equal(erroring.limits, "pass");
        assert.equal(erroring.record.errors.outcome, "worse");
        // Twice the stable's share of requests over 50 ms, with a p95 far under 500 ms. "Slow" begins where the
        // stable's history says, so latency is judged from the second interval on.
        const twice = (evidence: ServiceEvidence) => judge(evidence, analysis, once(evidence).record);
        const slow = twice({ candidate: counts(1000, 0, 0.2), stable: counts(10_000, 5, 0.1) });
        assert.equal(slow.limits, "pass");
        assert.equal(slow.record.latency.outcome, "worse");
        const same = twice({ candidate: counts(1000, 0), stable: counts(10_000, 5) });
        assert.deepEqual([same.record.errors.outcome, same.record.latency.outcome], ["notWorse", "notWorse"]);
        // 5xx the callers' proxies answered themselves (a timeout's 504) carry no version: they may be the candidate's.
        const blind = twice({ candidate: counts(1000, 0), stable: counts(10_000, 5), unattributedErrors: 40 });
        assert.deepEqual([blind.record.errors.outcome, blind.record.latency.outcome], ["open", "open"]);
        assert.match(blind.reasons.join(", "), /40 5xx answered by the callers' proxies \(timeouts, failed connections\) carry no version/);
        // A burst in the very first interval (8 of 60 candidate requests, 1 of 1,140 stable ones), with no history to
        // take the stable's rate from: weighed against both versions' rate in that interval, it is worse at once.
        assert.equal(once({ candidate: counts(60, 8), stable: counts(1140, 1) }).record.errors.outcome, "worse");
        // Little evidence decides nothing yet.
        const early = once({ candidate: counts(30, 0), stable: counts(570, 1) });
        assert.deepEqual([early.record.errors.outcome, early.record.latency.outcome], ["open", "open"]);
    });

    it("rolls back a worse candidate at once; holds the proof step until the tests show it no worse; counts failed checks; keeps the deadline", () => {
        const start: AnalysisState = { services: {}, progressSinceMs: 0 };
        // Two healthy intervals: the second judges latency at the bound the first showed.
        const pass = judge(healthy, analysis, once(healthy).record);
        const unbaked = { ...analysis, bakeTimeMs: 0 };
        assert.equal(decide({ a: pass, b: pass }, start, unbaked, 1, true, 60_000).decision, "advance");
        // Shown no worse, but watched serving for 2 of bakeTime's 30 intervals: the proof step holds, and that is progress.
        const baking = decide({ a: pass, b: pass }, start, analysis, 1, true, 60_000);
        assert.deepEqual([baking.decision, baking.state.progressSinceMs], ["hold", 1]);
        assert.match(baking.reason, /a: shown no worse; baking: watched serving 2 of the 30 intervals of bakeTime 30m/);
        const baked = { ...pass, record: { ...pass.record, watchedIntervals: 30 } };
        assert.equal(decide({ a: baked, b: baked }, start, analysis, 1, true, 60_000).decision, "advance");
        // An interval without candidate requests is not watching it: it does not count toward the bake.
        assert.equal(judge({ candidate: counts(0, 0), stable: counts(10_000, 5) }, analysis, baked.record).record.watchedIntervals, 30);
        // The bake is whole intervals: 90s at 1m intervals is two of them.
        assert.equal(decide({ a: { ...pass, record: { ...pass.record, watchedIntervals: 1 } } }, start, { ...analysis, bakeTimeMs: 90_000 }, 1, true, 60_000).decision, "hold");
        const worse = once({ candidate: counts(1000, 12), stable: counts(10_000, 5) });
        assert.match(decide({ a: pass, b: worse }, start, analysis, 1, false, 60_000).reason, /^b is worse than its stable version: errors 1.20% this interval against the stable's 0.05%: .*sequential test/);
        // Within the limits but not yet shown no worse: the step advances, unless it is the proof step, where it holds and makes progress.
        const early = once({ candidate: counts(30, 0), stable: counts(570, 1) });
        assert.equal(decide({ a: early }, start, analysis, 1, false, 60_000).decision, "advance");
        const held = decide({ a: early }, start, analysis, analysis.progressDeadlineMs + 1, true, 60_000);
        assert.deepEqual([held.decision, held.state.progressSinceMs], ["hold", analysis.progressDeadlineMs + 1]);
        assert.match(held.reason, /not yet shown no worse than its stable version \(errors test open, latency test open\)/);
        let state = start;
        const fail = once({ candidate: counts(200, 0), stable: { requests: 0, errors: 0, latency: [] } });
        const failing = { ...fail, limits: "fail" as const, reasons: ["load test refused"] };
        for (let i = 1; i < analysis.failedChecks; i++) {
            const d = decide({ a: failing }, state, analysis, i, false, 60_000);
            assert.equal(d.decision, "hold");
            state = d.state;
        }
        assert.match(decide({ a: failing }, state, analysis, 5, false, 60_000).reason, /a failed 5 checks \(failedChecks 5\): load test refused/);
        const unobserved = once({ error: "down" });
        assert.equal(decide({ a: unobserved }, start, analysis, analysis.progressDeadlineMs - 1, false, 60_000).decision, "hold");
        assert.match(decide({ a: unobserved }, start, analysis, analysis.progressDeadlineMs, false, 60_000).reason, /no progress within the progress deadline of 600s: a: no data: down/);
        // 100 requests/s, 10 %: 600 candidate requests an interval, and 5 failed checks.
        assert.deepEqual(stepExposure(10, 100, 60_000, analysis, "step"), { perInterval: 600, limitsFire: true, requests: 3000 });
        // 1 request/s at 5 %: 3 an interval, below minRequests: the limits never fire; the step advances after one interval.
        assert.deepEqual(stepExposure(5, 1, 60_000, analysis, "step"), { perInterval: 3, limitsFire: false, requests: 3 });
        // ... at the proof step it holds until the tests decide, and a last step (100 %, a switch) passes into the
        // promotion: no bound from the limits either way.
        assert.deepEqual(stepExposure(50, 1, 60_000, analysis, "proof"), { perInterval: 30, limitsFire: false });
        assert.deepEqual(stepExposure(100, 1, 60_000, analysis, "final"), { perInterval: 60, limitsFire: false });
    });
});

describe("rollout: the loop", () => {
    it("promotes after every step passes, each step one update", async () => {
        const engine = new MemoryEngine(fast(dev()));
        const outcome = await drive(engine);
        assert.equal(outcome.kind, "promoted");
        assert.deepEqual(engine.applied.map((a) => a.message.replace(/ \(npm run rollout\)$/, "")), ["step 1/2: user-service v2 at 20%", "step 2/2: user-service v2 at 100%", "promote: user-service v2"]);
    });

    it("promotes from a step below 100 % by moving every request to the candidate first, then removing the old version", async () => {
        const below = (config: StackConfig) => fast(config, [20, 50]);
        const engine = new MemoryEngine(below(dev()));
        assert.equal((await drive(engine)).kind, "promoted");
        assert.deepEqual(engine.applied.map((a) => a.message.replace(/ \(npm run rollout\)$/, "")), ["step 1/2: user-service v2 at 20%", "step 2/2: user-service v2 at 50%", "promote: user-service v2 take every request first", "promote: user-service v2"]);
        assert.deepEqual(engine.applied[2].edits, [{ path: ["canaryWeight"], value: 100 }]);
        // When the removal fails, both promotion updates are taken back: two versions, the candidate at 0.
        const unpromoted = new MemoryEngine(below(dev()), "promote: user-service v2 (npm");
        assert.equal((await drive(unpromoted)).kind, "rolledBack");
        const after = settingsOf(unpromoted.config);
        assert.deepEqual([after.services[0].release, after.services[0].versions, after.canaryWeight], ["canary", ["v1", "v2"], 0]);
    });

    it("holds on missing data and rolls back at the deadline, never promoting", async () => {
        const engine = new MemoryEngine(fast(dev()));
        const clock = fakeClock();
        const outcome = await drive(engine, { evidence: { error: "Prometheus at x: fetch failed" }, clock });
        assert.equal(outcome.kind, "rolledBack");
        assert.equal(clock.sleeps, 3, "held two intervals, rolled back at the third (deadline 3s)");
        assert.equal(settingsOf(engine.config).canaryWeight, 0);
    });

    it("a refused preRollout changes nothing; a refused confirmPromotion holds until the deadline, then rolls back", async () => {
        const untouched = new MemoryEngine(fast(dev()));
        assert.equal((await drive(untouched, { webhook: (kind) => kind !== "preRollout" })).kind, "rolledBack");
        assert.deepEqual(untouched.applied, []);
        const engine = new MemoryEngine(fast(dev()));
        const outcome = await drive(engine, { webhook: (kind) => kind !== "confirmPromotion" });
        assert.equal(outcome.kind, "rolledBack");
        assert.match(outcome.reason, /promotion not confirmed within the progress deadline/);
        assert.equal(engine.applied[engine.applied.length - 1].message.replace(/ \(npm run rollout\)$/, ""), "rollback");
    });

    it("rolls back on Ctrl-C, and when an update fails", async () => {
        const controller = new AbortController();
        const engine = new MemoryEngine(fast(dev()));
        const outcome = await drive(engine, { clock: fakeClock({ count: 1, controller }), signal: controller.signal });
        assert.deepEqual([outcome.kind, outcome.reason], ["rolledBack", "interrupted (Ctrl-C)"]);
        const failing = new MemoryEngine(fast(dev()), "step 2/2");
        const failed = await drive(failing);
        assert.equal(failed.kind, "rolledBack");
        assert.match(failed.reason, /an update failed: the cluster said no/);
        assert.equal(settingsOf(failing.config).canaryWeight, 0);
        // A promotion whose update fails: back to two versions, the candidate at 0.
        const unpromoted = new MemoryEngine(fast(dev()), "promote");
        assert.equal((await drive(unpromoted)).kind, "rolledBack");
        const after = settingsOf(unpromoted.config);
        assert.deepEqual([after.services[0].release, after.services[0].versions, after.canaryWeight], ["canary", ["v1", "v2"], 0]);
    });
});

describe("rollout: operators' requests", () => {
    const request = (action: OperatorRequest["action"], full = false): OperatorRequest => ({ id: `${action}${full ? "-full" : ""}`, rollout: TEST_ROLLOUT_ID, action, ...(full && { full }), actor: "ops", reason: `${action} by the test`, at: "2026-12-02T10:00:00Z" });
    /** A fake clock that, as the driver's sleep numbered `at` begins, calls `watch`, then puts the request due on the stack's tags. */
    const operated = (stack: TestChannel, script: readonly { at: number; request: OperatorRequest }[], watch?: () => Promise<void>) => operatedClock(stack, script, watch === undefined ? {} : { watch });
    const messages = (engine: MemoryEngine) => engine.applied.map((a) => a.message.replace(/ \(npm run rollout\)$/, ""));
    /** Three steps, baked in two intervals: the stack's record is written every interval, so the runs stay short. */
    const steps3 = (config: StackConfig, analysis: Record<string, ConfigValue> = {}): StackConfig => fast(config, [20, 50, 100], { bakeTime: "2s", ...analysis });

    it("pause holds a passing step (and keeps the progress deadline off) until resume; the record says paused, then who resumed", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const phases: string[] = [];
        const clock = operated(stack, [{ at: 1, request: request("pause") }, { at: 6, request: request("resume") }], async () => {
            phases.push(`${(await stack.record())?.phase ?? "none"}@${messages(engine).length}`);
        });
        const outcome = await drive(engine, { stack, clock });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        // Five intervals at step 1 while paused (the tests passed each; the 3s deadline never fired), then on.
        assert.deepEqual(phases.slice(0, 7), ["running@1", "paused@1", "paused@1", "paused@1", "paused@1", "paused@1", "running@2"]);
        const record = await stack.record();
        assert.deepEqual(record?.actions.map((a) => [a.action, a.actor, a.result?.split(":")[0]]), [["pause", "ops", "paused"], ["resume", "ops", "resumed"]]);
        assert.equal(record?.phase, "promoted");
    });

    it("promote skips the remaining steps once the candidate is shown no worse and baked, moving every request to it before removing the old version", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const outcome = await drive(engine, { stack, clock: operated(stack, [{ at: 1, request: request("promote") }]) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        assert.match(outcome.reason, /promoted after step 1 of 3 on ops's promote \(promote by the test\)/);
        assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%", "promote: user-service v2 take every request first", "promote: user-service v2"]);
        assert.deepEqual(engine.applied[1].edits, [{ path: ["canaryWeight"], value: 100 }]);
        // Not before the proof: the candidate was judged at 20 % until both tests showed it no worse, and baked.
        const record = await stack.record();
        const evidence = record?.evidence.find((e) => e.service === "user-service");
        assert.deepEqual([evidence?.errors.outcome, evidence?.latency.outcome], ["notWorse", "notWorse"]);
        assert.ok((evidence?.watched.intervals ?? 0) >= (evidence?.watched.bake ?? Infinity), JSON.stringify(evidence?.watched));
    });

    it("promote without --full waits at its step until a healthy candidate is baked; one never shown no worse is not promoted", async () => {
        // Healthy from the first interval, but baked only after ten: the promotion waits for the tenth.
        const engine = new MemoryEngine(steps3(dev(), { bakeTime: "10s" }));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const updatesAtSleep: number[] = [];
        const outcome = await drive(engine, { stack, clock: operated(stack, [{ at: 1, request: request("promote") }], () => Promise.resolve(void updatesAtSleep.push(messages(engine).length))) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%", "promote: user-service v2 take every request first", "promote: user-service v2"]);
        assert.ok(updatesAtSleep.length >= 10 && updatesAtSleep.every((n) => n === 1), `judged ${updatesAtSleep.length} intervals at step 1 before the promotion`);
        // No data at all: never shown no worse, so never promoted; the deadline rolls it back.
        const blind = new MemoryEngine(steps3(dev()));
        const unseen = testChannel("memory", ["user-service"], [20, 50, 100]);
        const rolledBack = await drive(blind, { stack: unseen, clock: operated(unseen, [{ at: 1, request: request("promote") }]), evidence: { error: "Prometheus at x: fetch failed" } });
        assert.equal(rolledBack.kind, "rolledBack");
        assert.ok(!messages(blind).some((m) => m.startsWith("promote")), messages(blind).join("; "));
        assert.equal((await unseen.record())?.promote, undefined, "the finished record asks for nothing");
    });

    it("ignores, and removes, a request sent to another rollout or not written by this program", async () => {
        for (const stale of [requestTagValue({ ...request("promote", true), rollout: "20261201T090000Z-deadbeef" }), "null", JSON.stringify({ action: "abort" })]) {
            const engine = new MemoryEngine(steps3(dev()));
            const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
            await stack.tags.set(REQUEST_TAG, stale);
            const outcome = await drive(engine, { stack, clock: operated(stack, []) });
            assert.equal(outcome.kind, "promoted", `${stale}: ${outcome.reason}`);
            assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%", "step 2/3: user-service v2 at 50%", "step 3/3: user-service v2 at 100%", "promote: user-service v2"], stale);
            assert.ok(!Object.hasOwn(await stack.tags.list(), REQUEST_TAG), `${stale} removed`);
            assert.deepEqual((await stack.record())?.actions, []);
        }
    });

    it("a pause holds the promotion at the confirmPromotion gate too, even once the gate says yes", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        let asked = 0;
        let paused = 0;
        const clock = operated(stack, [], async () => {
            // The gate asked once (and said not yet): pause, and resume four intervals later.
            if (asked >= 1 && paused === 0) {
                paused = 1;
                await stack.tags.set(REQUEST_TAG, requestTagValue(request("pause")));
            } else if (paused > 0 && ++paused === 6) await stack.tags.set(REQUEST_TAG, requestTagValue(request("resume")));
        });
        const outcome = await runRollout({
            prepared: await prepareRollout(engine, "memory", ["user-service"]),
            engine,
            channel: stack.channel,
            signal: new AbortController().signal,
            onInterrupt: "rollback",
            log: () => undefined,
            clock,
            evidence: () => Promise.resolve(healthy),
            webhook: (kind) => {
                if (kind !== "confirmPromotion") return Promise.resolve(undefined);
                asked++;
                return Promise.resolve({ ok: asked > 1, detail: asked > 1 ? "yes" : "not yet" });
            },
        });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        // Asked at every interval of the pause, saying yes from the second; promoted only after the resume.
        assert.ok(asked >= 5, `asked ${asked} times`);
        const actions = (await stack.record())?.actions.map((a) => a.action);
        assert.deepEqual(actions, ["pause", "resume"]);
    });

    it("keeps an operator's promote --full across a hold: resumed, it promotes, as asked", async () => {
        const engine = new MemoryEngine(steps3(dev(), { bakeTime: "24h" }));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const controller = new AbortController();
        let gate = 0;
        // Asked for at step 1; the confirmPromotion gate refuses (a change freeze), and Ctrl-C holds the rollout there.
        const clock = operated(stack, [{ at: 1, request: request("promote", true) }], () => {
            if (gate >= 2) controller.abort();
            return Promise.resolve();
        });
        const frozen = (kind: string) => {
            if (kind === "confirmPromotion") gate++;
            return Promise.resolve(kind === "confirmPromotion" ? { ok: false, detail: "change freeze" } : undefined);
        };
        const prepared = await prepareRollout(engine, "memory", ["user-service"]);
        const held = await runRollout({ prepared, engine, channel: stack.channel, signal: controller.signal, onInterrupt: "hold", log: () => undefined, clock: { ...clock, sleep: (ms, signal) => (signal.aborted ? Promise.resolve(false) : clock.sleep(ms, signal)) }, evidence: () => Promise.resolve(healthy), webhook: frozen });
        assert.equal(held.kind, "held", held.reason);
        const resume = await stack.held();
        assert.equal(resume?.promote, "full");
        const resumed = testChannel("memory", ["user-service"], [20, 50, 100]);
        const outcome = await runRollout({ prepared: await prepareRollout(engine, "memory", ["user-service"], resume), engine, resume, channel: resumed.channel, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(healthy), webhook: () => Promise.resolve(undefined) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        assert.match(outcome.reason, /promoted after step 1 of 3/);
    });

    it("keeps only a digest of a secret key's value in the record on the stack, and resumes from it", async () => {
        const engine = new MemoryEngine({ ...steps3(dev()), canaryWeight: "0" }, undefined, ["canaryWeight"]);
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const controller = new AbortController();
        const clock = operated(stack, [], () => {
            if (messages(engine).length === 2) controller.abort();
            return Promise.resolve();
        });
        const prepared = await prepareRollout(engine, "memory", ["user-service"]);
        const held = await runRollout({ prepared, engine, channel: stack.channel, signal: controller.signal, onInterrupt: "hold", log: () => undefined, clock: { ...clock, sleep: (ms, signal) => (signal.aborted ? Promise.resolve(false) : clock.sleep(ms, signal)) }, evidence: () => Promise.resolve(healthy), webhook: () => Promise.resolve(undefined) });
        assert.equal(held.kind, "held", held.reason);
        const heldConfig = engine.config;
        const resume = await stack.held();
        const weight = resume?.written?.find((w) => w.path[0] === "canaryWeight");
        assert.ok(weight !== undefined && "digest" in weight && !("value" in weight), JSON.stringify(weight));
        assert.doesNotMatch(JSON.stringify(await stack.record()), /"value":"?50/);
        // Resumed from the digest: the key still holds what the rollout wrote, so it goes on.
        const outcome = await runRollout({ prepared: await prepareRollout(engine, "memory", ["user-service"], resume), engine, resume, channel: testChannel("memory", ["user-service"], [20, 50, 100]).channel, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(healthy), webhook: () => Promise.resolve(undefined) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        // Changed while held: the digest tells, and the rollout stops rather than overwrite it.
        const changed = new MemoryEngine({ ...heldConfig, canaryWeight: "0" }, undefined, ["canaryWeight"]);
        const stopped = await runRollout({ prepared: await prepareRollout(changed, "memory", ["user-service"], resume), engine: changed, resume, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(healthy), webhook: () => Promise.resolve(undefined) });
        assert.equal(stopped.kind, "stopped", stopped.reason);
    });

    it("promote --full promotes now, without the analysis or the bake, and says whose call it was", async () => {
        const engine = new MemoryEngine(steps3(dev(), { bakeTime: "24h" }));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const outcome = await drive(engine, { stack, clock: operated(stack, [{ at: 1, request: request("promote", true) }]) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        assert.match(outcome.reason, /on ops's promote --full \(promote by the test\)/);
        assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%", "promote: user-service v2 take every request first", "promote: user-service v2"]);
        assert.deepEqual((await stack.record())?.actions.map((a) => [a.action, a.full, a.result]), [["promote", true, "promoting now, without the remaining steps, the analysis or the bake"]]);
    });

    it("abort rolls back at once, naming who and why; a held rollout continued to abort moves nothing but back", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const outcome = await drive(engine, { stack, clock: operated(stack, [{ at: 1, request: request("abort") }]) });
        assert.deepEqual([outcome.kind, outcome.reason], ["rolledBack", "at step 1 (20%): aborted by ops: abort by the test"]);
        assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%", "rollback"]);
        assert.equal(settingsOf(engine.config).canaryWeight, 0);
        assert.equal((await stack.record())?.phase, "rolledBack");
        // Held at step 2 (the weight at 50 %), then continued by abort: the rollback is the only update.
        const held = new MemoryEngine({ ...steps3(dev()), canaryWeight: 50 });
        const prepared = await prepareRollout(held, "memory", ["user-service"]);
        const resume = { stack: "memory", services: ["user-service"], targets: prepared.targets, stepIndex: 1, analysis: {}, heldAt: "2026-12-02T10:00:00Z", written: [{ path: ["canaryWeight"] as ConfigPath, value: 50 }] };
        const again = testChannel("memory", ["user-service"], [20, 50, 100]);
        const aborted = await runRollout({ prepared, engine: held, resume, request: request("abort"), channel: again.channel, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(healthy), webhook: () => Promise.resolve(undefined) });
        assert.deepEqual([aborted.kind, aborted.reason], ["rolledBack", "aborted by ops: abort by the test"]);
        assert.deepEqual(messages(held), ["rollback"]);
        assert.equal(settingsOf(held.config).canaryWeight, 0);
    });

    it("logs a line per update, decision, action and the outcome, each as the schema says; a decision holds each version's counts and each test against its bounds", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        await stack.channel.publish({ actions: [{ id: "started", action: "start", actor: "release-bot", reason: "weekly release", at: "2026-12-02T10:00:00Z" }] });
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "decision-log-")), "memory", "20261202T100000Z-00000000.jsonl");
        const decisions = new DecisionLog(file, "20261202T100000Z-00000000", "memory", () => undefined);
        const outcome = await drive(engine, { stack, decisions, clock: operated(stack, [{ at: 1, request: request("pause") }, { at: 2, request: request("promote") }]) });
        assert.equal(outcome.kind, "promoted", outcome.reason);
        assert.deepEqual(decisionLogProblems(file), []);
        // The schema is not a formality: a decision without its errors test, or a weight over 100, is named.
        const broken = `${file}.broken`;
        const decision = fs.readFileSync(file, "utf8").split("\n").find((l) => l.includes('"event":"decision"')) ?? "";
        fs.writeFileSync(broken, `${decision.replace('"errors":{', '"errorz":{')}\n${decision.replace('"candidate":20', '"candidate":120')}\n`);
        assert.deepEqual(decisionLogProblems(broken).map((p) => p.split(":")[0]), ["line 1", "line 2"]);
        const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as LogEntry);
        assert.deepEqual(lines.map((l) => l.event).filter((e, i, all) => e !== all[i - 1]), ["start", "update", "action", "decision", "action", "decision", "update", "outcome"]);
        const start = lines[0];
        assert.ok(start.event === "start" && start.actor === "release-bot" && start.targets[0].candidate === "v2" && start.analysis.failedChecks === 2);
        const paused = lines.find((l) => l.event === "decision" && l.reason.startsWith("paused by ops"));
        assert.ok(paused?.event === "decision" && paused.decision === "hold" && paused.phase === "step 1/3 (20%)");
        assert.deepEqual(paused.weights, { "user-service": { stable: 80, candidate: 20 } });
        const [judged] = paused.services;
        assert.deepEqual([judged.candidate.requests, judged.stable.errors, judged.limits, judged.errors.rollbackAt > 0, judged.queries], [500, 5, "pass", true, []]);
        const last = lines.at(-1);
        assert.ok(last?.event === "outcome" && last.outcome === "promoted");
        assert.deepEqual(last.weights, { "user-service": { stable: 0, candidate: 100 } });
    });

    it("logs the promotion gate's waits and its rollback, and a custom metric's infinite value, as the schema says", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        await stack.channel.publish({ actions: [{ id: "started", action: "start", actor: "release-bot", reason: "weekly release", at: "2026-12-02T10:00:00Z" }] });
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "decision-log-")), "memory", `${TEST_ROLLOUT_ID}.jsonl`);
        const decisions = new DecisionLog(file, TEST_ROLLOUT_ID, "memory", () => undefined);
        // A ratio over nothing: +Inf, a value all the same.
        const infinite: ServiceEvidence = { ...healthy, metrics: [{ name: "ratio", candidate: Infinity, stable: -Infinity }] };
        const outcome = await drive(engine, { stack, decisions, clock: operated(stack, []), evidence: infinite, webhook: (kind) => kind !== "confirmPromotion" });
        assert.equal(outcome.kind, "rolledBack");
        assert.deepEqual(decisionLogProblems(file), []);
        const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as LogEntry);
        const gate = lines.filter((l): l is Extract<LogEntry, { event: "decision" }> => l.event === "decision" && /promotion/.test(l.reason));
        assert.ok(gate.length >= 2 && gate.slice(0, -1).every((l) => l.decision === "hold") && gate.at(-1)?.decision === "rollback", gate.map((l) => `${l.decision}: ${l.reason}`).join("\n"));
        assert.match(fs.readFileSync(file, "utf8"), /"candidate":"\+Inf","stable":"-Inf"/);
    });

    it("a rollout taken over by another runner (--take-over) changes nothing more: no step, no rollback", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const clock = operated(stack, [], async () => {
            const r = await stack.record();
            // As step 1's interval ends, another process takes the rollout over and writes the record as its own.
            if (r !== undefined && r.runner?.pid === process.pid) await writeRecord(stack.tags, STATE_TAG, { ...r, runner: { host: "another-runner", pid: 1 } });
        });
        const told: string[] = [];
        const outcome = await drive(engine, { stack, clock, notify: (event) => told.push(event) });
        assert.deepEqual([outcome.kind, outcome.reason], ["stopped", "stopped: the rollout was taken over by pid 1 on another-runner (--take-over); this process changes nothing more"]);
        // Its outcome is the new runner's to tell: no rollback is announced that did not happen.
        assert.deepEqual(told, ["step"]);
        assert.deepEqual(messages(engine), ["step 1/3: user-service v2 at 20%"]);
        assert.equal((await stack.record())?.runner?.host, "another-runner", "the record is the new runner's");
    });

    it("publishes where it stands each interval: step, next decision, each version's counts and each test's evidence against its bounds", async () => {
        const engine = new MemoryEngine(steps3(dev()));
        const stack = testChannel("memory", ["user-service"], [20, 50, 100]);
        const seen: RolloutRecord[] = [];
        await drive(engine, {
            stack,
            clock: operated(stack, [], async () => {
                const r = await stack.record();
                if (r !== undefined) seen.push(r);
            }),
        });
        // As step 2's first interval begins: step 1's last interval judged.
        const second = seen[1];
        assert.deepEqual([second.phase, second.step, second.steps], ["running", 2, [20, 50, 100]]);
        assert.ok(second.nextDecisionAt !== undefined && second.resume?.stepIndex === 1);
        const [judged] = second.evidence;
        assert.deepEqual([judged.candidate, judged.stable.requests, judged.stable.errors], [{ version: "v2", requests: 500, errors: 0, p95Ms: judged.candidate.p95Ms }, 4500, 5]);
        assert.equal(judged.limits, "pass");
        assert.ok(judged.errors.rollbackAt > 0 && judged.errors.promotionAt < 0 && judged.latency.promotionAt < 0);
        assert.deepEqual(judged.failedChecks, { count: 0, max: 2 });
        assert.deepEqual(judged.watched, { intervals: 1, bake: 2 });
    });
});

describe("rollout: the command", () => {
    let dir: string;
    const file = () => path.join(dir, "Pulumi.dev.yaml");
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-cli-"));
        fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), stringify({ config: { [`${PROJECT}:canaryWeight`]: 0 } }));
    });
    const run = async (...argv: string[]) => {
        const lines: string[] = [];
        const code = await main(["--cwd", dir, ...argv], (l) => lines.push(l), (l) => lines.push(l), new AbortController().signal);
        return { code, text: lines.join("\n") };
    };

    for (const [what, argv, message] of [
        ["no --stack", ["--service", "user-service"], /--stack is required/],
        ["an unknown stack", ["--stack", "qa", "--service", "user-service"], /--stack "qa": there is no Pulumi.qa.yaml .*stacks: dev/],
        ["no --service", ["--stack", "dev", "--engine", "render"], /--service is required/],
        ["an unknown engine", ["--stack", "dev", "--service", "user-service", "--engine", "kubectl"], /--engine "kubectl": must be automation .* or render/],
        ["an unknown interrupt action", ["--stack", "dev", "--service", "user-service", "--on-interrupt", "panic"], /--on-interrupt "panic": must be rollback or hold/],
        ["a request rate in words", ["--stack", "dev", "--service", "user-service", "--dry-run", "--request-rate", "lots"], /--request-rate "lots": must be a positive number/],
        ["a request rate without --dry-run", ["--stack", "dev", "--service", "user-service", "--request-rate", "5"], /--request-rate applies to --dry-run only/],
        ["--dry-run with --commit", ["--stack", "dev", "--service", "user-service", "--dry-run", "--commit"], /--dry-run changes nothing, so it takes no --commit/],
        ["an unknown service", ["--stack", "dev", "--engine", "render", "--service", "cart-service"], /--service = "cart-service": is not a service of this stack \(services: user-service, product-service, order-service\)/],
        // The dry run needs no Pulumi CLI whatever the engine: a mistyped service is named as such, not as a missing CLI.
        ["a mistyped service in a dry run", ["--stack", "dev", "--service", "users-service", "--dry-run"], /--service = "users-service": is not a service of this stack \(services: user-service, product-service, order-service\)/],
        ["resume with nothing held", ["resume", "--stack", "dev", "--engine", "render", "--reason", "go on"], /resume: no rollout of stack dev is running or held \(none is recorded\)/],
        ["the --resume flag, now a command", ["--stack", "dev", "--engine", "render", "--resume"], /--resume is now a command: .*Fix: npm run rollout -- resume --stack dev --reason/],
        ["an unknown command", ["--stack", "dev", "rollback"], /"rollback" is not a command: the commands are status, pause, resume, promote, abort, retry/],
        ["an operator command without a reason", ["abort", "--stack", "dev", "--engine", "render"], /--reason is required by abort: it is recorded, with who asked/],
        ["a reason too long for a stack tag", ["pause", "--stack", "dev", "--reason", "x".repeat(121)], /--reason "x{121}": must be 1 to 120 characters/],
        ["--full without promote", ["abort", "--stack", "dev", "--full", "--reason", "now"], /--full does not apply to abort \(it goes with promote\)/],
        ["--json without status", ["--stack", "dev", "--service", "user-service", "--json"], /--json does not apply to starting a rollout \(it goes with status\)/],
        ["--service with an operator command", ["promote", "--stack", "dev", "--service", "user-service", "--reason", "now"], /--service does not apply to promote/],
        ["a reason that would not fit a stack tag beside the longest actor", ["promote", "--stack", "dev", "--full", "--reason", "é".repeat(100)], /--reason "é{100}": 200 bytes as the request's JSON holds it, and a request is one stack tag of 256 bytes, which leaves \d+ for the reason \(with an actor of up to 40 characters\)\. Fix: --reason "é+"/],
        ["a wait that is no duration", ["abort", "--stack", "dev", "--reason", "now", "--wait", "forever"], /--wait "forever": must be a duration from 1s to 1h/],
        ["retry with nothing rolled back", ["retry", "--stack", "dev", "--engine", "render", "--reason", "again", "--actor", "ops"], /retry starts the last rolled-back rollout again, and stack dev's last rollout is not recorded/],
        ["--commit outside a repository", ["--stack", "dev", "--engine", "render", "--service", "user-service", "--commit"], /--commit needs a Git repository/],
        ["bad stack config", ["--stack", "dev", "--engine", "render", "--service", "user-service"], /rollout.interval = "soon"/],
        ["a read-only stack file", ["--stack", "dev", "--engine", "render", "--service", "user-service"], /Pulumi\.dev\.yaml could not be written \(it is read-only \(mode 444\).*chmod u\+w/],
        ["an alias in the stack file", ["--stack", "dev", "--engine", "render", "--service", "user-service"], /Pulumi\.dev\.yaml line 4, column 42: the file holds an alias/],
        ["a key of another project", ["--stack", "dev", "--engine", "render", "--service", "user-service"], /Pulumi\.dev\.yaml line 3, column 3: config key "istio-progresive-delivery:canaryWeight" belongs to "istio-progresive-delivery" \(did you mean istio-progressive-delivery\?\)/],
    ] as const) {
        it(`exits 2 and changes nothing on ${what}`, async () => {
            if (what === "bad stack config") fs.writeFileSync(file(), stringify({ config: { [`${PROJECT}:rollout`]: { interval: "soon" } } }));
            if (what === "a read-only stack file") fs.chmodSync(file(), 0o444);
            if (what === "an alias in the stack file") fs.appendFileSync(file(), `  ${PROJECT}:faults: &none {}\n  ${PROJECT}:rateLimits: *none\n`);
            if (what === "a key of another project") fs.appendFileSync(file(), `  istio-progresive-delivery:canaryWeight: 50\n`);
            const before = fs.readFileSync(file(), "utf8");
            const { code, text } = await run(...argv);
            assert.equal(code, 2, text);
            assert.match(text, message);
            assert.equal(fs.readFileSync(file(), "utf8"), before);
            assert.ok(!fs.existsSync(path.join(dir, "rendered")), "nothing rendered");
        });
    }

    it("exits 2 while another rollout holds the stack's lock, naming it", async () => {
        const lock = RolloutLock.acquire(dir, "dev", ["product-service"]);
        try {
            const { code, text } = await run("--stack", "dev", "--engine", "render", "--service", "user-service");
            assert.equal(code, 2);
            assert.match(text, /Stack dev is locked by another rollout \(product-service; pid \d+/);
        } finally {
            lock.release();
        }
    });

    it("--dry-run prints each step's split, changes, queries and worst case, and touches nothing", async () => {
        const before = fs.readFileSync(file(), "utf8");
        // The default (automation) engine: a dry run reads the stack file and runs the program under the mocks, no Pulumi CLI.
        const { code, text } = await run("--stack", "dev", "--service", "user-service", "--dry-run", "--request-rate", "10");
        assert.equal(code, 0, text);
        assert.match(text, /step 1\/4 \(5%\):\n {2}pulumi config set 'canaryWeight' 5\n {2}user-service: v1=95% {2}v2=5%\n {2}changes: ~ VirtualService backend\/user-service, ~ VirtualService backend\/user-service-ingress\n/);
        // Promotion moves every request to the candidate first, then removes the old version no route names any more.
        assert.match(text, /promote, every request to the candidates first:\n {2}pulumi config set 'canaryWeight' 100\n {2}user-service: v1=0% {2}v2=100%\n {2}changes: ~ VirtualService backend\/user-service, ~ VirtualService backend\/user-service-ingress\n/);
        assert.match(text, /promote:\n.*\n.*\n.*\n {2}changes: ~ DestinationRule backend\/user-service, - Deployment backend\/user-service-v1\n/);
        assert.match(text, /successRate: \(sum by \(destination_version\)/);
        // 10 requests/s: 30 and 60 candidate requests an interval at 5 and 10 %, where the hard limits (minRequests 100) cannot fire.
        assert.match(text, /user-service \(10.0 requests\/s\): at 5% the hard limits cannot fire \(30 candidate requests an interval, fewer than minRequests 100\): the step advances after one interval, 30; at 10% .*: the step advances after one interval, 60; 750 at 25%; 1500 at 50%; at most 1500/);
        assert.equal(fs.readFileSync(file(), "utf8"), before);
        assert.deepEqual(fs.readdirSync(dir), ["Pulumi.dev.yaml"]);
    });

    it("names the held rollout when one is started over it, and refuses to pause it", async () => {
        const held: RolloutRecord = { v: 1, id: "20261122T100000Z-held", stack: "dev", services: ["user-service"], phase: "held", step: 2, steps: [5, 10, 25, 50], updatedAt: "2026-11-22T10:00:00Z", actions: [], evidence: [] };
        await writeRecord(new FileStackTags(path.join(dir, ".rollout", "dev.tags.json")), STATE_TAG, held);
        const started = await run("--stack", "dev", "--engine", "render", "--service", "user-service");
        assert.equal(started.code, 2);
        assert.match(started.text, /A rollout of user-service on stack dev is held at step 2 .*Fix: resume it \(npm run rollout -- resume --stack dev --reason .*\) or roll it back \(npm run rollout -- abort --stack dev/);
        const paused = await run("pause", "--stack", "dev", "--engine", "render", "--reason", "hold on", "--actor", "ops");
        assert.equal(paused.code, 2);
        assert.match(paused.text, /pause: the rollout of user-service on stack dev is held: nothing moves until it is resumed/);
        const status = await run("status", "--stack", "dev", "--engine", "render", "--json");
        assert.equal(status.code, 0);
        assert.deepEqual(JSON.parse(status.text), held);
    });

    it("asks a running rollout and waits for its answer; unanswered, exits 3 leaving the request, which blocks others until stale", async () => {
        const tags = new FileStackTags(path.join(dir, ".rollout", "dev.tags.json"));
        const running: RolloutRecord = { v: 1, id: "20261122T100000Z-aaaaaaaa", stack: "dev", services: ["user-service"], phase: "running", step: 1, steps: [5, 10, 25, 50], updatedAt: new Date().toISOString(), runner: { host: "ci-runner-7", pid: 4242 }, actions: [], evidence: [] };
        await writeRecord(tags, STATE_TAG, running);
        const first = await run("pause", "--stack", "dev", "--engine", "render", "--reason", "look at the dashboards", "--actor", "alice", "--wait", "1s");
        assert.equal(first.code, 3, first.text);
        assert.match(first.text, /Not answered within 1s: the request stays on the stack.*pid 4242 on ci-runner-7.*If that runner is gone, carry the rollout out here: npm run rollout -- abort --stack dev --reason 'look at the dashboards' --take-over/);
        const left = JSON.parse((await tags.list())[REQUEST_TAG]) as OperatorRequest;
        assert.deepEqual([left.action, left.actor, left.rollout], ["pause", "alice", running.id]);
        const second = await run("abort", "--stack", "dev", "--engine", "render", "--reason", "bad build", "--actor", "bob", "--wait", "1s");
        assert.equal(second.code, 2);
        assert.match(second.text, /alice's pause \(.*"look at the dashboards"\) is waiting for the rollout's answer; one request at a time\. Fix: wait \d+s for it/);
        // Its runner on this host, alive: never taken over.
        await writeRecord(tags, STATE_TAG, { ...running, runner: { host: os.hostname(), pid: process.pid } });
        const takeOver = await run("abort", "--stack", "dev", "--engine", "render", "--reason", "bad build", "--actor", "bob", "--take-over");
        assert.equal(takeOver.code, 2);
        assert.match(takeOver.text, /--take-over: the rollout's runner, pid \d+ on this host, is still running/);
    });

    it("plan: the dry run of rolling out a candidate the change adds or moves since a Git revision, as a PR comment; nothing otherwise", async () => {
        const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "ignore" });
        const catalogue = (user: string) => `config:\n  ${PROJECT}:services:\n    user-service: ${user}\n    order-service: { path: /orders, release: single, versions: [v1] }\n`;
        fs.writeFileSync(file(), catalogue("{ path: /users, release: single, versions: [v1] }"));
        git("init", "--quiet");
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "--allow-empty", "-m", "empty");
        git("add", "Pulumi.dev.yaml");
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "single");
        const unchanged = await run("plan", "--stack", "dev", "--base", "HEAD", "--markdown");
        assert.deepEqual([unchanged.code, unchanged.text], [0, ""]);
        // The pull request deploys v2 as a canary at 0: the plan is the rollout's dry run from there.
        fs.writeFileSync(file(), catalogue("{ path: /users, release: canary, versions: [v1, v2], canaryWeight: 0 }"));
        const added = await run("plan", "--stack", "dev", "--base", "HEAD", "--markdown", "--request-rate", "10");
        assert.equal(added.code, 0, added.text);
        assert.match(added.text, /^<!-- rollout-plan:dev -->\n### Rollout plan: stack dev\n\nThis change adds candidate v2 \(canary\) on user-service\. What `npm run rollout -- --stack dev --service user-service` would do from here:\n\n```text\n/);
        assert.match(added.text, /step 1\/4 \(5%\):\n {2}pulumi config set --path 'services\.user-service\.canaryWeight' 5\n/);
        assert.match(added.text, /\n```\n$/);
        // Moved by hand at review time: the plan says so, from the base.
        git("add", "Pulumi.dev.yaml");
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "canary");
        fs.writeFileSync(file(), catalogue("{ path: /users, release: canary, versions: [v1, v2], canaryWeight: 30 }"));
        const moved = await run("plan", "--stack", "dev", "--base", "HEAD");
        assert.match(moved.text, /^This change moves v1 100% \/ v2 0% to v1 70% \/ v2 30% by hand on user-service\./);
        // A stack the base has not got: every candidate is new. A revision git does not know: named, with a fix.
        const unknown = await run("plan", "--stack", "dev", "--base", "no-such-branch");
        assert.equal(unknown.code, 2);
        assert.match(unknown.text, /--base no-such-branch: git cannot show Pulumi\.dev\.yaml there .*Fix: fetch it first/);
        const fresh = await run("plan", "--stack", "dev", "--base", "HEAD~1");
        assert.match(fresh.text, /^This change adds candidate v2 \(canary\) on user-service\./);
        const missing = await run("plan", "--stack", "dev");
        assert.match(missing.text, /plan needs --base/);
        // A header route, or a TLS certificate the stack file holds encrypted, is no release: no plan, no failure.
        git("add", "Pulumi.dev.yaml");
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "moved");
        fs.writeFileSync(file(), `${catalogue("{ path: /users, release: canary, versions: [v1, v2], canaryWeight: 30 }")}  ${PROJECT}:routes:\n    user-service:\n      - { name: beta, headers: { x-beta: { exact: "1" } }, to: v2 }\n  ${PROJECT}:tlsCertificate:\n    secure: v1:AAAA\n`);
        const routed = await run("plan", "--stack", "dev", "--base", "HEAD", "--markdown");
        assert.deepEqual([routed.code, routed.text], [0, ""]);
        // A new build of the same version name is a new candidate; its dry run needs the secret decrypted, and says so.
        fs.writeFileSync(file(), `${catalogue("{ path: /users, release: canary, versions: [v1, { name: v2, image: ghcr.io/acme/users:2.1 }], canaryWeight: 30 }")}  ${PROJECT}:tlsCertificate:\n    secure: v1:AAAA\n`);
        const rebuilt = await run("plan", "--stack", "dev", "--base", "HEAD");
        assert.equal(rebuilt.code, 0, rebuilt.text);
        assert.match(rebuilt.text, /^This change changes candidate v2's workload \(its image, command, env or resources\) on user-service\. .*\nNo dry run: it checks the whole config, and this stack keeps tlsCertificate secret, which only the Pulumi CLI decrypts/);
        // Without git: named as such.
        const pathBefore = process.env.PATH;
        process.env.PATH = "";
        try {
            const noGit = await run("plan", "--stack", "dev", "--base", "HEAD");
            assert.match(noGit.text, /git is not installed here\. Fix: install git/);
        } finally {
            process.env.PATH = pathBefore;
        }
    });

    it("names a record it cannot read, and how to forget it, instead of failing on it", async () => {
        fs.mkdirSync(path.join(dir, ".rollout"), { recursive: true });
        fs.writeFileSync(path.join(dir, ".rollout", "dev.tags.json"), "{ not json");
        const { code, text } = await run("status", "--stack", "dev", "--engine", "render");
        assert.equal(code, 2);
        assert.match(text, /^The rollout's record on stack dev does not read: .*dev\.tags\.json is not the JSON of a stack's tags\. Fix: delete it/);
        fs.writeFileSync(path.join(dir, ".rollout", "dev.tags.json"), JSON.stringify({ "rollout.state": "v2 1 0123456789abcdef" }));
        const unknown = await run("--stack", "dev", "--engine", "render", "--service", "user-service");
        assert.equal(unknown.code, 2);
        assert.match(unknown.text, /stack tag rollout\.state holds "v2 1 0123456789abcdef", not a rollout record this program writes\. Fix: remove the rollout\.state entries from .*dev\.tags\.json, or delete the file/);
    });

    it("continues a held rollout only from a stack file that holds what it last wrote: another checkout's is refused, nothing changed", async () => {
        const prepared = await prepareRollout(new RenderEngine(dir, "dev", path.join(dir, "rendered", "dev")), "dev", ["user-service"]);
        const resume = { stack: "dev", services: ["user-service"], targets: prepared.targets, stepIndex: 1, analysis: {}, heldAt: "2026-11-22T10:00:00Z", written: [{ path: ["canaryWeight"] as ConfigPath, value: "10" }], steps: [5, 10, 25, 50], intervalMs: 60_000 };
        await writeRecord(new FileStackTags(path.join(dir, ".rollout", "dev.tags.json")), STATE_TAG, { v: 1, id: "20261122T100000Z-held", stack: "dev", services: ["user-service"], phase: "held", step: 2, steps: [5, 10, 25, 50], updatedAt: "2026-11-22T10:00:00Z", actions: [], evidence: [], resume } satisfies RolloutRecord);
        const before = fs.readFileSync(file(), "utf8");
        for (const command of ["resume", "abort", "promote"]) {
            const { code, text } = await run(command, "--stack", "dev", "--engine", "render", "--reason", "carry on", "--actor", "ops");
            assert.equal(code, 2, text);
            assert.match(text, /Pulumi\.dev\.yaml here does not hold what the rollout of user-service last wrote \(canaryWeight: "10" \(here: 0\)\): it was changed while the rollout was held, or the rollout was held in another checkout\. Nothing was changed/);
        }
        assert.equal(fs.readFileSync(file(), "utf8"), before);
        assert.ok(!fs.existsSync(path.join(dir, "rendered")), "nothing rendered");
    });
});
