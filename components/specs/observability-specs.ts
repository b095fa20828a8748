// Pure values for watching a release: the add-on charts and their values, the Telemetry spec, Istio's tracing
// provider, and the PromQL a release is judged by.
import type { ITelemetry } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry" with { "resolution-mode": "import" };
import type { HelmChart } from "./helm-chart";
import type { ObservabilitySettings } from "../config/observability-config";
import type { TrafficPlan } from "../plan/plan";
import { versionServiceName } from "../config/names";
import type { Dashboard } from "@grafana/schema";


export type TelemetrySpec = NonNullable<ITelemetry["spec"]>;

/** Each add-on from its project's official chart, at a pinned version (upgrades are reviewed code changes). */
export const ADDON_CHARTS = {
    prometheus: { repo: "https://prometheus-community.github.io/helm-charts", chart: "prometheus", version: "27.42.2" },
    grafana: { repo: "https://grafana.github.io/helm-charts", chart: "grafana", version: "8.6.3" },
    kiali: { repo: "https://kiali.org/helm-charts", chart: "kiali-server", version: "2.24.0" },
    jaeger: { repo: "https://jaegertracing.github.io/helm-charts", chart: "jaeger", version: "4.0.1" },
} as const satisfies Record<string, HelmChart>;

export const ADDON_NAMESPACE = "istio-system";
export const TRACING_PROVIDER = "jaeger";
const PROMETHEUS_URL = `http://prometheus.${ADDON_NAMESPACE}.svc.cluster.local:9090`;
/**
 * The Services the jaeger chart (4.x, all-in-one) creates for release `jaeger`: `<fullname>-collector` (OTLP on
 * 4317) and `<fullname>-query` (UI and API on 16686). It creates no Service named `jaeger`.
 */
export const JAEGER_COLLECTOR = "jaeger-collector";
export const JAEGER_QUERY = "jaeger-query";
const JAEGER_COLLECTOR_HOST = `${JAEGER_COLLECTOR}.${ADDON_NAMESPACE}.svc.cluster.local`;
const JAEGER_QUERY_URL = `http://${JAEGER_QUERY}.${ADDON_NAMESPACE}.svc.cluster.local:16686`;

/** Istio's extension provider for traces: Jaeger v2 receives OTLP over gRPC on 4317. */
export interface TracingExtensionProvider {
    name: string;
    opentelemetry: { service: string; port: number };
}

export function tracingExtensionProvider(): TracingExtensionProvider {
    return { name: TRACING_PROVIDER, opentelemetry: { service: JAEGER_COLLECTOR_HOST, port: 4317 } };
}

/** The mesh-wide Telemetry resource: trace sampling to Jaeger and Envoy access logs, as configured. */
export function telemetrySpec(settings: ObservabilitySettings): TelemetrySpec | undefined {
    if (!settings.enabled && !settings.accessLogging) return undefined;
    return {
        ...(settings.enabled && { tracing: [{ providers: [{ name: TRACING_PROVIDER }], randomSamplingPercentage: settings.traceSamplingPercent }] }),
        ...(settings.accessLogging && { accessLogging: [{ providers: [{ name: "envoy" }] }] }),
    };
}

export function prometheusValues(volume: ObservabilitySettings["prometheusVolume"]) {
    const persistentVolume = volume === undefined ? { enabled: false } : { enabled: true, size: volume.size, ...(volume.storageClass !== undefined && { storageClass: volume.storageClass }) };
    return {
        // Istio's sidecars publish merged app and proxy metrics behind prometheus.io annotations, which the
        // chart's default kubernetes-pods job scrapes.
        server: { fullnameOverride: "prometheus", service: { servicePort: 9090 }, persistentVolume, global: { scrape_interval: "15s" } },
        alertmanager: { enabled: false },
        "prometheus-pushgateway": { enabled: false },
        "prometheus-node-exporter": { enabled: false },
        "kube-state-metrics": { enabled: false },
    };
}

/** The provisioned Prometheus data source's uid, which the canary dashboard's panels name. */
export const PROMETHEUS_DATASOURCE_UID = "prometheus";
/** The canary dashboard's uid: its address, /d/istio-canary. */
export const CANARY_DASHBOARD_UID = "istio-canary";

/** Istio's published Grafana dashboards, by grafana.com id. */
export const ISTIO_DASHBOARDS = { "istio-mesh": 7639, "istio-service": 7636, "istio-workload": 7630, "istio-control-plane": 7645, "istio-performance": 11829 } as const;

/**
 * Grafana with Prometheus as its data source (a fixed uid the canary dashboard names), Istio's dashboards from
 * grafana.com, and the canary dashboard inline (the chart writes it to a ConfigMap its file provider reads).
 */
export function grafanaValues(canary: Dashboard): object {
    const provider = (name: string) => ({ name, orgId: 1, folder: name, type: "file", disableDeletion: false, options: { path: `/var/lib/grafana/dashboards/${name}` } });
    return {
        service: { port: 3000 },
        datasources: { "datasources.yaml": { apiVersion: 1, datasources: [{ name: "Prometheus", uid: PROMETHEUS_DATASOURCE_UID, type: "prometheus", access: "proxy", url: PROMETHEUS_URL, isDefault: true }] } },
        dashboardProviders: { "dashboardproviders.yaml": { apiVersion: 1, providers: [provider("istio"), provider("rollouts")] } },
        dashboards: {
            istio: Object.fromEntries(Object.entries(ISTIO_DASHBOARDS).map(([name, gnetId]) => [name, { gnetId, datasource: "Prometheus" }])),
            rollouts: { canary: { json: JSON.stringify(canary) } },
        },
    };
}

/**
 * The jaeger chart's collector Service is headless by default; Istio treats a headless Service as passthrough,
 * which its tracer cannot send to, so the collector gets a cluster IP.
 */
export function jaegerValues(): object {
    return { allInOne: { service: { headless: false } } };
}

/**
 * Kiali's service account may create and delete Istio objects cluster-wide, and anonymous login hands that to
 * anyone who reaches the UI: anonymous only on a local (kind) cluster, a Kubernetes token everywhere else.
 */
export function kialiValues(localCluster: boolean) {
    return {
        auth: { strategy: localCluster ? "anonymous" : "token" },
        external_services: {
            prometheus: { url: PROMETHEUS_URL },
            grafana: { enabled: true, internal_url: `http://grafana.${ADDON_NAMESPACE}.svc.cluster.local:3000` },
            tracing: { enabled: true, internal_url: JAEGER_QUERY_URL, use_grpc: false },
        },
    };
}

/** How to open each UI from a workstation. */
export function dashboardCommands(): Record<string, string> {
    return {
        kiali: `kubectl -n ${ADDON_NAMESPACE} port-forward svc/kiali 20001:20001   # http://localhost:20001`,
        grafana: `kubectl -n ${ADDON_NAMESPACE} port-forward svc/grafana 3000:3000   # http://localhost:3000`,
        canary: `kubectl -n ${ADDON_NAMESPACE} port-forward svc/grafana 3000:3000   # http://localhost:3000/d/${CANARY_DASHBOARD_UID}: each version's requests, 5xx and p95, and the weights`,
        prometheus: `kubectl -n ${ADDON_NAMESPACE} port-forward svc/prometheus 9090:9090   # http://localhost:9090`,
        jaeger: `kubectl -n ${ADDON_NAMESPACE} port-forward svc/${JAEGER_QUERY} 16686:16686   # http://localhost:16686`,
    };
}

/** The PromQL of one service's release, per version over one window: the counts a rollout is judged by, and the rates people read. */
export interface ReleaseQueries {
    /** Requests each version received in the window. */
    readonly requests: string;
    /** Of those, answered 5xx. */
    readonly errors: string;
    /** The request duration histogram of the window, by `le`. */
    readonly latencyBuckets: string;
    /** Share of each version's requests (0-1) that did not answer 5xx; 0 for a version that answered only 5xx. */
    readonly successRate: string;
    readonly p95LatencyMs: string;
    /**
     * A canary's: 5xx its callers' proxies answered themselves (a route timeout's 504, a connect failure's 503),
     * which carry no version (destination_version "unknown"), so no version's counts hold them.
     */
    readonly unattributedErrors?: string;
}

/** A window in Prometheus's duration syntax (whole units, no decimals): a fraction of a millisecond is rounded. */
export function promDuration(duration: number): string {
    const ms = Math.round(duration);
    return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * PromQL for each service that runs more than one version: requests, errors, the latency histogram, success
 * rate and p95 latency per version, from Istio's standard metrics (the labs queried by `version`, a label these
 * metrics do not have; the label is `destination_version`). A canary is judged by what its callers saw
 * (reporter="source": a 5xx the mesh retried into a success is no failure, and one that stayed a failure is one,
 * not one per attempt); a blue/green service by what its proxies received (reporter="destination"), as the idle
 * color serves only mirrored copies, which no caller sees. In an ambient namespace the waypoint is the one L7 proxy
 * between caller and version (reporter="waypoint"; ztunnel reports only TCP), and it counts each request once.
 * The window is the rollout interval: `npm run rollout`
 * judges each interval by the first three, so a person can run them too.
 */
export function releaseQueries(plan: TrafficPlan, windowMs: number): Record<string, ReleaseQueries> {
    const window = promDuration(windowMs);
    return Object.fromEntries(
        plan.services
            .filter((s) => s.subsets.length > 1)
            .map((s): [string, ReleaseQueries] => {
                const { selector, unattributed } = selectors(s);
                return [s.name, { ...versionQueries(selector, window), ...(unattributed && { unattributedErrors: `sum(increase(istio_requests_total{${unattributed}}[${window}]))` }) }];
            }),
    );
}

/** The per-version queries of releaseQueries over the series `selector` picks: a service's, or a dashboard's variables. */
export function versionQueries(selector: string, window: string): Omit<ReleaseQueries, "unattributedErrors"> {
    const all = `sum by (destination_version) (rate(istio_requests_total{${selector}}[${window}]))`;
    const ok = `sum by (destination_version) (rate(istio_requests_total{${selector}, response_code!~"5.."}[${window}]))`;
    return {
        requests: `sum by (destination_version) (increase(istio_requests_total{${selector}}[${window}]))`,
        errors: `sum by (destination_version) (increase(istio_requests_total{${selector}, response_code=~"5.."}[${window}]))`,
        latencyBuckets: `sum by (le, destination_version) (increase(istio_request_duration_milliseconds_bucket{${selector}}[${window}]))`,
        // A version with only 5xx has no series in `ok`: `or ... * 0` makes its rate 0 rather than absent.
        successRate: `(${ok} or ${all} * 0) / ${all}`,
        p95LatencyMs: `histogram_quantile(0.95, sum by (le, destination_version) (rate(istio_request_duration_milliseconds_bucket{${selector}}[${window}])))`,
    };
}

/** The proxy whose reports judge a service (see releaseQueries). */
export type Reporter = "source" | "destination" | "waypoint";

/**
 * Which proxy's reports judge a service, the selector of its series, and for a canary the selector of 5xx no
 * version answered (a timeout or failed connection the judging proxy answered itself, destination_version
 * "unknown"). With the Gateway API such a 5xx may name the version's own Service rather than the app's.
 */
function selectors(s: TrafficPlan["services"][number]): { readonly reporter: Reporter; readonly selector: string; readonly unattributed?: string } {
    // In ambientReady the sidecars still report every request; the waypoint only the edge's.
    const reporter: Reporter = s.dataPlane === "ambient" ? "waypoint" : s.release === "canary" ? "source" : "destination";
    const selector = `reporter="${reporter}", destination_workload_namespace="${s.namespace}", destination_app="${s.name}"`;
    if (s.release !== "canary") return { reporter, selector };
    const serviceNames = [s.name, ...new Set(s.subsets.map((sub) => versionServiceName(s.name, sub.version)))].join("|");
    return { reporter, selector, unattributed: `reporter="${reporter}", destination_service_namespace="${s.namespace}", destination_service_name=~"${serviceNames}", destination_version="unknown", response_code=~"5.."` };
}

/** The counters behind releaseQueries' first three (and unattributedErrors), summed per version at one instant. */
export interface ReleaseCounters {
    readonly requests: string;
    readonly errors: string;
    readonly latencyBuckets: string;
    readonly unattributedErrors?: string;
}

/**
 * The driver reads a window's counts as the difference of these counters at its two ends: exact, where `increase`
 * extrapolates the samples it has to the whole window (about 4/3 of the requests, with 15 s scrapes and a 1 m
 * window), which would overstate every piece of evidence.
 */
export function releaseCounters(plan: TrafficPlan): Record<string, ReleaseCounters> {
    return Object.fromEntries(
        plan.services
            .filter((s) => s.subsets.length > 1)
            .map((s): [string, ReleaseCounters] => {
                const { selector, unattributed } = selectors(s);
                return [
                    s.name,
                    {
                        requests: `sum by (destination_version) (istio_requests_total{${selector}})`,
                        errors: `sum by (destination_version) (istio_requests_total{${selector}, response_code=~"5.."})`,
                        latencyBuckets: `sum by (le, destination_version) (istio_request_duration_milliseconds_bucket{${selector}})`,
                        ...(unattributed && { unattributedErrors: `sum(istio_requests_total{${unattributed}})` }),
                    },
                ];
            }),
    );
}

