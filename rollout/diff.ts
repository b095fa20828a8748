// Which Kubernetes objects and Helm releases differ between two runs of the program: what a `pulumi up` from
// one config to the other would create (+), update (~) or delete (-).
import type { ProgramRun, RegisteredResource } from "../scripts/mock-program";

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

export function changedObjects(before: ProgramRun, after: ProgramRun): string[] {
    const custom = (run: ProgramRun) => new Map(run.resources.filter((r) => r.custom).map((r) => [`${r.type}::${r.name}`, r]));
    const old = custom(before);
    const now = custom(after);
    const lines: string[] = [];
    for (const [key, resource] of now) {
        const previous = old.get(key);
        if (previous === undefined) lines.push(`+ ${label(resource)}`);
        else if (canonical(previous.inputs) !== canonical(resource.inputs)) lines.push(`~ ${label(resource)}`);
    }
    for (const [key, resource] of old) if (!now.has(key)) lines.push(`- ${label(resource)}`);
    return lines;
}
