import { strict as assert } from "assert";
import { readSettings } from "../components/config/config";
import { cookieRegex } from "../components/plan/plan";
import { re2Refusal } from "../components/config/policy-config";
import { PRODUCTION_MINIMUM, routingOf, configProblems, configSource, fqdn, INGRESS, must, planFor, ProgramRun, refused, Request, routeVia, run, shares, virtualServiceSpecs } from "./harness";
import { rateLimitFilterSpec, ROUTER_FILTER } from "../components/specs/istio-specs";
import { policySummary } from "../components/plan/outputs";

const request = (gateway: string, service: string, path: string, headers: Record<string, string> = {}) => ({
    gateway,
    host: gateway === "mesh" ? fqdn(service) : "any.host",
    path,
    headers,
});
const users = (gateway: string, headers: Record<string, string> = {}) => request(gateway, "user-service", "/users", headers);
const products = (gateway: string, headers: Record<string, string> = {}) => request(gateway, "product-service", "/products", headers);

const problemKeys = (values: Record<string, unknown>) => configProblems(values).map((p) => p.key);

function changedResources(before: ProgramRun, after: ProgramRun): string[] {
    const index = (r: ProgramRun) => new Map(r.resources.filter((x) => x.custom).map((x) => [`${x.type.replace(/^kubernetes:/, "")} ${x.name}`, JSON.stringify(x.inputs)]));
    const [a, b] = [index(before), index(after)];
    return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
}

describe("routing policies", () => {
    describe("match rules (dev stack: the labs' scenarios)", () => {
        for (const gateway of [INGRESS, "mesh"]) {
            it(`x-user-type: beta reaches v2 entirely while plain requests keep the canary weight (${gateway})`, () => {
                const result = routingOf("dev", { canaryWeight: 10 });
                assert.deepEqual(shares(result.route(users(gateway, { "x-user-type": "beta" }))), { v2: 100 });
                assert.deepEqual(shares(result.route(users(gateway, { "x-user-type": "alpha" }))), { v1: 90, v2: 10 });
                assert.deepEqual(shares(result.route(users(gateway))), { v1: 90, v2: 10 });
            });
        }

        it("x-region: kr reaches product-service green while blue is active", () => {
            const result = routingOf("dev", { activeColor: "blue" });
            assert.deepEqual(shares(result.route(products(INGRESS, { "x-region": "kr" }))), { green: 100 });
            assert.deepEqual(shares(result.route(products(INGRESS, { "x-region": "us" }))), { blue: 100 });
        });

        it("the experiment cookie reaches v2 wherever it sits in the Cookie header, and only that value does", () => {
            const result = routingOf("dev", { canaryWeight: 0 });
            for (const cookie of ["experiment=new-ui", "a=1; experiment=new-ui", "a=1; experiment=new-ui; b=2"]) {
                assert.deepEqual(shares(result.route(users(INGRESS, { cookie }))), { v2: 100 }, cookie);
            }
            for (const cookie of ["experiment=old-ui", "myexperiment=new-ui", "experiment=new-ui-2"]) {
                assert.deepEqual(shares(result.route(users(INGRESS, { cookie }))), { v1: 100 }, cookie);
            }
        });

        it("release testing: a tester's testuser header reaches v2 while canaryWeight is 0 (prod)", () => {
            const result = routingOf("prod");
            const tester = { groups: ["staff", "release-testers"] };
            assert.deepEqual(shares(result.route({ gateway: INGRESS, host: "api.example.com", path: "/users", headers: { testuser: "alice" }, claims: tester })), { v2: 100 });
            assert.deepEqual(shares(result.route({ gateway: INGRESS, host: "api.example.com", path: "/users", claims: tester })), { v1: 100 });
            assert.deepEqual(shares(result.route({ gateway: "mesh", host: fqdn("user-service"), path: "/users", headers: { testuser: "alice" } })), { v2: 100 });
        });

        it("blue/green preview: x-preview reaches either color, whichever is active", () => {
            for (const active of ["blue", "green"]) {
                const result = routingOf("dev", { activeColor: active });
                for (const color of ["blue", "green"]) {
                    for (const gateway of [INGRESS, "mesh"]) {
                        assert.deepEqual(shares(result.route(products(gateway, { "x-preview": color }))), { [color]: 100 }, `${active} active, preview ${color}`);
                    }
                }
                assert.deepEqual(shares(result.route(products(INGRESS))), { [active]: 100 });
            }
        });

        it("evaluates rules in config order, first match wins, and every condition of a rule must hold", () => {
            const routes = {
                "user-service": [
                    { name: "beta-api", headers: { "x-user-type": { exact: "beta" } }, path: { prefix: "/users/api" }, to: "v1" },
                    { name: "beta", headers: { "x-user-type": { exact: "beta" } }, to: "v2" },
                ],
            };
            const result = routingOf("dev", { routes, canaryWeight: 50 });
            assert.deepEqual(shares(result.route(request(INGRESS, "user-service", "/users/api/x", { "x-user-type": "beta" }))), { v1: 100 });
            assert.deepEqual(shares(result.route(request(INGRESS, "user-service", "/users/web", { "x-user-type": "beta" }))), { v2: 100 });
            assert.deepEqual(shares(result.route(request(INGRESS, "user-service", "/users/api/x"))), { v1: 50, v2: 50 });
            assert.deepEqual(result.virtualService("user-service").http?.map((r) => r.name), ["beta-api", "beta", "release"]);
        });
    });

    describe("edge rules: who may pick a version at the ingress (edgeRuleAccess)", () => {
        const prodUsers = (headers: Record<string, string>, claims?: Record<string, string | string[]>): Request => ({ gateway: INGRESS, host: "api.example.com", path: "/users", headers, ...(claims && { claims }) });
        const prodProducts = (headers: Record<string, string>, claims?: Record<string, string | string[]>): Request => ({ ...prodUsers(headers, claims), path: "/products" });

        for (const stack of ["staging", "prod"]) {
            it(`${stack}: an anonymous testuser or x-preview header gets the released version; a release tester's token reaches the candidate`, () => {
                const host = stack === "prod" ? "api.example.com" : "api.staging.example.com";
                const specs = virtualServiceSpecs(planFor(stack, { canaryWeight: 0 }));
                const at = (r: Request) => shares(routeVia(specs, { ...r, host }));
                const tester = { groups: ["release-testers"] };
                assert.deepEqual(at(prodUsers({ testuser: "mallory" })), { v1: 100 });
                assert.deepEqual(at(prodUsers({ testuser: "mallory" }, { groups: ["staff"] })), { v1: 100 });
                assert.deepEqual(at(prodUsers({ testuser: "alice" }, tester)), { v2: 100 });
                assert.deepEqual(at(prodProducts({ "x-preview": "green" })), { blue: 100 });
                assert.deepEqual(at(prodProducts({ "x-preview": "green" }, tester)), { green: 100 });
                // In the mesh, where authorization already decides who calls whom, the rules hold as configured.
                assert.deepEqual(shares(routeVia(specs, { gateway: "mesh", host: fqdn("product-service"), path: "/", headers: { "x-preview": "green" } })), { green: 100 });
            });
        }

        it("dev keeps the labs' behaviour: any request with the header reaches the candidate", () => {
            const specs = virtualServiceSpecs(planFor("dev", { canaryWeight: 0 }));
            assert.deepEqual(shares(routeVia(specs, { gateway: INGRESS, host: "any.host", path: "/users", headers: { testuser: "x" } })), { v2: 100 });
        });

        it("defaults the claim to the configured issuer: any valid token", () => {
            const plan = planFor("staging", { edgeRuleClaim: undefined });
            const specs = virtualServiceSpecs(plan);
            const at = (claims?: Record<string, string>) => shares(routeVia(specs, { gateway: INGRESS, host: "api.staging.example.com", path: "/users", headers: { testuser: "a" }, ...(claims && { claims }) }));
            assert.deepEqual(at({ iss: "https://auth.staging.example.com" }), { v2: 100 });
            assert.deepEqual(at(), { v1: 90, v2: 10 });
            assert.ok(policySummary(plan)["user-service"].includes("release-testing: at the ingress only with a validated token whose iss claim=https://auth.staging.example.com"));
        });

        it("meshOnly leaves the rules out of the ingress routes and keeps them in the mesh", () => {
            const plan = planFor("dev", { edgeRuleAccess: "meshOnly" });
            const specs = virtualServiceSpecs(plan);
            const users = plan.services.find((s) => s.name === "user-service");
            assert.deepEqual(users?.ingressRules.map((r) => r.name), ["release"]);
            assert.deepEqual(shares(routeVia(specs, { gateway: INGRESS, host: "any.host", path: "/users", headers: { "x-user-type": "beta" } })), { v1: 90, v2: 10 });
            assert.deepEqual(shares(routeVia(specs, { gateway: "mesh", host: fqdn("user-service"), path: "/users", headers: { "x-user-type": "beta" } })), { v2: 100 });
            assert.ok(policySummary(plan)["user-service"].includes("beta-users: in-mesh callers only; the ingress ignores it"));
        });

        it("a rule marked public stays open to anonymous requests, and is the explicit way to allow one in production", () => {
            const routes = { "user-service": [{ name: "korea", headers: { "x-region": { exact: "kr" } }, to: "v2", public: true }] };
            const specs = virtualServiceSpecs(planFor("prod", { routes }));
            assert.deepEqual(shares(routeVia(specs, prodUsers({ "x-region": "kr" }))), { v2: 100 });
            const prod = PRODUCTION_MINIMUM;
            assert.deepEqual(problemKeys({ ...prod, routes }), []);
            const [problem] = configProblems({ ...prod, routes: { "user-service": [{ ...routes["user-service"][0], public: false }] }, previewHeader: "x-preview" });
            assert.deepEqual([problem.key, problem.value, problem.fix], ["edgeRuleAccess", '"public"', "pulumi config set edgeRuleAccess authenticated"]);
            assert.match(problem.allowed, /previewHeader x-preview, routes.user-service rule korea/);
        });

        it("refuses authenticated access without JWT validation, a claim without it, and malformed claims", () => {
            assert.deepEqual(problemKeys({ edgeRuleAccess: "authenticated" }), ["edgeRuleAccess"]);
            assert.deepEqual(problemKeys({ edgeRuleClaim: { name: "groups", value: "testers" } }), ["edgeRuleClaim"]);
            assert.deepEqual(problemKeys({ edgeRuleAccess: "anyone" }), ["edgeRuleAccess"]);
            const jwt = { issuer: "https://i.example.com", jwksUri: "https://i.example.com/jwks", protectedPaths: ["/orders*"] };
            assert.deepEqual(problemKeys({ jwt, edgeRuleAccess: "authenticated", edgeRuleClaim: { name: "a b", value: "" } }).sort(), ["edgeRuleClaim.name", "edgeRuleClaim.value"]);
            assert.deepEqual(problemKeys({ jwt, edgeRuleAccess: "authenticated", edgeRuleClaim: { name: "realm_access.roles", value: "tester" } }), []);
        });
    });

    describe("mirroring", () => {
        it("copies a percent of plain traffic to the canary's candidate only", () => {
            const result = routingOf("dev", { mirror: { "user-service": 20 } });
            for (const name of ["user-service", "user-service-ingress"]) {
                const routes = result.virtualService(name).http ?? [];
                const release = routes.find((r) => r.name === "release");
                assert.deepEqual(release?.mirrors, [{ destination: { host: fqdn("user-service"), subset: "v2", port: { number: 80 } }, percentage: { value: 20 } }]);
                assert.ok(routes.filter((r) => r.name !== "release").every((r) => r.mirrors === undefined));
            }
        });

        it("mirrors a blue/green service to the idle color, and refuses a single-version service", () => {
            const result = routingOf("dev", { mirror: { "product-service": 5 }, activeColor: "green" });
            const release = result.virtualService("product-service").http?.find((r) => r.name === "release");
            assert.equal(release?.mirrors?.[0].destination.subset, "blue");
            assert.deepEqual(problemKeys({ mirror: { "order-service": 10 } }), ["mirror.order-service"]);
            assert.deepEqual(problemKeys({ mirror: { "user-service": 120 } }), ["mirror.user-service"]);
        });
    });

    describe("fault injection", () => {
        const faults = { "order-service": { delay: { percent: 50, fixedDelay: "5s" }, abort: { percent: 10, httpStatus: 503 } } };

        it("injects delay and abort on every rule of the service, from the mesh and the ingress", () => {
            const result = routingOf("dev", { faults });
            for (const name of ["order-service", "order-service-ingress"]) {
                for (const route of result.virtualService(name).http ?? []) {
                    assert.deepEqual(route.fault, { delay: { percentage: { value: 50 }, fixedDelay: "5s" }, abort: { percentage: { value: 10 }, httpStatus: 503 } });
                }
            }
            assert.ok((result.virtualService("user-service").http ?? []).every((r) => r.fault === undefined));
        });

        it("is refused on a production stack unless allowFaultsInProduction is set", async () => {
            const error = await refused("prod", { faults });
            assert.match(error.message, /faults.order-service = .*fault injection is refused on a production stack/);
            assert.match(error.message, /pulumi config set allowFaultsInProduction true/);
            assert.deepEqual(error.registered, []);
            const allowed = routingOf("prod", { faults, allowFaultsInProduction: true });
            assert.ok(allowed.virtualService("order-service").http?.[0].fault);
        });

        it("refuses percents over 100, statuses outside 200-599 and bad durations", () => {
            assert.deepEqual(problemKeys({ faults: { "order-service": { abort: { percent: 101, httpStatus: 600 } } } }).sort(), ["faults.order-service.abort.httpStatus", "faults.order-service.abort.percent"]);
            assert.deepEqual(problemKeys({ faults: { "order-service": { delay: { percent: 5, fixedDelay: "5 seconds" } } } }), ["faults.order-service.delay.fixedDelay"]);
            assert.deepEqual(problemKeys({ faults: { "order-service": {} } }), ["faults.order-service"]);
        });
    });

    describe("resilience", () => {
        it("sets timeout and retries on routes, and circuit breaking on the DestinationRule", () => {
            const result = routingOf("staging");
            const route = must(result.virtualService("user-service").http?.find((r) => r.name === "release"), "release route");
            assert.equal(route.timeout, "5s");
            assert.deepEqual(route.retries, { attempts: 3, perTryTimeout: "1s", retryOn: "5xx,reset,connect-failure,refused-stream" });
            assert.deepEqual(result.destinationRule("user-service").trafficPolicy, {
                connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 50 } },
                outlierDetection: { consecutive5xxErrors: 5, interval: "10s", baseEjectionTime: "30s", maxEjectionPercent: 50 },
                tls: { mode: "ISTIO_MUTUAL" },
            });
        });

        it("lets one service replace a section of the \"*\" defaults", () => {
            const resilience = { "*": { timeout: "5s", retries: { attempts: 3 } }, "order-service": { timeout: "1s" } };
            const result = routingOf("dev", { resilience });
            const release = (name: string) => result.virtualService(name).http?.find((r) => r.name === "release");
            assert.deepEqual([release("order-service")?.timeout, release("order-service")?.retries], ["1s", { attempts: 3 }]);
            assert.equal(release("user-service")?.timeout, "5s");
            assert.equal(result.destinationRule("user-service").trafficPolicy, undefined);
        });

        it("gives each environment its own defaults: lenient in dev, strict in staging and prod", () => {
            const timeout = (stack: string) => routingOf(stack).virtualService("order-service").http?.[0].timeout;
            assert.deepEqual([timeout("dev"), timeout("staging"), timeout("prod")], ["10s", "5s", "5s"]);
        });

        it("refuses retries that cannot fit in the timeout: (attempts + 1) x perTryTimeout must fit", () => {
            const [problem] = configProblems({ resilience: { "*": { timeout: "5s", retries: { attempts: 3, perTryTimeout: "2s" } } } });
            assert.equal(problem.key, "resilience.*.retries");
            assert.match(problem.allowed, /first try and 3 retries of 2s each take up to 8s, more than the timeout 5s/);
            assert.match(problem.fix, /^pulumi config set --path 'resilience.\*.retries.perTryTimeout' 1250ms/);
            // A service's own timeout is checked against the retries it inherits from "*".
            const inherited = { "*": { retries: { attempts: 2, perTryTimeout: "1s" } }, "order-service": { timeout: "2s" } };
            assert.deepEqual(problemKeys({ resilience: inherited }), ["resilience.order-service.retries"]);
            assert.deepEqual(problemKeys({ resilience: { ...inherited, "order-service": { timeout: "3s" } } }), []);
            assert.deepEqual(problemKeys({ resilience: { "*": { timeout: "500ms", retries: { attempts: 4, perTryTimeout: "100ms" } } } }), []);
        });

        it("refuses unknown retry conditions and out-of-range limits", () => {
            assert.deepEqual(problemKeys({ resilience: { "*": { retries: { attempts: 3, retryOn: "5xx,sometimes" } } } }), ["resilience.*.retries.retryOn"]);
            assert.deepEqual(problemKeys({ resilience: { "user-service": { outlierDetection: { maxEjectionPercent: 150 } } } }), ["resilience.user-service.outlierDetection.maxEjectionPercent"]);
            assert.deepEqual(problemKeys({ resilience: { "user-service": { timout: "5s" } } }), ["resilience.user-service.timout"]);
        });
    });

    type FilterPatch = NonNullable<ReturnType<typeof rateLimitFilterSpec>["configPatches"]>[number];

    /**
     * An HTTP_FILTER patch as Istio applies it (istio 1.30.3, envoyfilter/listener_patch.go, patchHTTPFilters):
     * INSERT_BEFORE with no subFilter goes first of all; with one, right before that filter, and nowhere if the
     * chain has none.
     */
    function applyHttpFilterPatch(chain: readonly string[], patch: FilterPatch): string[] {
        const value: unknown = patch.patch?.value;
        const name = typeof value === "object" && value !== null && "name" in value ? value.name : undefined;
        assert.equal(patch.applyTo, "HTTP_FILTER");
        assert.equal(patch.patch?.operation, "INSERT_BEFORE");
        assert.ok(typeof name === "string");
        const anchor = patch.match?.listener?.filterChain?.filter?.subFilter?.name;
        if (anchor === undefined) return [name, ...chain];
        const at = chain.indexOf(anchor);
        return at < 0 ? [...chain] : [...chain.slice(0, at), name, ...chain.slice(at)];
    }

    describe("local rate limiting", () => {
        it("adds an EnvoyFilter with Envoy's local rate limit token bucket on the service's inbound sidecar", async () => {
            const result = await run("prod");
            const filters = result.resources.filter((r) => r.type.endsWith("EnvoyFilter")).map((r) => r.inputs as { metadata: { name: string }; spec: { workloadSelector: unknown; configPatches: { applyTo: string; match: { context: string }; patch: { value: { name: string; typed_config: { value: { token_bucket: unknown; filter_enforced: unknown } } } } }[] } });
            assert.deepEqual(filters.map((f) => f.metadata.name), ["order-service-local-ratelimit"]);
            const [patch] = filters[0].spec.configPatches;
            assert.deepEqual(filters[0].spec.workloadSelector, { labels: { app: "order-service" } });
            assert.deepEqual([patch.applyTo, patch.match.context, patch.patch.value.name], ["HTTP_FILTER", "SIDECAR_INBOUND", "envoy.filters.http.local_ratelimit"]);
            assert.deepEqual(patch.patch.value.typed_config.value.token_bucket, { max_tokens: 200, tokens_per_fill: 100, fill_interval: "1s" });
            assert.ok(patch.patch.value.typed_config.value.filter_enforced);
        });

        it("orders the filter with an explicit priority, as its relative INSERT_BEFORE patch needs (IST0151)", () => {
            const spec = rateLimitFilterSpec("order-service", { maxTokens: 1, tokensPerFill: 1, fillInterval: "1s" });
            assert.equal(spec.configPatches?.[0].patch?.operation, "INSERT_BEFORE");
            assert.ok(typeof spec.priority === "number" && spec.priority > 0);
        });

        it("counts only requests that authentication and authorization let through: the bucket sits after them in the sidecar's chain", () => {
            // The inbound HTTP filters Istio 1.30.3 builds with a RequestAuthentication and an AuthorizationPolicy
            // (pilot/pkg/networking/core/listener_builder.go, buildHTTPConnectionManager), before any EnvoyFilter.
            const inbound = ["istio.metadata_exchange", "envoy.filters.http.jwt_authn", "envoy.filters.http.rbac", "envoy.filters.http.grpc_stats", "envoy.filters.http.fault", "envoy.filters.http.cors", "istio.stats", ROUTER_FILTER];
            const spec = rateLimitFilterSpec("order-service", { maxTokens: 1, tokensPerFill: 1, fillInterval: "1s" });
            const chain = (spec.configPatches ?? []).reduce(applyHttpFilterPatch, inbound);
            const at = (name: string) => chain.indexOf(name);
            assert.ok(at("envoy.filters.http.local_ratelimit") > at("envoy.filters.http.rbac") && at("envoy.filters.http.rbac") > at("envoy.filters.http.jwt_authn"), chain.join(" -> "));
            assert.equal(chain[chain.length - 1], ROUTER_FILTER);
        });

        it("refuses a fill interval Envoy would reject", () => {
            assert.deepEqual(problemKeys({ rateLimits: { "user-service": { maxTokens: 10, tokensPerFill: 10, fillInterval: "10ms" } } }), ["rateLimits.user-service.fillInterval"]);
        });
    });

    describe("validation of rules", () => {
        const rule = (overrides: Record<string, unknown>) => ({ routes: { "user-service": [{ name: "r", headers: { "x-a": { exact: "b" } }, to: "v2", ...overrides }] } });

        for (const [what, values, key] of [
            ["a service not in the catalogue", { routes: { "cart-service": [] } }, "routes.cart-service"],
            ["an uppercase header name", rule({ headers: { "X-User-Type": { exact: "beta" } } }), "routes.user-service[0].headers.X-User-Type"],
            ["a regex that does not compile", rule({ headers: { "x-a": { regex: "(unclosed" } } }), "routes.user-service[0].headers.x-a.regex"],
            ["a lookahead RE2 lacks", rule({ headers: { "x-a": { regex: "(?=a)a" } } }), "routes.user-service[0].headers.x-a.regex"],
            ["a case-insensitive regex path", rule({ path: { regex: "(?i)/users/beta" } }), "routes.user-service[0].path"],
            ["a destination that is not a subset", rule({ to: "v3" }), "routes.user-service[0].to"],
            ["a rule with no condition", rule({ headers: undefined }), "routes.user-service[0]"],
            ["a reserved rule name", rule({ name: "release" }), "routes.user-service[0].name"],
            ["two match kinds at once", rule({ headers: { "x-a": { exact: "b", prefix: "c" } } }), "routes.user-service[0].headers.x-a"],
            ["a relative path", rule({ path: { prefix: "users" } }), "routes.user-service[0].path.prefix"],
            ["a path outside the service's prefix", rule({ path: { prefix: "/beta" } }), "routes.user-service[0].path"],
            ["a path of another service", rule({ path: { exact: "/products" } }), "routes.user-service[0].path"],
            ["an unanchored regex path", rule({ path: { regex: ".*/beta" } }), "routes.user-service[0].path"],
            ["a regex path with a top-level alternative", rule({ path: { regex: "/users/beta|/products.*" } }), "routes.user-service[0].path"],
            ["a regex path that starts with a class", rule({ path: { regex: "[/]users/beta" } }), "routes.user-service[0].path"],
            ["a regex path whose prefix a quantifier may drop", rule({ path: { regex: "/users?.*" } }), "routes.user-service[0].path"],
            ["a regex path that may leave the service's segment", rule({ path: { regex: "/users.*" } }), "routes.user-service[0].path"],
            ["a prefix path that only shares the service's string prefix", rule({ path: { prefix: "/usersearch" } }), "routes.user-service[0].path"],
            ["an uppercase preview header", { previewHeader: "X-Preview" }, "previewHeader"],
            ["a non-boolean production flag", { production: "yes" }, "production"],
        ] as const) {
            it(`refuses ${what}`, () => {
                assert.deepEqual(problemKeys(values), [key]);
            });
        }

        it("keeps a rule's path inside its service: such paths are accepted, and capture nothing of another service", () => {
            for (const path of [{ prefix: "/users/beta" }, { exact: "/users" }, { regex: "^/users/(beta|canary)/.*" }, { regex: "/users/v\\d+" }]) {
                assert.deepEqual(problemKeys(rule({ path })), [], JSON.stringify(path));
            }
            const [problem] = configProblems(rule({ path: { prefix: "/products" } }));
            assert.match(problem.allowed, /must stay under user-service's path \/users/);
            assert.equal(problem.fix, "pulumi config set --path 'routes.user-service[0].path.prefix' /users/beta");
            const specs = virtualServiceSpecs(planFor("dev", rule({ path: { prefix: "/users/beta" } })));
            const at = (path: string): Request => ({ gateway: INGRESS, host: "any.host", path, headers: { "x-a": "b" } });
            assert.deepEqual(shares(routeVia(specs, at("/users/beta/1"))), { v2: 100 });
            assert.deepEqual(shares(routeVia(specs, at("/products"))), { blue: 100 });
        });

        it("names the subsets a blue/green rule may target", () => {
            const source = configSource({ routes: { "product-service": [{ name: "r", headers: { "x-a": { exact: "b" } }, to: "v2" }] } });
            assert.throws(() => readSettings(source), /routes.product-service\[0\].to = "v2": must name one of product-service's subsets: blue, green/);
        });

        it("builds cookie regexes that escape the value and accept RE2", () => {
            assert.equal(cookieRegex("exp", { exact: "a.b" }), "^(?:.*;\\s*)?exp=a\\.b(?:;.*)?$");
            assert.equal(re2Refusal(cookieRegex("exp", { regex: "new-.*" })), undefined);
            assert.equal(re2Refusal(cookieRegex("exp", { exact: "a(b)[c]" })), undefined);
        });
    });

    it("changing only a policy touches only routing resources, never workloads", async () => {
        const base = await run("dev");
        const changed = changedResources(base, await run("dev", {
            resilience: { "*": { timeout: "3s", connectionPool: { maxConnections: 5 } } },
            rateLimits: { "user-service": { maxTokens: 5, tokensPerFill: 5, fillInterval: "1s" } },
            mirror: { "user-service": 10 },
        }));
        assert.ok(changed.length > 0);
        for (const key of changed) assert.match(key, /^networking.istio.io\/(v1:VirtualService|v1:DestinationRule|v1alpha3:EnvoyFilter) /);
        assert.ok(changed.includes("networking.istio.io/v1alpha3:EnvoyFilter user-service-local-ratelimit"));
    });
});
