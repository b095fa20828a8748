import { strict as assert } from "assert";
import { DEFAULTS, readSettings } from "../components/config/config";
import { ConfigError } from "../components/config/config-reader";
import { DEFAULT_SERVICES } from "../components/config/catalogue";
import { ROLLOUT_DEFAULTS } from "../components/config/rollout-config";
import { configProblems, configSource, refused } from "./harness";
import { ConfigProblem } from "../components/config/config-reader";

const source = (values: Record<string, string>) => configSource(values);

function problemsOf(values: Record<string, string>): readonly ConfigProblem[] {
    const problems = configProblems(values);
    assert.ok(problems.length > 0, `expected ${JSON.stringify(values)} to be refused`);
    return problems;
}

describe("stack config", () => {
    it("gives the documented defaults when nothing is set", () => {
        const { services, policies, security, observability, egress, rollout, ...scalars } = readSettings(source({}));
        assert.deepEqual(rollout, ROLLOUT_DEFAULTS);
        assert.deepEqual([rollout.steps, rollout.interval, rollout.analysis.minSuccessRate, rollout.analysis.maxP95LatencyMs], [[5, 10, 25, 50], "1m", 99, 500]);
        assert.deepEqual([rollout.analysis.falseRollbackPercent, rollout.analysis.missedRegressionPercent, rollout.analysis.errorMarginPoints, rollout.analysis.slowRatio], [1, 5, 1, 2]);
        assert.deepEqual(observability, { enabled: false, traceSamplingPercent: 1, accessLogging: false });
        assert.deepEqual(egress, { hosts: [], gateway: false, outboundTrafficPolicy: "ALLOW_ANY" });
        assert.deepEqual(security, { mtlsMode: "STRICT", denyByDefault: true, meshEdges: [], podSecurity: "restricted" });
        assert.deepEqual(scalars, DEFAULTS);
        assert.deepEqual(services, DEFAULT_SERVICES);
        assert.deepEqual(policies, {
            edgeRuleAccess: "public",
            production: false,
            allowFaultsInProduction: false,
            byService: Object.fromEntries(DEFAULT_SERVICES.map((s) => [s.name, { routes: [], resilience: {} }])),
        });
    });

    it("reads values the way the CLI passes them (strings)", () => {
        const settings = readSettings(source({ canaryWeight: "50", activeColor: "green", replicas: "3", gatewayServiceType: "NodePort" }));
        assert.equal(settings.canaryWeight, 50);
        assert.equal(settings.activeColor, "green");
        assert.equal(settings.replicas, 3);
        assert.equal(settings.gatewayServiceType, "NodePort");
    });

    for (const [value, why, fix] of [
        ["150", "out of range", "50"],
        ["-1", "negative", "50"],
        // A weight is an integer in Istio; the fix keeps what was meant.
        ["12.5", "fractional", "13"],
        ["fifty", "not a number", "50"],
        ["", "empty", "50"],
    ]) {
        it(`refuses canaryWeight ${JSON.stringify(value)} (${why}) naming key, value, range and the fixing command`, () => {
            const [problem] = problemsOf({ canaryWeight: value });
            assert.equal(problem.key, "canaryWeight");
            assert.equal(problem.value, JSON.stringify(value));
            assert.match(problem.allowed, /whole number from 0 to 100/);
            assert.equal(problem.fix, `pulumi config set canaryWeight ${fix}`);
        });
    }

    it("refuses an unknown color", () => {
        const [problem] = problemsOf({ activeColor: "purple" });
        assert.deepEqual([problem.key, problem.value], ["activeColor", '"purple"']);
        assert.match(problem.allowed, /one of blue, green/);
        assert.match(problem.fix, /^pulumi config set activeColor blue$/);
    });

    it("refuses a misspelled key instead of ignoring it", () => {
        const [problem] = problemsOf({ canaryWieght: "50" });
        assert.equal(problem.key, "canaryWieght");
        assert.match(problem.allowed, /not a key this program reads \(did you mean canaryWeight\?\); known keys: .*canaryWeight/);
        assert.equal(problem.fix, "pulumi config rm canaryWieght");
    });

    it("reports every bad key at once", () => {
        const problems = problemsOf({ canaryWeight: "101", activeColor: "red", replicas: "0", gatewayServiceType: "Ingress" });
        assert.deepEqual(problems.map((p) => p.key).sort(), ["activeColor", "canaryWeight", "gatewayServiceType", "replicas"]);
    });

    it("refuses an image without a pinned tag, and Istio releases older than the v1 APIs", () => {
        assert.equal(problemsOf({ image: "hashicorp/http-echo" })[0].key, "image");
        assert.equal(problemsOf({ istioVersion: "1.20.0" })[0].key, "istioVersion");
        assert.equal(problemsOf({ istioVersion: "latest" })[0].key, "istioVersion");
        assert.equal(readSettings(source({ istioVersion: "1.29.2" })).istioVersion, "1.29.2");
    });

    for (const [key, value, allowed] of [
        ["appNamespace", "Backend_NS", /Kubernetes namespace name/],
        ["podSecurity", "strict", /one of restricted, baseline, privileged/],
        ["mtlsMode", "ON", /one of STRICT, PERMISSIVE/],
        ["denyByDefault", "yes", /true or false/],
        ["allowFaultsInProduction", "1", /true or false/],
        ["observability", "on", /true or false/],
        ["accessLogging", "enabled", /true or false/],
        ["egressGateway", "sometimes", /true or false/],
        ["httpsRedirect", "always", /true or false/],
        ["tlsCredentialName", "My Secret", /kubernetes.io\/tls Secret in the istio-ingress namespace/],
        ["gatewayHttpsNodePort", "443", /whole number from 30000 to 32767/],
    ] as const) {
        it(`refuses ${key} = ${JSON.stringify(value)}, saying what is allowed`, () => {
            const [problem] = problemsOf({ [key]: value });
            assert.deepEqual([problem.key, problem.value], [key, JSON.stringify(value)]);
            assert.match(problem.allowed, allowed);
            assert.match(problem.fix, new RegExp(`^pulumi config set ${key} `));
        });
    }

    it("refuses HTTP and HTTPS on the same node port", () => {
        const [problem] = problemsOf({ gatewayHttpNodePort: "30080", gatewayHttpsNodePort: "30080" });
        assert.equal(problem.key, "gatewayHttpsNodePort");
        assert.match(problem.allowed, /must differ from gatewayHttpNodePort/);
    });

    it("refuses a node port outside the Kubernetes range and a malformed host", () => {
        assert.equal(problemsOf({ gatewayHttpNodePort: "8080" })[0].key, "gatewayHttpNodePort");
        assert.equal(problemsOf({ ingressHost: "http://api.example.com" })[0].key, "ingressHost");
        assert.equal(readSettings(source({ ingressHost: "*.example.com" })).ingressHost, "*.example.com");
    });

    describe("services catalogue", () => {
        const catalogue = (services: unknown) => ({ services: JSON.stringify(services) });

        it("accepts a fourth service as data", () => {
            const services = [...DEFAULT_SERVICES.map((s) => [s.name, { path: s.path, release: s.release, versions: s.versions }]), ["payment-service", { path: "/payments", release: "canary", versions: ["v1", "v2"] }]];
            const settings = readSettings(source(catalogue(Object.fromEntries(services))));
            assert.deepEqual(settings.services.map((s) => s.name), ["user-service", "product-service", "order-service", "payment-service"]);
        });

        for (const [what, services, key] of [
            ["a release strategy it does not know", { "a-service": { path: "/a", release: "rolling", versions: ["v1"] } }, "services.a-service.release"],
            ["a canary with one version", { "a-service": { path: "/a", release: "canary", versions: ["v1"] } }, "services.a-service.versions"],
            ["duplicate versions", { "a-service": { path: "/a", release: "blueGreen", versions: ["v1", "v1"] } }, "services.a-service.versions"],
            ["a path that is not a prefix", { "a-service": { path: "a", release: "single", versions: ["v1"] } }, "services.a-service.path"],
            ["a path of slashes alone", { "a-service": { path: "//", release: "single", versions: ["v1"] } }, "services.a-service.path"],
            ["a path with an empty segment", { "a-service": { path: "/a//b", release: "single", versions: ["v1"] } }, "services.a-service.path"],
            ["a name that is not a DNS label", { A_Service: { path: "/a", release: "single", versions: ["v1"] } }, "services.A_Service"],
            ["an unknown field", { "a-service": { path: "/a", release: "single", versions: ["v1"], weight: 5 } }, "services.a-service.weight"],
            ["two services on one path", { "a-service": { path: "/a", release: "single", versions: ["v1"] }, "b-service": { path: "/a", release: "single", versions: ["v1"] } }, "services.b-service.path"],
            ["a path under another service's path", { "a-service": { path: "/api", release: "single", versions: ["v1"] }, "b-service": { path: "/api/v2", release: "single", versions: ["v1"] } }, "services.b-service.path"],
            ["a path that is another's but for a trailing slash", { "a-service": { path: "/users/", release: "single", versions: ["v1"] }, "b-service": { path: "/users", release: "single", versions: ["v1"] } }, "services.b-service.path"],
            ["an empty catalogue", {}, "services"],
        ] as const) {
            it(`refuses ${what}`, () => {
                assert.deepEqual(problemsOf(catalogue(services)).map((p) => p.key), [key]);
            });
        }

        it("accepts paths that only share a string prefix: the ingress matches whole segments", () => {
            const settings = readSettings(source(catalogue({ "a-service": { path: "/users-admin", release: "single", versions: ["v1"] }, "b-service": { path: "/users", release: "single", versions: ["v1"] } })));
            assert.deepEqual(settings.services.map((s) => s.path), ["/users-admin", "/users"]);
        });

        it("refuses services that are not JSON", () => {
            assert.equal(problemsOf({ services: "user-service" })[0].key, "services");
        });
    });

    it("fails the program before any resource is registered", async () => {
        const error = await refused("dev", { canaryWeight: 150, activeColor: "purple" });
        assert.ok(error.cause instanceof ConfigError);
        assert.match(error.message, /canaryWeight = "150": must be a whole number from 0 to 100/);
        assert.match(error.message, /Fix: pulumi config set canaryWeight 50/);
        assert.match(error.message, /activeColor = "purple"/);
        assert.deepEqual(error.registered, []);
    });
});
