import { strict as assert } from "assert";
import * as http from "http";
import { AddressInfo } from "net";
import { UsageError } from "../lib/cli";
import { formatResult, labelOf, parseProbeArgs, probe, ProbeOptions, UnreachableError, wilson99 } from "../scripts/probe";

/** A loopback server answering like the services: every tenth request from v2, or by header. */
function serve(answer: (n: number, req: http.IncomingMessage) => [number, string]): Promise<{ url: string; close: () => Promise<void> }> {
    let n = 0;
    const server = http.createServer((req, res) => {
        const [status, body] = answer(n++, req);
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(`${body}\n`);
    });
    return new Promise((resolve) => {
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo;
            resolve({ url: `http://127.0.0.1:${String(port)}`, close: () => new Promise((done) => server.close(() => { done(); })) });
        });
    });
}

const options = (url: string, extra: Partial<ProbeOptions> = {}): ProbeOptions => ({
    url: new URL("/users", url),
    requests: 400,
    concurrency: 8,
    expect: {},
    headers: {},
    timeoutMs: 2000,
    ...extra,
});

describe("traffic probe (npm run probe)", () => {
    it("tallies versions and passes when the expected share lies inside the 99% interval", async () => {
        const server = await serve((n) => [200, n % 10 === 9 ? "user-service v2" : "user-service v1"]);
        try {
            const progress: number[] = [];
            const result = await probe(options(server.url, { expect: { v2: 10, v1: 90 } }), (done) => progress.push(done));
            assert.deepEqual(result.rows.map((r) => [r.label, r.count]), [["v1", 360], ["v2", 40]]);
            assert.ok(result.ok);
            assert.equal(progress[progress.length - 1], 400);
            assert.match(formatResult(result), /^v2\s+40\s+10.0%\s+\d+\.\d-\d+\.\d%\s+10% ok$/m);
        } finally {
            await server.close();
        }
    });

    it("fails when the observed split is off, and counts colors and HTTP errors", async () => {
        const server = await serve((n) => (n % 4 === 0 ? [503, "upstream connect error"] : [200, "product-service v2 (green)"]));
        try {
            const result = await probe(options(server.url, { expect: { green: 100 } }));
            assert.deepEqual(result.rows.map((r) => [r.label, r.count, r.ok]), [["green", 300, false], ["http-503", 100, true]]);
            assert.ok(!result.ok);
            assert.match(formatResult(result), /OUTSIDE/);
        } finally {
            await server.close();
        }
    });

    it("sends the configured headers", async () => {
        const server = await serve((_n, req) => [200, req.headers["x-user-type"] === "beta" ? "user-service v2" : "user-service v1"]);
        try {
            const result = await probe(options(server.url, { requests: 50, headers: { "x-user-type": "beta" }, expect: { v2: 100 } }));
            assert.deepEqual(result.rows.map((r) => [r.label, r.count]), [["v2", 50]]);
            assert.ok(result.ok);
        } finally {
            await server.close();
        }
    });

    it("says clearly when the URL cannot be reached", async () => {
        const server = await serve(() => [200, "x v1"]);
        const url = server.url;
        await server.close();
        await assert.rejects(probe(options(url)), (e: Error) => e instanceof UnreachableError && e.message.startsWith(`cannot reach ${url}/users: `));
    });

    it("parses flags and refuses bad ones", () => {
        const parsed = parseProbeArgs(["--url", "http://localhost:30080", "--path", "/users", "-n", "1000", "-c", "50", "--expect", "v2=10", "--header", "X-User-Type: beta"]);
        assert.notEqual(parsed, "help");
        if (parsed !== "help") {
            assert.equal(parsed.url.href, "http://localhost:30080/users");
            assert.deepEqual([parsed.requests, parsed.concurrency, parsed.expect, parsed.headers], [1000, 50, { v2: 10 }, { "x-user-type": "beta" }]);
        }
        for (const [args, message] of [
            [["--path", "/users"], /--url is required/],
            [["--url", "localhost:30080"], /--url must be an absolute http\(s\) URL/],
            [["--url", "ftp://x"], /--url must be http or https/],
            [["--url", "http://x", "-n", "0"], /-n must be a whole number from 1 to 100000, got "0"/],
            [["--url", "http://x", "--expect", "v2"], /--expect takes label=percent/],
            [["--url", "http://x", "--expect", "v1=80", "--expect", "v2=30"], /add up to 110/],
            [["--url", "http://x", "--header", "nocolon"], /--header takes 'name: value'/],
            [["--url", "http://x", "--weight", "5"], /Unknown argument "--weight"/],
        ] as const) {
            assert.throws(() => parseProbeArgs(args), (e: Error) => e instanceof UsageError && message.test(e.message) && e.message.includes("Usage:"));
        }
    });

    it("reads labels from the services' answers and computes Wilson intervals", () => {
        assert.equal(labelOf("user-service v2\n"), "v2");
        assert.equal(labelOf("product-service v1 (blue)"), "blue");
        assert.equal(labelOf("no version here"), "unrecognised");
        const [low, high] = wilson99(100, 1000);
        assert.ok(low > 7.5 && low < 8 && high > 12.3 && high < 12.8, `${String(low)} ${String(high)}`);
        assert.deepEqual(wilson99(0, 100).map((x) => Math.round(x * 10) / 10), [0, 6.2]);
    });
});
