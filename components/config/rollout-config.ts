// The `rollout` key: how `npm run rollout` drives and judges a release (steps, interval, analysis thresholds,
// webhooks, where Prometheus answers). The program reads it too: the interval is the window of the
// releaseQueries output, so the queries a person runs are the ones the driver judges by.
import { DurationRange, durationMs, Reader, SECRET_VALUE, setPathCommand, show } from "./config-reader";

export type WebhookKind = "preRollout" | "loadTest" | "confirmPromotion" | "rollback";
export const WEBHOOK_KINDS: readonly WebhookKind[] = ["preRollout", "loadTest", "confirmPromotion", "rollback"];

/** How a blue/green service's idle color gets traffic to judge: a mirrored share of live traffic, or preview-header requests (a loadTest webhook's). */
export type BlueGreenTraffic = "mirror" | "preview";
export const BLUE_GREEN_TRAFFIC: readonly BlueGreenTraffic[] = ["mirror", "preview"];

export interface Webhook {
    readonly url: string;
    readonly timeoutMs: number;
}

/** Where a rollout's notifications go: a Slack incoming webhook, a Teams Workflows webhook, or any JSON endpoint. */
export type NotifyKind = "slack" | "teams" | "webhook";
export const NOTIFY_KINDS: readonly NotifyKind[] = ["slack", "teams", "webhook"];
/** What is notified: the start, each step applied, a hold, the rollback, the promotion, an operator's action. */
export type NotifyEvent = "start" | "step" | "hold" | "rollback" | "promotion" | "action";
export const NOTIFY_EVENTS: readonly NotifyEvent[] = ["start", "step", "hold", "rollback", "promotion", "action"];

export interface Notifier {
    readonly kind: NotifyKind;
    /** Undefined when the URL is a secret this reader cannot decrypt (a stack file read without the Pulumi CLI). */
    readonly url?: string;
    readonly events: readonly NotifyEvent[];
    readonly timeoutMs: number;
}

/** The placeholders a custom metric's query may use, filled per service and version when the rollout is prepared. */
export const METRIC_PLACEHOLDERS = ["version", "service", "namespace", "interval"] as const;

/**
 * A custom metric, as Flagger's MetricTemplates and Argo's AnalysisTemplates give: a PromQL query over one version
 * of the service, asked for the candidate (and, for a comparison, the stable version) each interval, and a bound on
 * the candidate's value: at most `max`, at least `min`, or at most `maxRatioToStable` times the stable's value.
 */
export interface CustomMetric {
    readonly name: string;
    readonly query: string;
    readonly max?: number;
    readonly min?: number;
    readonly maxRatioToStable?: number;
}

export interface AnalysisSettings {
    /** Percent of the candidate's requests that must not answer 5xx. */
    readonly minSuccessRate: number;
    /** The candidate's p95 latency may not exceed this. */
    readonly maxP95LatencyMs: number;
    /** The hard limits judge an interval of at least this many candidate requests (fewer, and one 5xx alone would break a 99 % limit). */
    readonly minRequests: number;
    /** Failed checks that roll the release back. */
    readonly failedChecks: number;
    /** How long a step may go without progress (failing, or unobserved) before the release is rolled back. */
    readonly progressDeadlineMs: number;
    /**
     * How long the candidate must have been watched serving before it is promoted, however soon the tests conclude:
     * a regression that comes and goes (bursts) is caught only if it shows within this time.
     */
    readonly bakeTimeMs: number;
    /** The sequential tests' budget: percent chance of rolling back a candidate as good as the stable version. */
    readonly falseRollbackPercent: number;
    /** ... and of promoting one worse by the margins below. */
    readonly missedRegressionPercent: number;
    /** Worse on errors: this many points of error rate above the stable version's. */
    readonly errorMarginPoints: number;
    /** Worse on latency: this many times the stable version's share of slow requests (past the histogram bound nearest under its p95). */
    readonly slowRatio: number;
    /** Hard limits of the stack's own, judged beside the built-in ones. */
    readonly metrics: readonly CustomMetric[];
}

export interface RolloutSettings {
    /** Percent of traffic on the candidate at each step (mirrored, for blue/green), increasing. */
    readonly steps: readonly number[];
    /** Each step's wait before it is judged, and the window of every query. */
    readonly interval: string;
    readonly intervalMs: number;
    readonly analysis: AnalysisSettings;
    readonly webhooks: Readonly<Partial<Record<WebhookKind, Webhook>>>;
    /** Who hears about the rollout, and of what. */
    readonly notify: readonly Notifier[];
    /** Where the driver queries Prometheus: the port-forward of the `dashboards` output by default. */
    readonly prometheusUrl: string;
    readonly blueGreenTraffic: BlueGreenTraffic;
}

/**
 * Flagger's analysis in the labs as the hard limits (success rate >= 99 %, p95 <= 500 ms, 1 m interval, 5 failed
 * checks), and the comparison with the stable version: 1 % false rollbacks, 5 % missed regressions of 1 point
 * of errors or twice the slow requests.
 */
export const ROLLOUT_DEFAULTS: RolloutSettings = {
    steps: [5, 10, 25, 50],
    interval: "1m",
    intervalMs: 60_000,
    analysis: { minSuccessRate: 99, maxP95LatencyMs: 500, minRequests: 100, failedChecks: 5, progressDeadlineMs: 600_000, bakeTimeMs: 1_800_000, falseRollbackPercent: 1, missedRegressionPercent: 5, errorMarginPoints: 1, slowRatio: 2, metrics: [] },
    webhooks: {},
    notify: [],
    prometheusUrl: "http://localhost:9090",
    blueGreenTraffic: "mirror",
};

const ROLLOUT_FIELDS = ["steps", "interval", "analysis", "webhooks", "notify", "prometheusUrl", "blueGreenTraffic"];
const NOTIFY_FIELDS = ["kind", "url", "events", "timeout"];
const NOTIFY_EXAMPLE = "{ kind: slack, url: https://hooks.slack.com/services/T000/B000/XXXX, events: [rollback, promotion] }";
const ANALYSIS_FIELDS = ["minSuccessRate", "maxP95Latency", "minRequests", "failedChecks", "progressDeadline", "bakeTime", "falseRollback", "missedRegression", "errorMargin", "slowRatio", "metrics"];
const METRIC_FIELDS = ["name", "query", "max", "min", "maxRatioToStable"];
const METRIC_BOUNDS = ["max", "min", "maxRatioToStable"] as const;
const METRIC_EXAMPLE_QUERY = 'histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_app="{{service}}", destination_version="{{version}}"}[{{interval}}])))';
const METRIC_EXAMPLE = `{ name: p50-latency, query: '${METRIC_EXAMPLE_QUERY}', max: 100 }`;
const SHAPE = `{ steps, interval, analysis: { ${ANALYSIS_FIELDS.join(", ")} }, webhooks, notify, prometheusUrl, blueGreenTraffic }`;

export const ROLLOUT_DURATIONS = {
    interval: { min: "1s", max: "1h", example: "1m" },
    maxP95Latency: { min: "1ms", max: "1m", example: "500ms" },
    progressDeadline: { min: "1s", max: "24h", example: "10m" },
    bakeTime: { min: "0s", max: "24h", example: "30m" },
    webhookTimeout: { min: "100ms", max: "10m", example: "30s" },
    notifyTimeout: { min: "100ms", max: "1m", example: "10s" },
} as const satisfies Record<string, DurationRange>;

/** An http(s) URL with a host, and no credentials in it (they would land in the stack file and in logs). */
export function urlProblem(text: string): string | undefined {
    let url: URL;
    try {
        url = new URL(text);
    } catch {
        return "is not a URL";
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return `uses ${url.protocol.slice(0, -1)}, not http or https`;
    if (url.username !== "" || url.password !== "") return "carries credentials; keep them out of the stack file";
    // A fragment is never sent: the URL would not say where requests go.
    if (text.includes("#")) return "has a fragment (#...), which HTTP clients never send";
    return undefined;
}

function readUrl(r: Reader, at: string, value: unknown, example: string): string | undefined {
    const problem = typeof value === "string" ? urlProblem(value) : "is not a string";
    if (problem !== undefined) {
        r.fail(at, show(value), `must be an http or https URL such as ${example} (${problem})`, setPathCommand(at, example));
        return undefined;
    }
    return typeof value === "string" ? value : undefined;
}

function readSteps(r: Reader, value: unknown): readonly number[] | undefined {
    const ok = Array.isArray(value) && value.length > 0 && value.length <= 20 && value.every((v, i) => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 100 && (i === 0 || v > Number(value[i - 1])));
    if (!ok) {
        r.fail("rollout.steps", show(value), "must be 1 to 20 whole percents from 1 to 100, each larger than the one before, such as [5, 10, 25, 50]", "pulumi config set --path 'rollout.steps[0]' 5 (and rollout.steps[1], ...)");
        return undefined;
    }
    return value.map(Number);
}

function readAnalysis(r: Reader, value: unknown): AnalysisSettings {
    const defaults = ROLLOUT_DEFAULTS.analysis;
    if (value === undefined || !r.fields("rollout.analysis", value, ANALYSIS_FIELDS, `{ ${ANALYSIS_FIELDS.join(", ")} }`, setPathCommand("rollout.analysis.minSuccessRate", 99))) return defaults;
    const at = (field: string) => `rollout.analysis.${field}`;
    const minSuccessRate = value.minSuccessRate === undefined ? undefined : r.percentAt(at("minSuccessRate"), value.minSuccessRate, "percent of the candidate's requests that must not answer 5xx");
    const latency = value.maxP95Latency === undefined ? undefined : r.durationAt(at("maxP95Latency"), value.maxP95Latency, "the candidate's p95 latency at most", ROLLOUT_DURATIONS.maxP95Latency);
    const minRequests = value.minRequests === undefined ? undefined : r.integerAt(at("minRequests"), value.minRequests, 1, 1_000_000, "candidate requests an interval needs to be checked against the hard limits", 100);
    const failedChecks = value.failedChecks === undefined ? undefined : r.integerAt(at("failedChecks"), value.failedChecks, 1, 100, "failed checks that roll the release back", 5);
    const deadline = value.progressDeadline === undefined ? undefined : r.durationAt(at("progressDeadline"), value.progressDeadline, "how long a step may go failing or unobserved", ROLLOUT_DURATIONS.progressDeadline);
    const bake = value.bakeTime === undefined ? undefined : r.durationAt(at("bakeTime"), value.bakeTime, "how long the candidate is watched serving before it may be promoted; 0s promotes as soon as the tests conclude", ROLLOUT_DURATIONS.bakeTime);
    const decimal = (field: string, min: number, max: number, meaning: string, example: number) => (value[field] === undefined ? undefined : r.decimalAt(at(field), value[field], min, max, meaning, example));
    const falseRollback = decimal("falseRollback", 0.01, 50, "percent chance of rolling back a candidate as good as the stable version", 1);
    const missedRegression = decimal("missedRegression", 0.01, 50, "percent chance of promoting a candidate worse by the margins", 5);
    const errorMargin = decimal("errorMargin", 0.01, 50, "points of error rate above the stable version's that count as worse", 1);
    const slowRatio = decimal("slowRatio", 1.1, 20, "times the stable version's share of requests slower than its p95 that counts as worse", 2);
    const metrics = value.metrics === undefined ? [] : readMetrics(r, value.metrics);
    return {
        minSuccessRate: minSuccessRate ?? defaults.minSuccessRate,
        maxP95LatencyMs: latency === undefined ? defaults.maxP95LatencyMs : durationMs(latency),
        minRequests: minRequests ?? defaults.minRequests,
        failedChecks: failedChecks ?? defaults.failedChecks,
        progressDeadlineMs: deadline === undefined ? defaults.progressDeadlineMs : durationMs(deadline),
        bakeTimeMs: bake === undefined ? defaults.bakeTimeMs : durationMs(bake),
        falseRollbackPercent: falseRollback ?? defaults.falseRollbackPercent,
        missedRegressionPercent: missedRegression ?? defaults.missedRegressionPercent,
        errorMarginPoints: errorMargin ?? defaults.errorMarginPoints,
        slowRatio: slowRatio ?? defaults.slowRatio,
        metrics,
    };
}

/** Balanced (), [] and {} outside quoted strings, every {{...}} a known placeholder, and {{version}} among them. */
function queryProblem(query: string): string | undefined {
    const placeholders = [...query.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]);
    const unknown = placeholders.find((p) => !(METRIC_PLACEHOLDERS as readonly string[]).includes(p));
    if (unknown !== undefined) return `uses {{${unknown}}}, which is not a placeholder (${METRIC_PLACEHOLDERS.map((p) => `{{${p}}}`).join(", ")})`;
    if (!placeholders.includes("version")) return "has no {{version}}, so it cannot tell the candidate from the stable version";
    const open: string[] = [];
    const pairs: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
    let quote: string | undefined;
    for (let i = 0; i < query.length; i++) {
        const c = query[i];
        if (quote !== undefined) {
            // A backtick string is raw: no escapes in it.
            if (c === "\\" && quote !== "`") i++;
            else if (c === quote) quote = undefined;
        } else if (c === "#") {
            // A comment, to the end of its line.
            const end = query.indexOf("\n", i);
            i = end === -1 ? query.length : end;
        } else if (c === '"' || c === "'" || c === "`") quote = c;
        else if ("([{".includes(c)) open.push(c);
        else if (c in pairs && open.pop() !== pairs[c]) return `has an unmatched ${c} at character ${i + 1}`;
    }
    if (quote !== undefined) return `has an unclosed ${quote}`;
    if (open.length > 0) return `has an unclosed ${open[open.length - 1]}`;
    return undefined;
}

function readMetrics(r: Reader, value: unknown): CustomMetric[] {
    if (!Array.isArray(value) || value.length > 10) {
        r.fail("rollout.analysis.metrics", show(value), `must be a list of at most 10 metrics, each ${METRIC_EXAMPLE}`, setPathCommand("rollout.analysis.metrics[0].name", "p50-latency"));
        return [];
    }
    const metrics: CustomMetric[] = [];
    value.forEach((entry: unknown, i) => {
        const at = `rollout.analysis.metrics[${i}]`;
        if (!r.fields(at, entry, METRIC_FIELDS, METRIC_EXAMPLE, setPathCommand(`${at}.name`, "p50-latency"))) return;
        const name = r.stringAt(`${at}.name`, entry.name, /^[a-z][a-z0-9-]{0,62}$/, "must be a name of lowercase letters, digits and dashes, starting with a letter, at most 63 characters", "p50-latency");
        if (name !== undefined && metrics.some((m) => m.name === name)) r.fail(`${at}.name`, show(name), "is the name of another metric", setPathCommand(`${at}.name`, `${name}-2`));
        const problem = typeof entry.query === "string" && entry.query.trim() !== "" && entry.query.length <= 4000 ? queryProblem(entry.query) : "must be PromQL text of 1 to 4000 characters";
        if (problem !== undefined) r.fail(`${at}.query`, show(entry.query), `${problem}; a query over one version, such as the median latency below`, `pulumi config set --path '${at}.query' '${METRIC_EXAMPLE_QUERY}'`);
        const bounds = METRIC_BOUNDS.filter((b) => entry[b] !== undefined);
        if (bounds.length !== 1) {
            r.fail(at, show(entry), `must bound the candidate's value by exactly one of max, min or maxRatioToStable (it has ${bounds.length === 0 ? "none" : bounds.join(" and ")})`, setPathCommand(`${at}.max`, 100));
            return;
        }
        const bound = bounds[0];
        const number = bound === "maxRatioToStable" ? r.decimalAt(`${at}.${bound}`, entry[bound], 0.01, 1000, "times the stable version's value the candidate's may reach", 1.5) : r.decimalAt(`${at}.${bound}`, entry[bound], 0, 1e12, `the ${bound === "max" ? "most" : "least"} the candidate's value may be`, 100);
        if (name !== undefined && problem === undefined && number !== undefined && typeof entry.query === "string") metrics.push({ name, query: entry.query, [bound]: number });
    });
    return metrics;
}

function readWebhooks(r: Reader, value: unknown): RolloutSettings["webhooks"] {
    if (value === undefined || !r.fields("rollout.webhooks", value, WEBHOOK_KINDS, `{ ${WEBHOOK_KINDS.join(", ")} }, each { url, timeout? }`, setPathCommand("rollout.webhooks.loadTest.url", "http://loadtester.test/"))) return {};
    const webhooks: Partial<Record<WebhookKind, Webhook>> = {};
    for (const kind of WEBHOOK_KINDS) {
        const hook = value[kind];
        if (hook === undefined) continue;
        const at = `rollout.webhooks.${kind}`;
        if (!r.fields(at, hook, ["url", "timeout"], "{ url, timeout? }", setPathCommand(`${at}.url`, "http://loadtester.test/"))) continue;
        const url = readUrl(r, `${at}.url`, hook.url, "http://flagger-loadtester.test/");
        const timeout = hook.timeout === undefined ? "30s" : r.durationAt(`${at}.timeout`, hook.timeout, "how long the driver waits for the hook's answer", ROLLOUT_DURATIONS.webhookTimeout);
        if (url !== undefined && timeout !== undefined) webhooks[kind] = { url, timeoutMs: durationMs(timeout) };
    }
    return webhooks;
}

/**
 * rollout.notify: a list of { kind, url, events?, timeout? }. A URL may be a secret (`pulumi config set --secret
 * --path`): read without the Pulumi CLI it is "[secret]", kept as unknown, and checked where it is decrypted.
 */
function readNotify(r: Reader, value: unknown): Notifier[] {
    const fix = `pulumi config set --secret --path 'rollout.notify[0].url' https://hooks.slack.com/services/T000/B000/XXXX && pulumi config set --path 'rollout.notify[0].kind' slack`;
    if (!Array.isArray(value) || value.length > 10) {
        r.fail("rollout.notify", show(value), `must be a list of at most 10 notifiers, each ${NOTIFY_EXAMPLE}`, fix);
        return [];
    }
    const notifiers: Notifier[] = [];
    value.forEach((entry: unknown, i) => {
        const at = `rollout.notify[${i}]`;
        if (!r.fields(at, entry, NOTIFY_FIELDS, NOTIFY_EXAMPLE, setPathCommand(`${at}.kind`, "slack"))) return;
        const kind = NOTIFY_KINDS.find((k) => k === entry.kind);
        if (kind === undefined) r.fail(`${at}.kind`, show(entry.kind), `must be ${NOTIFY_KINDS.join(", ")} (Slack's incoming webhook, a Teams Workflows webhook, or any endpoint taking JSON)`, setPathCommand(`${at}.kind`, "slack"));
        const example = kind === "teams" ? "https://prod-00.westeurope.logic.azure.com/workflows/0000/triggers/manual/paths/invoke" : kind === "webhook" ? "https://hooks.example.com/rollouts" : "https://hooks.slack.com/services/T000/B000/XXXX";
        const url = entry.url === SECRET_VALUE ? undefined : readUrl(r, `${at}.url`, entry.url, example);
        const events = entry.events === undefined ? NOTIFY_EVENTS : readEvents(r, `${at}.events`, entry.events);
        const timeout = entry.timeout === undefined ? "10s" : r.durationAt(`${at}.timeout`, entry.timeout, "how long a notification may take before it is given up", ROLLOUT_DURATIONS.notifyTimeout);
        if (kind !== undefined && events !== undefined && timeout !== undefined && (url !== undefined || entry.url === SECRET_VALUE)) notifiers.push({ kind, ...(url !== undefined && { url }), events, timeoutMs: durationMs(timeout) });
    });
    return notifiers;
}

function readEvents(r: Reader, at: string, value: unknown): NotifyEvent[] | undefined {
    const events = Array.isArray(value) ? value.map((e) => NOTIFY_EVENTS.find((known) => known === e)) : [];
    if (!Array.isArray(value) || value.length === 0 || events.some((e) => e === undefined) || new Set(events).size !== events.length) {
        r.fail(at, show(value), `must be a list of distinct events among ${NOTIFY_EVENTS.join(", ")} (leave it out for all of them)`, setPathCommand(`${at}[0]`, "rollback"));
        return undefined;
    }
    return events.filter((e): e is NotifyEvent => e !== undefined);
}

export function readRollout(r: Reader): RolloutSettings {
    if (r.raw("rollout") === undefined) return ROLLOUT_DEFAULTS;
    const value = r.object("rollout", SHAPE, setPathCommand("rollout.interval", "1m"));
    if (value === undefined || !r.fields("rollout", value, ROLLOUT_FIELDS, SHAPE, setPathCommand("rollout.interval", "1m"))) return ROLLOUT_DEFAULTS;
    const steps = value.steps === undefined ? undefined : readSteps(r, value.steps);
    const interval = value.interval === undefined ? undefined : r.durationAt("rollout.interval", value.interval, "each step's wait before it is judged, and the window of the queries", ROLLOUT_DURATIONS.interval);
    const prometheusUrl = value.prometheusUrl === undefined ? undefined : readUrl(r, "rollout.prometheusUrl", value.prometheusUrl, "http://localhost:9090");
    const blueGreenTraffic = value.blueGreenTraffic === undefined ? undefined : BLUE_GREEN_TRAFFIC.find((t) => t === value.blueGreenTraffic);
    if (value.blueGreenTraffic !== undefined && blueGreenTraffic === undefined) {
        r.fail("rollout.blueGreenTraffic", show(value.blueGreenTraffic), "must be mirror (a share of live traffic copied to the idle color) or preview (requests with the preview header, such as a loadTest webhook sends)", setPathCommand("rollout.blueGreenTraffic", "mirror"));
    }
    const analysis = readAnalysis(r, value.analysis);
    return {
        steps: steps ?? ROLLOUT_DEFAULTS.steps,
        interval: interval ?? ROLLOUT_DEFAULTS.interval,
        intervalMs: interval === undefined ? ROLLOUT_DEFAULTS.intervalMs : durationMs(interval),
        analysis,
        webhooks: readWebhooks(r, value.webhooks),
        notify: value.notify === undefined ? [] : readNotify(r, value.notify),
        prometheusUrl: prometheusUrl ?? ROLLOUT_DEFAULTS.prometheusUrl,
        blueGreenTraffic: blueGreenTraffic ?? ROLLOUT_DEFAULTS.blueGreenTraffic,
    };
}
