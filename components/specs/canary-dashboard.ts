// The canary dashboard Grafana is provisioned with (observability: true): a row per service that runs more than
// one version, with the weights as traffic follows them (each version's observed share of requests) and each
// version's requests, 5xx rate and p95, all from the very releaseQueries `npm run rollout` judges by. It holds no
// configured weight: a weight change would then update Grafana's release (and restart it) at every rollout step,
// where a release transition changes routing alone; the configured split is the trafficSplit output.
import type { Dashboard, Panel, RowPanel } from "@grafana/schema";
import type { TrafficPlan } from "../plan/plan";
import { CANARY_DASHBOARD_UID, PROMETHEUS_DATASOURCE_UID, ReleaseQueries } from "./observability-specs";
/** Grafana's dashboard JSON model version the panels are written in (Grafana 11 and 12 read it as is). */
const SCHEMA_VERSION = 39;

const datasource = { type: "prometheus", uid: PROMETHEUS_DATASOURCE_UID } as const;
/** Grafana's grid is 24 columns wide. */
const WIDTH = 24;

/** A time series of one PromQL expression per version (legend: the version), in `unit`. */
function timeseries(id: number, title: string, expr: string, unit: string, gridPos: Panel["gridPos"], description: string): Panel {
    return {
        id,
        type: "timeseries",
        title,
        description,
        datasource,
        gridPos,
        targets: [{ refId: "A", datasource, expr, legendFormat: "{{destination_version}}", range: true }],
        fieldConfig: { defaults: { unit }, overrides: [] },
        options: { legend: { displayMode: "table", placement: "right", calcs: ["lastNotNull"] }, tooltip: { mode: "multi" } },
    };
}

export function canaryDashboard(plan: TrafficPlan, queries: Readonly<Record<string, ReleaseQueries>>, interval: string): Dashboard {
    const panels: (Panel | RowPanel)[] = [];
    let id = 1;
    let y = 0;
    for (const service of plan.services.filter((s) => Object.hasOwn(queries, s.name))) {
        const q = queries[service.name];
        panels.push({ id: id++, type: "row", title: `${service.name} (${service.release})`, collapsed: false, gridPos: { x: 0, y: y++, w: WIDTH, h: 1 }, panels: [] });
        panels.push(timeseries(id++, "Current weights: each version's share of requests", `${q.requests} / ignoring(destination_version) group_left sum(${q.requests})`, "percentunit", { x: 0, y, w: WIDTH, h: 8 }, "Each version's share of the requests the mesh counted over the rollout interval: the weights as traffic follows them (the configured split is the stack's trafficSplit output; a blue/green idle color's share is its mirrored copies)."));
        y += 8;
        panels.push(timeseries(id++, `Requests per ${interval}`, q.requests, "short", { x: 0, y, w: 8, h: 8 }, `releaseQueries.requests: each version's requests over the rollout interval (${interval}), as the rollout counts them.`));
        panels.push(timeseries(id++, "5xx rate", `1 - (${q.successRate})`, "percentunit", { x: 8, y, w: 8, h: 8 }, "One less releaseQueries.successRate: each version's share of requests answered 5xx."));
        panels.push(timeseries(id++, "p95 latency", q.p95LatencyMs, "ms", { x: 16, y, w: 8, h: 8 }, "releaseQueries.p95LatencyMs: each version's 95th percentile request duration."));
        y += 8;
    }
    return {
        uid: CANARY_DASHBOARD_UID,
        title: "Istio canary: versions side by side",
        description: "Each version of each service that runs more than one, from the stack's releaseQueries: what npm run rollout judges.",
        tags: ["istio", "canary", "rollout"],
        editable: false,
        schemaVersion: SCHEMA_VERSION,
        time: { from: "now-1h", to: "now" },
        refresh: "30s",
        timezone: "browser",
        panels,
    };
}
