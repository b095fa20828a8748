import { strict as assert } from "assert";
import { fqdn, INGRESS, named, ofKind, routeRequest, run, shares } from "./harness";

const users = (gateway: string) => ({ gateway, host: gateway === "mesh" ? fqdn("user-service") : "any.host", path: "/users" });
const products = (gateway: string) => ({ gateway, host: gateway === "mesh" ? fqdn("product-service") : "any.host", path: "/products/42" });

describe("traffic routing", () => {
    for (const gateway of [INGRESS, "mesh"]) {
        const caller = gateway === "mesh" ? "in-mesh callers" : "the ingress gateway";

        it(`splits user-service by canaryWeight for ${caller}`, async () => {
            for (const [weight, expected] of [
                [0, { v1: 100 }],
                [10, { v1: 90, v2: 10 }],
                [50, { v1: 50, v2: 50 }],
                [100, { v2: 100 }],
            ] as const) {
                const result = await run("dev", { canaryWeight: weight });
                assert.deepEqual(shares(routeRequest(result, users(gateway))), expected, `canaryWeight ${weight}`);
            }
        });

        it(`sends all product-service traffic to the active color for ${caller}`, async () => {
            assert.deepEqual(shares(routeRequest(await run("dev", { activeColor: "blue" }), products(gateway))), { blue: 100 });
            assert.deepEqual(shares(routeRequest(await run("dev", { activeColor: "green" }), products(gateway))), { green: 100 });
        });
    }

    it("routes each ingress path prefix to its own service", async () => {
        const result = await run("dev");
        for (const [path, service] of [["/users", "user-service"], ["/products", "product-service"], ["/orders/7", "order-service"]]) {
            const hosts = Object.keys(routeRequest(result, { gateway: INGRESS, host: "localhost", path }) ?? {}).map((k) => k.split("/")[0]);
            assert.deepEqual([...new Set(hosts)], [fqdn(service)], path);
        }
        assert.equal(routeRequest(result, { gateway: INGRESS, host: "localhost", path: "/admin" }), undefined);
    });

    it("keeps the inactive version deployed but unrouted, and product subsets map colors to versions", async () => {
        const result = await run("dev", { canaryWeight: 0 });
        assert.ok(named(result, "Deployment", "user-service-v2"));
        assert.deepEqual(routeRequest(result, users("mesh")), { [`${fqdn("user-service")}/v1`]: 100, [`${fqdn("user-service")}/v2`]: 0 });
        const dr = named(result, "DestinationRule", "product-service");
        assert.deepEqual(dr.spec?.subsets?.map((s) => [s.name, s.labels?.version]), [["blue", "v1"], ["green", "v2"]]);
    });

    it("answers only for the configured ingress host", async () => {
        const result = await run("prod");
        assert.ok(routeRequest(result, { gateway: INGRESS, host: "api.example.com", path: "/users" }));
        assert.equal(routeRequest(result, { gateway: INGRESS, host: "evil.example.org", path: "/users" }), undefined);
        const gateway = named(result, "Gateway", "public-gateway");
        assert.deepEqual(gateway.spec?.servers?.[0].hosts, ["api.example.com"]);
    });

    it("routes a fourth service added as config, with no code change", async () => {
        const result = await run("dev", {
            services: {
                "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] },
                "payment-service": { path: "/payments", release: "canary", versions: ["v3", "v4"] },
            },
            // dev's routes and mesh edges name services this catalogue drops.
            routes: {},
            meshEdges: [],
            canaryWeight: 30,
        });
        assert.deepEqual(shares(routeRequest(result, { gateway: INGRESS, host: "x", path: "/payments" })), { v3: 70, v4: 30 });
        assert.deepEqual(ofKind(result, "Deployment").map((d) => d.metadata?.name).sort(), ["payment-service-v3", "payment-service-v4", "user-service-v1", "user-service-v2"]);
    });

    it("binds ingress routes to the public Gateway only, and mesh routes to the service host only", async () => {
        const result = await run("dev");
        const mesh = named(result, "VirtualService", "user-service");
        assert.deepEqual([mesh.spec?.hosts, mesh.spec?.gateways], [[fqdn("user-service")], ["mesh"]]);
        const ingress = named(result, "VirtualService", "user-service-ingress");
        assert.deepEqual([ingress.spec?.hosts, ingress.spec?.gateways], [["*"], [INGRESS]]);
    });
});
