// The report of a rollout (`npm run rollout:report`): its decision log drawn as one self-contained HTML page (uPlot
// inlined, a Content-Security-Policy that lets the page fetch nothing), and the same summed up in Markdown for a
// CI job's summary or a pull request's comment. What to draw is decided here, pure; the page only draws it.
import * as fs from "fs";
import * as path from "path";
import type { ServiceStatus } from "./control";
import type { DecisionEntry, LogEntry, StartEntry } from "./decision-log";
import { drawReport } from "./report-page";

/** One chart: series over a shared x (seconds since the epoch, or category indexes), and lines for its limits. */
export interface ChartSpec {
    readonly id: string;
    readonly title: string;
    readonly unit: string;
    readonly x: readonly number[];
    /** Category names for bar charts (x are their indexes). */
    readonly categories?: readonly string[];
    /** bars: drawn as bars, to the left (-1) or right (1) of their category, side by side with another series'. dashed: a limit as applied. */
    readonly series: readonly { readonly label: string; readonly values: readonly (number | null)[]; readonly color: string; readonly stepped?: boolean; readonly bars?: -1 | 1; readonly dashed?: boolean }[];
    /** The x range every time chart of a report shares (seconds): the whole rollout. */
    readonly xRange?: readonly [number, number];
    /** Horizontal lines: the hard limits and the tests' bounds. */
    readonly limits: readonly { readonly label: string; readonly value: number; readonly color: string }[];
}

/** A moment worth a mark on every time chart: an update, a decision that moved the rollout, an operator's action, the outcome. */
export interface Marker {
    readonly time: number;
    readonly label: string;
    readonly kind: "update" | "advance" | "rollback" | "action" | "outcome";
}

export interface Report {
    readonly title: string;
    /** Label and value rows of the summary table. */
    readonly summary: readonly (readonly [string, string])[];
    readonly charts: readonly ChartSpec[];
    readonly markers: readonly Marker[];
    /** Every decision, for the table under the charts. */
    readonly decisions: readonly { readonly at: string; readonly phase: string; readonly decision: string; readonly reason: string }[];
}

const COLORS = { candidate: "#d9480f", stable: "#1c7ed6", mirrored: "#f59f00", limit: "#e03131", bound: "#2f9e44", own: "#7048e8" } as const;
const seconds = (iso: string) => Date.parse(iso) / 1000;
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Reads a decision log (JSON lines); a line that does not parse is an error naming it. */
export function readDecisionLog(file: string): LogEntry[] {
    return fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line, i) => {
            try {
                return JSON.parse(line) as LogEntry;
            } catch {
                throw new Error(`${file} line ${i + 1} is not JSON: not a decision log (npm run rollout writes them to .rollout/<stack>/<rollout id>.jsonl)`);
            }
        });
}

/** The report of one rollout's log. */
export function rolloutReport(entries: readonly LogEntry[]): Report {
    const start = entries.find((e): e is StartEntry => e.event === "start");
    if (start === undefined) throw new Error("the log has no start line: not the log of a rollout's start (npm run rollout writes one first)");
    const decisions = entries.filter((e): e is DecisionEntry => e.event === "decision");
    const outcome = [...entries].reverse().find((e) => e.event === "outcome");
    const intervalS = start.intervalMs / 1000;
    const charts: ChartSpec[] = [];
    const times = decisions.map((d) => seconds(d.at));
    // One time axis for every chart: from the start to the last line.
    const xRange: [number, number] = [seconds(entries[0].at), Math.max(seconds(entries[0].at) + 1, seconds(entries[entries.length - 1].at))];
    for (const target of start.targets) {
        const { service } = target;
        // One point per instant, the last there (a promotion's updates can share the last decision's second).
        const weighed = entries.filter((e, i) => Object.hasOwn(e.weights, service) && seconds(e.at) !== seconds(entries[i + 1]?.at ?? ""));
        charts.push({
            id: `${service}-weights`,
            title: `${service}: share of live requests (%)`,
            unit: "%",
            x: weighed.map((e) => seconds(e.at)),
            xRange,
            series: [
                { label: `candidate ${target.candidate}`, values: weighed.map((e) => e.weights[service].candidate), color: COLORS.candidate, stepped: true },
                { label: `stable ${target.stable}`, values: weighed.map((e) => e.weights[service].stable), color: COLORS.stable, stepped: true },
                ...(target.release === "blueGreen" ? [{ label: `mirrored to ${target.candidate}`, values: weighed.map((e) => e.weights[service].mirrored ?? 0), color: COLORS.mirrored, stepped: true }] : []),
            ],
            limits: [],
        });
        const of = (d: DecisionEntry) => d.services.find((s) => s.service === service);
        // The hard limit as each interval applied it (relative to the stable), where it was checked.
        const applied = (limit: (a: NonNullable<ServiceStatus["applied"]>) => number) => ({ label: "hard limit as applied", values: decisions.map((d) => { const a = of(d)?.applied; return a === undefined ? null : round(limit(a)); }), color: COLORS.limit, dashed: true });
        const perVersion = (title: string, unit: string, value: (v: { requests?: number; errors?: number; p95Ms?: number }) => number | null, limit?: ChartSpec["series"][number]): ChartSpec => ({
            id: `${service}-${title.split(" ")[0]}`,
            title: `${service}: ${title}`,
            unit,
            x: times,
            xRange,
            series: [
                { label: `candidate ${target.candidate}`, values: decisions.map((d) => { const s = of(d); return s === undefined ? null : value(s.candidate); }), color: COLORS.candidate },
                { label: `stable ${target.stable}`, values: decisions.map((d) => { const s = of(d); return s === undefined ? null : value(s.stable); }), color: COLORS.stable },
                ...(limit === undefined ? [] : [limit]),
            ],
            limits: [],
        });
        charts.push(perVersion("requests per second", "req/s", (v) => (v.requests === undefined ? null : round(v.requests / intervalS))));
        charts.push(perVersion("5xx rate (%)", "%", (v) => (v.requests === undefined || v.requests === 0 ? null : round((100 * (v.errors ?? 0)) / v.requests)), applied((a) => 100 - a.minSuccessRate)));
        charts.push(perVersion("p95 latency (ms)", "ms", (v) => v.p95Ms ?? null, applied((a) => a.maxP95Ms)));
        for (const test of ["errors", "latency"] as const) {
            const first = decisions.map(of).find((s) => s !== undefined);
            charts.push({
                id: `${service}-${test}-test`,
                title: `${service}: the ${test} test's evidence (log likelihood ratios)`,
                unit: "",
                x: times,
                xRange,
                series: [
                    { label: "worse vs as good (rolls back at its line)", values: decisions.map((d) => of(d)?.[test].rollback ?? null), color: COLORS.limit },
                    { label: "worse by the margin vs as good (no worse at its line)", values: decisions.map((d) => of(d)?.[test].promotion ?? null), color: COLORS.bound },
                    { label: "its own rate below the margin (no worse at its line)", values: decisions.map((d) => of(d)?.[test].own ?? null), color: COLORS.own },
                ],
                limits: first === undefined ? [] : [
                    { label: "rolls back", value: round(first[test].rollbackAt), color: COLORS.limit },
                    { label: "shown no worse", value: round(first[test].promotionAt), color: COLORS.bound },
                    { label: "shown no worse by its own", value: round(first[test].ownAt), color: COLORS.own },
                ],
            });
        }
    }
    const markers: Marker[] = entries.flatMap((e): Marker[] => {
        const time = seconds(e.at);
        if (e.event === "update") return [{ time, label: e.update, kind: "update" }];
        if (e.event === "decision" && e.decision !== "hold") return [{ time, label: `${e.decision}: ${e.reason}`, kind: e.decision }];
        if (e.event === "action") return [{ time, label: `${e.actor}: ${e.action}${e.full === true ? " --full" : ""} (${e.reason})`, kind: "action" }];
        if (e.event === "outcome") return [{ time, label: `${e.outcome}: ${e.reason}`, kind: "outcome" }];
        return [];
    });
    const last = decisions.at(-1);
    const minutes = (entries.length > 1 ? seconds(entries[entries.length - 1].at) - seconds(entries[0].at) : 0) / 60;
    const summary: [string, string][] = [
        ["Rollout", `${start.rollout} on stack ${start.stack}`],
        ["Releases", start.targets.map((t) => `${t.service} ${t.stable} -> ${t.candidate} (${t.release})`).join("; ")],
        ["Started", `${start.at} by ${start.actor} (${start.action}: ${start.reason})`],
        ["Outcome", outcome === undefined ? "still running (no outcome line yet)" : `${outcome.outcome}: ${outcome.reason}`],
        ["Steps", `${start.steps.join("%, ")}% every ${intervalS}s; reached ${[...entries].reverse().find((e) => e.event === "update" && e.phase !== "rollback")?.phase ?? start.phase}`],
        ["Duration", `${round(minutes, 1)} minutes, ${decisions.length} decisions`],
        ...(last === undefined ? [] : last.services.map((s): [string, string] => [`Last decision, ${s.service}`, `candidate ${s.candidate.requests ?? "-"} req, ${s.candidate.errors ?? "-"} 5xx, p95 ${s.candidate.p95Ms ?? "-"}ms | stable ${s.stable.requests ?? "-"} req, ${s.stable.errors ?? "-"} 5xx, p95 ${s.stable.p95Ms ?? "-"}ms | limits ${s.limits}, errors test ${s.errors.outcome}, latency test ${s.latency.outcome}`])),
        ...entries.flatMap((e): [string, string][] => (e.event === "action" ? [[`Action at ${e.at}`, `${e.actor}: ${e.action}${e.full === true ? " --full" : ""}, "${e.reason}" -> ${e.result}`]] : [])),
    ];
    return {
        title: `Rollout ${start.rollout}: ${start.targets.map((t) => `${t.service} ${t.candidate}`).join(", ")} on ${start.stack}`,
        summary,
        charts,
        markers,
        decisions: decisions.map((d) => ({ at: d.at, phase: d.phase, decision: d.decision, reason: d.reason })),
    };
}

/** The report in Markdown: a CI job's summary, or a pull request's comment. */
export function reportMarkdown(report: Report, reportLocation: string): string {
    // A cell is one line of text: no row break, no table break, no HTML a renderer would run (an <img> fetches).
    const cell = (text: string) => escapeHtml(text).replace(/\|/g, "\\|").replace(/\r\n?|\n/g, " ");
    return [`### ${cell(report.title)}`, "", "| | |", "| --- | --- |", ...report.summary.map(([label, value]) => `| ${cell(label)} | ${cell(value)} |`), "", `The charts: ${cell(reportLocation)}`, ""].join("\n");
}

const escapeHtml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
/** JSON inside a script element: no "</script>" or comment opener can end it early. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

/** uPlot's script and style, inlined in every page: nothing is fetched when it is viewed. */
function uplotAssets(): { js: string; css: string } {
    const dist = path.dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));
    return { js: fs.readFileSync(path.join(dist, "uPlot.iife.min.js"), "utf8"), css: fs.readFileSync(path.join(dist, "uPlot.min.css"), "utf8") };
}

/** Writes a report's page: the same drawing for a rollout's log and for the benchmark. */
export function writeReportPage(report: Report, file: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, reportHtml(report, uplotAssets(), drawReport.toString()));
}

/** The page: the summary table, a chart per spec (drawn by uPlot, inlined), and the decisions. */
export function reportHtml(report: Report, uplot: { readonly js: string; readonly css: string }, draw: string): string {
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(report.title)}</title>
<style>${uplot.css}
body { font: 14px system-ui, sans-serif; margin: 24px; color: #212529; }
table { border-collapse: collapse; margin: 12px 0 24px; }
td, th { border: 1px solid #dee2e6; padding: 4px 8px; text-align: left; vertical-align: top; }
.chart { margin: 16px 0 28px; }
.chart h3 { margin: 0 0 4px; font-size: 15px; }
.marks { font-size: 12px; color: #495057; }
</style>
</head>
<body>
<h1>${escapeHtml(report.title)}</h1>
<table id="summary">${report.summary.map(([label, value]) => `<tr><th>${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`).join("")}</table>
${report.markers.length === 0 ? "" : `<p class="marks">Vertical marks on the time charts: grey an update, green an advance, red a rollback, purple an operator's action, black the outcome (listed under Moments). Dashed lines: the hard limits and the tests' bounds.</p>`}
<div id="charts"></div>
${report.markers.length === 0 ? "" : `<h2>Moments</h2>
<table id="moments"><tr><th>At</th><th>What</th></tr>${report.markers.map((m) => `<tr><td>${escapeHtml(new Date(m.time * 1000).toISOString())}</td><td>${escapeHtml(m.label)}</td></tr>`).join("")}</table>`}
${report.decisions.length === 0 ? "" : `<h2>Decisions</h2>
<table id="decisions"><tr><th>At</th><th>Phase</th><th>Decision</th><th>Why</th></tr>${report.decisions.map((d) => `<tr><td>${escapeHtml(d.at)}</td><td>${escapeHtml(d.phase)}</td><td>${escapeHtml(d.decision)}</td><td>${escapeHtml(d.reason)}</td></tr>`).join("")}</table>`}
<script>${uplot.js}</script>
<script>(${draw})(${scriptJson(report)});</script>
</body>
</html>
`;
}

/** What the benchmark's report needs of its run: the results, and who was compared how. */
export interface BenchReportInput {
    readonly runs: number;
    readonly results: readonly { readonly scenario: { readonly name: string; readonly regression: boolean }; readonly ours: BenchSummary; readonly flagger: BenchSummary }[];
    /** Lines describing the comparison (the command's own header lines). */
    readonly setup: readonly string[];
    readonly checks: readonly { readonly scenario: string; readonly target: string; readonly met: boolean; readonly detail: string }[];
}

interface BenchSummary {
    readonly runs: number;
    readonly rolledBack: number;
    readonly promoted: number;
    readonly meanDecisionMinutes: number;
    readonly meanExcessErrorsDay: number;
}

/** `npm run bench:rollout -- --report FILE`: ours against Flagger per scenario, drawn as the rollout report is. */
export function benchReport(input: BenchReportInput): Report {
    const perThousand = (part: number, whole: number) => Math.round((1000 * part) / whole);
    const chart = (id: string, title: string, unit: string, which: (r: BenchReportInput["results"][number]) => boolean, value: (s: BenchSummary) => number): ChartSpec => {
        const rows = input.results.filter(which);
        return {
            id,
            title,
            unit,
            x: rows.map((_, i) => i),
            categories: rows.map((r) => r.scenario.name),
            series: [
                { label: "ours", values: rows.map((r) => round(value(r.ours), 1)), color: COLORS.candidate, bars: -1 },
                { label: "Flagger", values: rows.map((r) => round(value(r.flagger), 1)), color: COLORS.stable, bars: 1 },
            ],
            limits: [],
        };
    };
    const healthy = (r: BenchReportInput["results"][number]) => !r.scenario.regression;
    const bad = (r: BenchReportInput["results"][number]) => r.scenario.regression;
    return {
        title: `npm run bench:rollout: ours against Flagger, ${input.runs} simulated rollouts per scenario`,
        summary: [...input.setup.map((line, i): [string, string] => [i === 0 ? "Setup" : "", line]), ...input.checks.map((c): [string, string] => [`${c.met ? "met" : "missed"}: ${c.scenario}`, `${c.target} (${c.detail})`])],
        charts: [
            chart("healthy-rolled-back", "Healthy candidates rolled back, per 1,000 (lower is better)", "per 1,000", healthy, (s) => perThousand(s.rolledBack, s.runs)),
            chart("bad-promoted", "Bad candidates promoted, per 1,000 (lower is better)", "per 1,000", bad, (s) => perThousand(s.promoted, s.runs)),
            chart("excess-errors", "Excess 5xx a bad candidate served in 24 hours (lower is better)", "5xx", bad, (s) => s.meanExcessErrorsDay),
            chart("minutes", "Minutes to the decision", "minutes", () => true, (s) => s.meanDecisionMinutes),
        ],
        markers: [],
        decisions: [],
    };
}
