// rollout.notify: Slack, Teams and generic webhooks hear a rollout. Local HTTP servers stand in for the three
// services and check each payload against that service's documented format (tests/fixtures/notify/*.schema.json);
// a notifier that answers 500 or never answers blocks nothing and fails nothing, and no URL reaches the log.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import type { Notifier, NotifyEvent } from "../components/config/rollout-config";
import { ServiceEvidence, VersionCounts } from "../rollout/analysis";
import { prepareRollout, runRollout } from "../rollout/driver";
import { Notifications, NotifyMessage, slackPayload, teamsPayload, webhookPayload } from "../rollout/notify";
import { PROJECT_ROOT, stackConfig } from "../lib/mock-program";
import { configProblems, settingsFor } from "./harness";
import { operatedClock, operatorRequest, TEST_ROLLOUT_ID, testChannel } from "./support/channel";
import { FileEngine, PROJECT as P } from "./support/file-engine";

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv);
const schema = (name: string) => ajv.compile(JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "tests", "fixtures", "notify", `${name}.schema.json`), "utf8")) as Record<string, unknown>);
const FORMATS = { slack: schema("slack"), teams: schema("teams"), webhook: schema("webhook") };

interface Receiver {
    readonly url: string;
    readonly bodies: unknown[];
    readonly problems: string[];
    close(): void;
}

/** A local endpoint that checks each POST against a format, and answers `status` (or never, when undefined). */
async function receiver(format: keyof typeof FORMATS | undefined, status: number | undefined): Promise<Receiver> {
    const bodies: unknown[] = [];
    const problems: string[] = [];
    const server = http.createServer((req, res) => {
        let text = "";
        req.on("data", (chunk: Buffer) => (text += chunk.toString()));
        req.on("end", () => {
            const body: unknown = JSON.parse(text);
            bodies.push(body);
            if (req.headers["content-type"] !== "application/json") problems.push(`content-type ${String(req.headers["content-type"])}`);
            if (format !== undefined && !FORMATS[format](body)) problems.push(`${format}: ${ajv.errorsText(FORMATS[format].errors)}: ${text.slice(0, 300)}`);
            if (status !== undefined) res.writeHead(status).end(status === 200 ? "ok" : "no");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/secret-token`, bodies, problems, close: () => {
            server.closeAllConnections();
            server.close();
        },
    };
}

const counts = (requests: number, errors: number): VersionCounts => ({ requests, errors, latency: [{ le: 50, count: requests * 0.9 }, { le: 100, count: requests }, { le: Infinity, count: requests }] });
const GOOD: ServiceEvidence = { candidate: counts(500, 0), stable: counts(4500, 5) };
const BAD: ServiceEvidence = { candidate: counts(500, 200), stable: counts(4500, 5) };

/** A rollout on a real stack file with notifiers; an operator pauses and resumes it; its outcome, and what was logged. */
async function rollOut(notifiers: readonly Notifier[], evidence: ServiceEvidence): Promise<{ kind: string; log: string[]; ms: number }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "notify-"));
    const stack = path.join(dir, "Pulumi.t.yaml");
    fs.writeFileSync(stack, `config:\n  ${P}:canaryWeight: 0\n  ${P}:rollout: { steps: [20, 50], interval: 1m, analysis: { failedChecks: 2, progressDeadline: 5m, minRequests: 10, bakeTime: 2m } }\n`);
    const engine = new FileEngine(stack);
    const prepared = await prepareRollout(engine, "t", ["user-service"]);
    const channel = testChannel("t", ["user-service"], [20, 50]);
    await channel.channel.publish({ actions: [{ id: "s", action: "start", actor: "release-bot", reason: "weekly release", at: new Date().toISOString() }] });
    const log: string[] = [];
    const notifications = new Notifications(notifiers, (l) => log.push(l));
    // The driver looks for requests every 5 s of its 1-minute waits: resumed after one interval paused.
    const clock = operatedClock(channel, [{ at: 2, request: operatorRequest("pause", "alice", "INC-7 | dashboards *first*") }, { at: 14, request: operatorRequest("resume", "alice", "INC-7 closed") }], { startMs: Date.parse("2026-12-02T10:00:00Z") });
    const started = Date.now();
    const services = prepared.targets.map((t) => ({ service: t.service, release: t.release, stable: t.stableVersion, candidate: t.candidateVersion }));
    const notify = (event: NotifyEvent, news: Omit<NotifyMessage, "event" | "stack" | "rollout" | "services" | "report">) => {
        notifications.send({ event, stack: "t", rollout: TEST_ROLLOUT_ID, services, report: "https://ci.example.com/runs/7", ...news });
    };
    const outcome = await runRollout({ prepared, engine, channel: channel.channel, notify, signal: new AbortController().signal, onInterrupt: "rollback", log: (l) => log.push(l), clock, evidence: () => Promise.resolve(evidence), webhook: () => Promise.resolve(undefined) });
    const ms = Date.now() - started;
    await notifications.settled();
    return { kind: outcome.kind, log, ms };
}

describe("rollout.notify", function () {
    this.timeout(30_000);

    it("reads notifiers from stack config, a secret URL included, and refuses bad ones with a fix", () => {
        const base = { steps: [20, 100] };
        const settings = settingsFor("dev", { rollout: { ...base, notify: [{ kind: "slack", url: "https://hooks.slack.com/services/T0/B0/X" }, { kind: "teams", url: "[secret]", events: ["rollback", "promotion"], timeout: "5s" }] } });
        assert.deepEqual(settings.rollout.notify, [
            { kind: "slack", url: "https://hooks.slack.com/services/T0/B0/X", events: ["start", "step", "hold", "rollback", "promotion", "action"], timeoutMs: 10_000 },
            { kind: "teams", events: ["rollback", "promotion"], timeoutMs: 5_000 },
        ]);
        for (const [notify, key, allowed] of [
            [[{ kind: "discord", url: "https://x.test/" }], "rollout.notify[0].kind", /must be slack, teams, webhook/],
            [[{ kind: "slack", url: "hooks.slack.com/services/T0" }], "rollout.notify[0].url", /must be an http or https URL/],
            [[{ kind: "slack", url: "https://x.test/", events: ["rollback", "deploy"] }], "rollout.notify[0].events", /must be a list of distinct events among start, step, hold, rollback, promotion, action/],
            [[{ kind: "slack", url: "https://x.test/", timeout: "5m" }], "rollout.notify[0].timeout", /1m/],
            [{ kind: "slack" }, "rollout.notify", /must be a list of at most 10 notifiers/],
        ] as const) {
            const problems = configProblems({ ...stackConfig("dev"), rollout: { ...base, notify } });
            const problem = problems.find((p) => p.key === key);
            assert.ok(problem !== undefined, `${key}: ${JSON.stringify(problems)}`);
            assert.match(problem.allowed, allowed);
            assert.match(problem.fix, /pulumi config set/);
        }
    });

    it("sends every event in each service's own format, names the actor and the report, and keeps the URL out of the log", async () => {
        const slack = await receiver("slack", 200);
        const teams = await receiver("teams", 200);
        const hook = await receiver("webhook", 200);
        try {
            const all = ["start", "step", "hold", "rollback", "promotion", "action"] as const;
            const { kind, log } = await rollOut([{ kind: "slack", url: slack.url, events: all, timeoutMs: 2000 }, { kind: "teams", url: teams.url, events: ["promotion", "action"], timeoutMs: 2000 }, { kind: "webhook", url: hook.url, events: all, timeoutMs: 2000 }], GOOD);
            assert.equal(kind, "promoted");
            assert.deepEqual([slack.problems, teams.problems, hook.problems], [[], [], []]);
            const events = hook.bodies.map((b) => (b as NotifyMessage).event);
            assert.deepEqual(events, ["start", "step", "action", "action", "step", "promotion"]);
            assert.equal(slack.bodies.length, 6);
            assert.equal(teams.bodies.length, 3, "teams hears only what it subscribed to");
            const pause = hook.bodies.find((b) => (b as NotifyMessage).event === "action") as NotifyMessage;
            assert.deepEqual([pause.actor, pause.reason?.split(" -> ")[0], pause.report], ["alice", "INC-7 | dashboards *first*", "https://ci.example.com/runs/7"]);
            const promoted = hook.bodies.at(-1) as NotifyMessage;
            assert.match(promoted.headline, /user-service v2 on t: promoted/);
            assert.ok(promoted.numbers.some((n) => /candidate v2 500 req, 0 5xx/.test(n)), promoted.numbers.join("; "));
            assert.doesNotMatch(log.join("\n"), /secret-token|127\.0\.0\.1/);
        } finally {
            for (const r of [slack, teams, hook]) r.close();
        }
    });

    it("a notifier that fails or never answers neither blocks nor fails the rollout; it is logged without its URL", async () => {
        const failing = await receiver(undefined, 500);
        const silent = await receiver(undefined, undefined);
        try {
            const { kind, log, ms } = await rollOut([{ kind: "slack", url: failing.url, events: ["start", "rollback"], timeoutMs: 1000 }, { kind: "webhook", url: silent.url, events: ["start", "step", "rollback"], timeoutMs: 300 }], BAD);
            assert.equal(kind, "rolledBack");
            // Each of the silent notifier's three sends times out after 300 ms; the rollout did not wait for them.
            assert.ok(ms < 900, `the rollout took ${ms} ms`);
            assert.ok(log.some((l) => /^rollout\.notify\[0\] \(slack\): the start notification was answered 500; the rollout goes on$/.test(l)), log.join("\n"));
            assert.ok(log.some((l) => /^rollout\.notify\[1\] \(webhook\): the step notification was not delivered \(no answer within 0\.3s\); the rollout goes on$/.test(l)), log.join("\n"));
            assert.doesNotMatch(log.join("\n"), /secret-token|127\.0\.0\.1/);
        } finally {
            failing.close();
            silent.close();
        }
    });

    it("keeps within Slack's and Teams' limits however long the reason, and links the report where it is a URL", () => {
        const message: NotifyMessage = { event: "rollback", stack: "prod", rollout: TEST_ROLLOUT_ID, services: [{ service: "user-service", release: "canary", stable: "v1", candidate: "v2" }], phase: "step 2/4 (10%)", headline: "x".repeat(400), reason: "why ".repeat(2000), numbers: ["n".repeat(5000)], report: ".rollout/prod/r.html" };
        assert.ok(FORMATS.slack(slackPayload(message)), ajv.errorsText(FORMATS.slack.errors));
        assert.ok(FORMATS.teams(teamsPayload(message)), ajv.errorsText(FORMATS.teams.errors));
        assert.ok(FORMATS.webhook(webhookPayload(message)), ajv.errorsText(FORMATS.webhook.errors));
        // What someone typed cannot mention the channel or plant a link in Slack; a rehearsal says it is one.
        const typed = JSON.stringify(slackPayload({ ...message, headline: "h", reason: "<!channel> see <https://evil.example|runbook> & more", rehearsal: true }));
        assert.ok(!typed.includes("<!channel>") && typed.includes("&lt;!channel&gt; see &lt;https://evil.example|runbook&gt; &amp; more"), typed);
        assert.match(typed, /"type":"header","text":\{"type":"plain_text","text":"Rehearsal: h"/);
        assert.ok(FORMATS.slack(slackPayload({ ...message, reason: "&".repeat(5000) })), "escaped, then cut within the limit");
        assert.match(JSON.stringify(teamsPayload(message)), /"title":"Report","value":".rollout\/prod\/r.html"/);
        assert.match(JSON.stringify(teamsPayload({ ...message, report: "https://ci.example.com/runs/7" })), /"type":"Action.OpenUrl","title":"Open the report","url":"https:\/\/ci.example.com\/runs\/7"/);
    });
});
