import { strict as assert } from "assert";
import { PRODUCTION_MINIMUM, settingsFor, configProblems, helmReleases, must, named, ofKind, resource, run, waitsFor } from "./harness";
import { dashboardCommands, JAEGER_COLLECTOR, JAEGER_QUERY, kialiValues, prometheusValues, telemetrySpec } from "../components/specs/observability-specs";
import type { Dashboard, Panel, RowPanel } from "@grafana/schema";
import type { ConfigValue } from "../lib/mock-program";

const problemKeys = (values: Record<string, unknown>) => configProblems(values).map((p) => p.key);

describe("observability", () => {
    it("installs Prometheus, Grafana, Kiali and Jaeger from their official charts at pinned versions when on", async () => {
        const addons = helmReleases(await run("dev")).filter((r) => r.namespace === "istio-system" && !r.repositoryOpts.repo.includes("istio-release"));
        assert.deepEqual(addons.map((r) => [r.name, r.chart, r.repositoryOpts.repo]).sort(), [
            ["grafana", "grafana", "https://grafana.github.io/helm-charts"],
            ["jaeger", "jaeger", "https://jaegertracing.github.io/helm-charts"],
            ["kiali", "kiali-server", "https://kiali.org/helm-charts"],
            ["prometheus", "prometheus", "https://prometheus-community.github.io/helm-charts"],
        ]);
        for (const r of addons) assert.match(r.version, /^\d+\.\d+\.\d+$/, `${r.name} is pinned`);
        assert.deepEqual(helmReleases(await run("dev", { observability: false })).filter((r) => !r.repositoryOpts.repo.includes("istio-release")), []);
    });

    it("wires Kiali and Grafana to that Prometheus, and registers Jaeger as Istio's tracing provider", async () => {
        const releases = helmReleases(await run("dev"));
        const values = (name: string) => releases.find((r) => r.name === name)?.values as Record<string, Record<string, unknown>>;
        const kiali = values("kiali").external_services as Record<string, { url?: string; internal_url?: string }>;
        assert.equal(kiali.prometheus.url, "http://prometheus.istio-system.svc.cluster.local:9090");
        assert.equal(kiali.tracing.internal_url, "http://jaeger-query.istio-system.svc.cluster.local:16686");
        assert.equal((values("prometheus").server as { fullnameOverride: string }).fullnameOverride, "prometheus");
        assert.match(JSON.stringify(values("grafana").datasources), /"url":"http:\/\/prometheus.istio-system.svc.cluster.local:9090"/);
        const mesh = values("istiod").meshConfig as { extensionProviders: unknown };
        assert.deepEqual(mesh.extensionProviders, [{ name: "jaeger", opentelemetry: { service: "jaeger-collector.istio-system.svc.cluster.local", port: 4317 } }]);
    });

    it("provisions a canary dashboard: a row per service, releaseQueries' requests, 5xx and p95, and the weights as traffic follows them", async () => {
        const result = await run("dev", { canaryWeight: "25" });
        const grafana = must(helmReleases(result).find((r) => r.name === "grafana"), "grafana release");
        const values = grafana.values as { datasources: { "datasources.yaml": { datasources: { uid: string }[] } }; dashboardProviders: { "dashboardproviders.yaml": { providers: { name: string; options: { path: string } }[] } }; dashboards: Record<string, Record<string, { json?: string }>> };
        assert.deepEqual(values.dashboardProviders["dashboardproviders.yaml"].providers.map((p) => [p.name, p.options.path]), [["istio", "/var/lib/grafana/dashboards/istio"], ["rollouts", "/var/lib/grafana/dashboards/rollouts"]]);
        const dashboard = JSON.parse(must(values.dashboards.rollouts.canary.json, "the canary dashboard's JSON")) as Dashboard;
        const panels = (dashboard.panels ?? []) as Panel[];
        // Grafana's dashboard model: a uid and schema version, unique panel ids, a 24-column grid without overlaps.
        assert.deepEqual([dashboard.uid, typeof dashboard.schemaVersion], ["istio-canary", "number"]);
        assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
        const cells = new Set<string>();
        for (const { gridPos } of panels) {
            const g = must(gridPos, "a panel's gridPos");
            assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, JSON.stringify(g));
            for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
                assert.ok(!cells.has(`${x},${y}`), `panels overlap at ${x},${y}`);
                cells.add(`${x},${y}`);
            }
        }
        // Every query names the provisioned Prometheus and, its variables filled in with a service's labels, is that
        // service's releaseQueries (or one less its success rate): user-service, a canary judged by its callers (source).
        const uid = values.datasources["datasources.yaml"].datasources[0].uid;
        const queries = result.outputs.releaseQueries as Record<string, { requests: string; successRate: string; p95LatencyMs: string }>;
        const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => [(t.datasource as { uid: string }).uid, String(t.expr).replaceAll("$reporter", "source").replaceAll("$namespace", "backend").replaceAll("$service", "user-service")]));
        assert.ok(exprs.length === 4 && exprs.every(([u]) => u === uid));
        const q = queries["user-service"];
        for (const expr of [q.requests, `1 - (${q.successRate})`, q.p95LatencyMs, `${q.requests} / ignoring(destination_version) group_left sum(${q.requests})`]) assert.ok(exprs.some(([, e]) => e === expr), expr);
        // A row per service the mesh counted in the app namespace, with the reporter to judge it by.
        const row = panels.find((p) => p.type === "row") as RowPanel | undefined;
        assert.deepEqual([row?.repeat, row?.title], ["service", "$service"]);
        const variables = dashboard.templating?.list ?? [];
        assert.deepEqual(variables.map((v) => [v.name, v.type]), [["namespace", "constant"], ["service", "query"], ["reporter", "custom"]]);
        assert.equal(variables[0].query, "backend");
        // Nothing a release changes is in it: a step (another weight) or a promotion (one version) leaves Grafana's release as it is.
        const elsewhere: Record<string, ConfigValue>[] = [{ canaryWeight: "50" }, { services: { "user-service": { path: "/users", release: "single", versions: ["v2"] }, "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] }, "order-service": { path: "/orders", release: "single", versions: ["v1"] } } }];
        for (const overrides of elsewhere) {
            const other = must(helmReleases(await run("dev", overrides)).find((r) => r.name === "grafana"), "grafana release");
            assert.deepEqual(other.values, grafana.values, JSON.stringify(overrides));
        }
    });

    it("points tracing at the Services the pinned jaeger chart creates, with a collector that has a cluster IP", async () => {
        // jaeger chart 4.x, release `jaeger`: the fullname is `jaeger` (the release name contains the chart name),
        // and templates/allinone-collector-svc.yaml and allinone-query-svc.yaml name the Services <fullname>-collector
        // and <fullname>-query. The collector is headless unless allInOne.service.headless is false; Istio treats a
        // headless Service as passthrough, which its tracer cannot send OTLP to. There is no Service `jaeger`.
        const releases = helmReleases(await run("dev"));
        const jaeger = must(releases.find((r) => r.name === "jaeger"), "jaeger release");
        assert.equal(jaeger.chart, "jaeger");
        assert.match(jaeger.version, /^4\./);
        assert.deepEqual(jaeger.values, { allInOne: { service: { headless: false } } });
        const provider = (releases.find((r) => r.name === "istiod")?.values as { meshConfig: { extensionProviders: { opentelemetry: { service: string; port: number } }[] } }).meshConfig.extensionProviders[0];
        assert.deepEqual(provider.opentelemetry, { service: `${JAEGER_COLLECTOR}.istio-system.svc.cluster.local`, port: 4317 });
        assert.deepEqual([JAEGER_COLLECTOR, JAEGER_QUERY], ["jaeger-collector", "jaeger-query"]);
        const kiali = releases.find((r) => r.name === "kiali")?.values as { external_services: { tracing: { internal_url: string } } };
        assert.equal(kiali.external_services.tracing.internal_url, "http://jaeger-query.istio-system.svc.cluster.local:16686");
        assert.match(dashboardCommands().jaeger, /port-forward svc\/jaeger-query 16686:16686/);
    });

    it("lets Kiali in anonymously only on a local (kind) cluster, asking for a token everywhere else", async () => {
        const strategy = async (stack: string, overrides: Record<string, string> = {}) =>
            (helmReleases(await run(stack, overrides)).find((r) => r.name === "kiali")?.values as { auth: { strategy: string } }).auth.strategy;
        assert.equal(await strategy("dev"), "anonymous");
        assert.equal(kialiValues(settingsFor("dev", { platform: "" }).platform === "kind").auth.strategy, "token");
        assert.equal(await strategy("staging"), "token");
        assert.equal(await strategy("prod"), "token");
    });

    it("keeps Prometheus's data on a persistent volume where the stack asks, and production must", async () => {
        const volume = async (stack: string, overrides: Record<string, string> = {}) =>
            (helmReleases(await run(stack, overrides)).find((r) => r.name === "prometheus")?.values as { server: { persistentVolume: unknown } }).server.persistentVolume;
        assert.deepEqual(await volume("dev"), { enabled: false });
        assert.deepEqual(await volume("prod"), { enabled: true, size: "50Gi" });
        const staging = settingsFor("staging", { prometheusStorageClass: "premium-rwo" }).observability.prometheusVolume;
        assert.deepEqual(prometheusValues(staging).server.persistentVolume, { enabled: true, size: "20Gi", storageClass: "premium-rwo" });
        const [missing] = configProblems({ ...PRODUCTION_MINIMUM, observability: "true" });
        assert.deepEqual([missing.key, missing.value, missing.fix], ["prometheusVolumeSize", '""', "pulumi config set prometheusVolumeSize 20Gi"]);
        assert.match(missing.allowed, /persistent volume/);
        assert.deepEqual(problemKeys({ ...PRODUCTION_MINIMUM, observability: "false" }), []);
        assert.deepEqual(problemKeys({ prometheusVolumeSize: "20GB" }), ["prometheusVolumeSize"]);
        assert.deepEqual(problemKeys({ prometheusStorageClass: "fast" }), ["prometheusStorageClass"]);
    });

    it("sets trace sampling and access logging mesh-wide with a Telemetry resource", async () => {
        const telemetry = named(await run("dev"), "Telemetry", "mesh-default");
        assert.equal(telemetry.metadata?.namespace, "istio-system");
        assert.deepEqual(telemetry.spec?.tracing, [{ providers: [{ name: "jaeger" }], randomSamplingPercentage: 100 }]);
        assert.deepEqual(telemetry.spec?.accessLogging, [{ providers: [{ name: "envoy" }] }]);
        assert.equal(telemetrySpec(settingsFor("dev", { traceSamplingPercent: "0.5" }).observability)?.tracing?.[0].randomSamplingPercentage, 0.5);
        assert.equal(telemetrySpec(settingsFor("dev", { observability: false, accessLogging: false }).observability), undefined);
        assert.deepEqual(problemKeys({ traceSamplingPercent: "150" }), ["traceSamplingPercent"]);
    });

    it("outputs port-forward lines and PromQL for each release's success rate and p95 by destination_version", async () => {
        const { outputs } = await run("dev");
        assert.deepEqual(Object.keys(outputs.dashboards as object).sort(), ["canary", "grafana", "jaeger", "kiali", "prometheus"]);
        assert.match((outputs.dashboards as Record<string, string>).canary, /port-forward svc\/grafana 3000:3000 .*http:\/\/localhost:3000\/d\/istio-canary/);
        const queries = outputs.releaseQueries as Record<string, { successRate: string; p95LatencyMs: string }>;
        assert.deepEqual(Object.keys(queries).sort(), ["product-service", "user-service"]);
        // A canary by what its callers saw (a retried 5xx counted once, as the user saw it); blue/green by what its proxies received (mirrored copies).
        assert.match(queries["user-service"].successRate, /sum by \(destination_version\) \(rate\(istio_requests_total\{reporter="source", destination_workload_namespace="backend", destination_app="user-service", response_code!~"5.."\}\[1m\]\)\)/);
        assert.match(queries["product-service"].successRate, /istio_requests_total\{reporter="destination", destination_workload_namespace="backend", destination_app="product-service"/);
        assert.match(queries["user-service"].p95LatencyMs, /^histogram_quantile\(0.95, sum by \(le, destination_version\) \(rate\(istio_request_duration_milliseconds_bucket\{/);
        assert.deepEqual((await run("dev", { observability: false })).outputs.dashboards, {});
    });
});

describe("egress", () => {
    it("declares each external host as a ServiceEntry and can block all others (REGISTRY_ONLY)", async () => {
        const result = await run("prod");
        const entries = ofKind(result, "ServiceEntry");
        assert.deepEqual(entries.map((e) => [e.metadata?.name, e.spec?.hosts, e.spec?.resolution, e.spec?.location]), [
            ["api-github-com", ["api.github.com"], "DNS", "MESH_EXTERNAL"],
            ["httpbin-org", ["httpbin.org"], "DNS", "MESH_EXTERNAL"],
        ]);
        assert.deepEqual(entries[1].spec?.ports, [{ number: 80, name: "http-80", protocol: "HTTP" }, { number: 443, name: "tls-443", protocol: "TLS" }]);
        const istiod = helmReleases(result).find((r) => r.name === "istiod")?.values as { meshConfig: { outboundTrafficPolicy: unknown } };
        assert.deepEqual(istiod.meshConfig.outboundTrafficPolicy, { mode: "REGISTRY_ONLY" });
    });

    it("routes the hosts through a second gateway release over Istio mutual TLS: sidecars -> egress gateway -> host", async () => {
        const result = await run("prod");
        const release = helmReleases(result).find((r) => r.name === "istio-egressgateway");
        assert.deepEqual([release?.chart, release?.namespace, (release?.values as { service: { type: string } }).service.type], ["gateway", "istio-egress", "ClusterIP"]);
        const gateway = named(result, "Gateway", "egress-gateway");
        assert.deepEqual(gateway.spec?.selector, { istio: "egressgateway" });
        // Every server terminates the sidecars' Istio mutual TLS; TLS hosts get a server each, chosen by SNI.
        assert.deepEqual(gateway.spec?.servers?.map((s) => [s.port?.number, s.port?.protocol, s.hosts, s.tls?.mode]), [
            [80, "HTTPS", ["httpbin.org"], "ISTIO_MUTUAL"],
            [443, "TLS", ["api.github.com"], "ISTIO_MUTUAL"],
            [443, "TLS", ["httpbin.org"], "ISTIO_MUTUAL"],
        ]);
        const subsets = named(result, "DestinationRule", "egress-gateway").spec?.subsets;
        assert.deepEqual(subsets?.map((s) => [s.name, s.trafficPolicy?.portLevelSettings?.map((p) => [p.port?.number, p.tls?.mode, p.tls?.sni])]), [
            ["api-github-com", [[443, "ISTIO_MUTUAL", "api.github.com"]]],
            ["httpbin-org", [[80, "ISTIO_MUTUAL", "httpbin.org"], [443, "ISTIO_MUTUAL", "httpbin.org"]]],
        ]);
        const vs = named(result, "VirtualService", "via-egress-api-github-com").spec;
        assert.deepEqual(vs?.gateways, ["mesh", "istio-egress/egress-gateway"]);
        assert.deepEqual(vs?.tls?.map((t) => [t.match?.[0].gateways, t.match?.[0].sniHosts, t.route?.[0].destination?.host, t.route?.[0].destination?.subset]), [
            [["mesh"], ["api.github.com"], "istio-egressgateway.istio-egress.svc.cluster.local", "api-github-com"],
        ]);
        // Past the gateway's mutual TLS, the app's own TLS goes on to the host untouched.
        assert.deepEqual(vs?.tcp?.map((t) => [t.match?.[0].gateways, t.match?.[0].port, t.route?.[0].destination?.host, t.route?.[0].destination?.port?.number]), [
            [["istio-egress/egress-gateway"], 443, "api.github.com", 443],
        ]);
        const http = named(result, "VirtualService", "via-egress-httpbin-org").spec?.http;
        assert.deepEqual(http?.map((h) => [h.match?.[0].gateways, h.route?.[0].destination.host, h.route?.[0].destination.subset, h.route?.[0].destination.port?.number]), [
            [["mesh"], "istio-egressgateway.istio-egress.svc.cluster.local", "httpbin-org", 80],
            [["istio-egress/egress-gateway"], "httpbin.org", undefined, 80],
        ]);
    });

    it("admits only the app namespace's identities at the egress gateway, whose namespace enforces Pod Security", async () => {
        const result = await run("prod");
        const policy = ofKind(result, "AuthorizationPolicy").filter((p) => p.metadata?.namespace === "istio-egress");
        assert.deepEqual(policy.map((p) => [p.metadata?.name, p.spec]), [
            ["allow-app-namespace", { selector: { matchLabels: { istio: "egressgateway" } }, action: "ALLOW", rules: [{ from: [{ source: { namespaces: ["backend"] } }] }] }],
        ]);
        assert.ok(waitsFor(result, resource(result, "AuthorizationPolicy", "authorizationpolicy-allow-app-namespace"), resource(result, "helm.sh/v3:Release", "istio-egressgateway")));
        assert.equal(named(result, "Namespace", "istio-egress").metadata?.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
        const values = helmReleases(result).find((r) => r.name === "istio-egressgateway")?.values as { securityContext: { seccompProfile: unknown } };
        assert.deepEqual(values.securityContext.seccompProfile, { type: "RuntimeDefault" });
    });

    it("refuses what the egress gateway cannot carry and malformed hosts", () => {
        const tcp = { egressGateway: true, egressHosts: [{ host: "db.example.com", ports: [{ number: 5432, protocol: "TCP" }] }] };
        assert.deepEqual(problemKeys(tcp), ["egressHosts[0].ports[0]"]);
        assert.deepEqual(problemKeys({ egressGateway: true, egressHosts: [{ host: "*.example.com", ports: [{ number: 443, protocol: "TLS" }] }] }), ["egressHosts[0].host"]);
        assert.deepEqual(problemKeys({ egressGateway: true }), ["egressGateway"]);
        assert.deepEqual(problemKeys({ egressHosts: [{ host: "*.example.com", ports: [{ number: 443, protocol: "TLS" }], resolution: "DNS" }] }), ["egressHosts[0].resolution"]);
        assert.deepEqual(problemKeys({ egressHosts: [{ host: "localhost", ports: [{ number: 443, protocol: "QUIC" }] }] }).sort(), ["egressHosts[0].host", "egressHosts[0].ports[0].protocol"]);
        assert.deepEqual(problemKeys({ outboundTrafficPolicy: "DENY" }), ["outboundTrafficPolicy"]);
    });
});
