import { strict as assert } from "assert";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment" with { "resolution-mode": "import" };
import { must, named, ofKind, run } from "./harness";

const podSpec = (d: IDeployment) => must(d.spec?.template.spec, `${d.metadata?.name ?? ""} pod spec`);

describe("versioned workloads", () => {
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
        assert.deepEqual(container.readinessProbe?.httpGet, { path: "/health", port: "http" });
        assert.deepEqual(container.livenessProbe?.httpGet, { path: "/health", port: "http" });
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
        assert.deepEqual(must(must(svc.spec, "spec").ports, "ports").map((p) => [p.name, p.port, p.targetPort]), [["http", 80, "http"]]);
        assert.deepEqual(ofKind(result, "ServiceAccount").map((s) => s.metadata?.name).sort(), ["order-service", "product-service", "user-service"]);
    });

    it("takes replicas from the stack: 1 in dev, 2 in staging, 3 in prod", async () => {
        for (const [stack, replicas] of [["dev", 1], ["staging", 2], ["prod", 3]] as const) {
            for (const d of ofKind(await run(stack), "Deployment")) assert.equal(d.spec?.replicas, replicas, `${stack} ${d.metadata?.name ?? ""}`);
        }
    });
});
