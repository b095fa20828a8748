import { strict as assert } from "assert";
import { CheckedResource, checkImagesPinned, checkNoProductionFaults, checkProbesAndLimits, checkProductionGatewayTls, checkProductionMtls, checkRoutedSubsets, checkRouteWeights } from "../policy/checks";
import { CHECKS, policies } from "../policy/policies";
import { stackNames } from "../lib/mock-program";
import { ProgramRun, run, settingsFor } from "./harness";

const resourcesOf = (result: ProgramRun): CheckedResource[] => result.resources.filter((r) => r.custom).map((r) => ({ type: r.type, name: r.name, props: r.inputs }));

const vs = (name: string, http: unknown[], namespace = "backend"): CheckedResource => ({
    type: "kubernetes:networking.istio.io/v1:VirtualService",
    name,
    props: { metadata: { name, namespace }, spec: { hosts: ["user-service"], http } },
});
const dr = (host: string, subsets: string[], namespace = "backend"): CheckedResource => ({
    type: "kubernetes:networking.istio.io/v1:DestinationRule",
    name: host,
    props: { metadata: { name: host, namespace }, spec: { host, subsets: subsets.map((name) => ({ name, labels: { version: name } })) } },
});
const deployment = (container: Record<string, unknown>): CheckedResource => ({
    type: "kubernetes:apps/v1:Deployment",
    name: "app",
    props: { spec: { template: { spec: { containers: [{ name: "app", ...container }] } } } },
});
const productionNamespace: CheckedResource = {
    type: "kubernetes:core/v1:Namespace",
    name: "backend",
    props: { metadata: { name: "backend", labels: { "istio-progressive-delivery/production": "true" } } },
};
const goodContainer = {
    image: "hashicorp/http-echo:1.0.0",
    readinessProbe: { httpGet: { path: "/health", port: "http" } },
    livenessProbe: { httpGet: { path: "/health", port: "http" } },
    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m", memory: "64Mi" } },
};
const route = (weights: unknown[], subsets = ["v1", "v2"]) => ({ name: "release", route: weights.map((weight, i) => ({ destination: { host: "user-service", subset: subsets[i] }, weight })) });

describe("CrossGuard policy pack (policy/)", () => {
    it("runs each policy's check, mandatory, and reports what the check finds", () => {
        assert.deepEqual(policies.map((p) => p.name).sort(), Object.keys(CHECKS).sort());
        assert.ok(policies.every((p) => p.enforcementLevel === "mandatory"));
        const reported: string[] = [];
        const bad = deployment({ ...goodContainer, image: "app:latest" });
        const notUsed = (): never => {
            throw new Error("these policies read type, name and props only");
        };
        const common = { stackTags: new Map<string, string>(), getConfig: notUsed, notApplicable: notUsed };
        const opts = { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] };
        for (const policy of policies) {
            if ("validateResource" in policy && typeof policy.validateResource === "function") {
                void policy.validateResource({ ...common, type: bad.type, name: bad.name, props: bad.props, urn: "urn:app", opts, isType: notUsed, asType: notUsed }, (m) => reported.push(`${policy.name}: ${m}`));
            }
            if ("validateStack" in policy && typeof policy.validateStack === "function") {
                const resource = { ...productionNamespace, urn: "urn:ns", opts, dependencies: [], propertyDependencies: {}, isType: notUsed, asType: notUsed };
                void policy.validateStack({ ...common, resources: [resource] }, (m) => reported.push(`${policy.name}: ${m}`));
            }
        }
        assert.deepEqual(reported, [
            'images-pinned: Deployment app container app: image "app:latest" is untagged or latest; pin a version or digest',
            "production-strict-mtls: production namespace backend has no STRICT PeerAuthentication",
            "production-gateway-tls: a production stack's ingress Gateway has no HTTPS server with a TLS credential",
        ]);
    });

    for (const stack of stackNames()) {
        it(`stays quiet on the ${stack} stack, on a 50/50 canary with a green switch, and on a team's own service`, async () => {
            const ownService = {
                services: {
                    "user-service": {
                        path: "/users",
                        release: "canary",
                        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
                        versions: [{ name: "v1", image: "ghcr.io/acme/user:1.4.0" }, { name: "v2", image: "ghcr.io/acme/user:1.5.0" }],
                        // Kong's controller drops a backendRef's filters, so a kong stack refuses a sticky canary.
                        ...(settingsFor(stack).gatewayProvider !== "kong" && { stickyCanary: { cookie: "canary", maxAge: "1h" } }),
                    },
                },
                routes: {},
                meshEdges: [],
                rateLimits: {},
                canaryWeight: 20,
            };
            for (const result of [await run(stack), await run(stack, { canaryWeight: 50, activeColor: "green" }), await run(stack, ownService)]) {
                const resources = resourcesOf(result);
                const violations = [
                    ...resources.flatMap((r) => [...checkRouteWeights(r), ...checkImagesPinned(r), ...checkProbesAndLimits(r)]),
                    ...checkRoutedSubsets(resources),
                    ...checkProductionMtls(resources),
                    ...checkProductionGatewayTls(resources),
                    ...checkNoProductionFaults(resources),
                ];
                assert.deepEqual(violations, []);
            }
        });
    }

    it("route-weights-valid: fires on weights that do not sum to 100 or are not whole percents", () => {
        assert.deepEqual(checkRouteWeights(vs("a", [route([90, 20])])), ["VirtualService a http[0] (release): weights add up to 110, not 100"]);
        assert.equal(checkRouteWeights(vs("a", [route([50.5, 49.5])])).length, 1);
        assert.equal(checkRouteWeights(vs("a", [route([90, undefined])])).length, 1);
        assert.deepEqual(checkRouteWeights(vs("a", [{ route: [{ destination: { host: "x" } }] }])), []);
    });

    it("routed-subsets-defined: fires on a subset no DestinationRule defines, resolving short hosts by namespace", () => {
        assert.deepEqual(checkRoutedSubsets([vs("a", [route([90, 10])]), dr("user-service.backend.svc.cluster.local", ["v1", "v2"])]), []);
        assert.deepEqual(checkRoutedSubsets([vs("a", [route([90, 10], ["v1", "v3"])]), dr("user-service", ["v1", "v2"])]), [
            "VirtualService a routes to subset v3 of user-service.backend.svc.cluster.local, which no DestinationRule defines",
        ]);
        assert.equal(checkRoutedSubsets([vs("a", [route([90, 10])]), dr("user-service", ["v1", "v2"], "other")]).length, 2);
    });

    it("images-pinned: fires on untagged and latest images, accepts tags and digests", () => {
        assert.equal(checkImagesPinned(deployment({ image: "hashicorp/http-echo" })).length, 1);
        assert.equal(checkImagesPinned(deployment({ image: "hashicorp/http-echo:latest" })).length, 1);
        assert.equal(checkImagesPinned(deployment({ image: "registry:5000/team/app" })).length, 1);
        assert.deepEqual(checkImagesPinned(deployment({ image: `app@sha256:${"a".repeat(64)}` })), []);
        assert.deepEqual(checkImagesPinned(deployment({ image: "registry:5000/team/app:1.2" })), []);
    });

    it("probes-and-limits: names what a container lacks", () => {
        assert.deepEqual(checkProbesAndLimits(deployment(goodContainer)), []);
        assert.deepEqual(checkProbesAndLimits(deployment({ ...goodContainer, livenessProbe: undefined, resources: { requests: { cpu: "10m", memory: "16Mi" } } })), [
            "Deployment app container app has no a livenessProbe, limits.memory",
        ]);
    });

    it("production-strict-mtls: fires in production without STRICT, or with something weaker beside it", () => {
        const pa = (mode: string): CheckedResource => ({ type: "kubernetes:security.istio.io/v1:PeerAuthentication", name: mode, props: { metadata: { namespace: "backend" }, spec: { mtls: { mode } } } });
        assert.deepEqual(checkProductionMtls([productionNamespace, pa("PERMISSIVE")]), ["production namespace backend has no STRICT PeerAuthentication"]);
        assert.equal(checkProductionMtls([productionNamespace, pa("STRICT"), pa("DISABLE")]).length, 1);
        assert.deepEqual(checkProductionMtls([productionNamespace, pa("STRICT")]), []);
        assert.deepEqual(checkProductionMtls([pa("PERMISSIVE")]), [], "not production");
    });

    it("production-gateway-tls: fires in production when the Gateway serves only HTTP", () => {
        const gateway = (servers: unknown[]): CheckedResource => ({ type: "kubernetes:networking.istio.io/v1:Gateway", name: "g", props: { spec: { servers } } });
        const http = { port: { number: 80, protocol: "HTTP" }, hosts: ["*"] };
        assert.equal(checkProductionGatewayTls([productionNamespace, gateway([http])]).length, 1);
        assert.deepEqual(checkProductionGatewayTls([productionNamespace, gateway([http, { port: { number: 443, protocol: "HTTPS" }, tls: { mode: "SIMPLE", credentialName: "c" } }])]), []);
        assert.deepEqual(checkProductionGatewayTls([gateway([http])]), [], "not production");
    });

    it("no-fault-injection-in-production: fires on a production route with a fault", () => {
        const faulty = vs("orders", [{ name: "release", fault: { abort: { percentage: { value: 5 }, httpStatus: 503 } }, route: [{ destination: { host: "order-service" } }] }]);
        assert.deepEqual(checkNoProductionFaults([productionNamespace, faulty]), ["VirtualService orders route release injects faults in production"]);
        assert.deepEqual(checkNoProductionFaults([faulty]), [], "not production");
    });

    it("catches the production program's own output once faults are forced through", async () => {
        const result = await run("prod", { faults: { "order-service": { abort: { percent: 1, httpStatus: 503 } } }, allowFaultsInProduction: true });
        assert.equal(checkNoProductionFaults(resourcesOf(result)).length, 2);
    });
});
