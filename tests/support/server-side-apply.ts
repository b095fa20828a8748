// One field under Kubernetes server-side apply (a Deployment's spec.replicas), as the API server and
// @pulumi/kubernetes handle it:
// - an apply that sets the field makes its manager an owner; one that leaves it out releases it, and a field
//   no manager owns any more falls back to its default (replicas: 1);
// - an update that changes it (the autoscaler, through the scale subresource) takes it from every other owner;
// - with `ignoreChanges` on the field, @pulumi/kubernetes (v4.32, await.go handleSSAIgnoreFields) leaves it out
//   of its apply when another manager owns it and Pulumi does not, and otherwise sends the live value;
// - an apply of a value another manager owns at a different value is a conflict, unless forced
//   (`pulumi.com/patchForce`), which takes the field over.
export interface Field {
    readonly value: number;
    readonly owners: ReadonlySet<string>;
}

export const PULUMI = "pulumi-kubernetes";
export const AUTOSCALER = "horizontal-pod-autoscaler";

/** The field after `pulumi up` applies `input` (undefined: the program leaves the field out); `live` undefined: the object is new. */
export function pulumiApply(live: Field | undefined, input: number | undefined, options: { readonly ignored: boolean; readonly force: boolean }, defaultValue: number): Field {
    let sent = input;
    if (options.ignored && live !== undefined) {
        const othersOnly = !live.owners.has(PULUMI) && live.owners.size > 0;
        sent = othersOnly ? undefined : live.value;
    }
    if (sent !== undefined) {
        const others = [...(live?.owners ?? [])].filter((o) => o !== PULUMI);
        if (live !== undefined && others.length > 0 && live.value !== sent) {
            if (!options.force) throw new Error(`conflict: spec.replicas is owned by ${others.join(", ")}`);
            return { value: sent, owners: new Set([PULUMI]) };
        }
        return { value: sent, owners: new Set([...(live?.owners ?? []), PULUMI]) };
    }
    const owners = new Set([...(live?.owners ?? [])].filter((o) => o !== PULUMI));
    return { value: owners.size > 0 && live !== undefined ? live.value : defaultValue, owners };
}

/** The field after the autoscaler sets it to `value`. */
export function autoscalerScale(live: Field, value: number): Field {
    return value === live.value ? live : { value, owners: new Set([AUTOSCALER]) };
}
