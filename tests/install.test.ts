import { strict as assert } from "assert";
import { PRODUCTION_MINIMUM, configProblems, helmReleases, named, objects, resource, run, settingsFor, waitsFor } from "./harness";
import { chartPlatform, gatewayChartValues, platformValues, usesCni } from "../components/specs/mesh-specs";
import { PLATFORMS } from "../components/config/config";

describe("Istio installation", () => {
    it("installs base, istiod and gateway from Istio's chart repository at istioVersion", async () => {
        const releases = helmReleases(await run("dev", { istioVersion: "1.29.2", podSecurity: "privileged", observability: false }));
        assert.deepEqual(
            releases.map((r) => [r.name, r.chart, r.namespace, r.version, r.repositoryOpts.repo]),
            [
                ["istio-base", "base", "istio-system", "1.29.2", "https://istio-release.storage.googleapis.com/charts"],
                ["istiod", "istiod", "istio-system", "1.29.2", "https://istio-release.storage.googleapis.com/charts"],
                ["istio-ingressgateway", "gateway", "istio-ingress", "1.29.2", "https://istio-release.storage.googleapis.com/charts"],
            ],
        );
    });

    it("orders the charts: istiod waits for base, the gateway for istiod", async () => {
        const result = await run("dev");
        const release = (name: string) => resource(result, "helm.sh/v3:Release", name);
        assert.ok(waitsFor(result, release("istiod"), release("istio-base")));
        assert.ok(waitsFor(result, release("istio-ingressgateway"), release("istiod")));
        assert.ok(!waitsFor(result, release("istio-base"), release("istiod")));
    });

    it("selects the gateway pods by the labels the gateway chart gives them", async () => {
        const result = await run("dev");
        const gatewayRelease = helmReleases(result).find((r) => r.chart === "gateway");
        assert.ok(gatewayRelease);
        // The chart labels its pods `istio: <release name without "istio-">`.
        const chartPodLabel = gatewayRelease.name.replace(/^istio-/, "");
        const gateway = named(result, "Gateway", "public-gateway");
        assert.deepEqual(gateway.spec?.selector, { istio: chartPodLabel });
        assert.equal(gateway.metadata?.namespace, gatewayRelease.namespace);
    });

    it("exposes the gateway on a fixed node port in dev and on a load balancer in prod", async () => {
        const servicePorts = async (stack: string) => {
            const values = helmReleases(await run(stack)).find((r) => r.chart === "gateway")?.values as { service: { type: string; ports: { name: string; nodePort?: number }[] } };
            return { type: values.service.type, http: values.service.ports.find((p) => p.name === "http2") };
        };
        const dev = await servicePorts("dev");
        assert.equal(dev.type, "NodePort");
        assert.equal(dev.http?.nodePort, 30080);
        const prod = await servicePorts("prod");
        assert.equal(prod.type, "LoadBalancer");
        assert.equal(prod.http?.nodePort, undefined);
    });

    it("turns sidecar injection on in the app namespace, which waits for istiod", async () => {
        const result = await run("dev");
        const ns = named(result, "Namespace", "backend");
        assert.equal(ns.metadata?.labels?.["istio-injection"], "enabled");
        assert.ok(waitsFor(result, resource(result, "core/v1:Namespace", "backend"), resource(result, "helm.sh/v3:Release", "istiod")));
    });

    it("creates every workload and Istio resource after istiod, so pods get sidecars on first start", async () => {
        const result = await run("dev");
        const istiod = resource(result, "helm.sh/v3:Release", "istiod");
        const late = result.resources.filter((r) => r.custom && /apps\/v1:Deployment|core\/v1:Service$|ServiceAccount|networking.istio.io/.test(r.type));
        assert.ok(late.length >= 15);
        for (const r of late) assert.ok(waitsFor(result, r, istiod), `${r.type} ${r.name} does not wait for istiod`);
    });

    it("makes before it breaks: each VirtualService waits for its DestinationRule and every Deployment it routes to", async () => {
        const result = await run("dev");
        for (const vs of result.resources.filter((r) => r.type.endsWith("VirtualService"))) {
            const app = vs.name.replace(/-ingress$/, "");
            assert.ok(waitsFor(result, vs, resource(result, "DestinationRule", app)), `${vs.name} -> DestinationRule`);
            const deployments = result.resources.filter((r) => r.type.endsWith("Deployment") && r.name.startsWith(`${app}-`));
            assert.ok(deployments.length > 0);
            for (const d of deployments) assert.ok(waitsFor(result, vs, d), `${vs.name} -> ${d.name}`);
        }
    });

    it("passes the platform to the cni and istiod charts as global.platform, only where Istio ships a profile for it", async () => {
        // Istio 1.30's charts ship files/profile-platform-{gke,k3d,k3s,microk8s,minikube,openshift}.yaml and fail
        // on any other name: kind, EKS and AKS run on the generic defaults.
        assert.deepEqual(PLATFORMS.map((p) => [p, chartPlatform(p)]), [["", undefined], ["kind", undefined], ["gke", "gke"], ["eks", undefined], ["aks", undefined], ["openshift", "openshift"]]);
        const values = async (platform: string) => {
            const releases = helmReleases(await run("prod", { platform }));
            return ["istio-cni", "istiod", "istio-base", "istio-ingressgateway"].map((name) => (releases.find((r) => r.name === name)?.values as { global?: { platform?: string } } | undefined)?.global?.platform);
        };
        // On GKE the cni chart's profile fixes cniBinDir and adds the ResourceQuota its system-node-critical pods need.
        assert.deepEqual(await values("gke"), ["gke", "gke", undefined, undefined]);
        assert.deepEqual(platformValues("eks"), {});
        const [problem] = configProblems({ platform: "minikube" });
        assert.deepEqual([problem.key, problem.value, problem.fix], ["platform", '"minikube"', "pulumi config set platform kind"]);
        assert.match(problem.allowed, /one of "" \(none\), kind, gke, eks, aks, openshift/);
    });

    it("always installs Istio's CNI on OpenShift, which runs Istio only with it", () => {
        assert.equal(usesCni("privileged", "openshift", "sidecar"), true);
        assert.equal(usesCni("privileged", "gke", "sidecar"), false);
        assert.equal(usesCni("restricted", "", "sidecar"), true);
    });

    it("runs production's ingress gateway on 2 or more pods with a PodDisruptionBudget", async () => {
        const gateway = async (stack: string) => helmReleases(await run(stack)).find((r) => r.name === "istio-ingressgateway")?.values as { autoscaling: unknown; podDisruptionBudget?: unknown };
        const prod = await gateway("prod");
        assert.deepEqual(prod.autoscaling, { minReplicas: 3, maxReplicas: 5 });
        assert.deepEqual(prod.podDisruptionBudget, { maxUnavailable: 1 });
        const dev = await gateway("dev");
        assert.deepEqual([dev.autoscaling, dev.podDisruptionBudget], [{ minReplicas: 1, maxReplicas: 5 }, undefined]);
        assert.deepEqual(gatewayChartValues({ ...settingsFor("prod"), gatewayReplicas: 8 }).autoscaling, { minReplicas: 8, maxReplicas: 8 });
        const [problem] = configProblems({ ...PRODUCTION_MINIMUM, gatewayReplicas: "1" });
        assert.deepEqual([problem.key, problem.value, problem.fix], ["gatewayReplicas", '"1"', "pulumi config set gatewayReplicas 2"]);
    });

    it("enforces Pod Security on the ingress gateway's namespace, whose pods carry the seccomp profile restricted asks for", async () => {
        const result = await run("prod");
        const labels = named(result, "Namespace", "istio-ingress").metadata?.labels;
        assert.equal(labels?.["pod-security.kubernetes.io/enforce"], "restricted");
        const values = helmReleases(result).find((r) => r.name === "istio-ingressgateway")?.values as { securityContext: unknown };
        assert.deepEqual(values.securityContext, { seccompProfile: { type: "RuntimeDefault" }, sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] });
    });

    it("uses only current Istio API versions (EnvoyFilter exists only as v1alpha3)", async () => {
        const istio = objects(await run("prod")).filter((o) => o.apiVersion.includes("istio.io"));
        assert.deepEqual([...new Set(istio.map((o) => o.apiVersion))].sort(), ["networking.istio.io/v1", "networking.istio.io/v1alpha3", "security.istio.io/v1", "telemetry.istio.io/v1"]);
        for (const o of istio.filter((x) => x.apiVersion.endsWith("v1alpha3"))) assert.equal(o.kind, "EnvoyFilter");
    });
});
