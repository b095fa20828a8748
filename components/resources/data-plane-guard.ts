// The data plane a stack last deployed, and the switches one update cannot make safely, refused before anything
// is created or changed.
//
// A Pulumi program sees only the config it is given, not what was deployed before. The stack's outputs are what
// its last completed update exported, and a stack reference to the stack itself reads them (a read: it creates
// nothing). An update that fails or is cancelled partway exports nothing, so a switch is always judged against the
// last update that completed, whatever a failed one left half applied.
import * as pulumi from "@pulumi/pulumi";
import type { DataPlane } from "../config/config";
import { ConfigError, setCommand, show } from "../config/config-reader";

/** The stack output that records the data plane an update completed with. */
export const DATA_PLANE_OUTPUT = "dataPlane";

const STAGES: readonly string[] = ["sidecar", "ambientReady", "ambient"];

/**
 * Why a stack whose last completed update ran `deployed` cannot go to `wanted` in one update, or undefined when
 * it can. Each switch passes ambientReady (ambient installed, the sidecars still serving), one update each way:
 * the pods restart between sidecar and ambient only once the allows, the waypoint and HBONE each side needs are in
 * place. `deployed` is undefined for a stack never deployed.
 */
export function dataPlaneSwitchProblem(deployed: string | undefined, wanted: string): string | undefined {
    const from = deployed === undefined ? -1 : STAGES.indexOf(deployed);
    const to = STAGES.indexOf(wanted);
    if (from < 0 || to < 0 || Math.abs(to - from) <= 1) return undefined;
    return (
        `the stack's last completed update ran dataPlane ${deployed ?? ""}, and a switch between sidecar and ambient in one update would restart every pod ` +
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

/**
 * Reads the stack's own last outputs and refuses, as a config error, a `wanted` data plane one update cannot
 * reach. Otherwise returns the record to export as the `dataPlane` output, to call once every resource is
 * registered: it resolves only when each has been applied (its id known), so an update that fails exports none.
 */
export async function guardDataPlane(wanted: DataPlane): Promise<() => pulumi.Output<DataPlane>> {
    const problem = dataPlaneSwitchProblem(deployedDataPlane(await lastOutputs()), wanted);
    if (problem === undefined) {
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
            fix: `${setCommand("dataPlane", "ambientReady")} && pulumi up, then ${setCommand("dataPlane", wanted)} && pulumi up (see docs/ambient.md, Switching a stack)`,
        },
    ]);
}
