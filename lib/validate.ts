// Validates rendered Kubernetes objects against real schemas: Istio's CRDs (@kubernetes-models/istio),
// Kubernetes' OpenAPI (kubernetes-models), and the Gateway API's v1.5.1 CRDs as the program installs them
// (their openAPIV3Schema, with Ajv). The model packages are ESM-only, hence the dynamic imports.
import Ajv, { ValidateFunction } from "ajv";
import { isRecord } from "../components/config/config-reader";
import { gatewayApiInstall } from "../components/resources/gateway-api";

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

const GATEWAY_API_GROUP = "gateway.networking.k8s.io";
/**
 * Kinds whose CRDs a pinned provider chart installs (Envoy Gateway's own API), which the program neither carries
 * nor may copy: typed by hand in the specs and checked by the API server on apply, not here.
 */
export const CHART_OWNED_KINDS: readonly string[] = ["gateway.envoyproxy.io/v1alpha1/EnvoyProxy"];
const gatewayApiValidators = new Map<string, ValidateFunction>();

/** The served version's schema of a Gateway API kind, from the CRDs the program installs. */
function gatewayApiValidator(apiVersion: string, kind: string): ValidateFunction {
    const known = gatewayApiValidators.get(`${apiVersion}/${kind}`);
    if (known !== undefined) return known;
    const version = apiVersion.split("/")[1];
    const crd = gatewayApiInstall().find((o) => o.kind === "CustomResourceDefinition" && isRecord(o.spec.names) && o.spec.names.kind === kind);
    const versions: unknown[] = Array.isArray(crd?.spec.versions) ? crd.spec.versions : [];
    const served = versions.find((v): v is Record<string, unknown> => isRecord(v) && v.name === version && v.served === true);
    const schema = isRecord(served?.schema) && isRecord(served.schema.openAPIV3Schema) ? served.schema.openAPIV3Schema : undefined;
    if (schema === undefined) throw new Error(`No schema for ${apiVersion} ${kind} in the Gateway API CRDs the program installs: is the API version served?`);
    // Kubernetes' extensions (x-kubernetes-*) and CEL rules are not JSON Schema: Ajv checks types, enums, patterns, bounds and required fields.
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
    gatewayApiValidators.set(`${apiVersion}/${kind}`, validate);
    return validate;
}

/** Throws one error naming every object that fails its schema. */
export async function validateObjects(objects: readonly ObjectRef[]): Promise<void> {
    const failures: string[] = [];
    for (const object of objects) {
        try {
            if (CHART_OWNED_KINDS.includes(`${object.apiVersion}/${object.kind}`)) continue;
            if (object.apiVersion.startsWith(`${GATEWAY_API_GROUP}/`)) {
                const validate = gatewayApiValidator(object.apiVersion, object.kind);
                if (!validate(object)) throw new Error((validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`).join("; "));
                continue;
            }
            const Model = await modelClass(object.apiVersion, object.kind);
            new Model(object).validate();
        } catch (error) {
            failures.push(`${object.kind} ${object.metadata?.name ?? "(unnamed)"}: ${error instanceof Error ? error.message : String(error)}`);
        }
    }
    if (failures.length > 0) throw new Error(`Schema validation failed:\n  ${failures.join("\n  ")}`);
}
