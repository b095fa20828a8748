import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { redactSecret } from "../lib/render-writer";
import { render } from "../scripts/render";
import { ConfigValue, PROJECT_ROOT } from "../lib/mock-program";
import { ingressAllowSpec } from "../components/specs/security-specs";
import { PRODUCTION_MINIMUM, configProblems, helmReleases, must, named, ofKind, refused, resource, run, waitsFor } from "./harness";

const fixture = (name: string) => fs.readFileSync(path.join(PROJECT_ROOT, "tests", "fixtures", name), "utf8");
const TLS = { tlsCertificate: fixture("test-only-tls.crt"), tlsPrivateKey: fixture("test-only-tls.key") };

const problems = (values: Record<string, unknown>, secretKeys: readonly string[] = ["tlsCertificate", "tlsPrivateKey"]) => configProblems(values, secretKeys);

/** An inline JWKS, as a stack would give one (the key is no real key). */
const INLINE_JWT = { issuer: "https://issuer.example.com", jwks: { keys: [{ kty: "RSA", e: "AQAB", n: "bm90LWEtcmVhbC1rZXk", kid: "test" }] }, protectedPaths: ["/orders*"] };

const policies = async (stack: string, overrides: Record<string, ConfigValue> = {}) => ofKind(await run(stack, overrides), "AuthorizationPolicy");

describe("secrets", () => {
    it("a key set with --secret keeps every object it may reach and every output secret", async () => {
        const plain = await run("dev", { canaryWeight: 30 });
        assert.deepEqual(plain.secretOutputs, []);
        assert.ok(!plain.resources.some((r) => r.type.endsWith("VirtualService") && r.secretInputs));
        const secret = await run("dev", { canaryWeight: 30 }, ["canaryWeight"]);
        assert.deepEqual([...secret.secretOutputs].sort(), Object.keys(secret.outputs).sort());
        for (const r of secret.resources.filter((x) => x.custom && ("spec" in x.inputs || "values" in x.inputs))) assert.ok(r.secretInputs, `${r.type} ${r.name}`);
        // The values still reach the provider: only their storage and display change.
        assert.deepEqual(secret.outputs.trafficSplit, plain.outputs.trafficSplit);
    });

    it("a notifier's URL set with --secret (the rollout key) leaves every object and output readable: no object is built from it", async () => {
        const rollout = { steps: [10, 50], notify: [{ kind: "slack", url: "https://hooks.slack.com/services/T0/B0/SECRET" }] };
        const secret = await run("dev", { rollout }, ["rollout"]);
        assert.deepEqual(secret.secretOutputs, []);
        assert.ok(!secret.resources.some((r) => r.secretInputs), secret.resources.filter((r) => r.secretInputs).map((r) => r.name).join(", "));
        assert.doesNotMatch(JSON.stringify(secret.resources.map((r) => r.inputs)), /SECRET/);
    });

    it("an error about a secret key never echoes its value", () => {
        const [problem] = configProblems({ canaryWeight: "hunter2" }, ["canaryWeight"]);
        assert.deepEqual([problem.key, problem.value], ["canaryWeight", "[secret]"]);
        const [nested] = configProblems({ routes: { "user-service": [{ name: "r", headers: { "x-token": { exact: "s3cr3t" } }, to: "v9" }] } }, ["routes"]);
        assert.equal(nested.value, "[secret]");
        assert.doesNotMatch(JSON.stringify(nested), /s3cr3t/);
    });

    it("handles inline JWKS as a secret: in state and in rendered files", async () => {
        const result = await run("dev", { jwt: INLINE_JWT });
        const ra = must(result.resources.find((r) => r.name === "istio-ingress-ingress-jwt"), "RequestAuthentication");
        assert.ok(ra.secretInputs);
        const redacted = redactSecret(ra.inputs as Record<string, unknown> & { apiVersion: string; kind: string });
        assert.doesNotMatch(JSON.stringify(redacted), /bm90LWEtcmVhbC1rZXk/);
        assert.match(JSON.stringify(redacted), /https:\/\/issuer.example.com/);
    });
});

describe("zero trust", () => {
    it("creates the JWT policies in the gateway namespace after the gateway release whose pods they select", async () => {
        const result = await run("prod");
        const gateway = resource(result, "helm.sh/v3:Release", "istio-ingressgateway");
        for (const name of ["istio-ingress-ingress-jwt", "istio-ingress-ingress-require-jwt"]) {
            assert.ok(waitsFor(result, must(result.resources.find((r) => r.name === name), name), gateway), name);
        }
    });

    describe("mutual TLS", () => {
        it("is STRICT in staging and prod, with DestinationRules that send Istio mutual TLS", async () => {
            for (const stack of ["staging", "prod"]) {
                const result = await run(stack);
                const pa = ofKind(result, "PeerAuthentication");
                assert.deepEqual(pa.map((p) => [p.metadata?.namespace, p.metadata?.name, p.spec?.mtls?.mode]), [["backend", "default", "STRICT"]]);
                const appRules = ofKind(result, "DestinationRule").filter((dr) => dr.metadata?.namespace === "backend");
                assert.equal(appRules.length, 3);
                for (const dr of appRules) assert.deepEqual(dr.spec?.trafficPolicy?.tls, { mode: "ISTIO_MUTUAL" }, stack);
            }
        });

        it("is configurable in dev, where PERMISSIVE leaves the client side to Istio's auto mTLS", async () => {
            const result = await run("dev");
            assert.equal(named(result, "PeerAuthentication", "default").spec?.mtls?.mode, "PERMISSIVE");
            assert.equal(named(result, "DestinationRule", "user-service").spec?.trafficPolicy?.tls, undefined);
        });

        it("a production stack refuses PERMISSIVE and turning deny-by-default off", () => {
            assert.deepEqual(problems({ ...PRODUCTION_MINIMUM, mtlsMode: "PERMISSIVE", denyByDefault: false }).map((p) => p.key).sort(), ["denyByDefault", "mtlsMode"]);
        });
    });

    describe("authorization", () => {
        it("denies by default in the app namespace and lets the ingress gateway reach each public path only", async () => {
            const all = await policies("prod");
            const inApps = all.filter((p) => p.metadata?.namespace === "backend");
            assert.deepEqual(named(await run("prod"), "AuthorizationPolicy", "allow-nothing").spec, {});
            const ingress = inApps.find((p) => p.metadata?.name === "user-service-from-ingress");
            assert.deepEqual(ingress?.spec, {
                selector: { matchLabels: { app: "user-service" } },
                action: "ALLOW",
                rules: [{ from: [{ source: { principals: ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"] } }], to: [{ operation: { paths: ["/users", "/users/*"] } }] }],
            });
        });

        it("admits the edge to a service's path by whole segments, as the ingress routes it, trailing slash or not", () => {
            for (const path of ["/users", "/users/"]) {
                assert.deepEqual(ingressAllowSpec("user-service", path, { serviceAccount: "istio-ingress/istio-ingressgateway" }).rules?.[0].to, [{ operation: { paths: ["/users", "/users/*"] } }], path);
            }
        });

        it("allows in-mesh calls only along the edges in config, by the caller's service account", async () => {
            const edge = (await policies("prod")).find((p) => p.metadata?.name === "product-service-from-mesh");
            assert.deepEqual(edge?.spec?.rules, [{ from: [{ source: { principals: ["cluster.local/ns/backend/sa/order-service"] } }], to: [{ operation: { methods: ["GET"], paths: ["/products*"] } }] }]);
            assert.ok(!(await policies("prod")).some((p) => p.metadata?.name === "order-service-from-mesh"), "nobody may call order-service in the mesh");
        });

        it("accepts a caller outside the catalogue as namespace/serviceaccount, and refuses unknown services", async () => {
            const result = await run("dev", { meshEdges: [{ from: "tools/debug-client", to: "order-service" }] });
            const spec = named(result, "AuthorizationPolicy", "order-service-from-mesh").spec;
            assert.deepEqual(spec?.rules, [{ from: [{ source: { principals: ["cluster.local/ns/tools/sa/debug-client"] } }], to: [{ operation: { methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], paths: ["*"] } }] }]);
            assert.deepEqual(problems({ meshEdges: [{ from: "cart-service", to: "payment-service", methods: ["FETCH"] }] }).map((p) => p.key), ["meshEdges[0].from", "meshEdges[0].to", "meshEdges[0].methods"]);
        });

        it("keeps health probes working: HTTP probes go through Istio's agent", async () => {
            for (const d of ofKind(await run("prod"), "Deployment")) {
                assert.equal(d.spec?.template.metadata?.labels?.app !== undefined, true);
                assert.equal(d.spec?.template.metadata?.annotations?.["sidecar.istio.io/rewriteAppHTTPProbers"], "true");
            }
        });

        it("writes no authorization policy when deny-by-default is off (an ALLOW policy alone would deny the rest)", async () => {
            assert.deepEqual(await policies("dev", { denyByDefault: false }), []);
        });
    });

    describe("JWT at the edge", () => {
        it("validates tokens at the ingress gateway and requires one on protected paths", async () => {
            const result = await run("prod");
            const ra = named(result, "RequestAuthentication", "ingress-jwt");
            assert.equal(ra.metadata?.namespace, "istio-ingress");
            assert.deepEqual(ra.spec?.selector, { matchLabels: { istio: "ingressgateway" } });
            assert.deepEqual(ra.spec?.jwtRules, [{ issuer: "https://auth.example.com", jwksUri: "https://auth.example.com/.well-known/jwks.json", audiences: ["api.example.com"] }]);
            const require = named(result, "AuthorizationPolicy", "ingress-require-jwt");
            assert.equal(require.spec?.action, "DENY");
            assert.deepEqual(require.spec?.rules, [{ from: [{ source: { notRequestPrincipals: ["*"] } }], to: [{ operation: { paths: ["/orders*"] } }] }]);
        });

        it("accepts an inline JWKS and refuses a rule with both, neither, or a plain-http URI", async () => {
            const result = await run("dev", { jwt: INLINE_JWT });
            assert.equal(named(result, "RequestAuthentication", "ingress-jwt").spec?.jwtRules?.[0].jwks, JSON.stringify(INLINE_JWT.jwks));
            assert.deepEqual(problems({ jwt: { issuer: "i", protectedPaths: ["/a"] } }).map((p) => p.key), ["jwt"]);
            assert.deepEqual(problems({ jwt: { issuer: "i", jwksUri: "http://i/jwks", protectedPaths: ["/a"] } }).map((p) => p.key), ["jwt.jwksUri"]);
            assert.deepEqual(problems({ jwt: { issuer: "i", jwks: { keys: [] }, protectedPaths: ["a"] } }).map((p) => p.key).sort(), ["jwt.jwks", "jwt.protectedPaths"]);
        });
    });

    describe("gateway TLS", () => {
        it("serves HTTPS from a kubernetes.io/tls Secret built from secret config, with an optional redirect", async () => {
            const result = await run("dev", { ...TLS, ingressHost: "api.example.com", httpsRedirect: true });
            const secret = named(result, "Secret", "ingress-tls");
            assert.deepEqual([secret.type, secret.metadata?.namespace], ["kubernetes.io/tls", "istio-ingress"]);
            const servers = named(result, "Gateway", "public-gateway").spec?.servers ?? [];
            assert.deepEqual(servers.map((s) => [s.port?.number, s.port?.protocol, s.tls]), [
                [80, "HTTP", { httpsRedirect: true }],
                [443, "HTTPS", { mode: "SIMPLE", credentialName: "ingress-tls" }],
            ]);
            assert.equal((await run("dev", { ...TLS, ingressHost: "api.example.com", httpsRedirect: true })).outputs.url, "https://api.example.com:30443");
        });

        it("uses an existing Secret by name in prod", async () => {
            const servers = named(await run("prod"), "Gateway", "public-gateway").spec?.servers ?? [];
            assert.deepEqual(servers[1].tls, { mode: "SIMPLE", credentialName: "api-example-com-tls" });
            assert.ok(!ofKind(await run("prod"), "Namespace").some((n) => n.metadata?.name === "ingress-tls"));
        });

        it("never shows the key: not in outputs, not in rendered files, not in errors", async () => {
            const result = await run("dev", { ...TLS, ingressHost: "api.example.com" });
            const keyBody = TLS.tlsPrivateKey.split("\n")[1];
            assert.ok(!JSON.stringify(result.outputs).includes(keyBody));
            const out = fs.mkdtempSync(path.join(os.tmpdir(), "render-tls-"));
            try {
                await render({ stack: "dev", overrides: { ...TLS, ingressHost: "api.example.com" }, out }, () => undefined);
                for (const file of fs.readdirSync(out)) assert.ok(!fs.readFileSync(path.join(out, file), "utf8").includes(keyBody), file);
                assert.match(fs.readFileSync(path.join(out, "secret-istio-ingress-ingress-tls.yaml"), "utf8"), /tls.key: "<redacted/);
            } finally {
                fs.rmSync(out, { recursive: true, force: true });
            }
            const error = await refused("dev", { ...TLS, ingressHost: "shop.other.org" });
            assert.match(error.message, /tlsCertificate = \[secret\]: must cover the ingress host shop.other.org/);
            assert.ok(!error.message.includes(keyBody));
        });

        it("refuses plain-text key material, a key of another certificate, half a pair, and a redirect without TLS", () => {
            assert.deepEqual(problems({ ...TLS, ingressHost: "api.example.com" }, []).map((p) => [p.key, p.value]), [["tlsCertificate", "[redacted]"], ["tlsPrivateKey", "[redacted]"]]);
            assert.deepEqual(problems({ ...TLS, tlsPrivateKey: fixture("test-only-other.key"), ingressHost: "api.example.com" }).map((p) => p.key), ["tlsPrivateKey"]);
            assert.deepEqual(problems({ tlsCertificate: TLS.tlsCertificate }).map((p) => p.key), ["tlsPrivateKey"]);
            assert.deepEqual(problems({ tlsCertificate: "not a pem", tlsPrivateKey: TLS.tlsPrivateKey }).map((p) => p.key), ["tlsCertificate"]);
            assert.deepEqual(problems({ httpsRedirect: true }).map((p) => p.key), ["httpsRedirect"]);
            assert.deepEqual(problems({ ...TLS, tlsCredentialName: "x-tls", ingressHost: "api.example.com" }).map((p) => p.key), ["tlsCredentialName"]);
        });
    });

    describe("hardened pods and Pod Security", () => {
        it("enforces restricted on the app namespace and installs Istio's CNI chart before istiod for it", async () => {
            const result = await run("prod");
            const labels = named(result, "Namespace", "backend").metadata?.labels ?? {};
            assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
            assert.equal(labels["istio-progressive-delivery/production"], "true");
            assert.equal(named(result, "Namespace", "istio-system").metadata?.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
            const releases = helmReleases(result).filter((r) => r.repositoryOpts.repo.includes("istio-release"));
            assert.deepEqual(releases.map((r) => r.name), ["istio-base", "istio-cni", "istiod", "istio-ingressgateway", "istio-egressgateway"]);
            assert.deepEqual(releases.find((r) => r.name === "istiod")?.values.cni, { enabled: true });
        });

        it("without CNI, the app namespace must be privileged, as istio-init needs NET_ADMIN", async () => {
            const result = await run("dev", { podSecurity: "privileged" });
            assert.equal(named(result, "Namespace", "backend").metadata?.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
            assert.ok(!helmReleases(result).some((r) => r.chart === "cni"));
        });

        it("runs every container non-root, read-only, without privilege escalation or capabilities, seccomp RuntimeDefault, no token", async () => {
            for (const d of ofKind(await run("prod"), "Deployment")) {
                const pod = d.spec?.template.spec;
                assert.equal(pod?.automountServiceAccountToken, false);
                assert.deepEqual([pod?.securityContext?.runAsNonRoot, pod?.securityContext?.seccompProfile?.type], [true, "RuntimeDefault"]);
                for (const c of pod?.containers ?? []) {
                    assert.deepEqual([c.securityContext?.readOnlyRootFilesystem, c.securityContext?.allowPrivilegeEscalation, c.securityContext?.capabilities?.drop, c.securityContext?.privileged], [true, false, ["ALL"], undefined]);
                }
            }
        });
    });
});
