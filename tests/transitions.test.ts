import { strict as assert } from "assert";
import { ProgramRun, run } from "./harness";

/** Resources whose inputs differ between two runs, as `type name`, plus any added or removed. */
function diff(before: ProgramRun, after: ProgramRun): string[] {
    const index = (r: ProgramRun) => new Map(r.resources.filter((x) => x.custom).map((x) => [`${x.type} ${x.name}`, JSON.stringify(x.inputs)]));
    const [a, b] = [index(before), index(after)];
    const keys = new Set([...a.keys(), ...b.keys()]);
    return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}

describe("a release transition changes only routing", () => {
    it("canaryWeight 10 -> 50 changes user-service's VirtualServices and nothing else", async () => {
        const changed = diff(await run("dev", { canaryWeight: 10 }), await run("dev", { canaryWeight: 50 }));
        assert.deepEqual(changed, [
            "kubernetes:networking.istio.io/v1:VirtualService user-service",
            "kubernetes:networking.istio.io/v1:VirtualService user-service-ingress",
        ]);
    });

    it("activeColor blue -> green changes product-service's VirtualServices and nothing else", async () => {
        const changed = diff(await run("prod", { activeColor: "blue" }), await run("prod", { activeColor: "green" }));
        assert.deepEqual(changed, [
            "kubernetes:networking.istio.io/v1:VirtualService product-service",
            "kubernetes:networking.istio.io/v1:VirtualService product-service-ingress",
        ]);
    });

    it("setting the value back is an exact rollback", async () => {
        const start = await run("staging", { canaryWeight: 10, activeColor: "blue" });
        await run("staging", { canaryWeight: 100, activeColor: "green" });
        assert.deepEqual(diff(start, await run("staging", { canaryWeight: 10, activeColor: "blue", replicas: 2 })), []);
    });

    it("a change of replicas, by contrast, touches Deployments (and their disruption budgets) and no routing", async () => {
        const changed = diff(await run("dev", { replicas: 1 }), await run("dev", { replicas: 2 }));
        assert.ok(changed.length > 0);
        assert.ok(changed.every((k) => /apps\/v1:Deployment|policy\/v1:PodDisruptionBudget/.test(k)), changed.join(", "));
    });
});
