// What the rollout sends to Prometheus and webhooks, and how it reads their answers, against real HTTP servers
// on loopback: windows in Prometheus's syntax, URLs joined by URL rules, a webhook's yes only from its own URL,
// and impossible metric answers read as no data.
import { strict as assert } from "assert";
import * as http from "http";
import type { AddressInfo } from "net";
import { readSettings } from "../components/config/config";
import { ConfigError } from "../components/config/config-reader";
import { planTraffic } from "../components/plan/plan";
import { gatewayApiDuration } from "../components/specs/gateway-api-specs";
import { releaseCounters, releaseQueries } from "../components/specs/observability-specs";
import { configSource } from "../rollout/config-edit";
import { metricQueries } from "../rollout/metrics";
import { metricReadings, preflightProblems, prometheusApiUrl, releaseEvidence } from "../rollout/prometheus";
import { callWebhook } from "../rollout/webhooks";

/** A loopback server answering with `handler`; returns its base URL and the paths it was asked for. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; asked: string[]; close: () => Promise<void> }> {
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
        asked.push(req.url ?? "");
        handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, asked, close: () =>
            new Promise((resolve) => {
                server.close(() => {
                    resolve();
                });
            }),
    };
}

const refusal = (config: Record<string, unknown>): string => {
    try {
        readSettings(configSource(config));
    } catch (error) {
        if (error instanceof ConfigError) return error.message;
        throw error;
    }
    return "";
};

describe("rollout endpoints: Prometheus", () => {
    it("writes every window in Prometheus's duration syntax, whatever the interval's decimals", () => {
        for (const [interval, window] of [
            ["16.1s", "16100ms"],
            ["1.001s", "1001ms"],
            ["1.5m", "90s"],
            ["0.75h", "45m"],
            ["30s", "30s"],
        ] as const) {
            const settings = readSettings(configSource({ rollout: { interval } }));
            const queries = releaseQueries(planTraffic(settings), settings.rollout.intervalMs)["user-service"];
            assert.ok(queries.requests.includes(`[${window}]`), `${interval}: ${queries.requests}`);
            assert.match(queries.requests, /\[\d+(ms|s|m)\]/);
        }
    });

    it("joins the API path to the base URL by URL rules, keeping a proxy's path and query", () => {
        for (const [base, expected] of [
            ["http://prom:9090", "http://prom:9090/api/v1/query?query=up"],
            ["http://prom:9090/", "http://prom:9090/api/v1/query?query=up"],
            ["https://gw.example.com/prometheus", "https://gw.example.com/prometheus/api/v1/query?query=up"],
            ["https://gw.example.com/prometheus/", "https://gw.example.com/prometheus/api/v1/query?query=up"],
            ["https://gw.example.com/p?tenant=web", "https://gw.example.com/p/api/v1/query?tenant=web&query=up"],
        ] as const) {
            assert.equal(prometheusApiUrl(base, "api/v1/query", { query: "up" }).toString(), expected, base);
        }
        assert.match(refusal({ rollout: { prometheusUrl: "http://prom:9090/#/graph" } }), /rollout\.prometheusUrl = "http:\/\/prom:9090\/#\/graph": must be an http or https URL .*has a fragment/);
    });

    it("reads non-finite and impossible answers as no data, never as evidence", async () => {
        let answer: Record<string, string> = {};
        const windowEnd = Date.now();
        const prometheus = await serve((req, res) => {
            const params = new URL(req.url ?? "", "http://x").searchParams;
            const query = params.get("query") ?? "";
            // The window's start: no series yet, so the counts are the counters' values at its end.
            if (Number(params.get("time")) < windowEnd / 1000 - 1) {
                res.setHeader("content-type", "application/json");
                res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [] } }));
                return;
            }
            const kind = query.includes("_bucket") ? "buckets" : query.includes('destination_version="unknown"') ? "unattributed" : query.includes("5..") ? "errors" : "requests";
            if (kind === "unattributed") {
                res.setHeader("content-type", "application/json");
                res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: answer.unattributed === undefined ? [] : [{ metric: {}, value: [0, answer.unattributed] }] } }));
                return;
            }
            const result = ["v1", "v2"].flatMap((version) =>
                kind === "buckets"
                    ? [
                          { metric: { destination_version: version, le: "+Inf" }, value: [0, version === "v2" ? answer.bucket ?? "100" : "900"] },
                          ...(version === "v2" && answer.falling !== undefined ? [{ metric: { destination_version: version, le: "50" }, value: [0, answer.falling] }] : []),
                      ]
                    : [{ metric: { destination_version: version }, value: [0, version === "v2" ? answer[kind] ?? "100" : kind === "errors" ? "0" : "900"] }],
            );
            res.setHeader("content-type", "application/json");
            res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
        });
        try {
            const counters = releaseCounters(planTraffic(readSettings(configSource({}))))["user-service"];
            const evidence = () => releaseEvidence(`${prometheus.url}/`, counters, { stable: "v1", candidate: "v2" }, 60_000, windowEnd);
            for (const impossible of [{ requests: "1e308" } as Record<string, string>, { requests: "-5" }, { requests: "+Inf" }, { errors: "-1" }, { bucket: "1e300" }, { requests: "NaN" }]) {
                answer = impossible;
                const { candidate, stable } = await evidence();
                assert.equal(candidate, undefined, JSON.stringify(impossible));
                assert.equal(stable?.requests, 900, "the stable version's sound answer still counts");
            }
            // A cumulative histogram that falls from one bound to the next: the candidate's buckets at 50 ms and +Inf.
            answer = { bucket: "10", falling: "1000" };
            assert.equal((await evidence()).candidate, undefined, "a falling histogram is no data");
            // A canary's 5xx its callers' proxies answered themselves reach the analysis, apart from either version.
            answer = { unattributed: "7" };
            assert.equal((await evidence()).unattributedErrors, 7);
            answer = { requests: "100", errors: "100.4" };
            assert.deepEqual(((await evidence()).candidate ?? { errors: -1 }).errors, 100, "errors a little above requests are every request failing");
            assert.ok(prometheus.asked.every((asked) => asked.startsWith("/api/v1/query?query=")), "a base URL with a trailing slash still asks /api/v1/query");
            // Each count is a counter's growth between the window's two ends, asked at those instants (no increase() extrapolation).
            const times = new Set(prometheus.asked.map((asked) => new URL(asked, "http://x").searchParams.get("time")));
            assert.deepEqual([...times].sort(), [((windowEnd - 60_000) / 1000).toFixed(3), (windowEnd / 1000).toFixed(3)]);
        } finally {
            await prometheus.close();
        }
    });
});

describe("rollout endpoints: the pre-flight", () => {
    it("passes only when Prometheus answers with series of every stable version, naming each problem and its fix", async () => {
        let versions: string[] = [];
        let status = 200;
        const prometheus = await serve((_req, res) => {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(JSON.stringify(status === 200 ? { status: "success", data: { resultType: "vector", result: versions.map((v) => ({ metric: { destination_version: v }, value: [0, "0"] })) } } : { status: "error", error: "overloaded" }));
        });
        try {
            const counters = releaseCounters(planTraffic(readSettings(configSource({}))));
            const targets = [{ service: "user-service", stableVersion: "v1" }];
            const problems = () => preflightProblems(prometheus.url, targets, counters);
            // A series at 0 is the pipeline working (a proxy reported, Prometheus scraped): the rollout can be judged.
            versions = ["v1"];
            assert.deepEqual(await problems(), []);
            // Only the candidate's, or none: no interval could be judged against the stable version.
            versions = ["v2"];
            assert.match((await problems()).join(), /holds no requests of user-service's stable version v1 \(sum by \(destination_version\) \(istio_requests_total\{reporter="source".*\)\), so no interval could be judged\. Fix: check that user-service serves traffic, that its pods run Istio's sidecar/);
            status = 503;
            assert.match((await problems()).join(), /Prometheus at http:\/\/127\.0\.0\.1:\d+ did not answer \(Prometheus answered 503: overloaded\)\. Fix: port-forward it/);
        } finally {
            await prometheus.close();
        }
        // Nothing listens there any more.
        const counters = releaseCounters(planTraffic(readSettings(configSource({}))));
        assert.match((await preflightProblems(prometheus.url, [{ service: "user-service", stableVersion: "v1" }], counters)).join(), /did not answer \(fetch failed: /);
    });
});

describe("rollout endpoints: custom metrics", () => {
    it("reads one value a version, refuses a query of several series, and has Prometheus parse each query before anything moves", async () => {
        const prometheus = await serve((req, res) => {
            const query = new URL(req.url ?? "", "http://x").searchParams.get("query") ?? "";
            res.setHeader("content-type", "application/json");
            // Prometheus's own answer to a query it cannot parse.
            if (query.includes("summ(")) {
                res.writeHead(400).end(JSON.stringify({ status: "error", errorType: "bad_data", error: 'invalid parameter "query": 1:1: parse error: unknown function with name "summ"' }));
                return;
            }
            const value = query.includes('"v2"') ? "120" : "80";
            if (query.startsWith("scalar(")) {
                res.end(JSON.stringify({ status: "success", data: { resultType: "scalar", result: [0, value] } }));
                return;
            }
            if (query.includes("[5m]")) {
                res.end(JSON.stringify({ status: "success", data: { resultType: "matrix", result: [{ metric: {}, values: [[0, value]] }] } }));
                return;
            }
            const result = query.includes("by (pod)") ? [{ metric: { pod: "a" }, value: [0, value] }, { metric: { pod: "b" }, value: [0, value] }] : query.includes("nothing") ? [] : query.includes("errors{") ? [{ metric: {}, value: [0, "+Inf"] }] : [{ metric: {}, value: [0, value] }];
            res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
        });
        try {
            const metric = (name: string, query: string, bound: object) => metricQueries([{ name, query, ...bound }], "user-service", "backend", "1m", { stable: "v1", candidate: "v2" })[0];
            const readings = await metricReadings(prometheus.url, [
                metric("p50", 'max(x{v="{{version}}"})', { max: 100 }),
                metric("vs-stable", 'max(x{v="{{version}}"})', { maxRatioToStable: 1.2 }),
                metric("per-pod", 'max by (pod) (x{v="{{version}}"})', { max: 100 }),
                metric("idle", 'max(nothing{v="{{version}}"})', { max: 100 }),
                metric("as-scalar", 'scalar(max(x{v="{{version}}"}))', { max: 100 }),
                metric("a-range", 'x{v="{{version}}"}[5m]', { max: 100 }),
                metric("ratio", 'sum(errors{v="{{version}}"}) / sum(ok{v="{{version}}"})', { max: 0.01 }),
            ]);
            assert.deepEqual(readings, [
                { name: "p50", candidate: 120 },
                { name: "vs-stable", candidate: 120, stable: 80 },
                { name: "per-pod", error: `Prometheus at ${prometheus.url}: the query returns 2 series, where one value is judged; aggregate it (sum, max, ...)` },
                { name: "idle" },
                { name: "as-scalar", candidate: 120 },
                { name: "a-range", error: `Prometheus at ${prometheus.url}: the query returns a matrix where one instant value is judged (a range such as [5m] needs a function over it, such as rate)` },
                // Errors over no successes: infinitely worse, a value (a failed check), not no data.
                { name: "ratio", candidate: Infinity },
            ]);
            const targets = [{ service: "user-service", stableVersion: "v1" }];
            const counters = { "user-service": { requests: 'sum by (destination_version) (up{v="v1"})', errors: "", latencyBuckets: "" } };
            const problems = await preflightProblems(prometheus.url, targets, counters, { "user-service": [metric("typo", 'summ(x{v="{{version}}"})', { max: 1 })] });
            assert.match(problems.join("\n"), /rollout\.analysis\.metrics\[0\] \(typo\): Prometheus refuses its query for user-service \(summ\(x\{v="v2"\}\)\): invalid parameter "query": 1:1: parse error: unknown function with name "summ"\. Fix: correct the query/);
            // A query with no value for the stable version now, or one that cannot answer one value: refused before anything moves.
            const more = (await preflightProblems(prometheus.url, targets, counters, { "user-service": [metric("idle", 'max(nothing{v="{{version}}"})', { max: 1 }), metric("per-pod", 'max by (pod) (x{v="{{version}}"})', { max: 1 }), metric("p50", 'max(x{v="{{version}}"})', { max: 100 })] })).filter((p) => p.includes("rollout.analysis.metrics"));
            assert.equal(more.length, 2, more.join(" | "));
            assert.match(more[0], /metrics\[0\] \(idle\): its query has no value for user-service's stable version now .*Fix: make it answer where there is nothing to count \(append `or vector\(0\)` to a sum\)/);
            assert.match(more[1], /metrics\[1\] \(per-pod\): the query returns 2 series, where one value is judged/);
        } finally {
            await prometheus.close();
        }
    });
});

describe("rollout endpoints: webhooks", () => {
    it("takes a 2xx from the URL itself as yes, and a redirect (to a login page answering 200) as no", async () => {
        const gate = await serve((req, res) => {
            if (req.url === "/login") {
                res.end("<html>sign in</html>");
            } else if (req.url === "/redirect") {
                res.writeHead(302, { location: "/login" }).end();
            } else {
                res.writeHead(204).end();
            }
        });
        try {
            const payload = { stack: "dev", services: ["user-service"], phase: "confirmPromotion" as const };
            assert.equal((await callWebhook({ url: `${gate.url}/gate`, timeoutMs: 2000 }, payload)).ok, true);
            const redirected = await callWebhook({ url: `${gate.url}/redirect`, timeoutMs: 2000 }, payload);
            assert.equal(redirected.ok, false);
            assert.match(redirected.detail, /answered 302, a redirect to \/login; .*redirects are not followed/);
            assert.ok(!gate.asked.includes("/login"), "the redirect was not followed");
        } finally {
            await gate.close();
        }
    });
});

describe("Gateway API durations", () => {
    it("says every timeout up to an hour in the Gateway API's syntax: whole units, at most five digits each", () => {
        for (const [ms, text] of [
            [1, "1ms"],
            [1500, "1s500ms"],
            [99_999, "1m39s999ms"],
            [120_000, "2m"],
            [3_600_000, "1h"],
            [3_599_999, "59m59s999ms"],
        ] as const) {
            assert.equal(gatewayApiDuration(ms), text);
            assert.match(text, /^([0-9]{1,5}(h|m|s|ms)){1,4}$/);
        }
        assert.match(refusal({ resilience: { "*": { timeout: "1.5ms" } } }), /resilience\.\*\.timeout = "1\.5ms": must be a duration from 1ms to 1h in whole milliseconds/);
    });
});
