// A release from first deploy to the promotion of the next version, as plain config changes, applied the way
// Pulumi applies an update: creates and updates in dependency order (here, routing as early as its
// dependencies allow, the worst case for make-before-break), then deletes, dependents first. After every
// single step no route may point at a subset, or a subset at pods, that does not exist, and the version that
// serves must not restart.
import { strict as assert } from "assert";
import { ConfigValue } from "../scripts/mock-program";
import { INGRESS, ofKind, ProgramRun, RegisteredResource, registeredVirtualServiceSpecs, routeVia, run, shares, waitsFor } from "./harness";

const key = (r: RegisteredResource) => `${r.type}::${r.name}`;
const objectsOf = (run: ProgramRun | undefined) => new Map((run?.resources ?? []).filter((r) => r.custom).map((r) => [key(r), r]));

/** Why the cluster state breaks make-before-break, or undefined: every routed subset and its pods exist. */
function brokenRoute(state: ReadonlyMap<string, RegisteredResource>): string | undefined {
    const cluster: ProgramRun = { resources: [...state.values()], outputs: {}, secretOutputs: [] };
    const rules = ofKind(cluster, "DestinationRule");
    const deployments = ofKind(cluster, "Deployment");
    for (const vs of ofKind(cluster, "VirtualService")) {
        for (const route of vs.spec?.http ?? []) {
            const targets = [...(route.route ?? []).map((r) => r.destination), ...(route.mirrors ?? []).map((m) => m.destination)];
            for (const { host, subset } of targets) {
                if (subset === undefined) continue;
                const found = rules.find((dr) => dr.spec?.host === host)?.spec?.subsets?.find((s) => s.name === subset);
                if (found === undefined) return `${vs.metadata?.name ?? ""} routes to ${host}/${subset}, which no DestinationRule defines`;
                const app = host.split(".")[0];
                const pods = deployments.some((d) => d.spec?.selector.matchLabels?.app === app && d.spec.selector.matchLabels.version === found.labels?.version);
                if (!pods) return `${vs.metadata?.name ?? ""} routes to ${host}/${subset} (version ${found.labels?.version ?? "?"}), which no Deployment runs`;
            }
        }
    }
    return undefined;
}

/** Steps in one order Pulumi may take: ready steps first by `priority`, each after all it waits for. */
function order(steps: RegisteredResource[], before: (a: RegisteredResource, b: RegisteredResource) => boolean, priority: (r: RegisteredResource) => number): RegisteredResource[] {
    const done: RegisteredResource[] = [];
    const pending = [...steps];
    while (pending.length > 0) {
        const ready = pending.filter((s) => pending.every((other) => other === s || !before(other, s))).sort((a, b) => priority(a) - priority(b));
        assert.ok(ready.length > 0, "a dependency cycle");
        done.push(ready[0]);
        pending.splice(pending.indexOf(ready[0]), 1);
    }
    return done;
}

/** Applies `next` over `previous` step by step; returns the steps taken, after checking every state between. */
function apply(previous: ProgramRun | undefined, next: ProgramRun): string[] {
    const [old, now] = [objectsOf(previous), objectsOf(next)];
    const state = new Map(old);
    const changed = [...now.values()].filter((r) => JSON.stringify(old.get(key(r))?.inputs) !== JSON.stringify(r.inputs));
    const routingFirst = (r: RegisteredResource) => (/VirtualService|DestinationRule/.test(r.type) ? 0 : 1);
    const log: string[] = [];
    for (const step of order(changed, (a, b) => waitsFor(next, b, a), routingFirst)) {
        state.set(key(step), step);
        log.push(`${old.has(key(step)) ? "update" : "create"} ${key(step)}`);
        const broken = brokenRoute(state);
        assert.equal(broken, undefined, `after ${log[log.length - 1]}: ${broken ?? ""}`);
    }
    const removed = [...old.values()].filter((r) => !now.has(key(r)));
    // Deletes come last, a resource only after everything that waited for it; pods go first where they may.
    for (const step of order(removed, (a, b) => previous !== undefined && waitsFor(previous, a, b), (r) => (r.type.endsWith("Deployment") ? 0 : 1))) {
        state.delete(key(step));
        log.push(`delete ${key(step)}`);
        const broken = brokenRoute(state);
        assert.equal(broken, undefined, `after ${log[log.length - 1]}: ${broken ?? ""}`);
    }
    return log;
}

const inputsOf = (r: ProgramRun, name: string) => r.resources.find((x) => x.type === "kubernetes:apps/v1:Deployment" && x.name === name)?.inputs;
const split = (r: ProgramRun, path: string, headers: Record<string, string> = {}) => shares(routeVia(registeredVirtualServiceSpecs(r), { gateway: INGRESS, host: "any.host", path, headers }));

describe("the whole release cycle, through config alone", () => {
    const testers = (to: string) => ({ "user-service": [{ name: "release-testing", headers: { testuser: { regex: ".+" } }, to }] });
    const stack = (versions: string[], weight: number, extra: Record<string, ConfigValue> = {}) =>
        run("dev", {
            services: { "user-service": { path: "/users", release: "canary", versions }, "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] } },
            routes: {},
            meshEdges: [],
            canaryWeight: weight,
            ...extra,
        });

    it("canary: deployed at 0, release-tested, 10, 50, 100, then promoted; the serving version never restarts", async () => {
        const steps: [string, ProgramRun][] = [
            ["v2 deployed at weight 0", await stack(["v1", "v2"], 0)],
            ["v2 release-tested", await stack(["v1", "v2"], 0, { routes: testers("v2") })],
            ["10 %", await stack(["v1", "v2"], 10, { routes: testers("v2") })],
            ["50 %", await stack(["v1", "v2"], 50, { routes: testers("v2") })],
            ["100 %", await stack(["v1", "v2"], 100, { routes: testers("v2") })],
            ["promoted: v2 stable, v3 deployed at 0", await stack(["v2", "v3"], 0, { routes: testers("v3") })],
        ];
        let previous: ProgramRun | undefined;
        const logs = new Map<string, string[]>();
        for (const [what, next] of steps) {
            logs.set(what, apply(previous, next));
            previous = next;
        }
        assert.deepEqual(split(steps[1][1], "/users", { testuser: "qa" }), { v2: 100 });
        assert.deepEqual(split(steps[3][1], "/users"), { v1: 50, v2: 50 });
        const promoted = steps[5][1];
        assert.deepEqual(split(promoted, "/users"), { v2: 100 });
        assert.deepEqual(split(promoted, "/users", { testuser: "qa" }), { v3: 100 });
        // The version serving throughout, v2, has no diff at promotion: no restart.
        assert.deepEqual(inputsOf(promoted, "user-service-v2"), inputsOf(steps[4][1], "user-service-v2"));
        const log = logs.get("promoted: v2 stable, v3 deployed at 0") ?? [];
        assert.ok(!log.some((l) => l.includes("Deployment::user-service-v2")), log.join("\n"));
        // v3 exists before the routing names it, and v1 goes only after no route names it (the last steps).
        assert.ok(log.indexOf("create kubernetes:apps/v1:Deployment::user-service-v3") < log.indexOf("update kubernetes:networking.istio.io/v1:DestinationRule::user-service"));
        assert.equal(log[log.length - 1], "delete kubernetes:apps/v1:Deployment::user-service-v1");
        // Weight changes touch only the service's routes.
        assert.deepEqual(logs.get("50 %"), ["update kubernetes:networking.istio.io/v1:VirtualService::user-service", "update kubernetes:networking.istio.io/v1:VirtualService::user-service-ingress"]);
    });

    it("blue/green: green goes live, then the next version becomes blue; the live color never restarts", async () => {
        const colors = (versions: string[], active: string) =>
            run("dev", {
                services: { "product-service": { path: "/products", release: "blueGreen", versions } },
                routes: {},
                meshEdges: [],
                activeColor: active,
            });
        const steps: ProgramRun[] = [await colors(["v1", "v2"], "blue"), await colors(["v1", "v2"], "green"), await colors(["v3", "v2"], "green"), await colors(["v3", "v2"], "blue")];
        let previous: ProgramRun | undefined;
        const logs: string[][] = [];
        for (const next of steps) {
            logs.push(apply(previous, next));
            previous = next;
        }
        assert.deepEqual(split(steps[1], "/products"), { green: 100 });
        assert.deepEqual(split(steps[2], "/products", { "x-preview": "blue" }), { blue: 100 });
        assert.deepEqual(inputsOf(steps[2], "product-service-v2"), inputsOf(steps[1], "product-service-v2"), "green (v2) serves on, unchanged");
        assert.equal(logs[2][logs[2].length - 1], "delete kubernetes:apps/v1:Deployment::product-service-v1");
        assert.ok(logs[2].indexOf("create kubernetes:apps/v1:Deployment::product-service-v3") < logs[2].indexOf("update kubernetes:networking.istio.io/v1:DestinationRule::product-service"));
        assert.deepEqual(split(steps[3], "/products"), { blue: 100 });
    });

    it("the check catches a route to pods that do not exist", () => {
        const vs: RegisteredResource = { type: "vs", name: "vs", custom: true, secretInputs: false, dependsOn: [], registration: { propertyNames: [], aliasTypes: [], additionalSecretOutputs: [] }, inputs: { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "a" }, spec: { http: [{ route: [{ destination: { host: "a.ns.svc.cluster.local", subset: "v9" } }] }] } } };
        const dr: RegisteredResource = { ...vs, type: "dr", name: "dr", inputs: { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "a" }, spec: { host: "a.ns.svc.cluster.local", subsets: [{ name: "v9", labels: { version: "v9" } }] } } };
        assert.match(brokenRoute(new Map([["vs", vs]])) ?? "", /which no DestinationRule defines/);
        assert.match(brokenRoute(new Map([["vs", vs], ["dr", dr]])) ?? "", /which no Deployment runs/);
    });
});
