import { strict as assert } from "assert";
import { configProblems, fqdn, INGRESS, named, ofKind, planFor, registeredVirtualServiceSpecs, Request, routeVia, routingOf, run, setCookies, shares, virtualServiceSpecs } from "./harness";

const users = (gateway: string) => ({ gateway, host: gateway === "mesh" ? fqdn("user-service") : "any.host", path: "/users" });
const products = (gateway: string) => ({ gateway, host: gateway === "mesh" ? fqdn("product-service") : "any.host", path: "/products/42" });

describe("traffic routing", () => {
    it("the pure core renders exactly the VirtualServices the program registers, for every stack", async () => {
        for (const stack of ["dev", "staging", "prod"]) {
            assert.deepEqual(registeredVirtualServiceSpecs(await run(stack)), virtualServiceSpecs(planFor(stack)), stack);
        }
    });

    for (const gateway of [INGRESS, "mesh"]) {
        const caller = gateway === "mesh" ? "in-mesh callers" : "the ingress gateway";

        it(`splits user-service by canaryWeight for ${caller}`, () => {
            for (const [weight, expected] of [
                [0, { v1: 100 }],
                [10, { v1: 90, v2: 10 }],
                [50, { v1: 50, v2: 50 }],
                [100, { v2: 100 }],
            ] as const) {
                assert.deepEqual(shares(routingOf("dev", { canaryWeight: weight }).route(users(gateway))), expected, `canaryWeight ${weight}`);
            }
        });

        it(`sends all product-service traffic to the active color for ${caller}`, () => {
            assert.deepEqual(shares(routingOf("dev", { activeColor: "blue" }).route(products(gateway))), { blue: 100 });
            assert.deepEqual(shares(routingOf("dev", { activeColor: "green" }).route(products(gateway))), { green: 100 });
        });
    }

    it("routes each ingress path prefix to its own service", () => {
        const { route } = routingOf("dev");
        for (const [path, service] of [["/users", "user-service"], ["/products", "product-service"], ["/orders/7", "order-service"]]) {
            const hosts = Object.keys(route({ gateway: INGRESS, host: "localhost", path }) ?? {}).map((k) => k.split("/")[0]);
            assert.deepEqual([...new Set(hosts)], [fqdn(service)], path);
        }
        assert.equal(route({ gateway: INGRESS, host: "localhost", path: "/admin" }), undefined);
    });

    it("keeps the inactive version deployed but unrouted, and product subsets map colors to versions", async () => {
        assert.ok(named(await run("dev"), "Deployment", "user-service-v2"));
        const routing = routingOf("dev", { canaryWeight: 0 });
        // A destination at weight 0 is not listed at all.
        assert.deepEqual(routing.route(users("mesh")), { [`${fqdn("user-service")}/v1`]: 100 });
        assert.deepEqual(routing.destinationRule("product-service").subsets?.map((s) => [s.name, s.labels?.version]), [["blue", "v1"], ["green", "v2"]]);
    });

    it("answers only for the configured ingress host", async () => {
        const { route } = routingOf("prod");
        assert.ok(route({ gateway: INGRESS, host: "api.example.com", path: "/users" }));
        assert.equal(route({ gateway: INGRESS, host: "evil.example.org", path: "/users" }), undefined);
        const gateway = named(await run("prod"), "Gateway", "public-gateway");
        assert.deepEqual(gateway.spec?.servers?.[0].hosts, ["api.example.com"]);
    });

    it("routes a fourth service added as config, with no code change", async () => {
        const config = {
            services: {
                "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] },
                "payment-service": { path: "/payments", release: "canary", versions: ["v3", "v4"] },
            },
            // dev's routes and mesh edges name services this catalogue drops.
            routes: {},
            meshEdges: [],
            canaryWeight: 30,
        };
        assert.deepEqual(shares(routingOf("dev", config).route({ gateway: INGRESS, host: "x", path: "/payments" })), { v3: 70, v4: 30 });
        assert.deepEqual(ofKind(await run("dev", config), "Deployment").map((d) => d.metadata?.name).sort(), ["payment-service-v3", "payment-service-v4", "user-service-v1", "user-service-v2"]);
    });

    it("binds ingress routes to the public Gateway only, and mesh routes to the service host only", () => {
        const { virtualService } = routingOf("dev");
        const mesh = virtualService("user-service");
        assert.deepEqual([mesh.hosts, mesh.gateways], [[fqdn("user-service")], ["mesh"]]);
        const ingress = virtualService("user-service-ingress");
        assert.deepEqual([ingress.hosts, ingress.gateways], [["*"], [INGRESS]]);
    });
});

describe("a service's own canary", () => {
    const catalogue = (user: Record<string, unknown>, payment: Record<string, unknown> = {}) => ({
        services: {
            "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"], ...user },
            "payment-service": { path: "/payments", release: "canary", versions: ["v3", "v4"], ...payment },
        },
        routes: {},
        meshEdges: [],
        canaryWeight: 10,
    });
    const at = (gateway: string, path: string, headers: Record<string, string> = {}): Request => ({
        gateway,
        host: gateway === "mesh" ? fqdn(path === "/users" ? "user-service" : "payment-service") : "any.host",
        path,
        headers,
    });

    it("moves two canaries independently: a service's canaryWeight, else the stack's", async () => {
        const { route } = routingOf("dev", catalogue({}, { canaryWeight: 40 }));
        assert.deepEqual(shares(route(at(INGRESS, "/users"))), { v1: 90, v2: 10 });
        assert.deepEqual(shares(route(at(INGRESS, "/payments"))), { v3: 60, v4: 40 });
        const { outputs } = await run("dev", catalogue({}, { canaryWeight: 40 }));
        assert.deepEqual(outputs.trafficSplit, { "user-service": { v1: 90, v2: 10 }, "payment-service": { v3: 60, v4: 40 } });
        assert.deepEqual(configProblems({ services: { x: { path: "/x", release: "single", versions: ["v1"], canaryWeight: 5 } }, routes: {}, meshEdges: [] }).map((p) => p.key), ["services.x.canaryWeight"]);
    });

    for (const gateway of [INGRESS, "mesh"]) {
        it(`sticky canary: whom the candidate served stays on it, by the cookie its response set (${gateway})`, () => {
            const { virtualService } = routingOf("dev", catalogue({ stickyCanary: { cookie: "canary", maxAge: "24h" } }));
            const specs = [virtualService(gateway === "mesh" ? "user-service" : "user-service-ingress")];
            // A first request is split by weight; only the candidate's responses set the cookie.
            assert.deepEqual(shares(routeVia(specs, at(gateway, "/users"))), { v1: 90, v2: 10 });
            assert.deepEqual(setCookies(specs, at(gateway, "/users")), { v2: "canary=v2; Max-Age=86400; Path=/" });
            // Sent back, it keeps its holder on the candidate, wherever it sits among the cookies.
            for (const cookie of ["canary=v2", "session=abc; canary=v2"]) {
                assert.deepEqual(shares(routeVia(specs, at(gateway, "/users", { cookie }))), { v2: 100 }, cookie);
            }
            assert.deepEqual(shares(routeVia(specs, at(gateway, "/users", { cookie: "canary=v1" }))), { v1: 90, v2: 10 });
        });
    }

    it("sticky canary: no rule while the candidate is unreleased, so a forged cookie reaches nothing new", () => {
        const { route } = routingOf("dev", catalogue({ stickyCanary: { cookie: "canary", maxAge: "1h" }, canaryWeight: 0 }));
        assert.deepEqual(shares(route(at(INGRESS, "/users", { cookie: "canary=v2" }))), { v1: 100 });
        assert.deepEqual(configProblems(catalogue({ stickyCanary: { cookie: "can ary", maxAge: "forever" } })).map((p) => p.key).sort(), ["services.user-service.stickyCanary.cookie", "services.user-service.stickyCanary.maxAge"]);
    });
});
