// `--dry-run`: what a rollout would do, touching nothing. Each phase's config is run through the program under
// the mocks, so the split and the objects each step changes are the program's own answer.
import type { TrafficSplit } from "../components/plan/outputs";
import { promDuration } from "../components/specs/observability-specs";
import { runProgramWith } from "../lib/mock-program";
import { stepExposure } from "./analysis";
import { boundText } from "./metrics";
import { ConfigEdit, pathKey, StackConfig } from "./config-edit";
import { changedObjects } from "./diff";
import type { PreparedRollout } from "./driver";
import { byVersion } from "./prometheus";

const editLine = (e: ConfigEdit) => (e.value === undefined ? `pulumi config rm --path '${pathKey(e.path)}'` : `pulumi config set${e.path.length > 1 ? " --path" : ""} '${pathKey(e.path)}' ${typeof e.value === "object" ? `'${JSON.stringify(e.value)}'` : String(e.value)}`);

/** Requests per second each service receives now, from the same requests query the analysis uses. */
export async function observedRates(p: PreparedRollout): Promise<Record<string, number>> {
    const seconds = p.settings.rollout.intervalMs / 1000;
    const rates: Record<string, number> = {};
    for (const t of p.targets) {
        const requests = await byVersion(p.settings.rollout.prometheusUrl, p.queries[t.service].requests);
        rates[t.service] = [...requests.values()].reduce((a, b) => a + b, 0) / seconds;
    }
    return rates;
}

const proofLabel = (p: PreparedRollout) => `step ${p.phases.proofStep + 1} (${p.phases.steps[p.phases.proofStep].percent}%)`;

export async function previewRollout(p: PreparedRollout, rates: Readonly<Record<string, number>> | undefined, rateSource: string, log: (line: string) => void): Promise<void> {
    const { rollout } = p.settings;
    const { analysis } = rollout;
    const services = p.targets.map((t) => t.service);
    log(`Rollout of ${p.targets.map((t) => `${t.service} (${t.release}: ${t.stableVersion} -> ${t.candidateVersion})`).join(", ")} on stack ${p.stack}: a dry run, nothing is changed.`);
    log("");
    log(`Each step waits ${rollout.interval}, then judges every candidate by Prometheus at ${rollout.prometheusUrl}:`);
    log(`  against its stable version, by sequential tests: roll back when worse by ${analysis.errorMarginPoints} points of errors or ${analysis.slowRatio}x the slow requests (false rollbacks at most ${analysis.falseRollbackPercent}%); leave ${proofLabel(p)} only once shown no worse (missed regressions at most ${analysis.missedRegressionPercent}%) and watched serving for bakeTime ${promDuration(analysis.bakeTimeMs)}`);
    log(`  hard limits on each interval of at least ${analysis.minRequests} candidate requests: success rate >= ${analysis.minSuccessRate}% (or the stable's less ${analysis.errorMarginPoints} points, if lower; failing beyond chance), p95 <= ${analysis.maxP95LatencyMs}ms (or ${analysis.slowRatio}x the stable's, if higher); ${analysis.failedChecks} failed checks roll back`);
    log(`  a step advances after an interval whose candidate requests were within the limits; no data: hold (never promote); ${promDuration(analysis.progressDeadlineMs)} failing or unobserved: roll back`);
    for (const t of p.targets) {
        log(`  ${t.service}:`);
        for (const [name, query] of Object.entries(p.queries[t.service])) log(`    ${name}: ${query}`);
        for (const { metric, candidate, stable } of p.metricQueries[t.service] ?? []) {
            log(`    metric ${metric.name}, a hard limit (${boundText(metric)}): ${candidate}${metric.maxRatioToStable === undefined ? "" : `; stable: ${stable}`}`);
        }
    }
    const phases: { label: string; edits: readonly ConfigEdit[]; config: StackConfig }[] = [
        ...p.phases.steps.map((s, i) => ({ label: `step ${i + 1}/${p.phases.steps.length} (${s.percent}%)`, edits: s.edits, config: s.config })),
        ...(p.phases.switch ? [{ label: "switch", edits: p.phases.switch.edits, config: p.phases.switch.config }] : []),
        ...(p.phases.drain && (p.phases.steps.at(-1)?.percent ?? 0) < 100 ? [{ label: "promote, every request to the candidates first", edits: p.phases.drain.edits, config: p.phases.drain.config }] : []),
        { label: "promote", edits: p.phases.promotion.edits, config: p.phases.promotion.config },
    ];
    let before = await runProgramWith(p.stack, { ...p.config });
    let lastStep = before;
    // A rollback may come at any step; from the last one it undoes the most, so its diff is taken from there.
    for (const phase of [...phases, { label: "rollback (at any step)", edits: p.phases.rollback.edits, config: p.phases.rollback.config }]) {
        if (phase.label.startsWith("rollback")) before = lastStep;
        const after = await runProgramWith(p.stack, { ...phase.config });
        const split = after.outputs.trafficSplit as TrafficSplit;
        log("");
        log(`${phase.label}:`);
        for (const e of phase.edits) log(`  ${editLine(e)}`);
        for (const s of services) if (Object.hasOwn(split, s)) log(`  ${s}: ${Object.entries(split[s]).map(([v, w]) => `${v}=${w}%`).join("  ")}`);
        const changed = changedObjects(before, after);
        log(`  changes: ${changed.length === 0 ? "no object" : changed.join(", ")}`);
        if (phase.label.startsWith("step")) lastStep = after;
        before = after;
    }
    log("");
    if (rates === undefined) {
        log(`Worst case before a rollback: unknown, no request rate (${rateSource}); pass --request-rate <requests per second>.`);
        return;
    }
    log(`Worst case before a rollback, at ${rateSource}: a candidate that turns bad at a step serves at most`);
    for (const t of p.targets) {
        const rate = rates[t.service] ?? 0;
        // Mirrored requests are answered by the active color: a blue/green candidate serves users only after the switch.
        const served = t.release === "blueGreen" ? [{ percent: 100, label: "the switch", kind: "final" as const }] : rollout.steps.map((percent, i) => ({ percent, label: `${percent}%`, kind: i === p.phases.proofStep ? ("proof" as const) : percent === 100 ? ("final" as const) : ("step" as const) }));
        const exposures = served.map((step) => ({ ...step, ...stepExposure(step.percent, rate, rollout.intervalMs, analysis, step.kind) }));
        const unbounded = { proof: "it holds until the sequential tests decide, which bound it only in probability", final: "it passes after one interval, and nothing checks it after that", step: "" };
        const lines = exposures.map((e) =>
            e.limitsFire
                ? `${e.requests ?? 0} at ${e.label}`
                : `at ${e.label} the hard limits cannot fire (${Math.round(e.perInterval)} candidate requests an interval, fewer than minRequests ${analysis.minRequests}): ${e.requests === undefined ? unbounded[e.kind] : `the step advances after one interval, ${e.requests}`}`,
        );
        const bounded = exposures.every((e) => e.requests !== undefined);
        const most = Math.max(0, ...exposures.map((e) => e.requests ?? 0));
        log(`  ${t.service} (${rate.toFixed(1)} requests/s): ${lines.join("; ")}; ${bounded ? `at most ${most}` : `no bound from the hard limits where they cannot fire at the proof or the last step${exposures.some((e) => e.requests !== undefined) ? `; ${most} at most elsewhere` : ""}`}`);
    }
}
