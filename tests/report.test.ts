// npm run rollout:report: a decision log, written by the driver itself (a canary promoted, a blue/green service
// judged on mirrored traffic, an operator's pause), drawn as a page that Debian's headless Chromium loads from a
// file with the network shut: no console error, no request, every chart drawn, and a screenshot kept in artifacts/.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawn } from "child_process";
import CDP from "chrome-remote-interface";
import { ServiceEvidence, VersionCounts } from "../rollout/analysis";
import { DecisionLog } from "../rollout/decision-log";
import { prepareRollout, runRollout } from "../rollout/driver";
import { readDecisionLog, reportMarkdown, rolloutReport } from "../rollout/report";
import { main } from "../scripts/rollout-report";
import { main as bench } from "../scripts/bench-rollout";
import { PROJECT_ROOT } from "../lib/mock-program";
import { operatedClock, operatorRequest, TEST_ROLLOUT_ID, testChannel } from "./support/channel";
import { FileEngine, PROJECT as P } from "./support/file-engine";

const counts = (requests: number, errors: number): VersionCounts => ({ requests, errors, latency: [{ le: 50, count: requests * 0.9 }, { le: 100, count: requests }, { le: Infinity, count: requests }] });
const GOOD: ServiceEvidence = { candidate: counts(500, 0), stable: counts(4500, 5) };
const ID = TEST_ROLLOUT_ID;

/** A rollout of a canary and a blue/green service, paused then resumed by an operator, promoted: its decision log. */
async function writeLog(dir: string): Promise<string> {
    const stack = path.join(dir, "Pulumi.t.yaml");
    fs.writeFileSync(stack, `config:\n  ${P}:canaryWeight: 0\n  ${P}:activeColor: blue\n  ${P}:rollout: { steps: [20, 50], interval: 1m, analysis: { failedChecks: 2, progressDeadline: 5m, minRequests: 10, bakeTime: 3m } }\n  ${P}:services:\n    user-service: { path: /users, release: canary, versions: [v1, v2] }\n    product-service: { path: /products, release: blueGreen, versions: [v1, v2] }\n`);
    const engine = new FileEngine(stack);
    const prepared = await prepareRollout(engine, "t", ["user-service", "product-service"]);
    const channel = testChannel("t", ["user-service", "product-service"], [20, 50]);
    await channel.channel.publish({ actions: [{ id: "s", action: "start", actor: "release-bot", reason: "weekly release", at: new Date().toISOString() }] });
    const file = path.join(dir, ".rollout", "t", `${ID}.jsonl`);
    // The driver looks for requests every 5 s of its 1-minute waits: resumed after two intervals paused. The log's
    // times are the fake clock's, from 10:00.
    const clock = operatedClock(channel, [{ at: 2, request: operatorRequest("pause", "alice", "dashboards first") }, { at: 30, request: operatorRequest("resume", "alice", "looks fine") }], { startMs: Date.parse("2026-12-02T10:00:00Z") });
    const decisions = new DecisionLog(file, ID, "t", () => undefined);
    const outcome = await runRollout({ prepared, engine, channel: channel.channel, decisions, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock, evidence: () => Promise.resolve(GOOD), webhook: () => Promise.resolve(undefined) });
    assert.equal(outcome.kind, "promoted", outcome.reason);
    return file;
}

/** Loads a page in headless Chromium with the network shut; what its console said, what it asked for, and `evaluate`'s answer. */
async function inChromium(page: string, evaluate: string, screenshot: string, binary = process.env.REPORT_TEST_CHROMIUM): Promise<{ errors: string[]; requests: string[]; result: unknown }> {
    if (binary === undefined) throw new Error("The report test needs the Chromium npm test finds or installs: run it with npm test");
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "report-chromium-"));
    const browser = spawn(binary, ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${profile}`, "--window-size=1280,900", "about:blank"], { stdio: ["ignore", "ignore", "pipe"], detached: true });
    // Known from the start, so an exit before anything else is neither missed nor waited for forever.
    const exited = new Promise<void>((resolve) => browser.once("exit", () => { resolve(); }));
    let stderr = "";
    browser.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    /** `step`, or an error naming it when Chromium exits first or it takes longer than `ms`. */
    const within = <T>(step: string, ms: number, work: Promise<T>): Promise<T> =>
        Promise.race([
            work,
            exited.then(() => Promise.reject(new Error(`chromium exited (${String(browser.exitCode ?? browser.signalCode)}) before ${step}: ${stderr.slice(-500)}`))),
            new Promise<never>((_, reject) => setTimeout(() => { reject(new Error(`chromium: no ${step} within ${ms / 1000}s: ${stderr.slice(-500)}`)); }, ms).unref()),
        ]);
    try {
        const port = await within(
            "its DevTools port",
            20_000,
            new Promise<number>((resolve) => {
                const look = () => {
                    const match = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(stderr);
                    if (match !== null) resolve(Number(match[1]));
                };
                browser.stderr.on("data", look);
                look();
            }),
        );
        const client = await within("a DevTools connection", 10_000, CDP({ port }));
        try {
            const errors: string[] = [];
            const requests: string[] = [];
            client.Runtime.consoleAPICalled(({ type, args }) => {
                if (type === "error" || type === "warning") errors.push(`${type}: ${args.map((a) => String(a.value ?? a.description)).join(" ")}`);
            });
            client.Runtime.exceptionThrown(({ exceptionDetails }) => errors.push(`exception: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`));
            client.Log.entryAdded(({ entry }) => {
                if (entry.level === "error") errors.push(`log: ${entry.text}`);
            });
            client.Network.requestWillBeSent(({ request }) => {
                if (!request.url.startsWith("file:")) requests.push(request.url);
            });
            await Promise.all([client.Runtime.enable(), client.Log.enable(), client.Network.enable(), client.Page.enable()]);
            await client.Network.emulateNetworkConditions({ offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
            const loaded = client.Page.loadEventFired();
            await client.Page.navigate({ url: `file://${page}` });
            await within("the page's load", 20_000, loaded);
            const { result } = await client.Runtime.evaluate({ expression: evaluate, returnByValue: true });
            // The whole page, and its top (the summary and the first charts: docs/watching.md's picture).
            const { data } = await client.Page.captureScreenshot({ format: "png", captureBeyondViewport: true });
            const top = await client.Page.captureScreenshot({ format: "png", clip: { x: 0, y: 0, width: 1280, height: 1500, scale: 1 }, captureBeyondViewport: true });
            fs.mkdirSync(path.dirname(screenshot), { recursive: true });
            fs.writeFileSync(screenshot, Buffer.from(data, "base64"));
            fs.writeFileSync(screenshot.replace(/\.png$/, "-top.png"), Buffer.from(top.data, "base64"));
            return { errors, requests, result: result.value };
        } finally {
            await client.close();
        }
    } finally {
        // Chromium's own processes (renderer, crash handler) too: the whole group, before its profile is removed.
        if (browser.exitCode === null && browser.signalCode === null && browser.pid !== undefined) process.kill(-browser.pid, "SIGKILL");
        await exited;
        fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
}

/** In the page: each chart's title, how many of its canvas pixels are painted, and how many points it has to draw. */
const CHARTS = `[document.body.dataset.charts, [...document.querySelectorAll(".chart")].map((c) => {
    const canvas = c.querySelector("canvas");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return [c.querySelector("h3").textContent, painted, Number(c.dataset.points)];
}), document.querySelectorAll("#summary tr").length, document.querySelectorAll("#decisions tr").length]`;

describe("npm run rollout:report", function () {
    this.timeout(60_000);
    let dir: string;
    let log: string;
    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-report-"));
        log = await writeLog(dir);
    });

    it("draws what the log says: weights by step, rates, 5xx and p95 against the hard limits, each test against its bounds, the decisions", () => {
        const report = rolloutReport(readDecisionLog(log));
        const weights = report.charts.find((c) => c.id === "user-service-weights");
        // 20 and 50 at the steps (the start's 0 % shares step 1's instant), all of it at the promotion, which ends the chart.
        assert.deepEqual([...new Set(weights?.series[0].values)], [20, 50, 100]);
        assert.equal(weights?.series[0].values.at(-1), 100);
        assert.equal(new Set(weights?.x).size, weights?.x.length, "one point per instant");
        const mirrored = report.charts.find((c) => c.id === "product-service-weights")?.series.find((s) => s.label.startsWith("mirrored"));
        // The blue/green candidate is mirrored 20 % then 50 % of live requests, then takes them all at the switch.
        assert.deepEqual([...new Set(mirrored?.values)], [20, 50, 0]);
        const rate = report.charts.find((c) => c.id === "user-service-requests");
        assert.deepEqual(rate?.series.map((s) => s.values[0]), [500 / 60, 4500 / 60].map((v) => Math.round(v * 1000) / 1000));
        const errors = report.charts.find((c) => c.id === "user-service-5xx");
        // The limit as applied: the stable's success rate (99.889 %) less the 1-point margin, below minSuccessRate's 99 %.
        assert.deepEqual([errors?.series[1].values[0], errors?.series[2].values[0]], [0.111, 1.111]);
        const own = report.charts.find((c) => c.id === "user-service-errors-test")?.series[2];
        assert.ok(own !== undefined && own.label.startsWith("its own rate") && own.values.every((v) => v !== null), "the test's own evidence is drawn");
        const test = report.charts.find((c) => c.id === "user-service-errors-test");
        assert.ok(test !== undefined && test.limits[0].value > 0 && test.limits[1].value < 0, JSON.stringify(test?.limits));
        assert.ok(report.markers.some((m) => m.kind === "action" && m.label === "alice: pause (dashboards first)"));
        assert.ok(report.decisions.some((d) => d.reason === "paused by alice (dashboards first)"));
        const markdown = reportMarkdown(report, "report.html");
        assert.match(markdown, /\| Outcome \| promoted: user-service v2, product-service v2 promoted after 2 steps \|/);
        assert.match(markdown, /The charts: report\.html/);
    });

    it("writes one self-contained page that Chromium draws with no error and no request, and a screenshot", async () => {
        const page = path.join(dir, "report.html");
        const lines: string[] = [];
        assert.equal(main([log, "--out", page, "--markdown"], (l) => lines.push(l), (l) => lines.push(l)), 0, lines.join("\n"));
        assert.match(lines.join("\n"), /^### Rollout 20261202T100000Z-00000000: user-service v2, product-service v2 on t/);
        const html = fs.readFileSync(page, "utf8");
        assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/, "nothing loaded from elsewhere");
        const shot = path.join(PROJECT_ROOT, "artifacts", "rollout-report.png");
        const { errors, requests, result } = await inChromium(page, CHARTS, shot);
        assert.deepEqual(errors, []);
        assert.deepEqual(requests, []);
        const [count, charts, summaryRows, decisionRows] = result as [string, [string, number, number][], number, number];
        // Per service: weights, requests, 5xx, p95, and the two tests; each with points to draw, and drawn.
        assert.equal(count, "12");
        assert.equal(charts.length, 12);
        for (const [title, painted, points] of charts) assert.ok(painted > 1000 && points > 2, `${title}: ${painted} pixels painted, ${points} points`);
        assert.ok(summaryRows >= 7 && decisionRows > 5, `${summaryRows} summary rows, ${decisionRows} decision rows`);
        assert.ok(fs.statSync(shot).size > 20_000);
    });

    it("npm run bench:rollout -- --report draws ours against Flagger per scenario, in the same page Chromium loads cleanly", async () => {
        const traffic = path.join(dir, "traffic.json");
        fs.writeFileSync(
            traffic,
            JSON.stringify([
                { name: "healthy at lunch", regression: false, requestsPerSecond: 50, stable: { errorRate: 0.002, medianMs: 80, sigma: 0.5 } },
                { name: "+2 points", regression: true, requestsPerSecond: 50, stable: { errorRate: 0.002, medianMs: 80, sigma: 0.5 }, candidate: { errorRate: 0.022 } },
            ]),
        );
        const page = path.join(dir, "bench.html");
        const lines: string[] = [];
        assert.equal(await bench(["--scenarios", traffic, "--runs", "10", "--report", page], (l) => lines.push(l)), 0, lines.join("\n"));
        assert.match(lines.join("\n"), /Drawn in .*bench\.html/);
        const { errors, requests, result } = await inChromium(page, CHARTS, path.join(PROJECT_ROOT, "artifacts", "bench-rollout-report.png"));
        assert.deepEqual([errors, requests], [[], []]);
        const [count, charts] = result as [string, [string, number, number][]];
        assert.equal(count, "4");
        assert.deepEqual(charts.map(([title]) => title.split(" (")[0].split(",")[0]), ["Healthy candidates rolled back", "Bad candidates promoted", "Excess 5xx a bad candidate served in 24 hours", "Minutes to the decision"]);
        for (const [title, painted] of charts) assert.ok(painted > 500, `${title}: ${painted} pixels painted`);
        const missing = await bench(["--runs", "10", "--report", path.join(dir, "no", "such", "folder", "b.html")], (l) => lines.push(l));
        assert.equal(missing, 2);
        assert.match(lines.join("\n"), /--report ".*b\.html": its folder does not exist/);
    });

    it("draws a log with no decision yet (a rollout held at once): each chart says it has no data, and the page loads cleanly", async () => {
        const held = path.join(dir, "held.jsonl");
        fs.writeFileSync(held, `${fs.readFileSync(log, "utf8").split("\n")[0]}\n`);
        const page = path.join(dir, "held.html");
        assert.equal(main([held, "--out", page], () => undefined, () => undefined), 0);
        const { errors, requests, result } = await inChromium(page, CHARTS, path.join(PROJECT_ROOT, "artifacts", "rollout-report-held.png"));
        assert.deepEqual([errors, requests], [[], []]);
        const [, charts] = result as [string, [string, number, number][]];
        assert.deepEqual(charts.filter(([title]) => !title.includes("share of live requests")).map(([, , points]) => points), Array.from({ length: 10 }, () => 0));
        assert.match(fs.readFileSync(page, "utf8"), /still running \(no outcome line yet\)/);
    });

    it("a browser that dies at once fails the check at once, naming it, rather than hanging the suite", async () => {
        const started = Date.now();
        await assert.rejects(inChromium(path.join(dir, "report.html"), "1", path.join(dir, "none.png"), "/bin/false"), /chromium exited \(1\) before its DevTools port/);
        assert.ok(Date.now() - started < 5_000);
    });

    it("refuses what is not a decision log, naming it", () => {
        const lines: string[] = [];
        const notLog = path.join(dir, "notes.txt");
        fs.writeFileSync(notLog, "hello\n");
        assert.equal(main([notLog], (l) => lines.push(l), (l) => lines.push(l)), 2);
        assert.match(lines.join("\n"), /notes\.txt line 1 is not JSON: not a decision log/);
        assert.equal(main([path.join(dir, "missing.jsonl")], (l) => lines.push(l), (l) => lines.push(l)), 2);
        assert.match(lines.join("\n"), /missing\.jsonl": no such file\. Fix: name a log the rollout wrote/);
    });
});
