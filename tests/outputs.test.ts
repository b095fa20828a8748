import { strict as assert } from "assert";
import { curlCommands, hostHeader, splitTable } from "../components/plan/outputs";
import { loadBalancerAddress } from "../components/specs/mesh-specs";
import { planTraffic } from "../components/plan/plan";
import { readSettings } from "../components/config/config";
import { configSource, run } from "./harness";

describe("stack outputs", () => {
    it("export the split per service, the active color, the Istio version and the ingress URL", async () => {
        const { outputs } = await run("dev", { canaryWeight: 50, activeColor: "green" });
        assert.deepEqual(outputs.trafficSplit, {
            "user-service": { v1: 50, v2: 50 },
            "product-service": { blue: 0, green: 100 },
            "order-service": { v1: 100 },
        });
        assert.equal(outputs.activeColor, "green");
        assert.equal(outputs.canaryWeight, 50);
        assert.equal(outputs.istioVersion, "1.30.3");
        assert.equal(outputs.url, "http://localhost:30080");
    });

    it("report a load balancer's address in prod, with curl lines that reach the ingress host over HTTPS", async () => {
        const { outputs } = await run("prod");
        assert.equal(outputs.ingressAddress, "203.0.113.10");
        assert.ok(Array.isArray(outputs.tryIt));
        assert.ok(outputs.tryIt.includes("curl -s --resolve api.example.com:443:203.0.113.10 https://api.example.com/users"));
        assert.equal(outputs.url, "https://api.example.com");
    });

    it("say when the load balancer has no address yet, and accept a host name", () => {
        assert.match(loadBalancerAddress(undefined), /^pending \(kubectl -n istio-ingress get svc istio-ingressgateway\)$/);
        assert.equal(loadBalancerAddress({ loadBalancer: { ingress: [{ hostname: "lb.example.com" }] } }), "lb.example.com");
    });

    it("send the Host header over plain HTTP, and resolve the host to the node port over HTTPS", () => {
        const plan = planTraffic(readSettings(configSource({})));
        assert.ok(curlCommands(plan, "203.0.113.10", "api.example.com", false).includes("curl -s -H 'Host: api.example.com' http://203.0.113.10/users"));
        assert.ok(curlCommands(plan, "localhost:30443", "api.example.com", true).includes("curl -s --resolve api.example.com:30443:127.0.0.1 https://api.example.com:30443/users"));
        assert.ok(curlCommands(plan, "localhost:30443", "*", true).includes("curl -sk https://localhost:30443/users"));
    });

    it("tally versions only for services that split traffic", () => {
        const plan = planTraffic(readSettings(configSource({})));
        const lines = curlCommands(plan, "x", "*", false);
        assert.equal(lines.filter((l) => l.includes("uniq -c")).length, 2);
        assert.ok(lines.includes("curl -s http://x/orders"));
        assert.equal(hostHeader("*.example.com"), "demo.example.com");
        assert.match(splitTable({ "user-service": { v1: 90, v2: 10 } }), /user-service\s+v1=90%\s+v2=10%/);
    });
});
