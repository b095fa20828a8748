// What the cluster refuses, the program refuses first, with the key, the value, the rule and a fix: one table
// per class, each row checked by the rule Kubernetes, Istio, the Gateway API (its CEL rules too), the kernel or a
// browser applies. And the forms those rules accept are accepted, however Pulumi stores them.
import { strict as assert } from "assert";
import { quantityValue } from "../components/config/workload-config";
import { configProblems } from "./harness";

const service = (fields: Record<string, unknown>, name = "user-service") => ({
    services: {
        [name]: { path: "/users", release: "canary", versions: ["v1", "v2"], ...fields },
        "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] },
        "order-service": { path: "/orders", release: "single", versions: ["v1"] },
    },
});
const routes = (rules: readonly Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({ ...extra, routes: { "user-service": rules } });
const headerRule = (i: number, headers = 1) => ({ name: `r${i}`, headers: Object.fromEntries(Array.from({ length: headers }, (_, h) => [`x-h${h}`, { exact: "1" }])), to: "v2" });
const gatewayApi = { trafficApi: "gatewayApi" };

/** class, config, the key refused, what its message must say. */
const REFUSED: readonly (readonly [string, string, Record<string, unknown>, string, RegExp])[] = [
    ["Istio's reserved ports", "the health port 15021", service({ port: 15021 }), "services.user-service.port", /the sidecar's health port, one of the ports Istio's sidecar takes/],
    ["Istio's reserved ports", "Envoy's admin port 15000", service({ port: 15000 }), "services.user-service.port", /Envoy's admin port/],
    ["Istio's reserved ports", "the inbound listener 15006", service({ port: 15006 }), "services.user-service.port", /inbound listener/],
    ["Istio's reserved ports", "Envoy's Prometheus port 15090", service({ port: 15090 }), "services.user-service.port", /Prometheus port/],
    ["requests above limits", "a CPU request over its limit", service({ resources: { requests: { cpu: "2" }, limits: { cpu: "500m" } } }), "services.user-service.resources.requests.cpu", /at most .*limits\.cpu \(500m\): Kubernetes refuses a request above its limit/],
    ["requests above limits", "a memory request over its limit, in other units", service({ resources: { requests: { memory: "1Gi" }, limits: { memory: "1000M" } } }), "services.user-service.resources.requests.memory", /limits\.memory \(1000M\)/],
    ["requests above limits", "a version's own request over its own limit", service({ versions: ["v1", { name: "v2", resources: { requests: { memory: "512Mi" }, limits: { memory: "256Mi" } } }] }), "services.user-service.versions[1].resources.requests.memory", /above its limit/],
    ["impossible quantities", "two decimal points", service({ resources: { requests: { memory: "1.5.5Gi" } } }), "services.user-service.resources.requests.memory", /Kubernetes quantity of bytes/],
    ["impossible quantities", "a unit Kubernetes lacks", service({ resources: { requests: { memory: "1GB" } } }), "services.user-service.resources.requests.memory", /Kubernetes quantity/],
    ["impossible quantities", "millibytes (128m for 128Mi)", service({ resources: { limits: { memory: "128m" } } }), "services.user-service.resources.limits.memory", /not a whole number of bytes \(m is milli: did you mean 128Mi\?\)/],
    ["impossible quantities", "no CPU", service({ resources: { requests: { cpu: "0" } } }), "services.user-service.resources.requests.cpu", /more than 0 cores/],
    ["impossible quantities", "a negative quantity", service({ resources: { requests: { cpu: "-1" } } }), "services.user-service.resources.requests.cpu", /more than 0 cores/],
    ["impossible quantities", "more than 64 bits count", service({ resources: { limits: { memory: "9Ei" } } }), "services.user-service.resources.limits.memory", /more bytes than Kubernetes can count/],
    ["image digests", "a cut-off sha256 digest", { image: `ghcr.io/acme/app@sha256:${"a".repeat(32)}` }, "image", /sha256 digest of 32 hex digits, and a sha256 digest has 64/],
    ["image digests", "an uppercase digest", { image: `ghcr.io/acme/app@sha256:${"A".repeat(64)}` }, "image", /uppercase hex/],
    ["image digests", "an algorithm runtimes do not verify", { image: `ghcr.io/acme/app@md5:${"a".repeat(32)}` }, "image", /verify only sha256, sha384, sha512/],
    ["image digests", "a version's cut-off digest", service({ versions: ["v1", { name: "v2", image: `ghcr.io/acme/app:2@sha256:${"b".repeat(63)}` }] }), "services.user-service.versions[1].image", /63 hex digits/],
    ["cookie prefixes", "a __Host- sticky cookie", service({ stickyCanary: { cookie: "__Host-canary", maxAge: "24h" } }), "services.user-service.stickyCanary.cookie", /browsers keep only when the cookie is set with Secure/],
    ["cookie prefixes", "a __secure- sticky cookie, in any case", service({ stickyCanary: { cookie: "__secure-canary", maxAge: "24h" } }), "services.user-service.stickyCanary.cookie", /__Secure- or __Host-/],
    ["paths Istio normalises away", "a .. segment in a rule's prefix", routes([{ name: "r", path: { prefix: "/users/../admin" }, to: "v2" }]), "routes.user-service[0].path.prefix", /\. or \.\. segment, which Istio resolves/],
    ["paths Istio normalises away", "a trailing . segment", routes([{ name: "r", path: { exact: "/users/." }, to: "v2" }]), "routes.user-service[0].path.exact", /\. or \.\. segment/],
    ["paths Istio normalises away", "a %-escape", routes([{ name: "r", path: { prefix: "/users/%62eta" }, to: "v2" }]), "routes.user-service[0].path.prefix", /%-escape/],
    ["paths Istio normalises away", "a .. segment in a JWT-protected path", { jwt: { issuer: "https://id.example.com", jwksUri: "https://id.example.com/jwks", protectedPaths: ["/orders/../admin*"] } }, "jwt.protectedPaths", /no \. or \.\. segment, which Istio resolves/],
    ["paths Istio normalises away", "a . segment in a mesh edge's path", { meshEdges: [{ from: "order-service", to: "user-service", paths: ["/users/./x"] }] }, "meshEdges[0].paths", /no \. or \.\. segment, which Istio resolves/],
    ["paths Istio normalises away", "a dot segment in a service's path", service({ path: "/./users" }), "services.user-service.path", /\. or \.\. segment/],
    ["Gateway API path rules (CEL)", "a fragment", routes([{ name: "r", path: { prefix: "/users/a#b" }, to: "v2" }], gatewayApi), "routes.user-service[0].path.prefix", /\? or #/],
    ["Gateway API path rules (CEL)", "a character outside its set", routes([{ name: "r", path: { prefix: "/users/a b" }, to: "v2" }], gatewayApi), "routes.user-service[0].path.prefix", /character outside a URL path's/],
    ["Gateway API path rules (CEL)", "a path over 1024 characters", routes([{ name: "r", path: { prefix: `/users/${"a".repeat(1100)}` }, to: "v2" }], gatewayApi), "routes.user-service[0].path.prefix", /1024/],
    ["Gateway API limits", "17 rules in one HTTPRoute", routes(Array.from({ length: 16 }, (_, i) => headerRule(i)), gatewayApi), "routes.user-service", /would hold 17 rules .*the Gateway API allows 16/],
    ["Gateway API limits", "17 headers in one match", routes([headerRule(0, 17)], gatewayApi), "routes.user-service", /more than 16 headers/],
    ["Gateway API limits", "a header name of 300 characters", { previewHeader: `x-${"a".repeat(300)}` }, "previewHeader", /at most 256 characters/],
    ["Gateway API limits", "a header match of 5000 characters", routes([{ name: "r", headers: { "x-a": { exact: "a".repeat(5000) } }, to: "v2" }]), "routes.user-service[0].headers.x-a.exact", /at most 4096/],
    ["Gateway API limits", "a sub-millisecond timeout", { resilience: { "user-service": { timeout: "1.5ms" } } }, "resilience.user-service.timeout", /whole milliseconds/],
    ["etcd's and the kernel's limits", "an env value past the kernel's 128 KiB", service({ env: { BIG: "x".repeat(130 * 1024) } }), "services.user-service.env.BIG", /Linux refuses .* over 128 KiB/],
    ["etcd's and the kernel's limits", "env past etcd's request limit", service({ env: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`V${i}`, "x".repeat(100 * 1024)])) }), "services.user-service.env", /etcd refuses an object over 1\.5 MiB/],
];

describe("what the cluster refuses, the program refuses", () => {
    for (const [kind, what, config, key, rule] of REFUSED) {
        it(`${kind}: refuses ${what}, once, naming the key, the rule and a fix`, () => {
            const problems = configProblems(config);
            assert.deepEqual(
                problems.map((p) => p.key),
                [key],
                problems.map((p) => `${p.key}: ${p.allowed}`).join("\n"),
            );
            assert.match(problems[0].allowed, rule);
            assert.match(problems[0].fix, /^pulumi config (set|rm)|^(put|move|merge|send|match|split|remove)/);
        });
    }
});

describe("what the cluster accepts, the program accepts", () => {
    for (const [what, config] of [
        ["Kubernetes quantities in all their forms", service({ resources: { requests: { cpu: 0.25, memory: "1.5Gi" }, limits: { cpu: "1", memory: "2e9" } } })],
        ["a Prometheus volume in any quantity form", { observability: "true", prometheusVolumeSize: "1.5Ti" }],
        ["decimal SI memory and a bare CPU number", service({ resources: { requests: { cpu: "1.5", memory: "512M" }, limits: { memory: "0.5Ti" } } })],
        ["a full sha256 digest and a sha512 one", service({ versions: [{ name: "v1", image: `ghcr.io/acme/app@sha256:${"a".repeat(64)}` }, { name: "v2", image: `ghcr.io/acme/app:2@sha512:${"b".repeat(128)}` }] })],
        ["ports next to Istio's", service({ port: 15022 })],
        ["a timeout of an hour on the Gateway API", { ...gatewayApi, resilience: { "user-service": { timeout: "1h" } } }],
        ["16 rules in an HTTPRoute (15 routes and the release rule)", routes(Array.from({ length: 15 }, (_, i) => headerRule(i)), gatewayApi)],
        ["a path with the Gateway API's sub-delimiters", routes([{ name: "r", path: { prefix: "/users/a:b@c" }, to: "v2" }], gatewayApi)],
    ] as const) {
        it(`accepts ${what}`, () => {
            assert.deepEqual(configProblems(config), []);
        });
    }

    it("reads quantities as Kubernetes does", () => {
        for (const [text, value] of [
            ["100m", 0.1],
            ["1.5Gi", 1.5 * 2 ** 30],
            ["1e3", 1000],
            [".5", 0.5],
            ["5.", 5],
            ["2k", 2000],
        ] as const) {
            assert.equal(quantityValue(text), value, text);
        }
        for (const text of ["", "Gi", "1.5.5", "1 Gi", "0x10", "1e", "--1"]) assert.equal(quantityValue(text), undefined, text);
    });
});

describe("refusals that help", () => {
    it("takes decimals wherever a decimal means something, as a number or as the text pulumi config set --path stores", () => {
        for (const config of [
            { rollout: { analysis: { minSuccessRate: "99.5" } } },
            { rollout: { analysis: { minSuccessRate: 99.5 } } },
            { mirror: { "user-service": "12.5" } },
            { faults: { "user-service": { delay: { percent: "0.5", fixedDelay: "1s" } } } },
        ]) {
            assert.deepEqual(configProblems(config), [], JSON.stringify(config));
        }
    });

    it("says a whole number is wanted, and fixes a decimal to the nearest one in range", () => {
        const [weight] = configProblems({ canaryWeight: "50.0" });
        assert.deepEqual([weight.key, weight.fix], ["canaryWeight", "pulumi config set canaryWeight 50"]);
        const [percent] = configProblems({ rollout: { analysis: { minSuccessRate: "100.5" } } });
        assert.deepEqual([percent.key, percent.fix], ["rollout.analysis.minSuccessRate", "pulumi config set --path 'rollout.analysis.minSuccessRate' 100"]);
    });

    it("reports one bad field once: the routes, mirrors and mesh edges that name its service are not refused too", () => {
        const config = {
            ...service({ versions: ["v1", { name: "v2", image: "nginx" }], resources: { requests: { memory: "lots" } } }),
            routes: { "user-service": [{ name: "beta", headers: { "x-beta": { exact: "1" } }, to: "v2" }] },
            mirror: { "user-service": 5 },
            meshEdges: [{ from: "order-service", to: "user-service", methods: ["GET"], paths: ["/users*"] }],
        };
        assert.deepEqual(
            configProblems(config).map((p) => p.key),
            ["services.user-service.versions[1].image", "services.user-service.resources.requests.memory"],
        );
        // A service refused outright (a misspelled release, a path no request can match) is reported once too.
        for (const [field, value] of [["release", "canry"], ["path", "/users/./x"]] as const) {
            assert.deepEqual(configProblems({ ...config, ...service({ [field]: value }) }).map((p) => p.key), [`services.user-service.${field}`]);
        }
    });
});
