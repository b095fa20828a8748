// dataPlane ambient: the same releases on Istio's sidecar-less data plane. The install and its order; the
// namespace, its waypoint and the Services that name it; no object a waypoint cannot serve; where each request
// lands, compared request by request with the sidecar stack's VirtualServices through a model of how ztunnel,
// the ingress gateway and the waypoint pass it on; who is let through; and what a release changes.
import { strict as assert } from "assert";
import { changedObjects } from "../rollout/diff";
import { releaseQueries } from "../components/specs/observability-specs";
import { WAYPOINT_SERVICE_LABELS } from "../components/specs/ambient-specs";
import { configProblems, fqdn, helmReleases, INGRESS, K8sObject, objects, ofKind, planFor, ProgramRun, resource, routeVia, run, shares, virtualServiceSpecs, waitsFor } from "./harness";
import { landFromEdge, landFromMesh, Landing, worldOf } from "./support/data-plane-path";
import { requests } from "./support/requests";

const INGRESS_ACCOUNT = "istio-ingress/istio-ingressgateway";
const inApps = (result: ProgramRun, kind: string): K8sObject[] => objects(result).filter((o) => o.kind === kind && o.metadata.namespace === "backend");

describe("dataPlane ambient: the install", () => {
    it("installs base, then istiod and CNI in Istio's ambient profile, then ztunnel, all pinned, each waiting for the one before", async () => {
        const result = await run("ambient");
        const releases = helmReleases(result);
        const byName = Object.fromEntries(releases.map((r) => [r.name, r]));
        assert.deepEqual(
            ["istio-base", "istiod", "istio-cni", "ztunnel"].map((name) => [byName[name]?.chart, byName[name]?.version, byName[name]?.namespace]),
            [["base", "1.30.3", "istio-system"], ["istiod", "1.30.3", "istio-system"], ["cni", "1.30.3", "istio-system"], ["ztunnel", "1.30.3", "istio-system"]],
        );
        assert.equal(byName.istiod.values.profile, "ambient");
        assert.deepEqual(byName["istio-cni"].values, { profile: "ambient" });
        assert.deepEqual(byName.ztunnel.values, { profile: "ambient" });
        const release = (name: string) => resource(result, "kubernetes:helm.sh/v3:Release", name);
        for (const [later, earlier] of [["istiod", "istio-base"], ["istio-cni", "istiod"], ["ztunnel", "istio-cni"]]) assert.ok(waitsFor(result, release(later), release(earlier)), `${later} waits for ${earlier}`);
        // A sidecar stack keeps its order (CNI before istiod) and has no ztunnel.
        const sidecar = await run("gateway");
        assert.deepEqual(helmReleases(sidecar).filter((r) => r.chart === "ztunnel"), []);
        assert.equal(helmReleases(sidecar).find((r) => r.name === "istiod")?.values.profile, undefined);
        assert.ok(waitsFor(sidecar, resource(sidecar, "kubernetes:helm.sh/v3:Release", "istiod"), resource(sidecar, "kubernetes:helm.sh/v3:Release", "istio-cni")));
        // On GKE both node agents get the platform's profile (its ResourceQuota for system-node-critical pods).
        const gke = helmReleases(await run("ambient", { platform: "gke" }));
        assert.deepEqual(["istio-cni", "ztunnel"].map((name) => gke.find((r) => r.name === name)?.values), [{ profile: "ambient", global: { platform: "gke" } }, { profile: "ambient", global: { platform: "gke" } }]);
    });

    it("enrolls the app namespace in ambient, without injection, once ztunnel serves; its pods carry nothing for a sidecar", async () => {
        const result = await run("ambient");
        const namespace = ofKind(result, "Namespace").find((n) => n.metadata?.name === "backend");
        assert.equal(namespace?.metadata?.labels?.["istio.io/dataplane-mode"], "ambient");
        assert.equal(namespace?.metadata?.labels?.["istio-injection"], undefined);
        assert.ok(waitsFor(result, resource(result, "kubernetes:core/v1:Namespace", "backend"), resource(result, "kubernetes:helm.sh/v3:Release", "ztunnel")));
        for (const deployment of ofKind(result, "Deployment")) {
            assert.equal(deployment.spec?.template.metadata?.annotations, undefined, deployment.metadata?.name);
            // Ambient by their own labels too: started again while a switch back gives the namespace injection, they stay ambient.
            const labels = deployment.spec?.template.metadata?.labels ?? {};
            assert.deepEqual([labels["istio.io/dataplane-mode"], labels["sidecar.istio.io/inject"]], ["ambient", "false"], deployment.metadata?.name);
        }
        const sidecar = await run("gateway");
        // A sidecar stack's pod templates are as they were: upgrading this program restarts no pod.
        for (const deployment of ofKind(sidecar, "Deployment")) assert.deepEqual(Object.keys(deployment.spec?.template.metadata?.labels ?? {}).filter((k) => k.includes("istio")), []);
        assert.equal(ofKind(sidecar, "Namespace").find((n) => n.metadata?.name === "backend")?.metadata?.labels?.["istio-injection"], "enabled");
    });

    it("runs one waypoint for the namespace, which every app and version Service names, and which exists before any of them does", async () => {
        const result = await run("ambient");
        const waypoints = inApps(result, "Gateway");
        assert.deepEqual(
            waypoints.map((w) => [w.apiVersion, w.metadata.name, w.metadata.labels, w.spec]),
            [
                [
                    "gateway.networking.k8s.io/v1",
                    "waypoint",
                    { "istio.io/waypoint-for": "service" },
                    { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }], infrastructure: { parametersRef: { group: "", kind: "ConfigMap", name: "waypoint-deployment" } } },
                ],
            ],
        );
        const waypoint = resource(result, "kubernetes:gateway.networking.k8s.io/v1:Gateway", "waypoint");
        // Scaled as the ingress gateway is: istiod patches its waypoint's Deployment and autoscaler with the ConfigMap the Gateway names, which must exist first.
        const parameters = resource(result, "kubernetes:core/v1:ConfigMap", "waypoint-deployment");
        assert.ok(waitsFor(result, waypoint, parameters));
        const patches = (stack: string, overrides: Record<string, number>) =>
            run(stack, overrides).then((r) => Object.fromEntries(Object.entries((resource(r, "kubernetes:core/v1:ConfigMap", "waypoint-deployment").inputs as { data: Record<string, string> }).data).map(([k, v]) => [k, JSON.parse(v) as unknown])));
        // istiod's waypoint template sets no seccomp profile, which the restricted Pod Security level requires.
        const deployment = { spec: { template: { spec: { securityContext: { seccompProfile: { type: "RuntimeDefault" } } } } } };
        assert.deepEqual(await patches("ambient", {}), { deployment, horizontalPodAutoscaler: { spec: { minReplicas: 1, maxReplicas: 5 } } });
        assert.deepEqual(await patches("ambient", { gatewayReplicas: 3 }), { deployment, horizontalPodAutoscaler: { spec: { minReplicas: 3, maxReplicas: 5 } } });
        // Its disruption budget is also its readiness: Pulumi holds the Services back until it allows a disruption, every waypoint pod ready.
        const budget = resource(result, "kubernetes:policy/v1:PodDisruptionBudget", "waypoint");
        assert.deepEqual([(budget.inputs as unknown as K8sObject).metadata.annotations, (budget.inputs as unknown as K8sObject).spec], [{ "pulumi.com/waitFor": "condition=DisruptionAllowed" }, { maxUnavailable: 1, selector: { matchLabels: { "gateway.networking.k8s.io/gateway-name": "waypoint" } } }]);
        assert.ok(waitsFor(result, budget, waypoint));
        for (const service of inApps(result, "Service")) assert.ok(waitsFor(result, resource(result, "kubernetes:core/v1:Service", service.metadata.name), budget), `${service.metadata.name} waits for the waypoint's pods`);
        assert.ok(waitsFor(result, waypoint, resource(result, "kubernetes:helm.sh/v3:Release", "ztunnel")));
        assert.ok(waitsFor(result, waypoint, resource(result, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "gateways.gateway.networking.k8s.io")));
        const services = inApps(result, "Service");
        assert.deepEqual(services.map((s) => s.metadata.name).sort(), ["order-service", "order-service-v1", "product-service", "product-service-v1", "product-service-v2", "user-service", "user-service-v1", "user-service-v2"]);
        for (const service of services) {
            assert.deepEqual(Object.fromEntries(Object.keys(WAYPOINT_SERVICE_LABELS).map((k) => [k, service.metadata.labels?.[k]])), WAYPOINT_SERVICE_LABELS, service.metadata.name);
            assert.ok(waitsFor(result, resource(result, "kubernetes:core/v1:Service", service.metadata.name), waypoint), `${service.metadata.name} waits for the waypoint`);
        }
    });

    it("renders nothing a waypoint cannot serve: no VirtualService, no subset, no EnvoyFilter, no Istio TLS in a DestinationRule", async () => {
        const result = await run("ambient");
        assert.deepEqual(inApps(result, "VirtualService"), []);
        assert.deepEqual(inApps(result, "EnvoyFilter"), []);
        const rules = ofKind(result, "DestinationRule").filter((d) => d.metadata?.namespace === "backend");
        assert.ok(rules.length > 0, "the timeout's ejection policy is still applied, by the waypoint");
        for (const rule of rules) assert.deepEqual([rule.spec?.subsets, rule.spec?.trafficPolicy?.tls], [undefined, undefined], rule.metadata?.name);
    });

    it("moves only the HTTPRoutes on a weight step and on a color switch", async () => {
        const base = await run("ambient", { canaryWeight: 10, activeColor: "blue" });
        assert.deepEqual(changedObjects(base, await run("ambient", { canaryWeight: 50, activeColor: "blue" })), ["~ HTTPRoute backend/user-service", "~ HTTPRoute backend/user-service-ingress"]);
        assert.deepEqual(changedObjects(base, await run("ambient", { canaryWeight: 10, activeColor: "green" })), ["~ HTTPRoute backend/product-service", "~ HTTPRoute backend/product-service-ingress"]);
    });

    it("refuses what has nowhere to run without sidecars, naming the key and the fix", () => {
        const problems = (values: Record<string, unknown>) => configProblems({ dataPlane: "ambient", ...values }).map((p) => `${p.key} -> ${p.fix}`);
        assert.deepEqual(problems({ resilience: {} }), ["dataPlane -> pulumi config set trafficApi gatewayApi, or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, gatewayProvider: "envoyGateway" }), ["gatewayProvider -> pulumi config set gatewayProvider istio, or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, rateLimits: { "user-service": { maxTokens: 10, tokensPerFill: 10, fillInterval: "1s" } } }), ["rateLimits.user-service -> pulumi config rm --path 'rateLimits.user-service', or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, egressGateway: true, egressHosts: [{ host: "api.github.com", ports: [{ number: 443, protocol: "TLS" }] }] }), ["egressGateway -> pulumi config set egressGateway false, or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, egressHosts: [{ host: "api.github.com", ports: [{ number: 443, protocol: "TLS" }] }], outboundTrafficPolicy: "REGISTRY_ONLY" }), ["outboundTrafficPolicy -> pulumi config set outboundTrafficPolicy ALLOW_ANY, or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, egressHosts: [{ host: "api.github.com", ports: [{ number: 443, protocol: "TLS" }] }] }), []);
        // Older releases have no ingress-use-waypoint (the edge would skip the waypoint, and ztunnel deny it) or no waypoint parameters.
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, istioVersion: "1.25.4" }), ["istioVersion -> pulumi config set istioVersion 1.30.3, or pulumi config set dataPlane sidecar"]);
        assert.deepEqual(problems({ trafficApi: "gatewayApi", resilience: {}, istioVersion: "1.26.0" }), []);
        assert.deepEqual(configProblems({ istioVersion: "1.25.4" }), [], "a sidecar stack runs it");
    });
});

/** The sidecar stack's VirtualServices' choice, as percent per version. */
function sidecarLanding(stack: string, overrides: Record<string, unknown>, request: Parameters<typeof routeVia>[1]): Landing {
    const plan = planFor(stack, { ...overrides, dataPlane: "sidecar", trafficApi: "istio" });
    const chosen = routeVia(virtualServiceSpecs(plan), request);
    if (chosen === undefined) return { kind: "unrouted" };
    const service = plan.services.find((s) => s.host === request.host || request.path.startsWith(s.path));
    const version = (subset: string) => plan.services.flatMap((s) => (s === service || service === undefined ? s.subsets : [])).find((s) => s.name === subset)?.version ?? subset;
    const versions: Record<string, number> = {};
    for (const [subset, weight] of Object.entries(shares(chosen))) if (weight > 0) versions[version(subset)] = (versions[version(subset)] ?? 0) + weight;
    return { kind: "served", versions };
}

describe("dataPlane ambient: where requests land", () => {
    it("lands every request where the sidecar stack's VirtualServices do: at the edge, and in the mesh through the waypoint", async () => {
        let compared = 0;
        for (const canaryWeight of [0, 10, 50, 100]) {
            for (const activeColor of ["blue", "green"]) {
                // Routing alone: who may call whom is the next test's.
                const overrides = { canaryWeight, activeColor, denyByDefault: false };
                const cluster = worldOf(await run("ambient", overrides));
                for (const request of requests(INGRESS)) {
                    assert.deepEqual(landFromEdge(cluster, "backend", request, INGRESS_ACCOUNT), sidecarLanding("ambient", overrides, request), `${JSON.stringify(request)} at ${canaryWeight}, ${activeColor}`);
                    compared++;
                }
                for (const request of requests("mesh")) {
                    const service = request.host.split(".")[0];
                    assert.deepEqual(landFromMesh(cluster, "backend", service, "order-service", request), sidecarLanding("ambient", overrides, request), `${JSON.stringify(request)} at ${canaryWeight}, ${activeColor}`);
                    compared++;
                }
            }
        }
        assert.equal(compared, 8 * 41);
    });

    it("with deny by default: the edge's requests arrive through the waypoint; declared callers arrive; others, and calls that skip it, are denied", async () => {
        const cluster = worldOf(await run("ambient", { canaryWeight: 50 }));
        assert.deepEqual(landFromEdge(cluster, "backend", { gateway: INGRESS, host: "localhost", path: "/users/7" }, INGRESS_ACCOUNT), { kind: "served", versions: { v1: 50, v2: 50 } });
        assert.deepEqual(landFromEdge(cluster, "backend", { gateway: INGRESS, host: "localhost", path: "/products", headers: { "x-preview": "green" } }, INGRESS_ACCOUNT), { kind: "served", versions: { v2: 100 } });
        const mesh = (service: string, from: string, path: string, method = "GET") => landFromMesh(cluster, "backend", service, from, { gateway: "mesh", host: fqdn(service), path }, method);
        assert.deepEqual(mesh("user-service", "order-service", "/users/1"), { kind: "served", versions: { v1: 50, v2: 50 } });
        assert.deepEqual(mesh("product-service", "order-service", "/products"), { kind: "served", versions: { v1: 100 } });
        // Not a declared edge: a method, a caller, a path.
        assert.deepEqual(mesh("user-service", "order-service", "/users/1", "DELETE"), { kind: "denied", where: "waypoint, for user-service" });
        assert.deepEqual(mesh("order-service", "user-service", "/orders"), { kind: "denied", where: "waypoint, for order-service" });
        assert.deepEqual(mesh("user-service", "order-service", "/admin"), { kind: "denied", where: "waypoint, for user-service" });
        // A call that skips the waypoint (a Service without its label, or a pod's address) meets ztunnel, which admits only the waypoint.
        const bypass = worldOf(await run("ambient", { canaryWeight: 50 }));
        const unlabelled = { ...bypass, services: bypass.services.map((s) => ({ ...s, metadata: { ...s.metadata, labels: { app: s.metadata.labels?.app ?? "" } } })) };
        assert.deepEqual(landFromMesh(unlabelled, "backend", "user-service-v2", "order-service", { gateway: "mesh", host: fqdn("user-service-v2"), path: "/users" }), { kind: "denied", where: "ztunnel of user-service-v2 (ambient), for cluster.local/ns/backend/sa/order-service" });
    });

    it("the model sees what goes wrong without the mechanism: sidecar policies on ambient pods, no allow for the waypoint, an edge that skips it", async () => {
        const edge = { gateway: INGRESS, host: "localhost", path: "/users" } as const;
        const ambient = worldOf(await run("ambient"));
        assert.equal(landFromEdge(ambient, "backend", edge, INGRESS_ACCOUNT).kind, "served");
        // The sidecar stack's policies (a pod selector with paths) rendered into an ambient namespace: ztunnel drops their
        // path rules, so nothing is allowed, and the waypoint has no policy of its own.
        const sidecarPolicies = worldOf(await run("gateway", { mtlsMode: "STRICT" })).policies;
        assert.deepEqual(landFromEdge({ ...ambient, policies: sidecarPolicies }, "backend", edge, INGRESS_ACCOUNT), { kind: "denied", where: "ztunnel of user-service-v1 (ambient), for cluster.local/ns/backend/sa/waypoint" });
        // Without the policy that admits the waypoint, ztunnel's allow-nothing refuses it.
        const noWaypointAllow = ambient.policies.filter((p) => p.spec.rules?.[0]?.from?.[0]?.source?.principals?.[0] !== "cluster.local/ns/backend/sa/waypoint" || p.spec.targetRefs !== undefined);
        assert.deepEqual(landFromEdge({ ...ambient, policies: noWaypointAllow }, "backend", edge, INGRESS_ACCOUNT), { kind: "denied", where: "ztunnel of user-service-v1 (ambient), for cluster.local/ns/backend/sa/waypoint" });
        // A waypoint whose pods Pulumi does not wait for is not yet serving when the Services name it; nor, in a restricted namespace, one whose pods get no seccomp profile.
        const registered = await run("ambient");
        const edited = (type: string, name: string, edit: (inputs: Record<string, unknown>) => Record<string, unknown>): ProgramRun => ({ ...registered, resources: registered.resources.map((r) => (r.type === type && r.name === name ? { ...r, inputs: edit(r.inputs) } : r)) });
        const skipped = { kind: "denied", where: "ztunnel of user-service-v1 (ambient), for cluster.local/ns/istio-ingress/sa/istio-ingressgateway" };
        assert.deepEqual(landFromEdge(worldOf(edited("kubernetes:policy/v1:PodDisruptionBudget", "waypoint", (inputs) => ({ ...inputs, metadata: { name: "waypoint", namespace: "backend" } }))), "backend", edge, INGRESS_ACCOUNT), skipped);
        assert.deepEqual(landFromEdge(worldOf(edited("kubernetes:core/v1:ConfigMap", "waypoint-deployment", (inputs) => ({ ...inputs, data: {} }))), "backend", edge, INGRESS_ACCOUNT), skipped);
        // Without istio.io/ingress-use-waypoint the gateway calls the pods itself, and ztunnel admits only the waypoint.
        const skipping = { ...ambient, services: ambient.services.map((s) => ({ ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, "istio.io/ingress-use-waypoint": "false" } } })) };
        assert.deepEqual(landFromEdge(skipping, "backend", edge, INGRESS_ACCOUNT), { kind: "denied", where: "ztunnel of user-service-v1 (ambient), for cluster.local/ns/istio-ingress/sa/istio-ingressgateway" });
    });
});

describe("dataPlane ambient: the rollout's queries", () => {
    it("judges every release by the waypoint's reports, the one L7 proxy on the way; a canary also by 5xx no version answered", () => {
        const queries = releaseQueries(planFor("ambient"), 60_000);
        assert.deepEqual(Object.keys(queries), ["user-service", "product-service"]);
        for (const q of Object.values(queries)) {
            for (const query of [q.requests, q.errors, q.latencyBuckets, q.successRate, q.p95LatencyMs]) assert.match(query, /reporter="waypoint", destination_workload_namespace="backend", destination_app="/);
            assert.doesNotMatch(JSON.stringify(q), /reporter="(source|destination)"/);
        }
        assert.equal(queries["user-service"].unattributedErrors, 'sum(increase(istio_requests_total{reporter="waypoint", destination_service_namespace="backend", destination_service_name=~"user-service|user-service-v1|user-service-v2", destination_version="unknown", response_code=~"5.."}[1m]))');
        assert.equal(queries["product-service"].unattributedErrors, undefined);
    });
});
