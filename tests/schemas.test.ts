import { strict as assert } from "assert";
import { modelModule, validateObjects } from "../lib/validate";
import { objects, run } from "./harness";
import { stackNames } from "../lib/mock-program";

describe("every object against real schemas", () => {
    for (const stack of stackNames()) {
        it(`${stack}: Istio objects match Istio's CRDs and built-in objects match Kubernetes' OpenAPI`, async () => {
            const rendered = objects(await run(stack, { canaryWeight: 50, activeColor: "green" }));
            assert.ok(rendered.length > 20);
            await validateObjects(rendered);
        });
    }

    it("finds each kind in the package that owns its API group", () => {
        assert.equal(modelModule("networking.istio.io/v1", "VirtualService"), "@kubernetes-models/istio/networking.istio.io/v1/VirtualService");
        assert.equal(modelModule("apps/v1", "Deployment"), "kubernetes-models/apps/v1/Deployment");
        assert.equal(modelModule("v1", "Service"), "kubernetes-models/v1/Service");
    });

    it("rejects an object that breaks its schema, naming it", async () => {
        const broken = {
            apiVersion: "networking.istio.io/v1",
            kind: "VirtualService",
            metadata: { name: "broken" },
            spec: { hosts: ["a"], http: [{ route: [{ destination: { host: "a" }, weight: "ninety" }] }] },
        };
        await assert.rejects(validateObjects([broken]), /VirtualService broken: .*weight must be integer/);
        await assert.rejects(validateObjects([{ apiVersion: "networking.istio.io/v1alpha9", kind: "VirtualService" }]), /No schema for networking.istio.io\/v1alpha9/);
    });
});
