// The exporter the rollout scenarios' Prometheus scrapes (npm test starts Debian's `prometheus` on a loopback
// port, scripts/prometheus.mjs): Istio's standard metrics (istio_requests_total,
// istio_request_duration_milliseconds) with their labels, for traffic that follows the routes the rollout last
// rendered, shaped by each scenario.
//
// It serves from a worker thread of its own, as a cluster's proxies serve apart from the rollout command: the
// command's renders hold the test process's main thread for a while, and an exporter there would miss scrapes
// (Prometheus gives up on a scrape after its interval), leaving windows with too few samples to judge.
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { isMainThread, parentPort, Worker } from "worker_threads";
import { parse } from "yaml";
import { ISTIO_BUCKETS_MS } from "../../rollout/simulation";

/** Istio's default finite bounds for istio_request_duration_milliseconds (+Inf is written on its own). */
const BUCKETS_MS = ISTIO_BUCKETS_MS.filter((le) => le !== Infinity);

export interface VersionBehaviour {
    /** Share of requests answered 503. */
    readonly errorRate: number;
    readonly latencyMs: number;
}

/** One app's traffic: requests per second at the edge, how each version answers, and where its routes are rendered. */
export interface AppTraffic {
    readonly namespace: string;
    readonly app: string;
    readonly requestsPerSecond: number;
    readonly versions: Readonly<Record<string, VersionBehaviour>>;
    /** The folder `npm run render` (the rollout's render engine) writes this app's objects to. */
    readonly renderDir: string;
    /** The version that takes all requests until the first render. */
    readonly stable: string;
    /**
     * How many times the mesh retries a 5xx (a VirtualService's retries.attempts, retryOn 5xx), on the same version.
     * The receiving proxy reports every attempt (reporter="destination"); the calling one reports each request once,
     * with the outcome the caller got (reporter="source").
     */
    readonly retries?: number;
    /**
     * Who reports the app's requests: `sidecars` (the caller's as reporter="source", the version's as
     * "destination"), read from the rendered VirtualService; or an ambient namespace's `waypoint`, read from the
     * rendered mesh HTTPRoute. A waypoint is the one L7 proxy between caller and version: it reports each request
     * once (reporter="waypoint"), addressed to the Service the edge named (the version's), and not the copies it
     * mirrors (Envoy sends those from its router, past the filter that counts); ztunnel reports only TCP.
     */
    readonly reporting?: "sidecars" | "waypoint";
}

/** What an app's versions were given: requests served so far, and the highest share of live traffic each had. */
export interface AppStats {
    readonly served: Readonly<Record<string, { readonly ok: number; readonly failed: number }>>;
    /** In percent of the edge's requests, mirrored copies not counted. */
    readonly maxLivePercent: Readonly<Record<string, number>>;
}

interface Route {
    /** Requests per second each version takes live. */
    readonly live: Readonly<Record<string, number>>;
    /** Requests per second each version receives as mirrored copies. */
    readonly mirrored: Readonly<Record<string, number>>;
}

/**
 * Where an app's requests go, read from the rendered mesh routes (a VirtualService and its DestinationRule, or an
 * HTTPRoute): the release route's weights and the mirrored share, per pod version. Before the first render, all
 * to `stable`; while a render replaces its folder, the last route read (as a proxy keeps its configuration until
 * a new one arrives).
 */
function routeReader(traffic: AppTraffic): () => Route {
    return traffic.reporting === "waypoint" ? httpRouteReader(traffic) : virtualServiceReader(traffic);
}

function virtualServiceReader(traffic: AppTraffic): () => Route {
    const { renderDir, namespace, app, stable, requestsPerSecond } = traffic;
    let last: Route = { live: { [stable]: requestsPerSecond }, mirrored: {} };
    let lastText = "";
    return () => {
        const vsFile = path.join(renderDir, `virtualservice-${namespace}-${app}.yaml`);
        const drFile = path.join(renderDir, `destinationrule-${namespace}-${app}.yaml`);
        let vsText: string;
        let drText: string;
        try {
            vsText = fs.readFileSync(vsFile, "utf8");
            drText = fs.readFileSync(drFile, "utf8");
            // Both from one render: a render that swapped its folder between the two reads is read at the next scrape.
            if (fs.readFileSync(vsFile, "utf8") !== vsText) return last;
        } catch {
            return last;
        }
        // Parsed again only when a render changed them.
        if (vsText + drText === lastText) return last;
        lastText = vsText + drText;
        type Http = { route: { destination: { subset: string }; weight?: number }[]; mirrors?: { destination: { subset: string }; percentage?: { value: number } }[] };
        const vs = parse(vsText) as { spec: { http: Http[] } };
        const dr = parse(drText) as { spec: { subsets: { name: string; labels: { version: string } }[] } };
        const version = (subset: string) => dr.spec.subsets.find((s) => s.name === subset)?.labels.version ?? subset;
        const release = vs.spec.http[vs.spec.http.length - 1];
        const live: Record<string, number> = {};
        const mirrored: Record<string, number> = {};
        for (const d of release.route) live[version(d.destination.subset)] = (live[version(d.destination.subset)] ?? 0) + (requestsPerSecond * (d.weight ?? 100)) / 100;
        for (const mirror of release.mirrors ?? []) {
            const to = version(mirror.destination.subset);
            mirrored[to] = (mirrored[to] ?? 0) + (requestsPerSecond * (mirror.percentage?.value ?? 100)) / 100;
        }
        last = { live, mirrored };
        return last;
    };
}

/** The mesh HTTPRoute's release rule (its last): each backendRef a version's Service, `<app>-<version>`. */
function httpRouteReader(traffic: AppTraffic): () => Route {
    const { renderDir, namespace, app, stable, requestsPerSecond } = traffic;
    let last: Route = { live: { [stable]: requestsPerSecond }, mirrored: {} };
    let lastText = "";
    return () => {
        let text: string;
        try {
            text = fs.readFileSync(path.join(renderDir, `httproute-${namespace}-${app}.yaml`), "utf8");
        } catch {
            return last;
        }
        if (text === lastText) return last;
        lastText = text;
        type Ref = { name: string; weight?: number };
        type Rule = { backendRefs: Ref[]; filters?: { type: string; requestMirror?: { backendRef: Ref; percent?: number } }[] };
        const rules = (parse(text) as { spec: { rules: Rule[] } }).spec.rules;
        const release = rules[rules.length - 1];
        const version = (ref: Ref) => ref.name.slice(app.length + 1);
        const total = release.backendRefs.reduce((sum, ref) => sum + (ref.weight ?? 1), 0);
        const live: Record<string, number> = {};
        const mirrored: Record<string, number> = {};
        for (const ref of release.backendRefs) live[version(ref)] = (live[version(ref)] ?? 0) + (requestsPerSecond * (ref.weight ?? 1)) / total;
        for (const filter of release.filters ?? []) {
            if (filter.requestMirror === undefined) continue;
            const to = version(filter.requestMirror.backendRef);
            mirrored[to] = (mirrored[to] ?? 0) + (requestsPerSecond * (filter.requestMirror.percent ?? 100)) / 100;
        }
        last = { live, mirrored };
        return last;
    };
}

interface ReporterCounters {
    ok: number;
    failed: number;
    buckets: number[];
    sum: number;
}

/** One version's requests as each reporter counts them. */
interface Counters {
    readonly source: ReporterCounters;
    readonly destination: ReporterCounters;
}

const noRequests = (): ReporterCounters => ({ ok: 0, failed: 0, buckets: BUCKETS_MS.map(() => 0), sum: 0 });

/** Adds `requests` that took `latencyMs` each, `failed` of them 5xx. */
function count(into: ReporterCounters, requests: number, failed: number, latencyMs: number): void {
    into.ok += requests - failed;
    into.failed += failed;
    BUCKETS_MS.forEach((le, i) => {
        if (latencyMs <= le) into.buckets[i] += requests;
    });
    into.sum += requests * latencyMs;
}

interface ServedApp {
    readonly traffic: AppTraffic;
    readonly route: () => Route;
    readonly counters: Map<string, Counters>;
    readonly maxLivePercent: Record<string, number>;
    last: number;
}

/** The worker's side: counts requests as wall time passes and serves them as Istio's metrics. */
class MetricsServer {
    private readonly apps: ServedApp[] = [];

    add(traffic: AppTraffic): void {
        const counters = new Map(Object.keys(traffic.versions).map((v): [string, Counters] => [v, { source: noRequests(), destination: noRequests() }]));
        this.apps.push({ traffic, route: routeReader(traffic), counters, maxLivePercent: {}, last: Date.now() });
    }

    stats(namespace: string, app: string): AppStats | undefined {
        this.advance();
        const entry = this.apps.find((a) => a.traffic.app === app && a.traffic.namespace === namespace);
        if (entry === undefined) return undefined;
        return { served: Object.fromEntries([...entry.counters].map(([v, c]) => [v, { ok: c.source.ok, failed: c.source.failed }])), maxLivePercent: { ...entry.maxLivePercent } };
    }

    private advance(): void {
        const now = Date.now();
        for (const entry of this.apps) {
            const seconds = (now - entry.last) / 1000;
            entry.last = now;
            const { live, mirrored } = entry.route();
            if (entry.traffic.requestsPerSecond > 0) {
                for (const [version, rate] of Object.entries(live)) entry.maxLivePercent[version] = Math.max(entry.maxLivePercent[version] ?? 0, (rate / entry.traffic.requestsPerSecond) * 100);
            }
            const retries = entry.traffic.retries ?? 0;
            for (const [version, counters] of entry.counters) {
                const { errorRate: p, latencyMs } = entry.traffic.versions[version];
                const requests = (live[version] ?? 0) * seconds;
                // Attempt k (k = 1 .. retries + 1) is made by the requests whose k - 1 attempts before all failed.
                for (let k = 1; k <= retries + 1; k++) {
                    const made = requests * p ** (k - 1);
                    count(counters.destination, made, made * p, latencyMs);
                    // The caller sees one answer: the first success, or the last failure, after k attempts' time.
                    const last = k === retries + 1;
                    count(counters.source, made * (last ? 1 : 1 - p), last ? made * p : 0, k * latencyMs);
                }
                // A mirrored copy is answered to nobody: only the receiving proxy reports it, and nobody retries it.
                const copies = (mirrored[version] ?? 0) * seconds;
                count(counters.destination, copies, copies * p, latencyMs);
            }
        }
    }

    metrics(): string {
        this.advance();
        const lines = ["# TYPE istio_requests_total counter", "# TYPE istio_request_duration_milliseconds histogram"];
        for (const { traffic, counters } of this.apps) {
            const waypoint = traffic.reporting === "waypoint";
            for (const [version, counted] of counters) {
                // With sidecars both proxies report each request, each as it saw it: a query must pick one reporter. A
                // waypoint reports what its caller got, as a calling sidecar does.
                const reports = waypoint ? [["waypoint", counted.source] as const] : (["destination", "source"] as const).map((r) => [r, counted[r]] as const);
                for (const [reporter, c] of reports) {
                    const labels = [
                        `reporter="${reporter}"`,
                        `source_workload="istio-ingressgateway"`,
                        `source_workload_namespace="istio-ingress"`,
                        `destination_workload="${traffic.app}-${version}"`,
                        `destination_workload_namespace="${traffic.namespace}"`,
                        `destination_app="${traffic.app}"`,
                        `destination_version="${version}"`,
                        // The edge's HTTPRoute names each version's Service; the VirtualService, the app's.
                        `destination_service="${waypoint ? `${traffic.app}-${version}` : traffic.app}.${traffic.namespace}.svc.cluster.local"`,
                        `destination_service_name="${waypoint ? `${traffic.app}-${version}` : traffic.app}"`,
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
}

type Ask = { readonly kind: "start"; readonly port: number } | { readonly kind: "add"; readonly traffic: AppTraffic } | { readonly kind: "stats"; readonly namespace: string; readonly app: string };
type Request = Ask & { readonly id: number };
type Reply = { readonly id: number; readonly stats?: AppStats; readonly error?: string };

/** The worker thread: this same module, started by MeshMetricsExporter. */
function serveInWorker(port: NonNullable<typeof parentPort>): void {
    const metrics = new MetricsServer();
    const server = http.createServer((req, res) => {
        if (req.url !== "/metrics") {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(metrics.metrics());
    });
    port.on("message", (request: Request) => {
        const reply = (r: Omit<Reply, "id">) => {
            port.postMessage({ id: request.id, ...r } satisfies Reply);
        };
        switch (request.kind) {
            case "start":
                server.once("error", (error) => {
                    reply({ error: error.message });
                });
                server.listen(request.port, "127.0.0.1", () => {
                    reply({});
                });
                return;
            case "add":
                metrics.add(request.traffic);
                reply({});
                return;
            case "stats":
                reply({ stats: metrics.stats(request.namespace, request.app) });
                return;
        }
    });
}

if (!isMainThread && parentPort !== null) serveInWorker(parentPort);

/** Serves /metrics from a worker thread for every app added; each scrape adds the requests since the last one. */
export class MeshMetricsExporter {
    private worker?: Worker;
    private nextId = 0;
    private readonly pending = new Map<number, (reply: Reply) => void>();

    private ask(request: Ask): Promise<Reply> {
        const worker = this.worker;
        if (worker === undefined) return Promise.reject(new Error("the exporter is not started"));
        const id = this.nextId++;
        return new Promise((resolve, reject) => {
            this.pending.set(id, (reply) => {
                if (reply.error === undefined) resolve(reply);
                else reject(new Error(reply.error));
            });
            worker.postMessage({ ...request, id });
        });
    }

    /** Listens on the loopback port Prometheus scrapes. */
    async start(port: number): Promise<void> {
        this.worker = new Worker(__filename);
        this.worker.on("message", (reply: Reply) => {
            this.pending.get(reply.id)?.(reply);
            this.pending.delete(reply.id);
        });
        await this.ask({ kind: "start", port });
    }

    async add(traffic: AppTraffic): Promise<void> {
        await this.ask({ kind: "add", traffic });
    }

    /** What an app's versions were given so far. */
    async stats(namespace: string, app: string): Promise<AppStats> {
        const { stats } = await this.ask({ kind: "stats", namespace, app });
        if (stats === undefined) throw new Error(`the exporter serves no app ${namespace}/${app}`);
        return stats;
    }

    async stop(): Promise<void> {
        await this.worker?.terminate();
        this.worker = undefined;
    }
}

/** Waits until Prometheus holds a few scrapes of a namespace's request counters, as a cluster that has been serving would. */
export async function waitForSeries(prometheusUrl: string, namespace: string): Promise<void> {
    const query = `min(count_over_time(istio_requests_total{destination_workload_namespace="${namespace}"}[1m]))`;
    for (let i = 0; i < 300; i++) {
        // Prometheus may still be starting: no answer is a wait, like too few samples.
        const body = (await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query }).toString()}`).then((r) => r.json(), () => undefined)) as { data: { result: { value: [number, string] }[] } } | undefined;
        if (Number(body?.data.result[0]?.value[1] ?? 0) >= 3) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`Prometheus never scraped the requests of ${namespace} within a minute`);
}
