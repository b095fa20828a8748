// Which Kubernetes objects and Helm releases differ between two runs of the program: what a `pulumi up` from
// one config to the other would create (+), update (~) or delete (-).
import type { ProgramRun, RegisteredResource } from "../lib/mock-program";

/** JSON with object keys sorted, so two equal inputs compare equal whatever order they were built in. */
function canonical(value: unknown): string {
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (typeof value === "object" && value !== null) {
        const record = value as Record<string, unknown>;
        return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`).join(",")}}`;
    }
    return value === undefined ? "null" : JSON.stringify(value);
}

/** `Kind namespace/name` of an object, or the Helm release's name. */
function label(resource: RegisteredResource): string {
    const { kind, metadata, name } = resource.inputs as { kind?: string; metadata?: { name?: string; namespace?: string }; name?: string };
    if (kind !== undefined && metadata?.name !== undefined) return `${kind} ${metadata.namespace === undefined ? "" : `${metadata.namespace}/`}${metadata.name}`;
    return `${resource.type.split(":").pop() ?? resource.type} ${name ?? resource.name}`;
}

/** One object a `pulumi up` from one run's config to the other's would create (+), update (~) or delete (-). */
export interface ObjectChange {
    readonly op: "+" | "~" | "-";
    /** The resource's type token and logical name, as Pulumi's URN names it. */
    readonly type: string;
    readonly name: string;
    /** `Kind namespace/name`, for people. */
    readonly label: string;
    /** An update's changed properties, as Pulumi writes property paths (spec.http[0].route[1].weight). */
    readonly paths?: readonly string[];
}

/** Pulumi's property path of a key under `prefix`: .name for a plain name, ["name"] otherwise, [n] for an index. */
const pathStep = (prefix: string, key: string | number) => (typeof key === "number" ? `${prefix}[${key}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (prefix === "" ? key : `${prefix}.${key}`) : `${prefix}[${JSON.stringify(key)}]`);

/** The paths of the leaves (or whole values, where a type changes) that differ between two inputs. */
export function changedPaths(before: unknown, after: unknown, prefix = ""): string[] {
    if (canonical(before) === canonical(after)) return [];
    if (Array.isArray(before) && Array.isArray(after)) {
        return Array.from({ length: Math.max(before.length, after.length) }, (_, i) => changedPaths(before[i], after[i], pathStep(prefix, i))).flat();
    }
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (isObject(before) && isObject(after)) {
        return [...new Set([...Object.keys(before), ...Object.keys(after)])].flatMap((k) => changedPaths(before[k], after[k], pathStep(prefix, k)));
    }
    return [prefix];
}

export function objectChanges(before: ProgramRun, after: ProgramRun): ObjectChange[] {
    const custom = (run: ProgramRun) => new Map(run.resources.filter((r) => r.custom).map((r) => [`${r.type}::${r.name}`, r]));
    const old = custom(before);
    const now = custom(after);
    const changes: ObjectChange[] = [];
    const change = (op: ObjectChange["op"], r: RegisteredResource, paths?: string[]) => changes.push({ op, type: r.type, name: r.name, label: label(r), ...(paths !== undefined && { paths }) });
    for (const [key, resource] of now) {
        const previous = old.get(key);
        if (previous === undefined) change("+", resource);
        else if (canonical(previous.inputs) !== canonical(resource.inputs)) change("~", resource, changedPaths(previous.inputs, resource.inputs));
    }
    for (const [key, resource] of old) if (!now.has(key)) change("-", resource);
    return changes;
}

export function changedObjects(before: ProgramRun, after: ProgramRun): string[] {
    return objectChanges(before, after).map((c) => `${c.op} ${c.label}`);
}

/** One change a real preview plans (from its engine events): the operation, the resource, and the properties that differ. */
export interface PlannedChange {
    readonly op: "create" | "update" | "delete" | "replace";
    readonly type: string;
    readonly name: string;
    /** The property paths that differ, as the engine's detailed diff (or its top-level keys) names them. */
    readonly diffs?: readonly string[];
}

/** Does one property path lie on the other's way (spec.http is on the way to spec.http[0].route[1].weight)? */
const related = (a: string, b: string) => {
    const on = (short: string, long: string) => long === short || long.startsWith(`${short}.`) || long.startsWith(`${short}[`);
    return on(a, b) || on(b, a);
};

/**
 * Where a preview's plan differs from what the update should do (`expected`, the program's own diff under the
 * mocks): each object it would change that it should not (with the properties that differ), each it would change
 * otherwise (created where it should be updated), and each it should change and would not. Empty when they agree.
 */
export function planMismatch(expected: readonly ObjectChange[], planned: readonly PlannedChange[]): string[] {
    const key = (c: { readonly type: string; readonly name: string }) => `${c.type}::${c.name}`;
    const byKey = new Map(expected.map((c) => [key(c), c]));
    const fits = { "+": ["create"], "~": ["update", "replace"], "-": ["delete"] } as const;
    const problems: string[] = [];
    const diffs = (p: PlannedChange) => (p.diffs === undefined || p.diffs.length === 0 ? "" : ` (${p.diffs.join(", ")})`);
    for (const p of planned) {
        const wanted = byKey.get(key(p));
        if (wanted === undefined) problems.push(`${p.op} ${p.type} ${p.name}${diffs(p)}: not a change of this step`);
        else if (!(fits[wanted.op] as readonly string[]).includes(p.op)) problems.push(`${p.op} ${p.type} ${p.name}${diffs(p)}: this step should ${{ "+": "create", "~": "update", "-": "delete" }[wanted.op]} ${wanted.label}`);
        else {
            // An update of the right object may still carry another change (a pending edit of the same route's retries):
            // each property the plan changes must be on the way to one this update changes.
            const others = (p.diffs ?? []).filter((d) => !(wanted.paths ?? []).some((w) => related(d, w)));
            if (wanted.paths !== undefined && others.length > 0) problems.push(`${p.op} ${p.type} ${p.name} (${others.join(", ")}): properties this step does not change`);
        }
    }
    const plannedKeys = new Set(planned.map(key));
    for (const c of expected) if (!plannedKeys.has(key(c))) problems.push(`${c.op} ${c.label}: this step's change, which the preview does not plan`);
    return problems;
}
