import { strict as assert } from "assert";
import { helmReleases, named, objects, resource, run, waitsFor } from "./harness";

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

    it("uses only current Istio API versions (EnvoyFilter exists only as v1alpha3)", async () => {
        const istio = objects(await run("prod")).filter((o) => o.apiVersion.includes("istio.io"));
        assert.deepEqual([...new Set(istio.map((o) => o.apiVersion))].sort(), ["networking.istio.io/v1", "networking.istio.io/v1alpha3", "security.istio.io/v1", "telemetry.istio.io/v1"]);
        for (const o of istio.filter((x) => x.apiVersion.endsWith("v1alpha3"))) assert.equal(o.kind, "EnvoyFilter");
    });
});
