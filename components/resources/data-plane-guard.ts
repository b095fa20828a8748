// The data plane a stack last deployed, kept in the stack's own state, and the switches one update cannot make
// safely, refused before anything else is registered.
//
// A Pulumi program sees only the config it is given, not what was deployed before. A resource's provider does:
// the engine hands `check` the inputs the resource was last deployed with, and a failure there stops the update
// at that resource. index.ts registers this guard first and waits for the engine to accept it, so a refused
// switch creates and changes nothing. The provider is serialized into the stack's state (a dynamic provider), so
// this module imports nothing at run time: the decision is written out here in full.
import * as pulumi from "@pulumi/pulumi";
import type { DataPlane } from "../config/config";

/** The guard's inputs, as its state keeps them. */
export interface DataPlaneGuardInputs {
    readonly dataPlane: DataPlane;
}

/**
 * Why a stack deployed with `deployed` cannot go to `wanted` in one update, or undefined when it can. Each switch
 * passes ambientReady (ambient installed, the sidecars still serving), one update each way: the pods restart
 * between sidecar and ambient only once the allows, the waypoint and HBONE each side needs are in place.
 * `deployed` is undefined for a stack this guard has not seen deployed (a new stack, or one deployed before it existed).
 */
export function dataPlaneSwitchProblem(deployed: string | undefined, wanted: string): string | undefined {
    const stages = ["sidecar", "ambientReady", "ambient"];
    const from = deployed === undefined ? -1 : stages.indexOf(deployed);
    const to = stages.indexOf(wanted);
    if (from < 0 || to < 0 || Math.abs(to - from) <= 1) return undefined;
    return (
        `dataPlane = "${wanted}": the stack runs dataPlane ${deployed ?? ""}, and a switch between sidecar and ambient in one update would restart every pod ` +
        `while the other side's allows, waypoint and HBONE are not yet in place (pods with sidecars would deny the waypoint's calls, ambient pods ` +
        `the sidecars' calls). It passes ambientReady, one update each way. Fix: pulumi config set dataPlane ambientReady && pulumi up, then ` +
        `pulumi config set dataPlane ${wanted} && pulumi up (see docs/ambient.md, Switching a stack)`
    );
}

const provider: pulumi.dynamic.ResourceProvider = {
    check(olds: Partial<DataPlaneGuardInputs>, news: DataPlaneGuardInputs) {
        const problem = dataPlaneSwitchProblem(olds.dataPlane, news.dataPlane);
        return Promise.resolve(problem === undefined ? { inputs: news } : { inputs: news, failures: [{ property: "dataPlane", reason: problem }] });
    },
    diff(_id: string, olds: DataPlaneGuardInputs, news: DataPlaneGuardInputs) {
        return Promise.resolve({ changes: olds.dataPlane !== news.dataPlane });
    },
    create(inputs: DataPlaneGuardInputs) {
        return Promise.resolve({ id: "data-plane", outs: inputs });
    },
    update(_id: string, _olds: DataPlaneGuardInputs, news: DataPlaneGuardInputs) {
        return Promise.resolve({ outs: news });
    },
};

/** The stack's deployed data plane: its `check` refuses a switch that skips ambientReady (see dataPlaneSwitchProblem). */
export class DataPlaneGuard extends pulumi.dynamic.Resource {
    constructor(name: string, args: DataPlaneGuardInputs, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { ...args }, opts);
    }

    /** The provider's check, as the engine calls it: for tests, which run under mocks that do not. */
    static check(deployed: Partial<DataPlaneGuardInputs>, wanted: DataPlaneGuardInputs): Promise<pulumi.dynamic.CheckResult> {
        const check = provider.check;
        if (check === undefined) throw new Error("the guard's provider has no check");
        return check(deployed, wanted);
    }
}

/** Registers the guard and waits until the engine has checked and applied it: nothing else is registered before. */
export async function guardDataPlane(dataPlane: DataPlane): Promise<DataPlaneGuard> {
    const guard = new DataPlaneGuard("data-plane", { dataPlane });
    await new Promise<void>((resolve) => {
        guard.urn.apply(() => {
            resolve();
        });
    });
    return guard;
}
