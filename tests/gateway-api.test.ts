// trafficApi gatewayApi: the same traffic plan rendered as Gateway API objects. Where each request lands is
// compared with the VirtualServices', request by request, at the edge and in the mesh; what cannot be said the
// same way is refused; a release changes the HTTPRoutes and nothing else; the objects match the v1.5.1 CRDs.
import { strict as assert } from "assert";
import { versionServiceName } from "../components/config/names";
import type { TrafficPlan } from "../components/plan/plan";
import { edgeHttpRouteSpec, GATEWAY_API_BUNDLE, HttpRouteSpec, meshHttpRouteSpec } from "../components/specs/gateway-api-specs";
import { GATEWAY_NAMESPACE } from "../components/specs/mesh-specs";
import { changedObjects } from "../rollout/diff";
import { stackConfig } from "../lib/mock-program";
import { validateObjects } from "../lib/validate";
import { envoyProxySpec } from "../components/specs/envoy-gateway-specs";
import { kongValues } from "../components/specs/kong-specs";
import { createHash } from "crypto";
import { configProblems, fqdn, helmReleases, INGRESS, K8sObject, must, named, objects, ofKind, planFor, ProgramRun, Request, resource, routeVia, run, settingsFor, shares, virtualServiceSpecs, waitsFor } from "./harness";
import { arrival, authorized, MeshService, sidecarUpstream } from "./support/mesh-hop";
import { RenderedRoute, routeHttp } from "./support/http-route";
import { requests } from "./support/requests";

function httpRoutes(plan: TrafficPlan): RenderedRoute[] {
    return plan.services.flatMap((s) => [
        { namespace: s.namespace, name: s.name, spec: meshHttpRouteSpec(s) },
        { namespace: s.namespace, name: `${s.name}-ingress`, spec: edgeHttpRouteSpec(s, GATEWAY_NAMESPACE, plan.ingressHost, undefined) },
    ]);
}

/** The HTTPRoutes' choice as shares per subset, as the VirtualService evaluator reports them. */
function gatewayShares(plan: TrafficPlan, request: Request): Record<string, number> | undefined {
    const outcome = routeHttp(httpRoutes(plan), request);
    if (outcome === undefined) return undefined;
    const subsetOf = (backend: string) => plan.services.flatMap((s) => s.subsets.filter((sub) => versionServiceName(s.name, sub.version) === backend).map((sub) => sub.name))[0] ?? `?${backend}`;
    return Object.fromEntries(Object.entries(outcome.backends).map(([backend, weight]) => [subsetOf(backend), weight]));
}

describe("trafficApi gatewayApi: where requests land", () => {
    const stacks: [string, string, Record<string, unknown>][] = [
        ["gateway", "gateway", {}],
        // dev's retries are the one thing the standard channel cannot say.
        ["dev", "dev", { resilience: {} }],
        ["a rule with a path prefix of its own", "gateway", { routes: { "user-service": [{ name: "beta-path", path: { prefix: "/users/beta" }, to: "v2" }] } }],
    ];
    for (const [label, stack, overrides] of stacks) {
        it(`${label}: the same as the VirtualServices, for canary, blue/green, A/B and preview, at the edge and in the mesh`, () => {
            let compared = 0;
            for (const canaryWeight of [0, 10, 50, 100]) {
                for (const activeColor of ["blue", "green"]) {
                    const istio = planFor(stack, { ...overrides, canaryWeight, activeColor, trafficApi: "istio" });
                    const gateway = planFor(stack, { ...overrides, canaryWeight, activeColor, trafficApi: "gatewayApi" });
                    for (const request of [...requests(INGRESS), ...requests("mesh")]) {
                        const expected = routeVia(virtualServiceSpecs(istio), request);
                        assert.deepEqual(gatewayShares(gateway, request), expected === undefined ? undefined : shares(expected), `${JSON.stringify(request)} at canaryWeight ${canaryWeight}, ${activeColor}`);
                        compared++;
                    }
                }
            }
            assert.equal(compared, 8 * 41);
        });
    }

    it("keeps a sticky canary's cookie and the mirror share", () => {
        const plan = planFor("gateway", {
            services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"], stickyCanary: { cookie: "canary", maxAge: "1h" } } },
            routes: {},
            meshEdges: [],
            mirror: { "user-service": 12.5 },
            canaryWeight: 20,
        });
        const plain = routeHttp(httpRoutes(plan), { gateway: INGRESS, host: "localhost", path: "/users" });
        assert.deepEqual(plain?.setCookies, { "user-service-v2": "canary=v2; Max-Age=3600; Path=/" });
        assert.deepEqual(plain?.mirror, { backend: "user-service-v2", percent: 12.5 });
        assert.deepEqual(routeHttp(httpRoutes(plan), { gateway: "mesh", host: fqdn("user-service"), path: "/", headers: { cookie: "a=1; canary=v2" } })?.backends, { "user-service-v2": 100 });
    });

    it("matches a path prefix by whole segments, as the Gateway API does", () => {
        const plan = planFor("gateway");
        assert.ok(routeHttp(httpRoutes(plan), { gateway: INGRESS, host: "localhost", path: "/users/" }));
        assert.equal(routeHttp(httpRoutes(plan), { gateway: INGRESS, host: "localhost", path: "/usersx" }), undefined);
    });
});

describe("trafficApi gatewayApi: what it refuses", () => {
    const refused = (values: Record<string, unknown>) => configProblems({ trafficApi: "gatewayApi", ...values }).map((p) => `${p.key}: ${p.allowed}`);

    it("refuses faults, retries and claim-gated edge rules, naming the key and the Gateway API's limit", () => {
        assert.deepEqual(refused({ faults: { "order-service": { abort: { percent: 10, httpStatus: 503 } } } }), ["faults.order-service: is fault injection, which HTTPRoute (Gateway API v1.5.1, standard channel) cannot express with trafficApi gatewayApi"]);
        assert.match(refused({ resilience: { "*": { retries: { attempts: 2 } } } }).join(), /^resilience\["\*"\]\.retries: are retries, which HTTPRoute \(Gateway API v1.5.1\) has only in the experimental channel/);
        assert.match(refused({ resilience: { "user-service": { retries: { attempts: 2 } } } }).join(), /^resilience\.user-service\.retries: /);
        assert.match(refused({ edgeRuleAccess: "authenticated", jwt: { issuer: "https://issuer.example.com", jwksUri: "https://issuer.example.com/jwks" } }).join("\n"), /edgeRuleAccess: gates edge rules on JWT claims/);
        assert.deepEqual(refused({ trafficApi: "httpRoute" }).map((p) => p.split(":")[0]), ["trafficApi"]);
    });

    it("refuses rules the HTTPRoute would order differently, and accepts rules that cannot overlap", async () => {
        const routes = (second: Record<string, unknown>) => ({ routes: { "user-service": [{ name: "first", headers: { "x-a": { exact: "1" } }, to: "v2" }, { name: "second", headers: { "x-a": { exact: "1" }, "x-b": { exact: "2" } }, to: "v1", ...second }] } });
        await assert.rejects(run("gateway", routes({})), /routes\.user-service = "second" after "first": with trafficApi gatewayApi, in the mesh: the HTTPRoute would send requests both match to "second"/);
        // With trafficApi istio the same rules are fine: the first match wins there.
        await run("gateway", { ...routes({}), trafficApi: "istio" });
        const exclusive = { routes: { "user-service": [{ name: "first", headers: { "x-a": { exact: "1" } }, to: "v2" }, { name: "second", headers: { "x-a": { exact: "2" }, "x-b": { exact: "2" } }, to: "v1" }] } };
        await run("gateway", exclusive);
    });
});

describe("trafficApi gatewayApi: the objects", () => {
    it("moves only HTTPRoutes on a weight step and on a color switch", async () => {
        const base = await run("gateway", { canaryWeight: 10, activeColor: "blue" });
        const step = await run("gateway", { canaryWeight: 50, activeColor: "blue" });
        const switched = await run("gateway", { canaryWeight: 10, activeColor: "green" });
        assert.deepEqual(changedObjects(base, step), ["~ HTTPRoute backend/user-service", "~ HTTPRoute backend/user-service-ingress"]);
        assert.deepEqual(changedObjects(base, switched), ["~ HTTPRoute backend/product-service", "~ HTTPRoute backend/product-service-ingress"]);
    });

    it("installs the v1.5.1 standard-channel CRDs first, and points routes only at Services and pods that exist", async () => {
        const result = await run("gateway");
        const crds = objects(result).filter((o) => o.kind === "CustomResourceDefinition");
        assert.deepEqual(crds.map((c) => c.metadata.name).sort(), ["backendtlspolicies", "gatewayclasses", "gateways", "grpcroutes", "httproutes", "listenersets", "referencegrants", "tlsroutes"].map((n) => `${n}.gateway.networking.k8s.io`));
        for (const crd of crds) assert.deepEqual([crd.metadata.annotations?.["gateway.networking.k8s.io/bundle-version"], crd.metadata.annotations?.["gateway.networking.k8s.io/channel"]], [GATEWAY_API_BUNDLE, "standard"]);
        const gateway = resource(result, "kubernetes:gateway.networking.k8s.io/v1:Gateway", "public-gateway");
        assert.ok(waitsFor(result, gateway, resource(result, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "gateways.gateway.networking.k8s.io")));
        const route = resource(result, "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "user-service");
        assert.ok(waitsFor(result, route, resource(result, "kubernetes:core/v1:Service", "user-service-v2")));
        assert.ok(waitsFor(result, route, resource(result, "kubernetes:apps/v1:Deployment", "user-service-v2")));
        // No VirtualService routes the apps, and no Istio Gateway is left at the edge.
        assert.deepEqual(objects(result).filter((o) => o.kind === "VirtualService" && o.metadata?.namespace === "backend"), []);
        assert.deepEqual(objects(result).filter((o) => o.apiVersion === "networking.istio.io/v1" && o.kind === "Gateway" && o.metadata?.namespace === GATEWAY_NAMESPACE), []);
    });

    it("the schema check catches an HTTPRoute the v1.5.1 CRD refuses", async () => {
        const broken = { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", metadata: { name: "broken" }, spec: { rules: [{ backendRefs: [{ name: "a", port: 80, weight: "ninety" }], timeouts: { request: "1.5s" } }] } };
        await assert.rejects(validateObjects([broken]), /HTTPRoute broken: .*weight must be integer.*timeouts\/request must match pattern/);
        await assert.rejects(validateObjects([{ apiVersion: "gateway.networking.k8s.io/v1alpha9", kind: "HTTPRoute" }]), /No schema for gateway.networking.k8s.io\/v1alpha9 HTTPRoute/);
    });
});

describe("gatewayProvider envoyGateway: the same routes, Envoy Gateway at the edge", () => {
    it("installs Envoy Gateway v1.8 (built against Gateway API v1.5.1) from its OCI charts, without Gateway API CRDs of its own, and no Istio ingress gateway", async () => {
        const result = await run("envoy-gateway");
        const releases = helmReleases(result).map((r) => [r.name, r.chart, r.version, r.namespace]);
        assert.deepEqual(releases.filter(([name]) => name.startsWith("envoy-gateway")), [["envoy-gateway", "oci://docker.io/envoyproxy/gateway-helm", "v1.8.3", "envoy-gateway-system"]]);
        const values = Object.fromEntries(helmReleases(result).map((r) => [r.name, r.values]));
        assert.deepEqual(values["envoy-gateway"], { crds: { enabled: false } });
        // Its CRDs chart keeps every template in a release Secret whatever the values (over the 1 MiB limit): a v4 Chart, rendered and applied with no release.
        const crds = resource(result, "kubernetes:helm.sh/v4:Chart", "envoy-gateway-crds");
        assert.deepEqual(crds.inputs, { chart: "oci://docker.io/envoyproxy/gateway-crds-helm", version: "v1.8.3", namespace: "envoy-gateway-system", values: { crds: { gatewayAPI: { enabled: false }, envoyGateway: { enabled: true } } } });
        assert.ok(waitsFor(result, resource(result, "kubernetes:helm.sh/v3:Release", "envoy-gateway"), crds));
        assert.deepEqual(helmReleases(result).filter((r) => r.chart === "gateway"), [], "Istio's ingress gateway is not installed");
        const gateway = resource(result, "kubernetes:gateway.networking.k8s.io/v1:Gateway", "public-gateway");
        assert.match(JSON.stringify(gateway.inputs.spec), /^\{"gatewayClassName":"envoy-gateway","listeners"/, "its class, and no addresses: Envoy Gateway provisions its own");
        assert.ok(waitsFor(result, gateway, resource(result, "kubernetes:helm.sh/v3:Release", "envoy-gateway")));
        assert.ok(waitsFor(result, gateway, resource(result, "kubernetes:gateway.networking.k8s.io/v1:GatewayClass", "envoy-gateway")));
        assert.equal(result.outputs.ingressAddress, "localhost:30080");
    });

    it("joins its proxies to the mesh: Istio's sidecar, Service routing, their own service account which the app admits, xDS past the sidecar; fixed node ports", async () => {
        const result = await run("envoy-gateway");
        // The program's EnvoyProxy is the pure spec for this stack's settings; the spec itself says how the proxies join the mesh.
        const proxy = envoyProxySpec({ serviceType: "NodePort", replicas: 1, httpNodePort: 30080, httpsNodePort: 30443, https: false });
        assert.deepEqual(resource(result, "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy", "edge-proxy").inputs.spec, proxy);
        assert.equal(proxy.routingType, "Service", "calls go to a version's Service address, which the sidecar carries over mutual TLS");
        assert.deepEqual(proxy.provider.kubernetes.envoyDeployment.pod.labels, { "sidecar.istio.io/inject": "true" });
        assert.equal(proxy.provider.kubernetes.envoyDeployment.pod.annotations["traffic.sidecar.istio.io/excludeOutboundPorts"], "18000", "the xDS feed to envoy-gateway:18000 bypasses the sidecar");
        assert.equal(proxy.provider.kubernetes.envoyPDB, undefined, "no disruption budget for a single proxy");
        assert.deepEqual(envoyProxySpec({ serviceType: "LoadBalancer", replicas: 2, httpNodePort: 30080, httpsNodePort: 30443, https: true }).provider.kubernetes.envoyPDB, { minAvailable: 1 });
        assert.deepEqual(proxy.provider.kubernetes.envoyService, { type: "NodePort", patch: { type: "StrategicMerge", value: { spec: { ports: [{ port: 80, nodePort: 30080 }] } } } });
        assert.deepEqual(resource(result, "kubernetes:gateway.networking.k8s.io/v1:GatewayClass", "envoy-gateway").inputs.spec, {
            controllerName: "gateway.envoyproxy.io/gatewayclass-controller",
            parametersRef: { group: "gateway.envoyproxy.io", kind: "EnvoyProxy", name: "edge-proxy", namespace: "envoy-gateway-system" },
        });
        const allow = named(result, "AuthorizationPolicy", "user-service-from-ingress").spec as { rules: { from: { source: unknown }[] }[] };
        assert.deepEqual(allow.rules[0].from[0].source, { principals: ["cluster.local/ns/envoy-gateway-system/sa/edge-proxy"] });
    });

    it("routes exactly as with Istio's gateway, each edge backendRef rewriting Host to its Service's name", async () => {
        const routes = async (stack: string) => objects(await run(stack)).filter((o) => o.kind === "HTTPRoute");
        const withoutHostRewrite = (routes: K8sObject[]) =>
            routes.map((o) => {
                const spec = o.spec as HttpRouteSpec;
                const rules = spec.rules.map((r) => ({
                    ...r,
                    backendRefs: r.backendRefs?.map(({ filters, ...ref }) => {
                        const kept = (filters ?? []).filter((f) => f.type !== "URLRewrite");
                        return kept.length > 0 ? { ...ref, filters: kept } : ref;
                    }),
                }));
                return { ...o, spec: { ...spec, rules } };
            });
        const envoy = await routes("envoy-gateway");
        assert.deepEqual(withoutHostRewrite(envoy), withoutHostRewrite(await routes("gateway")));
        const users = must(envoy.find((o) => o.metadata.name === "user-service-ingress"), "user-service-ingress").spec as HttpRouteSpec;
        const release = users.rules[users.rules.length - 1];
        assert.deepEqual(release.backendRefs?.map((b) => [b.name, b.filters]), [
            ["user-service-v1", [{ type: "URLRewrite", urlRewrite: { hostname: "user-service-v1.backend.svc" } }]],
            ["user-service-v2", [{ type: "URLRewrite", urlRewrite: { hostname: "user-service-v2.backend.svc" } }]],
        ]);
    });

    it("refuses Envoy Gateway without the Gateway API, or with Istio's JWT validation at the edge", () => {
        const keys = (values: Record<string, unknown>) => configProblems(values).map((p) => `${p.key}: ${p.allowed}`);
        assert.match(keys({ gatewayProvider: "envoyGateway" }).join(), /^gatewayProvider: serves the edge through the Gateway API, and trafficApi is istio/);
        assert.match(keys({ trafficApi: "gatewayApi", gatewayProvider: "envoyGateway", resilience: {}, jwt: { issuer: "https://issuer.example.com", jwksUri: "https://issuer.example.com/jwks", protectedPaths: ["/orders*"] } }).join("\n"), /jwt: is validated by Istio's RequestAuthentication on Istio's ingress gateway; with gatewayProvider envoyGateway/);
        assert.deepEqual(keys({ trafficApi: "gatewayApi", resilience: {}, gatewayProvider: "nginx" }).map((k) => k.split(":")[0]), ["gatewayProvider"]);
        assert.match(keys({ ...stackConfig("envoy-gateway"), mirror: { "user-service": 10 } }).join("\n"), /^mirror\.user-service: is a request mirror; with gatewayProvider envoyGateway its copy keeps the client's Host/);
    });
});

/**
 * The Host an edge provider's proxy sends with a request for `backend`, by the provider's own rules: Envoy
 * Gateway applies the backendRef's URLRewrite hostname (v1.8.3 xds translator, weighted cluster
 * host_rewrite_literal); Kong keeps the client's Host while its controller's default `preserve_host` holds,
 * and otherwise sends its target's host, `<service>.<namespace>.svc` (KIC 3.5 getEndpoints; Kong 3.9
 * set_host_header leaves out port 80).
 */
function hostSent(provider: "envoyGateway" | "kong", route: K8sObject, rule: string, backend: string, clientHost: string): string {
    if (provider === "kong") return route.metadata.annotations?.["konghq.com/preserve-host"] === "false" ? `${backend}.${route.metadata.namespace ?? ""}.svc` : clientHost;
    const spec = route.spec as HttpRouteSpec;
    const ref = spec.rules.find((r) => r.name === rule)?.backendRefs?.find((b) => b.name === backend);
    const rewrite = ref?.filters?.find((f) => f.type === "URLRewrite");
    return rewrite?.type === "URLRewrite" ? rewrite.urlRewrite.hostname : clientHost;
}

/** Who each provider's proxies and its controller are, as their charts and Envoy Gateway name their service accounts. */
function providerAccounts(provider: "envoyGateway" | "kong", result: ProgramRun): { proxy: string; controller: string } {
    if (provider === "kong") return { proxy: "kong/kong-gateway", controller: "kong/kong-controller" };
    const proxy = resource(result, "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy", "edge-proxy").inputs.spec as { provider: { kubernetes: { envoyServiceAccount?: { name: string } } } };
    // Envoy Gateway's default: envoy-<gateway namespace>-<gateway name>-<first 8 hex of sha256("<namespace>/<name>")>.
    const hashed = `envoy-istio-ingress-public-gateway-${createHash("sha256").update("istio-ingress/public-gateway").digest("hex").slice(0, 8)}`;
    return { proxy: `envoy-gateway-system/${proxy.provider.kubernetes.envoyServiceAccount?.name ?? hashed}`, controller: "envoy-gateway-system/envoy-gateway" };
}

/**
 * What Helm v3 stores in each pinned chart's release Secret, in bytes, measured once from the charts' sources at
 * their tags (not derived here: there is no Helm on the test machine): base64(gzip(JSON)) of the chart itself
 * (templates, files, values, schema; subcharts are not stored) plus the rendered manifest at the chart's default
 * values, bounded by every template of the chart and its subcharts, the files they include (Istio base's 871 KB
 * of CRDs) and their values dumps. Envoy Gateway's gateway-crds-helm measured the same way is about 2.3 MB: it is
 * installed without a release. The test fails when a chart or version not measured here is installed as a
 * release; the values this program sets add little (no value it sets multiplies a template), and the largest
 * chart leaves two thirds of the limit.
 */
const RELEASE_SECRET_BYTES: Readonly<Record<string, number>> = {
    "base@1.30.3": 320_152,
    "istiod@1.30.3": 125_236,
    "gateway@1.30.3": 31_240,
    "cni@1.30.3": 33_056,
    // Measured later by the same bound from the 1.30.3 tag (22,788), plus the 2,000 bytes by which that bound fell short of cni's figure above.
    "ztunnel@1.30.3": 24_788,
    "ingress@0.24.0": 86_648,
    "oci://docker.io/envoyproxy/gateway-helm@v1.8.3": 30_836,
    "prometheus@27.42.2": 87_260,
    "grafana@8.6.3": 107_520,
    "kiali-server@2.24.0": 44_396,
    "jaeger@4.0.1": 52_440,
};
/** Kubernetes refuses a Secret whose data exceeds 1 MiB. */
const SECRET_LIMIT_BYTES = 1_048_576;

describe("Helm releases fit Helm's release Secret", () => {
    it("installs only measured charts as Helm releases, each under half the Secret's 1 MiB, on every stack", async () => {
        let releases = 0;
        for (const stack of ["dev", "staging", "prod", "gateway", "envoy-gateway", "kong", "ambient"]) {
            for (const release of helmReleases(await run(stack))) {
                const bytes = RELEASE_SECRET_BYTES[`${release.chart}@${release.version}`];
                assert.ok(bytes !== undefined, `${stack}: ${release.chart} ${release.version} is installed as a Helm release without a measured size`);
                assert.ok(bytes < SECRET_LIMIT_BYTES / 2, `${stack}: ${release.chart} ${release.version} stores about ${bytes} bytes`);
                releases++;
            }
        }
        assert.ok(releases >= 20);
    });
});

describe("an edge of another provider reaches the apps as its sidecar routes it", () => {
    // The mesh's modes change no route and no AuthorizationPolicy: each stack's objects are judged under both.
    const cases: [string, "envoyGateway" | "kong", "STRICT" | "PERMISSIVE", "ALLOW_ANY" | "REGISTRY_ONLY"][] = [
        ["envoy-gateway", "envoyGateway", "PERMISSIVE", "ALLOW_ANY"],
        ["envoy-gateway", "envoyGateway", "STRICT", "REGISTRY_ONLY"],
        ["kong", "kong", "PERMISSIVE", "ALLOW_ANY"],
        ["kong", "kong", "STRICT", "REGISTRY_ONLY"],
    ];
    for (const [stack, provider, mtls, outbound] of cases) {
        it(`${stack} (${mtls}, ${outbound}): every edge request arrives at the backend its HTTPRoute chose, over mutual TLS, admitted; the provider's other workloads are not`, async () => {
            const result = await run(stack);
            const namespace = settingsFor(stack).appNamespace;
            const services: MeshService[] = ofKind(result, "Service").map((s) => ({ name: s.metadata?.name ?? "", namespace: s.metadata?.namespace ?? "", port: s.spec?.ports?.[0]?.port ?? 0 }));
            // The pods a Service sends to carry at least its selector's labels, which the policies select by.
            const podLabels = (service: MeshService) => ofKind(result, "Service").find((s) => s.metadata?.name === service.name && s.metadata.namespace === service.namespace)?.spec?.selector ?? {};
            const policies = ofKind(result, "AuthorizationPolicy").map((p) => ({ namespace: p.metadata?.namespace ?? "", spec: p.spec ?? {} }));
            const edgeRoutes = objects(result).filter((o) => o.kind === "HTTPRoute" && o.metadata.name.endsWith("-ingress"));
            const rendered = edgeRoutes.map((o) => ({ namespace: o.metadata.namespace ?? "", name: o.metadata.name, spec: o.spec as HttpRouteSpec }));
            const accounts = providerAccounts(provider, result);
            const [proxyNamespace] = accounts.proxy.split("/");
            let checked = 0;
            for (const request of requests(INGRESS)) {
                const outcome = routeHttp(rendered, request);
                if (outcome === undefined) continue;
                for (const backend of Object.keys(outcome.backends)) {
                    const route = edgeRoutes.find((o) => (o.spec as HttpRouteSpec).rules.some((r) => r.name === outcome.rule && r.backendRefs?.some((b) => b.name === backend)));
                    const dialled = must(services.find((s) => s.name === backend && s.namespace === namespace), backend);
                    const host = hostSent(provider, must(route, `the route of ${backend}`), outcome.rule, backend, request.host);
                    const arrived = arrival(sidecarUpstream(host, services, proxyNamespace, outbound), dialled, accounts.proxy, mtls);
                    const what = `${request.path} ${JSON.stringify(request.headers)} -> ${backend} with Host ${host}`;
                    assert.equal(arrived.kind === "arrived" ? `${arrived.service.name} ${arrived.peer.principal ?? "plain text"}` : arrived.why, `${backend} cluster.local/ns/${proxyNamespace}/sa/${accounts.proxy.split("/")[1]}`, what);
                    assert.ok(arrived.kind === "arrived" && authorized(policies, namespace, podLabels(arrived.service), arrived.peer, request.path, "GET"), `${what}: denied`);
                    // Only the edge's proxies are admitted: the provider's controller, in the same namespace, calling the same Service over mutual TLS, is not.
                    const controller = arrival({ kind: "service", service: dialled }, dialled, accounts.controller, mtls);
                    assert.ok(controller.kind === "arrived" && !authorized(policies, namespace, podLabels(dialled), controller.peer, request.path, "GET"), `${what}: ${accounts.controller} admitted`);
                    checked++;
                }
            }
            assert.ok(checked >= 15, `${checked} edge requests checked`);
        });
    }

    it("the model sees what goes wrong without a Host of the mesh: plain text passed through, refused under STRICT, denied under PERMISSIVE, a 502 under REGISTRY_ONLY", () => {
        const services: MeshService[] = [{ name: "user-service-v2", namespace: "backend", port: 80 }];
        const [dialled] = services;
        assert.deepEqual(sidecarUpstream("localhost:30080", services, "kong", "REGISTRY_ONLY"), { kind: "blackhole" });
        assert.deepEqual(arrival(sidecarUpstream("api.example.com", services, "kong", "ALLOW_ANY"), dialled, "kong/kong-gateway", "STRICT").kind, "failed");
        const plain = arrival(sidecarUpstream("api.example.com", services, "kong", "ALLOW_ANY"), dialled, "kong/kong-gateway", "PERMISSIVE");
        assert.deepEqual(plain, { kind: "arrived", service: dialled, peer: {} });
        const byNamespace = [{ namespace: "backend", spec: { selector: { matchLabels: { app: "user-service" } }, action: "ALLOW" as const, rules: [{ from: [{ source: { namespaces: ["kong"] } }] }] } }];
        assert.ok(plain.kind === "arrived" && !authorized(byNamespace, "backend", { app: "user-service" }, plain.peer, "/users", "GET"));
        // The Host names the Service, whatever address was dialled; the short forms count only from the Service's own namespace.
        assert.deepEqual(sidecarUpstream("user-service-v2.backend.svc", services, "kong", "REGISTRY_ONLY"), { kind: "service", service: dialled });
        assert.deepEqual(sidecarUpstream("user-service-v2", services, "kong", "ALLOW_ANY"), { kind: "passthrough" });
    });
});

describe("gatewayProvider kong: the same routes, Kong at the edge", () => {
    it("installs Kong's ingress chart, pinned, with its proxies joined to the mesh and on the configured node ports, and an unmanaged GatewayClass", async () => {
        const result = await run("kong");
        const kong = helmReleases(result).find((r) => r.name === "kong");
        assert.deepEqual([kong?.chart, kong?.version, kong?.namespace, kong?.repositoryOpts.repo], ["ingress", "0.24.0", "kong", "https://charts.konghq.com"]);
        assert.deepEqual(kong?.values, {
            gateway: {
                replicaCount: 1,
                podLabels: { "sidecar.istio.io/inject": "true" },
                podAnnotations: { "traffic.sidecar.istio.io/includeInboundPorts": "" },
                proxy: { type: "NodePort", http: { servicePort: 80, nodePort: 30080 }, tls: { servicePort: 443, nodePort: 30443 } },
            },
        });
        assert.deepEqual(helmReleases(result).filter((r) => r.chart === "gateway"), [], "Istio's ingress gateway is not installed");
        const gatewayClass = resource(result, "kubernetes:gateway.networking.k8s.io/v1:GatewayClass", "kong");
        assert.deepEqual([gatewayClass.inputs.metadata, gatewayClass.inputs.spec], [{ name: "kong", annotations: { "konghq.com/gatewayclass-unmanaged": "true" } }, { controllerName: "konghq.com/kic-gateway-controller" }]);
        const gateway = resource(result, "kubernetes:gateway.networking.k8s.io/v1:Gateway", "public-gateway");
        assert.match(JSON.stringify(gateway.inputs.spec), /^\{"gatewayClassName":"kong","listeners"/);
        assert.ok(waitsFor(result, gateway, gatewayClass));
    });

    it("has Kong call each version's Service address with that Service's name as Host, which its sidecar carries over mutual TLS, and the apps admit Kong's proxies", async () => {
        const result = await run("kong");
        for (const name of ["user-service-v1", "user-service-v2", "product-service-v1"]) {
            assert.deepEqual(named(result, "Service", name).metadata?.annotations, { "ingress.kubernetes.io/service-upstream": "true" }, name);
        }
        const allow = named(result, "AuthorizationPolicy", "user-service-from-ingress").spec as { rules: { from: { source: unknown }[] }[] };
        assert.deepEqual(allow.rules[0].from[0].source, { principals: ["cluster.local/ns/kong/sa/kong-gateway"] });
        // Only the provider changes: the same config served by Istio's gateway renders the same HTTPRoutes, but for the edge routes' preserve-host annotation.
        const routes = async (overrides: { gatewayProvider?: string }) => objects(await run("kong", overrides)).filter((o) => o.kind === "HTTPRoute");
        const kong = await routes({});
        const edge = kong.filter((o) => o.metadata.name.endsWith("-ingress"));
        assert.deepEqual(edge.map((o) => [o.metadata.name, o.metadata.annotations]), ["user-service", "product-service", "order-service"].map((s) => [`${s}-ingress`, { "konghq.com/preserve-host": "false" }]));
        const specs = (routes: K8sObject[]) => routes.map((o) => [o.metadata.name, o.spec]);
        assert.deepEqual(specs(kong), specs(await routes({ gatewayProvider: "istio" })));
    });

    it("guards its proxies with a disruption budget when there are 2 or more (the chart refuses one for a single proxy)", () => {
        const budget = (replicas: number) => kongValues({ serviceType: "LoadBalancer", replicas, httpNodePort: 30080, httpsNodePort: 30443 }).gateway.podDisruptionBudget;
        assert.equal(budget(1), undefined);
        assert.deepEqual(budget(2), { enabled: true, minAvailable: 1 });
    });

    it("refuses what Kong's controller would drop without a word: mirrors, request timeouts, a sticky canary's backendRef filter", () => {
        const keys = (values: Record<string, unknown>) => configProblems({ ...stackConfig("kong"), ...values }).map((p) => p.key);
        assert.deepEqual(keys({ mirror: { "user-service": 10 } }), ["mirror.user-service"]);
        assert.deepEqual(keys({ resilience: { "*": { timeout: "5s" } } }), ["resilience", "resilience", "resilience"]);
        assert.deepEqual(keys({ services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"], stickyCanary: { cookie: "canary", maxAge: "1h" } } }, routes: {}, meshEdges: [] }), ["services.user-service.stickyCanary"]);
        assert.deepEqual(keys({}), []);
    });
});
