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
}

export function objectChanges(before: ProgramRun, after: ProgramRun): ObjectChange[] {
    const custom = (run: ProgramRun) => new Map(run.resources.filter((r) => r.custom).map((r) => [`${r.type}::${r.name}`, r]));
    const old = custom(before);
    const now = custom(after);
    const changes: ObjectChange[] = [];
    const change = (op: ObjectChange["op"], r: RegisteredResource) => changes.push({ op, type: r.type, name: r.name, label: label(r) });
    for (const [key, resource] of now) {
        const previous = old.get(key);
        if (previous === undefined) change("+", resource);
        else if (canonical(previous.inputs) !== canonical(resource.inputs)) change("~", resource);
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
    readonly diffs?: readonly string[];
}

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
    }
    const plannedKeys = new Set(planned.map(key));
    for (const c of expected) if (!plannedKeys.has(key(c))) problems.push(`${c.op} ${c.label}: this step's change, which the preview does not plan`);
    return problems;
}
