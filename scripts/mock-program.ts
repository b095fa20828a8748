// Runs the whole Pulumi program in-process under Pulumi's mocks, with a stack file's config plus overrides,
// exactly as the CLI would pass them. Used by the tests and by `npm run render`; needs no CLI and no cluster.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { SECRET_KEYS } from "../components/security-config";

/** The folder with Pulumi.yaml: the parent of scripts/, also when running compiled from bin/scripts/. */
export const PROJECT_ROOT = [path.resolve(__dirname, ".."), path.resolve(__dirname, "..", "..")].find((dir) => fs.existsSync(path.join(dir, "Pulumi.yaml"))) ?? path.resolve(__dirname, "..");
/** index.ts under ts-node, index.js when compiled. */
const PROGRAM = path.resolve(__dirname, "..", "index");

export interface RegisteredResource {
    readonly type: string;
    readonly name: string;
    /** Inputs as the provider receives them (Outputs resolved). */
    readonly inputs: Record<string, unknown>;
    /** Logical names (`type::name`) this resource waits for, directly. */
    readonly dependsOn: readonly string[];
    /** Logical name of the parent component, if any. */
    readonly parent?: string;
    readonly custom: boolean;
}

export interface ProgramRun {
    readonly resources: readonly RegisteredResource[];
    readonly outputs: Record<string, unknown>;
}

export type ConfigValue = string | number | boolean | object;

/** The project name from Pulumi.yaml: config keys are `<project>:<key>`. */
export function projectName(): string {
    const project: unknown = parse(fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8"));
    if (typeof project !== "object" || project === null || !("name" in project) || typeof project.name !== "string") {
        throw new Error("Pulumi.yaml has no project name");
    }
    return project.name;
}

export function stackNames(): string[] {
    return fs
        .readdirSync(PROJECT_ROOT)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/** A stack file's config, keyed without the project prefix. */
export function stackConfig(stack: string): Record<string, ConfigValue> {
    const file = path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new Error(`Unknown stack "${stack}": there is no Pulumi.${stack}.yaml. Stacks: ${stackNames().join(", ")}`);
    }
    const doc: unknown = parse(fs.readFileSync(file, "utf8")) ?? {};
    const config = typeof doc === "object" && doc !== null && "config" in doc ? doc.config : undefined;
    const prefix = `${projectName()}:`;
    const result: Record<string, ConfigValue> = {};
    if (typeof config === "object" && config !== null) {
        for (const [key, value] of Object.entries(config)) {
            if (!key.startsWith(prefix)) continue;
            if (typeof value === "object" && value !== null && "secure" in value) {
                throw new Error(`Pulumi.${stack}.yaml holds an encrypted value for ${key}, which only the Pulumi CLI can decrypt; pass it as an override instead`);
            }
            result[key.slice(prefix.length)] = value as ConfigValue;
        }
    }
    return result;
}

/** The CLI hands every config value to the program as a string; objects and arrays as JSON. */
function asCliString(value: ConfigValue): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

const logicalName = (type: string, name: string) => `${type}::${name}`;

/** Inputs as the provider would see them: Pulumi's wrapper around a secret value replaced by the value. */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (typeof value !== "object" || value === null) return value;
    const record = value as Record<string, unknown>;
    if (record[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) return unwrapSecrets(record.value);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
}

class RecordingMocks implements pulumi.runtime.Mocks {
    readonly registered = new Map<string, Record<string, unknown>>();

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
        const state: Record<string, unknown> = { ...inputs };
        if (args.type === "kubernetes:helm.sh/v3:Release") {
            state.status = { name: inputs.name, namespace: inputs.namespace, status: "deployed" };
        }
        if (args.id !== undefined && args.id !== "" && args.type === "kubernetes:core/v1:Service") {
            // A read of the gateway's Service: answer as a cloud load balancer would (TEST-NET-3 address).
            state.status = { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } };
        }
        if (args.custom !== false) this.registered.set(logicalName(args.type, args.name), inputs);
        return { id: args.id || `${args.name}-id`, state };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        throw new Error(`The program made a provider call (${args.token}) that the mocks do not answer`);
    }
}

/** The program threw: `cause` is its error, `registered` what it had registered before that. */
export class ProgramError extends Error {
    constructor(
        readonly cause: unknown,
        readonly registered: readonly string[],
    ) {
        super(cause instanceof Error ? cause.message : String(cause));
        this.name = "ProgramError";
    }
}

/**
 * Runs the program for `stack` with `overrides` on top of the stack file. Rejects with a ProgramError if
 * the program throws (for example on invalid config).
 */
export function runProgram(stack: string, overrides: Record<string, ConfigValue> = {}): Promise<ProgramRun> {
    return runUnderMocks(stack, { ...stackConfig(stack), ...overrides }, () => {
        // A fresh evaluation of index.ts per run: Node caches modules, and the program is its top-level code.
        require.cache[require.resolve(PROGRAM)] = undefined;
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        return require(PROGRAM) as Record<string, unknown>;
    });
}

/**
 * Runs `program` (code that registers resources and returns the stack outputs) as stack `stack` with config
 * `values`, under mocks that record every resource as the provider would receive it.
 */
export async function runUnderMocks(stack: string, values: Record<string, ConfigValue>, program: () => Record<string, unknown>): Promise<ProgramRun> {
    const project = projectName();
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, project, stack, false);
    pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(values).map(([k, v]) => [`${project}:${k}`, asCliString(v)])),
        // Keys the program requires to be secrets are marked so, as `pulumi config set --secret` would.
        SECRET_KEYS.filter((k) => k in values).map((k) => `${project}:${k}`),
    );

    const seen: { resource: pulumi.Resource; type: string; name: string; dependsOn: pulumi.Resource[]; parent?: pulumi.Resource; custom: boolean }[] = [];
    const run = pulumi.runtime.runInPulumiStack(() => {
        // Records each resource's dependencies, which the mock monitor does not pass on.
        pulumi.runtime.registerStackTransformation((args) => {
            const dependsOn = args.opts.dependsOn;
            seen.push({
                resource: args.resource,
                type: args.type,
                name: args.name,
                dependsOn: Array.isArray(dependsOn) ? (dependsOn as pulumi.Resource[]) : dependsOn instanceof pulumi.Resource ? [dependsOn] : [],
                parent: args.opts.parent,
                custom: args.resource instanceof pulumi.CustomResource,
            });
            return undefined;
        });
        return Promise.resolve(program());
    });
    // When the program throws, Pulumi's stack resource rejects a few internal promises with the same error
    // besides the one returned here; those are expected, anything else is re-raised.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    let outputs: Record<string, unknown> | undefined;
    let failure: ProgramError | undefined;
    try {
        outputs = await run;
    } catch (error) {
        failure = new ProgramError(error, []);
    }
    await waitForRegistrations();
    process.off("unhandledRejection", onUnhandled);
    const unexpected = unhandled.find((reason) => reason !== failure?.cause);
    if (unexpected !== undefined) throw unexpected instanceof Error ? unexpected : new Error(JSON.stringify(unexpected));
    if (failure !== undefined) {
        throw new ProgramError(failure.cause, [...mocks.registered.keys()].filter((k) => !k.startsWith("pulumi:pulumi:Stack")));
    }
    const nameOf = new Map(seen.map((s) => [s.resource, logicalName(s.type, s.name)]));
    const resources = seen.map((s) => ({
        type: s.type,
        name: s.name,
        inputs: mocks.registered.get(logicalName(s.type, s.name)) ?? {},
        dependsOn: s.dependsOn.map((d) => nameOf.get(d) ?? "(outside the program)"),
        parent: s.parent === undefined ? undefined : nameOf.get(s.parent),
        custom: s.custom,
    }));
    return { resources, outputs: outputs ?? {} };
}

async function waitForRegistrations(): Promise<void> {
    // Registrations finish asynchronously; an empty turn of the event loop after the last one lets them land.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
