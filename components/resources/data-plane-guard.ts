// The data plane a stack last deployed, and the switches one update cannot make safely, refused before anything
// is created or changed.
//
// A Pulumi program sees only the config it is given, not what was deployed before. Two records say what was:
// - What the last completed update ran: the stack's `dataPlane` output, exported once every resource is applied,
//   which a stack reference to the stack itself reads (a read: it creates nothing). A failed or cancelled update
//   exports nothing.
// - What the last update began: a resource registered first, whose provider the engine hands the inputs it was
//   last applied with. It moves at the start of each update, so after one that failed it says where the failed
//   update was going, which the cluster may be half way to.
// A switch must be one stage from both: after a failed ambientReady -> ambient, retry ambient or go back to
// ambientReady, never straight to sidecar.
import * as pulumi from "@pulumi/pulumi";
import type { DataPlane } from "../config/config";
import { ConfigError, show } from "../config/config-reader";

/** The stack output that records the data plane an update completed with. */
export const DATA_PLANE_OUTPUT = "dataPlane";

/**
 * Why a stack whose last completed update ran `deployed` cannot go to `wanted` in one update, or undefined when
 * it can. Each switch passes ambientReady (ambient installed, the sidecars still serving), one update each way:
 * the pods restart between sidecar and ambient only once the allows, the waypoint and HBONE each side needs are in
 * place. `deployed` is undefined for a stack never deployed.
 */
export function dataPlaneSwitchProblem(deployed: string | undefined, wanted: string, record = "the stack's last completed update ran"): string | undefined {
    // Written out here, not imported: the engine runs it from the guard's provider as serialized into the stack's state.
    const stages = ["sidecar", "ambientReady", "ambient"];
    const from = deployed === undefined ? -1 : stages.indexOf(deployed);
    const to = stages.indexOf(wanted);
    if (from < 0 || to < 0 || Math.abs(to - from) <= 1) return undefined;
    return (
        `${record} dataPlane ${deployed ?? ""}, and a switch between sidecar and ambient in one update would restart every pod ` +
        `while the other side's allows, waypoint and HBONE are not yet in place (pods with sidecars would deny the waypoint's calls, ambient pods ` +
        `the sidecars' calls); it passes ambientReady, one update each way`
    );
}

/** An output every release of this program has exported: a stack with it has completed an update. */
const DEPLOYED_MARKER = "istioVersion";

/**
 * The data plane of a stack's last completed update, from its outputs: the one it recorded, or sidecar for a
 * stack deployed before this output existed (every earlier release of this program ran sidecars); undefined for
 * a stack never deployed.
 */
export function deployedDataPlane(outputs: Readonly<Record<string, unknown>>): string | undefined {
    const recorded = outputs[DATA_PLANE_OUTPUT];
    if (typeof recorded === "string") return recorded;
    return outputs[DEPLOYED_MARKER] !== undefined ? "sidecar" : undefined;
}

/** A DIY backend's organization: its stacks are referenced by name alone, which both its layouts accept. */
const DIY_ORGANIZATION = "organization";

async function lastOutputs(): Promise<Record<string, unknown>> {
    const organization = pulumi.getOrganization();
    const self = new pulumi.StackReference("deployed", { name: organization === DIY_ORGANIZATION ? pulumi.getStack() : `${organization}/${pulumi.getProject()}/${pulumi.getStack()}` });
    const entries = await Promise.all(
        [DATA_PLANE_OUTPUT, DEPLOYED_MARKER].map(async (name) => {
            const details = await self.getOutputDetails(name);
            return [name, details.value ?? details.secretValue] as const;
        }),
    );
    return Object.fromEntries(entries.filter(([, value]) => value !== undefined));
}

const UNFINISHED = "the stack's last update, which did not complete, began switching to";
// Self-contained, like dataPlaneSwitchProblem: the guard's provider runs it from the stack's state.
const fixOf = (wanted: string) => `pulumi config set dataPlane ambientReady && pulumi up, then pulumi config set dataPlane ${wanted} && pulumi up (see docs/ambient.md, Switching a stack)`;

/** The guard's inputs, as the stack's state keeps them: the stage this update begins. */
export interface DataPlaneAttemptInputs {
    readonly dataPlane: DataPlane;
}

const attemptProvider: pulumi.dynamic.ResourceProvider = {
    check(olds: Partial<DataPlaneAttemptInputs>, news: DataPlaneAttemptInputs) {
        const problem = dataPlaneSwitchProblem(olds.dataPlane, news.dataPlane, UNFINISHED);
        const reason = problem === undefined ? undefined : `dataPlane = "${news.dataPlane}": ${problem}. Fix: ${fixOf(news.dataPlane)}`;
        return Promise.resolve(reason === undefined ? { inputs: news } : { inputs: news, failures: [{ property: "dataPlane", reason }] });
    },
    diff(_id: string, olds: DataPlaneAttemptInputs, news: DataPlaneAttemptInputs) {
        return Promise.resolve({ changes: olds.dataPlane !== news.dataPlane });
    },
    create(inputs: DataPlaneAttemptInputs) {
        return Promise.resolve({ id: "data-plane-attempt", outs: inputs });
    },
    update(_id: string, _olds: DataPlaneAttemptInputs, news: DataPlaneAttemptInputs) {
        return Promise.resolve({ outs: news });
    },
};

/** The stage the stack's last update began: its provider's check refuses a `wanted` stage two away from it. */
export class DataPlaneAttempt extends pulumi.dynamic.Resource {
    constructor(name: string, args: DataPlaneAttemptInputs, opts?: pulumi.CustomResourceOptions) {
        super(attemptProvider, name, { ...args }, opts);
    }
}

/**
 * Refuses a `wanted` data plane one update cannot reach from what the stack last completed (a config error,
 * before anything is registered) or last began (the guard's check, the first resource registered, awaited before
 * any other). Otherwise returns the record to export as the `dataPlane` output, to call once every resource is
 * registered: it resolves only when each has been applied (its id known), so an update that fails exports none.
 */
export async function guardDataPlane(wanted: DataPlane): Promise<() => pulumi.Output<DataPlane>> {
    const problem = dataPlaneSwitchProblem(deployedDataPlane(await lastOutputs()), wanted);
    if (problem === undefined) {
        const attempt = new DataPlaneAttempt("data-plane-attempt", { dataPlane: wanted });
        await new Promise<void>((resolve) => {
            attempt.urn.apply(() => {
                resolve();
            });
        });
        const applied: pulumi.CustomResource[] = [];
        pulumi.runtime.registerStackTransformation((args) => {
            if (pulumi.CustomResource.isInstance(args.resource)) applied.push(args.resource);
            return undefined;
        });
        return () => pulumi.all(applied.map((r) => r.id)).apply(() => wanted);
    }
    throw new ConfigError([
        {
            key: "dataPlane",
            value: show(wanted),
            allowed: problem,
            fix: fixOf(wanted),
        },
    ]);
}
