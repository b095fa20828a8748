// Switching a stack's data plane between sidecar and ambient: through ambientReady, one update each way, each
// update checked in every state any order Pulumi may apply it passes through, with the pods each Deployment
// runs at that moment (the old ones, both while it rolls, or the new ones); a switch one update cannot make
// safely is refused by the stack's own record of what it runs, before anything is registered.
import { strict as assert } from "assert";
import { DATA_PLANE_OUTPUT, dataPlaneSwitchProblem, deployedDataPlane } from "../components/resources/data-plane-guard";
import { ConfigError } from "../components/config/config-reader";
import { DeployedState, runProgram } from "../lib/mock-program";
import { fqdn, helmReleases, INGRESS, K8sObject, ofKind, ProgramError, ProgramRun, RegisteredResource, resource, run, waitsFor } from "./harness";
import { ambientControlPlaneOf, landFromEdge, landFromMesh, Landing, Pod, podKind, worldOf } from "./support/data-plane-path";
import { everyOrder, resourceKey as key } from "./support/update-order";

const INGRESS_ACCOUNT = "istio-ingress/istio-ingressgateway";
const stage = (dataPlane: string) => run("ambient", { dataPlane });

/** A request that must get through in every state, and the apps whose objects decide it (with the shared ones). */
interface Flow {
    readonly what: string;
    readonly apps: readonly string[];
    readonly land: (world: ReturnType<typeof worldOf>) => Landing;
}

/** The edge to each app, and the declared mesh edges. */
const DECLARED_TRAFFIC: readonly Flow[] = [
    ...[["/users", "user-service"], ["/products", "product-service"], ["/orders", "order-service"]].map(([path, app]): Flow => ({
        what: `GET ${path} at the edge`,
        apps: [app],
        land: (world) => landFromEdge(world, "backend", { gateway: INGRESS, host: "localhost", path }, INGRESS_ACCOUNT),
    })),
    ...[["user-service", "/users/1"], ["product-service", "/products"]].map(([service, path]): Flow => ({
        what: `order-service -> ${service} GET ${path}`,
        apps: ["order-service", service],
        land: (world) => landFromMesh(world, "backend", service, "order-service", { gateway: "mesh", host: fqdn(service), path }),
    })),
];
const APPS = ["user-service", "product-service", "order-service"];

const objectsOf = (r: ProgramRun) => new Map(r.resources.filter((x) => x.custom).map((x) => [key(x), x]));
/** The kinds whose state decides where a request goes and who admits it. */
const TRAFFIC_KINDS = /:(Namespace|Deployment|Service|AuthorizationPolicy|HTTPRoute|Release)$|gateway\.networking\.k8s\.io\/v1:Gateway$/;

/**
 * Every state the update from `previous` to `next` may pass through, each checked with the declared traffic. A
 * Deployment whose changes have all been applied but its own runs both its old pods and its new ones (it rolls),
 * its new pods started with the namespace and istiod as they then are; until its update completes, an old pod
 * may also be started again (evicted, rescheduled, scaled up) from its old template into the namespace as it then is.
 *
 * A request depends only on its apps' objects and the shared ones (the namespace, Istio, the waypoint, the
 * namespace-wide policies), so each is checked over the orders of those alone: the states of that part of the
 * update are exactly the other parts' states left out (a dependency is transitive, so the orders of a part are
 * the orders of the whole, seen there), and the whole update's states, about 2^20 here, need not each be built.
 */
function switchEveryOrder(previous: ProgramRun, next: ProgramRun, label: string): number {
    const [old, now] = [objectsOf(previous), objectsOf(next)];
    const changedAll = [...now.values()].filter((r) => TRAFFIC_KINDS.test(r.type) && JSON.stringify(old.get(key(r))?.inputs) !== JSON.stringify(r.inputs));
    const removedAll = [...old.values()].filter((r) => TRAFFIC_KINDS.test(r.type) && !now.has(key(r)));
    const asRun = (state: ReadonlyMap<string, RegisteredResource>): ProgramRun => ({ resources: [...state.values()], outputs: {}, secretOutputs: [] });
    const namespaceLabels = (state: ProgramRun) => ofKind(state, "Namespace").find((n) => n.metadata?.name === "backend")?.metadata?.labels ?? {};
    const oldPods = (deployment: RegisteredResource): Pod => podOf(deployment, podKind(deployment.inputs as unknown as K8sObject, namespaceLabels(previous), ambientControlPlaneOf(previous)));
    let states = 0;
    for (const flow of DECLARED_TRAFFIC) {
        const concerns = (r: RegisteredResource) => !APPS.some((app) => r.name.includes(app)) || flow.apps.some((app) => r.name.includes(app));
        const [changed, removed] = [changedAll.filter(concerns), removedAll.filter(concerns)];
        const check = (state: ReadonlyMap<string, RegisteredResource>, done: ReadonlySet<string>): string | undefined => {
            const cluster = asRun(state);
            const pods = [...state.values()]
                .filter((r) => r.type === "kubernetes:apps/v1:Deployment")
                .flatMap((deployment): Pod[] => {
                    const startedNow = (d: RegisteredResource) => podOf(d, podKind(d.inputs as unknown as K8sObject, namespaceLabels(cluster), ambientControlPlaneOf(cluster)));
                    const fresh = startedNow(deployment);
                    const before = old.get(key(deployment));
                    if (before === undefined) return [fresh];
                    // An old pod evicted, rescheduled or scaled up starts from the old template, into the namespace and istiod as they are now.
                    const previousTemplate = [oldPods(before), startedNow(before)];
                    if (!changed.some((c) => key(c) === key(deployment))) return previousTemplate;
                    if (done.has(key(deployment))) return [fresh];
                    const rolling = changed.every((c) => c === deployment || done.has(key(c)) || !waitsFor(next, deployment, c));
                    return rolling ? [...previousTemplate, fresh] : previousTemplate;
                });
            const landing = flow.land(worldOf(cluster, pods));
            return landing.kind === "served" ? undefined : `${flow.what}: ${JSON.stringify(landing)} (pods: ${pods.map((p) => `${p.labels.app}-${p.labels.version} ${p.kind}`).join(", ")})`;
        };
        // Outside the flow's part, the state is the old one: those changes are not applied, and their pods do not roll.
        const updated = (done: readonly RegisteredResource[]) => new Map([...old, ...done.map((r): [string, RegisteredResource] => [key(r), r])]);
        states += everyOrder(changed, (a, b) => waitsFor(next, b, a), (done) => check(updated(done), new Set(done.map(key))), `${label} (updates)`);
        const afterUpdates = updated(changed);
        const all = new Set(changed.map(key));
        states += everyOrder(
            removed,
            (a, b) => waitsFor(previous, a, b),
            (done) => {
                const state = new Map(afterUpdates);
                for (const r of done) state.delete(key(r));
                return check(state, all);
            },
            `${label} (deletes)`,
        );
    }
    return states;
}

function podOf(deployment: RegisteredResource, kind: Pod["kind"]): Pod {
    const object = deployment.inputs as unknown as K8sObject;
    return { namespace: object.metadata.namespace ?? "", labels: (object.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels, kind };
}

describe("switching a stack's data plane", () => {
    it("passes ambientReady each way, one update each: the stages beside each other, and any stage on a stack not yet deployed", () => {
        const stages = ["sidecar", "ambientReady", "ambient"];
        const allowed = stages.flatMap((from) => stages.filter((to) => dataPlaneSwitchProblem(from, to) === undefined).map((to) => `${from} -> ${to}`));
        assert.deepEqual(allowed, ["sidecar -> sidecar", "sidecar -> ambientReady", "ambientReady -> sidecar", "ambientReady -> ambientReady", "ambientReady -> ambient", "ambient -> ambientReady", "ambient -> ambient"]);
        for (const to of stages) assert.equal(dataPlaneSwitchProblem(undefined, to), undefined);
    });

    const ATTEMPT = "pulumi-nodejs:dynamic:Resource::data-plane-attempt";
    /** The program run over what the stack holds; the message it is refused with, or undefined. */
    const refusal = async (stack: string, wanted: string, deployed: DeployedState, kind: "config" | "check" = "config") => {
        try {
            await runProgram(stack, { dataPlane: wanted }, [], deployed);
        } catch (error) {
            assert.ok(error instanceof ProgramError && (kind === "config") === error.cause instanceof ConfigError, String(error));
            assert.deepEqual(error.registered, [], "nothing is registered but the read of the stack's own outputs");
            return error.message;
        }
        return undefined;
    };

    it("refuses a switch that skips ambientReady against the stack's last completed update, before anything is registered; the fix is the two updates", async () => {
        for (const [stack, deployed, wanted] of [["ambient", "sidecar", "ambient"], ["gateway", "ambient", "sidecar"]] as const) {
            const refused = await refusal(stack, wanted, { outputs: { istioVersion: "1.30.3", dataPlane: deployed } });
            assert.match(refused ?? "", new RegExp(`dataPlane = "${wanted}": the stack's last completed update ran dataPlane ${deployed}, .*\\n {4}Fix: pulumi config set dataPlane ambientReady && pulumi up, then pulumi config set dataPlane ${wanted} && pulumi up`));
        }
        // A stack deployed before the record existed ran sidecars: straight to ambient is refused, ambientReady goes ahead.
        assert.match((await refusal("ambient", "ambient", { outputs: { istioVersion: "1.30.3", tryIt: "curl ..." } })) ?? "", /last completed update ran dataPlane sidecar/);
        assert.equal(await refusal("ambient", "ambientReady", { outputs: { istioVersion: "1.30.3" } }), undefined);
        // A stack never deployed (no outputs) may start at any stage.
        assert.equal(await refusal("ambient", "ambient", {}), undefined);
    });

    it("after an update that did not complete, refuses a switch two stages from where it was going, at the guard registered first (its provider as stored in the state)", async () => {
        // ambientReady -> ambient failed partway: the namespace may be ambient already, some pods too.
        const failed: DeployedState = { outputs: { istioVersion: "1.30.3", dataPlane: "ambientReady" }, inputs: { [ATTEMPT]: { dataPlane: "ambient" } } };
        const refused = await refusal("gateway", "sidecar", failed, "check");
        assert.match(refused ?? "", /data-plane-attempt: dataPlane: dataPlane = "sidecar": the stack's last update, which did not complete, began switching to dataPlane ambient, .* Fix: pulumi config set dataPlane ambientReady && pulumi up, then pulumi config set dataPlane sidecar && pulumi up/);
        // Retrying the stage, or going back to the one completed, goes ahead; the guard is the first resource registered.
        for (const wanted of ["ambient", "ambientReady"]) {
            const result = await runProgram("ambient", { dataPlane: wanted }, [], failed);
            assert.deepEqual(result.resources.filter((r) => r.custom).slice(0, 2).map(key), ["pulumi:pulumi:StackReference::deployed", ATTEMPT]);
        }
    });

    it("records the data plane each update completed with, as the stack output the next update is judged against", async () => {
        assert.equal(DATA_PLANE_OUTPUT, "dataPlane");
        for (const dataPlane of ["sidecar", "ambientReady", "ambient"]) {
            const result = await runProgram("ambient", { dataPlane }, [], { outputs: { dataPlane }, inputs: { [ATTEMPT]: { dataPlane } } });
            assert.equal(result.outputs[DATA_PLANE_OUTPUT], dataPlane);
            assert.equal(deployedDataPlane(result.outputs), dataPlane);
            assert.deepEqual(resource(result, "pulumi-nodejs:dynamic:Resource", "data-plane-attempt").inputs.dataPlane, dataPlane);
        }
        assert.equal(deployedDataPlane({}), undefined);
        assert.equal(deployedDataPlane({ istioVersion: "1.30.3" }), "sidecar");
    });

    it("ambientReady: ambient installed beside sidecars that take HBONE, both sets of allows, and Services that name the waypoint once their pods take HBONE", async () => {
        const ready = await stage("ambientReady");
        assert.deepEqual(helmReleases(ready).filter((r) => r.chart === "ztunnel").length, 1);
        const namespace = ofKind(ready, "Namespace").find((n) => n.metadata?.name === "backend");
        assert.equal(namespace?.metadata?.labels?.["istio-injection"], "enabled");
        assert.equal(namespace?.metadata?.labels?.["istio.io/dataplane-mode"], undefined);
        for (const deployment of ofKind(ready, "Deployment")) {
            assert.deepEqual(JSON.parse(deployment.spec?.template.metadata?.annotations?.["proxy.istio.io/config"] ?? "{}"), { proxyMetadata: { ISTIO_META_ENABLE_HBONE: "true" } });
        }
        const policies = ofKind(ready, "AuthorizationPolicy").filter((p) => p.metadata?.namespace === "backend").map((p) => p.metadata?.name).sort();
        assert.deepEqual(policies, [
            "allow-nothing",
            "allow-waypoint",
            "order-service-from-ingress",
            "order-service-from-ingress-at-waypoint",
            "product-service-from-ingress",
            "product-service-from-ingress-at-waypoint",
            "product-service-from-mesh",
            "product-service-from-mesh-at-waypoint",
            "product-service-from-sidecars",
            "user-service-from-ingress",
            "user-service-from-ingress-at-waypoint",
            "user-service-from-mesh",
            "user-service-from-mesh-at-waypoint",
            "user-service-from-sidecars",
        ]);
        const service = resource(ready, "kubernetes:core/v1:Service", "user-service-v2");
        assert.equal((service.inputs as unknown as K8sObject).metadata.labels?.["istio.io/use-waypoint"], "waypoint");
        assert.ok(waitsFor(ready, service, resource(ready, "kubernetes:apps/v1:Deployment", "user-service-v2")));
        // The queries stay the sidecars' until ambient; a rollout is refused in between (tests/rollout.test.ts).
        assert.match((ready.outputs.releaseQueries as Record<string, { requests: string }>)["user-service"].requests, /reporter="source"/);
    });

    for (const [from, to] of [
        ["sidecar", "ambientReady"],
        ["ambientReady", "ambient"],
        ["ambient", "ambientReady"],
        ["ambientReady", "sidecar"],
    ]) {
        it(`${from} -> ${to}: the edge and the declared callers are served in every state any order of the update passes through`, async () => {
            const states = switchEveryOrder(await stage(from), await stage(to), `${from} -> ${to}`);
            assert.ok(states > 10, `${states} states`);
        });
    }

    it("the check catches what the guard refuses: straight from sidecar to ambient, the pods restarted into ambient deny calls that do not come through the waypoint", async () => {
        const [sidecar, ambient] = [await stage("sidecar"), await stage("ambient")];
        // The edge is refused first: its Service names the waypoint only once the new pods run, and until then the ingress gateway calls the pods themselves.
        assert.throws(() => switchEveryOrder(sidecar, ambient, "sidecar -> ambient"), /GET \/\w+ at the edge: \{"kind":"denied","where":"ztunnel of [\w-]+ \(ambient\), for cluster\.local\/ns\/istio-ingress\/sa\/istio-ingressgateway"/);
    });
});
