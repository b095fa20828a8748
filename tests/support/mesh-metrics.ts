// The exporter the rollout scenarios' Prometheus scrapes (npm test starts Debian's `prometheus` on a loopback
// port, scripts/prometheus.mjs): Istio's standard metrics (istio_requests_total,
// istio_request_duration_milliseconds) with their labels, for traffic that follows the routes the rollout last
// rendered, shaped by each scenario.
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { parse } from "yaml";
import { ISTIO_BUCKETS_MS } from "../../rollout/simulation";

/** Istio's default finite bounds for istio_request_duration_milliseconds (+Inf is written on its own). */
const BUCKETS_MS = ISTIO_BUCKETS_MS.filter((le) => le !== Infinity);

export interface VersionBehaviour {
    /** Share of requests answered 503. */
    readonly errorRate: number;
    readonly latencyMs: number;
}

/** One app's traffic: requests per second at the edge, and how each version answers. */
export interface AppTraffic {
    readonly namespace: string;
    readonly app: string;
    readonly requestsPerSecond: number;
    readonly versions: Readonly<Record<string, VersionBehaviour>>;
    /** Requests per second each version receives now (served and mirrored). */
    readonly route: () => Readonly<Record<string, number>>;
}

/**
 * Where an app's requests go, read from the rendered mesh VirtualService and DestinationRule: the release
 * route's weights, plus the mirrored share, per pod version. Before the first render, all to `stable`.
 */
export function renderedRoute(renderDir: string, namespace: string, app: string, stable: string, requestsPerSecond: number): () => Record<string, number> {
    return () => {
        const vsFile = path.join(renderDir, `virtualservice-${namespace}-${app}.yaml`);
        const drFile = path.join(renderDir, `destinationrule-${namespace}-${app}.yaml`);
        if (!fs.existsSync(vsFile) || !fs.existsSync(drFile)) return { [stable]: requestsPerSecond };
        type Route = { route: { destination: { subset: string }; weight?: number }[]; mirrors?: { destination: { subset: string }; percentage?: { value: number } }[] };
        const vs = parse(fs.readFileSync(vsFile, "utf8")) as { spec: { http: Route[] } };
        const dr = parse(fs.readFileSync(drFile, "utf8")) as { spec: { subsets: { name: string; labels: { version: string } }[] } };
        const version = (subset: string) => dr.spec.subsets.find((s) => s.name === subset)?.labels.version ?? subset;
        const release = vs.spec.http[vs.spec.http.length - 1];
        const rates: Record<string, number> = {};
        for (const d of release.route) rates[version(d.destination.subset)] = (rates[version(d.destination.subset)] ?? 0) + (requestsPerSecond * (d.weight ?? 100)) / 100;
        for (const mirror of release.mirrors ?? []) {
            const mirrored = version(mirror.destination.subset);
            rates[mirrored] = (rates[mirrored] ?? 0) + (requestsPerSecond * (mirror.percentage?.value ?? 100)) / 100;
        }
        return rates;
    };
}

interface Counters {
    ok: number;
    failed: number;
    buckets: number[];
    sum: number;
}

/** Serves /metrics for every registered app; each scrape adds the requests since the last one. */
export class MeshMetricsExporter {
    private readonly apps: { traffic: AppTraffic; counters: Map<string, Counters>; last: number }[] = [];
    private server?: http.Server;

    add(traffic: AppTraffic): void {
        const counters = new Map(Object.keys(traffic.versions).map((v) => [v, { ok: 0, failed: 0, buckets: BUCKETS_MS.map(() => 0), sum: 0 }]));
        this.apps.push({ traffic, counters, last: Date.now() });
    }

    /** Requests each version of an app has received so far. */
    served(app: string, namespace: string): Record<string, { ok: number; failed: number }> {
        const entry = this.apps.find((a) => a.traffic.app === app && a.traffic.namespace === namespace);
        return Object.fromEntries([...(entry?.counters ?? [])].map(([v, c]) => [v, { ok: c.ok, failed: c.failed }]));
    }

    private advance(): void {
        const now = Date.now();
        for (const entry of this.apps) {
            const seconds = (now - entry.last) / 1000;
            entry.last = now;
            const rates = entry.traffic.route();
            for (const [version, counters] of entry.counters) {
                const behaviour = entry.traffic.versions[version];
                const requests = (rates[version] ?? 0) * seconds;
                counters.failed += requests * behaviour.errorRate;
                counters.ok += requests * (1 - behaviour.errorRate);
                BUCKETS_MS.forEach((le, i) => {
                    if (behaviour.latencyMs <= le) counters.buckets[i] += requests;
                });
                counters.sum += requests * behaviour.latencyMs;
            }
        }
    }

    private metrics(): string {
        this.advance();
        const lines = ["# TYPE istio_requests_total counter", "# TYPE istio_request_duration_milliseconds histogram"];
        for (const { traffic, counters } of this.apps) {
            for (const [version, c] of counters) {
                // Both proxies report each request; the analysis must count the receiving side's only.
                for (const reporter of ["destination", "source"]) {
                    const labels = [
                        `reporter="${reporter}"`,
                        `source_workload="istio-ingressgateway"`,
                        `source_workload_namespace="istio-ingress"`,
                        `destination_workload="${traffic.app}-${version}"`,
                        `destination_workload_namespace="${traffic.namespace}"`,
                        `destination_app="${traffic.app}"`,
                        `destination_version="${version}"`,
                        `destination_service="${traffic.app}.${traffic.namespace}.svc.cluster.local"`,
                        `destination_service_name="${traffic.app}"`,
                        `destination_service_namespace="${traffic.namespace}"`,
                        `destination_canonical_service="${traffic.app}"`,
                        `destination_canonical_revision="${version}"`,
                        `request_protocol="http"`,
                        `connection_security_policy="mutual_tls"`,
                    ].join(",");
                    lines.push(`istio_requests_total{${labels},response_code="200"} ${c.ok}`);
                    lines.push(`istio_requests_total{${labels},response_code="503"} ${c.failed}`);
                    BUCKETS_MS.forEach((le, i) => lines.push(`istio_request_duration_milliseconds_bucket{${labels},le="${le}"} ${c.buckets[i]}`));
                    lines.push(`istio_request_duration_milliseconds_bucket{${labels},le="+Inf"} ${c.ok + c.failed}`);
                    lines.push(`istio_request_duration_milliseconds_sum{${labels}} ${c.sum}`);
                    lines.push(`istio_request_duration_milliseconds_count{${labels}} ${c.ok + c.failed}`);
                }
            }
        }
        return `${lines.join("\n")}\n`;
    }

    /** Listens on the loopback port Prometheus scrapes. */
    async start(port: number): Promise<void> {
        this.server = http.createServer((req, res) => {
            if (req.url !== "/metrics") {
                res.writeHead(404).end();
                return;
            }
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(this.metrics());
        });
        await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    }

    stop(): Promise<void> {
        return new Promise((resolve) => {
            if (this.server === undefined) resolve();
            else this.server.close(() => {
                resolve();
            });
        });
    }
}

/** Waits until Prometheus holds a few scrapes of a namespace's request counters, as a cluster that has been serving would. */
export async function waitForSeries(prometheusUrl: string, namespace: string): Promise<void> {
    const query = `min(count_over_time(istio_requests_total{destination_workload_namespace="${namespace}"}[1m]))`;
    for (let i = 0; i < 100; i++) {
        // Prometheus may still be starting: no answer is a wait, like too few samples.
        const body = (await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query }).toString()}`).then((r) => r.json(), () => undefined)) as { data: { result: { value: [number, string] }[] } } | undefined;
        if (Number(body?.data.result[0]?.value[1] ?? 0) >= 3) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`Prometheus never scraped the requests of ${namespace}`);
}
