// Validates rendered Kubernetes objects against real schemas: Istio's CRDs (@kubernetes-models/istio) and
// Kubernetes' OpenAPI (kubernetes-models). Both packages are ESM-only, hence the dynamic imports.

export interface ObjectRef {
    apiVersion: string;
    kind: string;
    metadata?: { name?: string };
}

interface Validator {
    validate(): void;
}
type ModelClass = new (data: object) => Validator;

/** Module path of the model class for an apiVersion and kind, in whichever package owns that API group. */
export function modelModule(apiVersion: string, kind: string): string {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    if (group.endsWith(".istio.io")) return `@kubernetes-models/istio/${group}/${version}/${kind}`;
    return group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
}

function isModelClass(value: unknown): value is ModelClass {
    return typeof value === "function" && typeof (value.prototype as Partial<Validator> | undefined)?.validate === "function";
}

async function modelClass(apiVersion: string, kind: string): Promise<ModelClass> {
    const specifier = modelModule(apiVersion, kind);
    let module: Record<string, unknown>;
    try {
        module = (await import(specifier)) as Record<string, unknown>;
    } catch {
        throw new Error(`No schema for ${apiVersion} ${kind} (looked for ${specifier}): is the API version current?`);
    }
    const model = module[kind];
    if (!isModelClass(model)) throw new Error(`${specifier} has no model class ${kind}`);
    return model;
}

/** Throws one error naming every object that fails its schema. */
export async function validateObjects(objects: readonly ObjectRef[]): Promise<void> {
    const failures: string[] = [];
    for (const object of objects) {
        try {
            const Model = await modelClass(object.apiVersion, object.kind);
            new Model(object).validate();
        } catch (error) {
            failures.push(`${object.kind} ${object.metadata?.name ?? "(unnamed)"}: ${error instanceof Error ? error.message : String(error)}`);
        }
    }
    if (failures.length > 0) throw new Error(`Schema validation failed:\n  ${failures.join("\n  ")}`);
}
