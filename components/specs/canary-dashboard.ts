// The canary dashboard Grafana is provisioned with (observability: true): a row per service of the app namespace
// (a `service` variable, repeated), with the weights as traffic follows them (each version's share of requests)
// and each version's requests, 5xx rate and p95, from releaseQueries' own queries over variables rather than one
// service's labels. So it depends on nothing a release changes (no weight, version or release kind): a rollout step
// or a promotion changes routing alone, never Grafana's release; only appNamespace, rollout.interval and dataPlane
// (which proxies report) shape it.
import { type Dashboard, type Panel, type RowPanel, type VariableModel, VariableRefresh } from "@grafana/schema";
import { CANARY_DASHBOARD_UID, PROMETHEUS_DATASOURCE_UID, versionQueries } from "./observability-specs";
import type { DataPlane } from "../config/config";

/** Grafana's dashboard JSON model version the panels are written in (Grafana 11 and 12 read it as is). */
const SCHEMA_VERSION = 39;
const datasource = { type: "prometheus", uid: PROMETHEUS_DATASOURCE_UID } as const;
/** Grafana's grid is 24 columns wide. */
const WIDTH = 24;
/** The series of one service's versions, as the variables pick them. */
export const CANARY_SELECTOR = 'reporter="$reporter", destination_workload_namespace="$namespace", destination_app="$service"';

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

export function canaryDashboard(namespace: string, interval: string, dataPlane: DataPlane): Dashboard {
    // An ambient namespace's requests are reported by its waypoint only; a sidecar one's by both proxies.
    const reporters = dataPlane === "ambient" ? ["waypoint"] : ["source", "destination"];
    const q = versionQueries(CANARY_SELECTOR, interval);
    const variables: VariableModel[] = [
        // A constant: Grafana does not show it on the dashboard.
        { type: "constant", name: "namespace", query: namespace },
        {
            type: "query",
            name: "service",
            label: "Service",
            datasource,
            query: `label_values(istio_requests_total{destination_workload_namespace="$namespace"}, destination_app)`,
            refresh: VariableRefresh.onTimeRangeChanged,
            multi: true,
            includeAll: true,
            description: "The services of the app namespace the mesh has counted requests of: a row each.",
        },
        {
            type: "custom",
            name: "reporter",
            label: "Reporter",
            query: reporters.join(","),
            current: { text: reporters[0], value: reporters[0] },
            options: reporters.map((r, i) => ({ text: r, value: r, selected: i === 0 })),
            description:
                dataPlane === "ambient"
                    ? "waypoint: what the namespace's waypoint routed, each request once with what its caller got (how every release is judged on ambient)."
                    : "source: what callers saw, a retried 5xx counted once (how a canary is judged); destination: what each version's proxies received, mirrored copies included (how a blue/green idle color is judged).",
        },
    ];
    const panels: (Panel | RowPanel)[] = [
        { id: 1, type: "row", title: "$service", collapsed: false, repeat: "service", gridPos: { x: 0, y: 0, w: WIDTH, h: 1 }, panels: [] },
        timeseries(2, "Current weights: each version's share of requests", `${q.requests} / ignoring(destination_version) group_left sum(${q.requests})`, "percentunit", { x: 0, y: 1, w: WIDTH, h: 8 }, "Each version's share of the requests the reporter counted over the rollout interval: the weights as traffic follows them (the configured split is the stack's trafficSplit output). With the destination reporter, a blue/green idle color's share is its mirrored copies."),
        timeseries(3, `Requests per ${interval}`, q.requests, "short", { x: 0, y: 9, w: 8, h: 8 }, `releaseQueries.requests: each version's requests over the rollout interval (${interval}), as the rollout counts them.`),
        timeseries(4, "5xx rate", `1 - (${q.successRate})`, "percentunit", { x: 8, y: 9, w: 8, h: 8 }, "One less releaseQueries.successRate: each version's share of requests answered 5xx."),
        timeseries(5, "p95 latency", q.p95LatencyMs, "ms", { x: 16, y: 9, w: 8, h: 8 }, "releaseQueries.p95LatencyMs: each version's 95th percentile request duration."),
    ];
    return {
        uid: CANARY_DASHBOARD_UID,
        title: "Istio canary: versions side by side",
        description: "Each version of each service of the app namespace, from the stack's releaseQueries: what npm run rollout judges.",
        tags: ["istio", "canary", "rollout"],
        editable: false,
        schemaVersion: SCHEMA_VERSION,
        time: { from: "now-1h", to: "now" },
        refresh: "30s",
        timezone: "browser",
        templating: { list: variables },
        panels,
    };
}
