import { strict as assert } from "assert";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment" with { "resolution-mode": "import" };
import { configProblems, must, named, ofKind, resource, run } from "./harness";
import { AUTOSCALER, autoscalerScale, pulumiApply } from "./support/server-side-apply";

const podSpec = (d: IDeployment) => must(d.spec?.template.spec, `${d.metadata?.name ?? ""} pod spec`);

/** A catalogue with one service of the team's own, on the dev stack (whose lab routes and edges it drops). */
const own = (service: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    services: {
        "user-service": {
            path: "/users",
            release: "canary",
            port: 9090,
            protocol: "http2",
            health: { path: "/healthz" },
            resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
            env: { LOG_LEVEL: "info" },
            versions: [
                { name: "v1", image: `ghcr.io/acme/user@sha256:${"a".repeat(64)}`, replicas: 3 },
                { name: "v2", image: "ghcr.io/acme/user:1.5.0", env: { FEATURE_X: "on", LOG_LEVEL: "debug" } },
            ],
            ...service,
        },
    },
    routes: {},
    meshEdges: [],
    ...extra,
});

describe("versioned workloads", () => {
    it("runs a team's own images with their port, protocol, health, resources and env; versions override the service", async () => {
        const result = await run("dev", own({}));
        const [v1, v2] = ["user-service-v1", "user-service-v2"].map((n) => named(result, "Deployment", n));
        const c1 = podSpec(v1).containers[0];
        const c2 = podSpec(v2).containers[0];
        assert.deepEqual([c1.image, c2.image], [`ghcr.io/acme/user@sha256:${"a".repeat(64)}`, "ghcr.io/acme/user:1.5.0"]);
        assert.deepEqual([v1.spec?.replicas, v2.spec?.replicas], [3, 1]);
        assert.deepEqual(c1.env, [{ name: "LOG_LEVEL", value: "info" }]);
        assert.deepEqual(c2.env, [{ name: "LOG_LEVEL", value: "debug" }, { name: "FEATURE_X", value: "on" }]);
        assert.equal(c1.args, undefined, "http-echo's flags go to http-echo only");
        assert.deepEqual(c1.ports?.map((p) => [p.name, p.containerPort]), [["http2", 9090]]);
        assert.deepEqual(c1.readinessProbe?.httpGet, { path: "/healthz", port: 9090 });
        assert.deepEqual(c1.resources, { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } });
        assert.equal(podSpec(v1).securityContext?.runAsUser, undefined, "the image's own non-root user");
        const port = must(named(result, "Service", "user-service").spec?.ports, "ports")[0];
        assert.deepEqual([port.name, port.port, port.targetPort, port.appProtocol], ["http2", 80, 9090, "kubernetes.io/h2c"]);
    });

    it("builds each Deployment with kubernetesx, selector and pod labels carrying app and version", async () => {
        const result = await run("dev", own({}));
        for (const d of result.resources.filter((r) => r.type === "kubernetes:apps/v1:Deployment")) {
            assert.ok(d.parent?.startsWith("istio-delivery:index:AppWorkloads::"), d.name);
        }
        for (const d of ofKind(result, "Deployment")) {
            const version = must(d.metadata?.labels?.version, "version label");
            assert.deepEqual(d.spec?.selector.matchLabels, { app: "user-service", version });
            assert.deepEqual([d.spec?.template.metadata?.labels?.app, d.spec?.template.metadata?.labels?.version], ["user-service", version]);
        }
    });

    it("refuses bad workload values with the usual errors", () => {
        const keys = (service: Record<string, unknown>) => configProblems(own(service)).map((p) => p.key);
        assert.deepEqual(keys({ port: 70000 }), ["services.user-service.port"]);
        assert.deepEqual(keys({ protocol: "tcp" }), ["services.user-service.protocol"]);
        assert.deepEqual(keys({ env: { "1BAD": "x" } }), ["services.user-service.env.1BAD"]);
        assert.deepEqual(keys({ env: { RETRIES: 3 } }), ["services.user-service.env.RETRIES"]);
        // kubernetesx tells an env map from a list by its `length`, so a variable of that name cannot be carried.
        assert.deepEqual(keys({ env: { length: "5" } }), ["services.user-service.env.length"]);
        assert.deepEqual(keys({ resources: { requests: { cpu: "lots" } } }), ["services.user-service.resources.requests.cpu"]);
        assert.deepEqual(keys({ resources: { limits: { memory: "1GB" } } }), ["services.user-service.resources.limits.memory"]);
        // One bad field, reported once: no follow-on error about the list that holds it.
        assert.deepEqual(keys({ versions: ["v1", { name: "v2", image: "nginx" }] }), ["services.user-service.versions[1].image"]);
        assert.deepEqual(keys({ health: { path: "healthz" } }), ["services.user-service.health.path"]);
    });

    it("scales a version with an autoscaler, and guards every version of 2 or more pods with a disruption budget", async () => {
        const result = await run("dev", own({ autoscaling: { minReplicas: 2, maxReplicas: 6, cpuUtilization: 60 } }));
        const hpa = result.resources.filter((r) => r.type === "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").map((r) => r.inputs as { spec: { scaleTargetRef: { name: string }; minReplicas: number; maxReplicas: number } });
        assert.deepEqual(hpa.map((h) => [h.spec.scaleTargetRef.name, h.spec.minReplicas, h.spec.maxReplicas]), [["user-service-v1", 2, 6], ["user-service-v2", 2, 6]]);
        assert.ok(ofKind(result, "Deployment").every((d) => d.spec?.replicas === 2), "a new version starts at the autoscaler's minimum");
        const pdbs = (r: typeof result) => r.resources.filter((x) => x.type === "kubernetes:policy/v1:PodDisruptionBudget").map((x) => x.name);
        assert.deepEqual(pdbs(result), ["user-service-v1", "user-service-v2"]);
        assert.deepEqual(pdbs(await run("dev", own({}))), ["user-service-v1"], "3 pods of v1, 1 of v2");
        assert.deepEqual(configProblems(own({ autoscaling: { minReplicas: 5, maxReplicas: 2 } })).map((p) => p.key), ["services.user-service.autoscaling.maxReplicas"]);
        const noCpu = own({ resources: { limits: { memory: "256Mi" } }, autoscaling: { minReplicas: 2, maxReplicas: 4 } });
        assert.deepEqual(configProblems(noCpu).map((p) => [p.key, /requests no CPU/.test(p.allowed)]), [["services.user-service.autoscaling", true]]);
    });

    it("turning autoscaling on never drops a running version to one pod, and the autoscaler keeps the count it set", async () => {
        const deployment = async (overrides: ReturnType<typeof own>) => {
            const r = resource(await run("dev", overrides), "kubernetes:apps/v1:Deployment", "user-service-v1");
            const inputs = r.inputs as { metadata: { annotations?: Record<string, string> }; spec: { replicas?: number } };
            return { replicas: inputs.spec.replicas, options: { ignored: r.registration.ignoreChanges.includes("spec.replicas"), force: inputs.metadata.annotations?.["pulumi.com/patchForce"] === "true" } };
        };
        // v1 runs 3 pods (the team's catalogue); then the service gets an autoscaler.
        const fixed = await deployment(own({}));
        const scaled = await deployment(own({ autoscaling: { minReplicas: 2, maxReplicas: 6, cpuUtilization: 60 } }));
        const running = pulumiApply(undefined, fixed.replicas, fixed.options, 1);
        assert.equal(running.value, 3);
        // pulumi up with autoscaling on: the Deployment is updated before its autoscaler exists.
        const switched = pulumiApply(running, scaled.replicas, scaled.options, 1);
        assert.equal(switched.value, 3, "the running count stays until the autoscaler moves it");
        // The autoscaler scales; a later pulumi up (any change) leaves its count alone.
        const later = pulumiApply(autoscalerScale(switched, 5), scaled.replicas, scaled.options, 1);
        assert.deepEqual([later.value, [...later.owners]], [5, [AUTOSCALER]]);
        // Autoscaling off again: the configured count takes the field back from the autoscaler, which the same update deletes last.
        assert.deepEqual(pulumiApply(later, fixed.replicas, fixed.options, 1), { value: 3, owners: new Set(["pulumi-kubernetes"]) });
        assert.throws(() => pulumiApply(later, fixed.replicas, { ...fixed.options, force: false }, 1), /conflict/);
        // A version first created with an autoscaler starts at its minimum.
        assert.equal(pulumiApply(undefined, scaled.replicas, scaled.options, 1).value, 2);
    });

    it("runs one Deployment per app and version, named <app>-<version>", async () => {
        const names = ofKind(await run("dev"), "Deployment").map((d) => d.metadata?.name).sort();
        assert.deepEqual(names, ["order-service-v1", "product-service-v1", "product-service-v2", "user-service-v1", "user-service-v2"]);
    });

    it("puts app and version on both the selector and the pod template, so subsets match exactly one version", async () => {
        for (const d of ofKind(await run("dev"), "Deployment")) {
            const name = must(d.metadata?.name, "name");
            const [app, version] = [name.replace(/-v\d+$/, ""), name.replace(/^.*-/, "")];
            assert.deepEqual(d.spec?.selector, { matchLabels: { app, version } });
            const podLabels = must(must(must(d.spec, "spec").template.metadata, "pod metadata").labels, "pod labels");
            assert.deepEqual([podLabels.app, podLabels.version], [app, version]);
        }
    });

    it("answers with text naming app and version, on port 8080 named http, with probes, limits and a hardened pod", async () => {
        const pod = podSpec(named(await run("dev"), "Deployment", "product-service-v2"));
        const [container] = pod.containers;
        assert.equal(container.image, "hashicorp/http-echo:1.0.0");
        assert.ok(container.args?.includes("-text=product-service v2 (green)"));
        assert.ok(container.args?.includes("-listen=:8080"));
        assert.deepEqual(container.ports?.map((p) => [p.name, p.containerPort]), [["http", 8080]]);
        assert.deepEqual(container.readinessProbe?.httpGet, { path: "/health", port: 8080 });
        assert.deepEqual(container.livenessProbe?.httpGet, { path: "/health", port: 8080 });
        assert.ok(container.resources?.requests?.cpu !== undefined && container.resources.limits?.memory !== undefined);
        const hardening = must(container.securityContext, "container securityContext");
        assert.deepEqual([hardening.readOnlyRootFilesystem, hardening.allowPrivilegeEscalation, hardening.capabilities?.drop], [true, false, ["ALL"]]);
        assert.equal(pod.securityContext?.runAsNonRoot, true);
        // http-echo 1.0.0 is distroless and runs as `nonroot`: UID and GID 65532.
        assert.deepEqual([pod.securityContext?.runAsUser, pod.securityContext?.runAsGroup], [65532, 65532]);
        assert.equal(pod.serviceAccountName, "product-service");
    });

    it("has one Service per app on port 80 to the http port, selecting app only so it spans all versions", async () => {
        const result = await run("dev");
        assert.deepEqual(ofKind(result, "Service").map((s) => s.metadata?.name).sort(), ["order-service", "product-service", "user-service"]);
        const svc = named(result, "Service", "user-service");
        assert.deepEqual(svc.spec?.selector, { app: "user-service" });
        assert.deepEqual(must(must(svc.spec, "spec").ports, "ports").map((p) => [p.name, p.port, p.targetPort, p.appProtocol]), [["http", 80, 8080, "http"]]);
        assert.deepEqual(ofKind(result, "ServiceAccount").map((s) => s.metadata?.name).sort(), ["order-service", "product-service", "user-service"]);
    });

    it("takes replicas from the stack: 1 in dev, 2 in staging, 3 in prod", async () => {
        for (const [stack, replicas] of [["dev", 1], ["staging", 2], ["prod", 3]] as const) {
            for (const d of ofKind(await run(stack), "Deployment")) assert.equal(d.spec?.replicas, replicas, `${stack} ${d.metadata?.name ?? ""}`);
        }
    });
});
