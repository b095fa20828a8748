// A release from first deploy to the promotion of the next version, as plain config changes, applied the way
// Pulumi applies an update: creates and updates, each after everything it depends on, independent ones in any
// order (Pulumi runs them in parallel); then deletes, each after everything that depended on it. Every state
// any such order can pass through is checked: no route (VirtualService subset, HTTPRoute backendRef, mirror
// included) may point at a subset, a Service or pods that do not exist, and the version that serves must not
// restart. The rollout's own sequence of stack configs is checked the same way, from every step it may leave.
import { strict as assert } from "assert";
import { readSettings } from "../components/config/config";
import type { HttpRouteSpec } from "../components/specs/gateway-api-specs";
import { configSource, StackConfig } from "../rollout/config-edit";
import { rolloutPhases, rolloutTargets } from "../rollout/plan";
import { ConfigValue, projectName, stackConfig } from "../lib/mock-program";
import { INGRESS, objects, ofKind, ProgramRun, RegisteredResource, registeredVirtualServiceSpecs, routeVia, run, shares, waitsFor } from "./harness";
import { everyOrder, resourceKey as key } from "./support/update-order";

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
    for (const route of objects(cluster).filter((o) => o.kind === "HTTPRoute")) {
        const spec = route.spec as HttpRouteSpec;
        const namespace = route.metadata.namespace ?? "";
        for (const rule of spec.rules) {
            const refs = [...(rule.backendRefs ?? []), ...(rule.filters ?? []).flatMap((f) => (f.type === "RequestMirror" ? [f.requestMirror.backendRef] : []))];
            for (const ref of refs) {
                const service = ofKind(cluster, "Service").find((s) => s.metadata?.name === ref.name && s.metadata.namespace === namespace);
                if (service === undefined) return `HTTPRoute ${route.metadata.name} routes to Service ${namespace}/${ref.name}, which does not exist`;
                const selector = Object.entries(service.spec?.selector ?? {});
                const pods = deployments.some((d) => d.metadata?.namespace === namespace && selector.every(([k, v]) => d.spec?.template.metadata?.labels?.[k] === v));
                if (!pods) return `HTTPRoute ${route.metadata.name} routes to Service ${namespace}/${ref.name}, whose pods no Deployment runs`;
            }
        }
    }
    return undefined;
}

/** The kinds whose order decides whether a route meets something missing; the order of the rest changes no check. */
const ROUTING_KINDS = /:(VirtualService|DestinationRule|HTTPRoute|Service|Deployment)$/;

/** What an update from `previous` to `next` does: objects created or changed, and objects deleted. */
function changesOf(previous: ProgramRun | undefined, next: ProgramRun) {
    const [old, now] = [objectsOf(previous), objectsOf(next)];
    const changed = [...now.values()].filter((r) => JSON.stringify(old.get(key(r))?.inputs) !== JSON.stringify(r.inputs));
    const removed = [...old.values()].filter((r) => !now.has(key(r)));
    return { old, changed, removed };
}

/** Every state Pulumi may pass through from `previous` to `next`: creates and updates in any order their dependencies allow, then deletes. */
function applyEveryOrder(previous: ProgramRun | undefined, next: ProgramRun, label: string): number {
    const { old, ...changes } = changesOf(previous, next);
    const [changed, removed] = [changes.changed, changes.removed].map((list) => list.filter((r) => ROUTING_KINDS.test(r.type)));
    const updated = (done: readonly RegisteredResource[]) => new Map([...old, ...done.map((r): [string, RegisteredResource] => [key(r), r])]);
    let states = everyOrder(changed, (a, b) => waitsFor(next, b, a), (done) => brokenRoute(updated(done)), `${label} (updates)`);
    const afterUpdates = updated(changed);
    states += everyOrder(
        removed,
        (a, b) => previous !== undefined && waitsFor(previous, a, b),
        (done) => {
            const state = new Map(afterUpdates);
            for (const r of done) state.delete(key(r));
            return brokenRoute(state);
        },
        `${label} (deletes)`,
    );
    return states;
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

/**
 * Applies `next` over `previous`, checking every state any order may pass through; returns the steps of one
 * order (routing as early as its dependencies allow, pods deleted first where they may), for what it changes.
 */
function apply(previous: ProgramRun | undefined, next: ProgramRun, label: string): string[] {
    applyEveryOrder(previous, next, label);
    const { old, changed, removed } = changesOf(previous, next);
    const routingFirst = (r: RegisteredResource) => (/VirtualService|DestinationRule/.test(r.type) ? 0 : 1);
    return [
        ...order(changed, (a, b) => waitsFor(next, b, a), routingFirst).map((r) => `${old.has(key(r)) ? "update" : "create"} ${key(r)}`),
        ...order(removed, (a, b) => previous !== undefined && waitsFor(previous, a, b), (r) => (r.type.endsWith("Deployment") ? 0 : 1)).map((r) => `delete ${key(r)}`),
    ];
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
            logs.set(what, apply(previous, next, what));
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
            logs.push(apply(previous, next, `blue/green step ${logs.length + 1}`));
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
        const vs: RegisteredResource = { type: "vs", name: "vs", custom: true, secretInputs: false, dependsOn: [], registration: { propertyNames: [], aliasTypes: [], additionalSecretOutputs: [], ignoreChanges: [] }, inputs: { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "a" }, spec: { http: [{ route: [{ destination: { host: "a.ns.svc.cluster.local", subset: "v9" } }] }] } } };
        const dr: RegisteredResource = { ...vs, type: "dr", name: "dr", inputs: { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "a" }, spec: { host: "a.ns.svc.cluster.local", subsets: [{ name: "v9", labels: { version: "v9" } }] } } };
        assert.match(brokenRoute(new Map([["vs", vs]])) ?? "", /which no DestinationRule defines/);
        assert.match(brokenRoute(new Map([["vs", vs], ["dr", dr]])) ?? "", /which no Deployment runs/);
    });
});

describe("the rollout's own transitions, make-before-break in every order Pulumi may apply them", () => {
    /** One canary and one blue/green service, the rollout's steps as given. */
    const base = (stack: string, steps: readonly number[]): StackConfig => ({
        ...stackConfig(stack),
        services: { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"] }, "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] }, "order-service": { path: "/orders", release: "single", versions: ["v1"] } },
        routes: {},
        meshEdges: [],
        canaryWeight: 0,
        activeColor: "blue",
        rollout: { steps: [...steps] },
    });

    /** The configs the rollout writes, in order, promoting from its last step; and its rollback from each step and the switch. */
    function sequences(config: StackConfig, service: string): [string, StackConfig[]][] {
        const settings = readSettings(configSource(config, []));
        const phases = rolloutPhases(rolloutTargets(settings, config, [service], projectName()), config, settings);
        const chain = [config, ...phases.steps.map((s) => s.config), ...(phases.switch ? [phases.switch.config] : []), ...(phases.drain ? [phases.drain.config] : []), phases.promotion.config];
        // A rollback may follow any phase: a step, the switch, the drain, or a promotion whose update failed (the
        // driver takes it back to the config before it, then rolls back: the cluster goes from where the failed
        // update left it, at worst all of the promotion, to the rollback).
        const from = [...phases.steps.map((s) => s.config), ...(phases.switch ? [phases.switch.config] : []), ...(phases.drain ? [phases.drain.config] : []), phases.promotion.config];
        const rollbacks = from.map((config, i): [string, StackConfig[]] => [`rollback from phase ${i + 1}`, [config, phases.rollback.config]]);
        return [["steps and promotion", chain], ...rollbacks];
    }

    for (const stack of ["dev", "gateway"]) {
        for (const [service, release] of [["user-service", "canary"], ["product-service", "blue/green"]]) {
            it(`${stack}, ${release}: every step, the promotion from every step, and every rollback`, async () => {
                const checked = new Set<string>();
                let states = 0;
                // The rollout's own settings shape no object: the program runs without them, so the two step lists share their runs.
                const withoutRollout = (config: StackConfig) => Object.fromEntries(Object.entries(config).filter(([key]) => key !== "rollout"));
                // Promotion from the first step, and from a later one.
                for (const steps of [[10], [10, 50]]) {
                    for (const [what, configs] of sequences(base(stack, steps), service)) {
                        for (let i = 1; i < configs.length; i++) {
                            const [from, to] = [withoutRollout(configs[i - 1]), withoutRollout(configs[i])];
                            const id = JSON.stringify([from, to]);
                            if (checked.has(id)) continue;
                            checked.add(id);
                            states += applyEveryOrder(await run(stack, from), await run(stack, to), `${what} (steps ${steps.join(", ")}), transition ${i}`);
                        }
                    }
                }
                assert.ok(states > 0);
            });
        }
    }

    it("the check catches the gap a promotion straight from 50 % would open: the subset goes before the route that names it", async () => {
        const config = base("dev", [10, 50]);
        const settings = readSettings(configSource(config, []));
        const phases = rolloutPhases(rolloutTargets(settings, config, ["user-service"], projectName()), config, settings);
        const at50 = await run("dev", phases.steps[1].config);
        const promoted = await run("dev", phases.promotion.config);
        assert.throws(() => applyEveryOrder(at50, promoted, "50 % -> promoted"), /routes to user-service\.backend\.svc\.cluster\.local\/v1, which no DestinationRule defines/);
    });
});

