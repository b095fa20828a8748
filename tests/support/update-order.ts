// The states a Pulumi update may pass through: creates and updates each after everything it depends on,
// independent ones in any order (Pulumi runs them in parallel); then deletes, each after everything that depended on it.
import { strict as assert } from "assert";
import type { RegisteredResource } from "../harness";

export const resourceKey = (r: RegisteredResource): string => `${r.type}::${r.name}`;
const key = resourceKey;

/**
 * Checks every state that applying `steps` in any order allowed by `before` passes through: a state depends only
 * on which steps are done, and the done steps are closed under `before` (each step after all it waits for).
 */
export function everyOrder(steps: readonly RegisteredResource[], precedes: (a: RegisteredResource, b: RegisteredResource) => boolean, stateOf: (done: readonly RegisteredResource[]) => string | undefined, label: string): number {
    const relation = new Map(steps.map((a) => [a, new Set(steps.filter((b) => a !== b && precedes(a, b)))]));
    const before = (a: RegisteredResource, b: RegisteredResource) => relation.get(a)?.has(b) ?? false;
    const seen = new Set<string>([""]);
    let frontier: RegisteredResource[][] = [[]];
    let states = 0;
    while (frontier.length > 0) {
        const next: RegisteredResource[][] = [];
        for (const done of frontier) {
            for (const step of steps) {
                if (done.includes(step) || steps.some((other) => other !== step && !done.includes(other) && before(other, step))) continue;
                const after = [...done, step];
                const id = after.map(key).sort().join("|");
                if (seen.has(id)) continue;
                seen.add(id);
                states++;
                const broken = stateOf(after);
                assert.equal(broken, undefined, `${label}, after ${after.map(key).join(", then ")}: ${broken ?? ""}`);
                next.push(after);
            }
        }
        frontier = next;
    }
    return states;
}
