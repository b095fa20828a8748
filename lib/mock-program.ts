// Runs the whole Pulumi program in-process under Pulumi's mocks, with a stack file's config plus overrides,
// exactly as the CLI would pass them. Used by the tests and by `npm run render`; needs no CLI and no cluster.
import * as fs from "fs";
import * as path from "path";
import * as vm from "vm";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { SECRET_KEYS } from "../components/config/security-config";
import { cliString } from "../rollout/config-edit";
import { ConfigError } from "../components/config/config-reader";
import { readStackFile, StackFileConfig } from "./stack-file";

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
    /** Did any of its inputs reach the provider as a Pulumi secret (encrypted in state, masked in diffs)? */
    readonly secretInputs: boolean;
    /** What the provider's class handed the SDK besides the inputs, so a benchmark can register it again. */
    readonly registration: Registration;
}

/** A registration's shape: every property named (outputs as placeholders) and the options a provider class adds. */
export interface Registration {
    readonly propertyNames: readonly string[];
    readonly version?: string;
    readonly aliasTypes: readonly string[];
    readonly additionalSecretOutputs: readonly string[];
    /** The ID of a resource read from the cluster rather than created. */
    readonly readId?: string;
    /** Inputs whose changes the provider is told to leave as they are live. */
    readonly ignoreChanges: readonly string[];
}

function registrationOf(props: Record<string, unknown>, opts: pulumi.CustomResourceOptions): Registration {
    const aliases = Array.isArray(opts.aliases) ? opts.aliases : [];
    return {
        propertyNames: Object.keys(props),
        ...(typeof opts.version === "string" && { version: opts.version }),
        aliasTypes: aliases.flatMap((a: unknown) => (typeof a === "object" && a !== null && "type" in a && typeof a.type === "string" ? [a.type] : [])),
        additionalSecretOutputs: opts.additionalSecretOutputs ?? [],
        ...(typeof opts.id === "string" && { readId: opts.id }),
        ignoreChanges: opts.ignoreChanges ?? [],
    };
}

export interface ProgramRun {
    readonly resources: readonly RegisteredResource[];
    readonly outputs: Record<string, unknown>;
    /** The stack outputs exported as secrets. */
    readonly secretOutputs: readonly string[];
}

export type ConfigValue = string | number | boolean | object;

/** The project name from Pulumi.yaml: config keys are `<project>:<key>`. */
/** A YAML file's parse, kept while the file is unchanged: tests and the bench read the same files many times. */
const parsedFiles = new Map<string, { readonly mtimeMs: number; readonly size: number; readonly value: unknown }>();

function parsedOnce(file: string, parseFile: (file: string) => unknown): unknown {
    const { mtimeMs, size } = fs.statSync(file);
    const cached = parsedFiles.get(file);
    if (cached !== undefined && cached.mtimeMs === mtimeMs && cached.size === size) return cached.value;
    const value = parseFile(file);
    parsedFiles.set(file, { mtimeMs, size, value });
    return value;
}

export function projectName(): string {
    const project = parsedOnce(path.join(PROJECT_ROOT, "Pulumi.yaml"), (file) => parse(fs.readFileSync(file, "utf8")) as unknown);
    if (typeof project !== "object" || project === null || !("name" in project) || typeof project.name !== "string") {
        throw new Error("Pulumi.yaml has no project name");
    }
    return project.name;
}

export function stackNames(dir: string = PROJECT_ROOT): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/** A stack file's config, keyed without the project prefix; `dir` holds the stack file (a copy of the project's, in tests). */
export function stackConfig(stack: string, dir: string = PROJECT_ROOT): Record<string, ConfigValue> {
    return stackFileConfig(stack, dir).config;
}

/** A stack file's config and the keys it holds as `secure:` values (each value read as "[secret]"). */
export function stackFileConfig(stack: string, dir: string = PROJECT_ROOT): { readonly config: Record<string, ConfigValue>; readonly secretKeys: readonly string[] } {
    const file = path.join(dir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new Error(`Unknown stack "${stack}": there is no Pulumi.${stack}.yaml in ${dir}. Stacks: ${stackNames().join(", ")}`);
    }
    const read = parsedOnce(file, (f) => readStackFile(f, projectName())) as StackFileConfig;
    return { config: structuredClone(read.config), secretKeys: read.secretKeys };
}

const logicalName = (type: string, name: string) => `${type}::${name}`;

const isSecretWrapper = (value: unknown): boolean =>
    typeof value === "object" && value !== null && (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;

function containsSecret(value: unknown): boolean {
    if (isSecretWrapper(value)) return true;
    if (Array.isArray(value)) return value.some(containsSecret);
    return typeof value === "object" && value !== null && Object.values(value).some(containsSecret);
}

/** Inputs as the provider would see them: Pulumi's wrapper around a secret value replaced by the value. */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (typeof value !== "object" || value === null) return value;
    const record = value as Record<string, unknown>;
    if (isSecretWrapper(record)) return unwrapSecrets(record.value);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
}

/**
 * What a stack holds from its last updates: the outputs the last completed one exported (as a stack reference
 * reads them), and each resource's inputs as last applied (logical name `type::name` -> inputs), which the engine
 * hands a provider's check.
 */
export interface DeployedState {
    readonly outputs?: Readonly<Record<string, unknown>>;
    readonly inputs?: Readonly<Record<string, Record<string, unknown>>>;
}

/** A CommonJS module's body, wrapped as Node wraps it. */
type ModuleFunction = (exports: object, module: object, require: NodeJS.Require) => void;
const isModuleFunction = (value: unknown): value is ModuleFunction => typeof value === "function";

/** A dynamic resource's provider, from the source Pulumi serialized into its `__provider` input, as Pulumi's dynamic provider host loads it. */
function dynamicProvider(source: string): pulumi.dynamic.ResourceProvider {
    const module = { exports: {} as { handler?: () => pulumi.dynamic.ResourceProvider } };
    // The serialized source is a CommonJS module whose `handler` returns the provider.
    const load: unknown = vm.runInThisContext(`(function (exports, module, require) {\n${source}\n})`);
    if (!isModuleFunction(load)) throw new Error("a dynamic resource's __provider is not a module");
    load(module.exports, module, require);
    const provider = module.exports.handler?.();
    if (provider === undefined) throw new Error("a dynamic resource's __provider holds no handler");
    return provider;
}

class RecordingMocks implements pulumi.runtime.Mocks {
    readonly registered = new Map<string, Record<string, unknown>>();
    readonly withSecrets = new Set<string>();

    /** Rejects when the engine would stop the update: a resource's provider refused it in `check`. */
    readonly refusal: Promise<never>;
    private refuse: (error: Error) => void = () => undefined;

    constructor(
        private readonly stack: string,
        private readonly deployed: DeployedState = {},
    ) {
        this.refusal = new Promise<never>((_, reject) => {
            this.refuse = reject;
        });
        // Observed by runOnce only while a program runs; a refusal after that has no one left to tell.
        this.refusal.catch(() => undefined);
    }

    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        const inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
        if (args.type === "pulumi:pulumi:StackReference") {
            // A read of a stack's outputs: the program reads its own stack's last ones, by the name a DIY backend (the
            // mocks' "organization") knows it by.
            if (inputs.name !== this.stack) throw new Error(`a stack reference to ${String(inputs.name)}, not to this stack (${this.stack})`);
            this.registered.set(logicalName(args.type, args.name), inputs);
            return { id: this.stack, state: { name: this.stack, outputs: { ...this.deployed.outputs }, secretOutputNames: [] } };
        }
        if (args.type === "pulumi-nodejs:dynamic:Resource" && typeof inputs.__provider === "string") {
            // The engine checks a dynamic resource with its provider, against the inputs it was last applied with; a
            // failure stops the update there, and the engine ends the program (its registration never answers).
            const { __provider: source, ...news } = inputs;
            const logical = logicalName(args.type, args.name);
            const olds = this.deployed.inputs !== undefined && Object.hasOwn(this.deployed.inputs, logical) ? this.deployed.inputs[logical] : {};
            const failures = (await dynamicProvider(source).check?.(olds, news))?.failures ?? [];
            if (failures.length > 0) {
                this.refuse(new Error(failures.map((f) => `${args.name}: ${f.property}: ${f.reason}`).join("\n")));
                return new Promise<never>(() => undefined);
            }
        }
        // The provider answers with the live object. A CustomResourceDefinition's is answered without its schema:
        // the program reads nothing back from one, and carrying the Gateway API's 650 KB of OpenAPI schema back
        // through the mocks' protobuf was a third of each Gateway API stack's run.
        const state: Record<string, unknown> = args.type === "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition" ? { apiVersion: inputs.apiVersion, kind: inputs.kind, metadata: inputs.metadata } : { ...inputs };
        if (args.type === "kubernetes:helm.sh/v3:Release") {
            state.status = { name: inputs.name, namespace: inputs.namespace, status: "deployed" };
        }
        if (args.id !== undefined && args.id !== "" && args.type === "kubernetes:core/v1:Service") {
            // A read of the gateway's Service: answer as a cloud load balancer would (TEST-NET-3 address).
            state.status = { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } };
        }
        // Components too: a remote one (a Helm v4 Chart) is known by its inputs alone, its children being the provider's.
        this.registered.set(logicalName(args.type, args.name), inputs);
        if (containsSecret(args.inputs)) this.withSecrets.add(logicalName(args.type, args.name));
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
 * Runs the program for `stack` with `overrides` on top of the stack file, the keys in `secretKeys` set as
 * `pulumi config set --secret` sets them. Rejects with a ProgramError if the program throws (for example on
 * invalid config).
 */
export function runProgram(stack: string, overrides: Record<string, ConfigValue> = {}, secretKeys: readonly string[] = [], deployed: DeployedState = {}): Promise<ProgramRun> {
    const file = stackFileConfig(stack);
    return runProgramWith(stack, { ...file.config, ...overrides }, [...file.secretKeys.filter((k) => !(k in overrides)), ...secretKeys], deployed);
}

/** Runs the program as stack `stack` with exactly this config (no stack file read), over what the stack last deployed. */
export function runProgramWith(stack: string, values: Record<string, ConfigValue>, secretKeys: readonly string[] = [], deployed: DeployedState = {}): Promise<ProgramRun> {
    return runUnderMocks(stack, values, secretKeys, deployed, () => {
        // A fresh evaluation of index.ts per run: Node caches modules, and the program is its top-level code.
        require.cache[require.resolve(PROGRAM)] = undefined;
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const program = require(PROGRAM) as unknown;
        // The program is a function Pulumi awaits (index.ts), as the CLI runs it.
        if (typeof program !== "function") throw new Error(`${PROGRAM} must export the program as a function`);
        return (program as () => Promise<Record<string, unknown>>)();
    });
}

/** The mocks and the config are process-wide: runs started together take turns. */
let previousRun: Promise<unknown> = Promise.resolve();

/**
 * Runs `program` (code that registers resources and returns the stack outputs) as stack `stack` with config
 * `values`, under mocks that record every resource as the provider would receive it.
 */
export function runUnderMocks(stack: string, values: Record<string, ConfigValue>, secretKeys: readonly string[], deployed: DeployedState, program: () => Record<string, unknown> | Promise<Record<string, unknown>>): Promise<ProgramRun> {
    const run = previousRun.catch(() => undefined).then(() => runWithoutPromiseTraces(stack, values, secretKeys, deployed, program));
    previousRun = run;
    return run;
}

/**
 * runOnce with V8's stack capture off. The SDK takes a stack trace for every promise it makes (for its leak
 * report), about half of a run's time under mocks. A run that fails with anything but a config refusal is run
 * again with traces on, so a bug in the program still reports where it was thrown.
 */
async function runWithoutPromiseTraces(stack: string, values: Record<string, ConfigValue>, secretKeys: readonly string[], deployed: DeployedState, program: () => Record<string, unknown> | Promise<Record<string, unknown>>): Promise<ProgramRun> {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
        return await runOnce(stack, values, secretKeys, deployed, program);
    } catch (error) {
        if (error instanceof ProgramError && error.cause instanceof ConfigError) throw error;
    } finally {
        Error.stackTraceLimit = limit;
    }
    return runOnce(stack, values, secretKeys, deployed, program);
}

async function runOnce(stack: string, values: Record<string, ConfigValue>, secretKeys: readonly string[], deployed: DeployedState, program: () => Record<string, unknown> | Promise<Record<string, unknown>>): Promise<ProgramRun> {
    const project = projectName();
    const mocks = new RecordingMocks(stack, deployed);
    // "organization": what a DIY backend (pulumi login --local, file://, s3:// ...) names every stack's organization.
    await pulumi.runtime.setMocks(mocks, project, stack, false, "organization");
    pulumi.runtime.setAllConfig(
        Object.fromEntries(Object.entries(values).map(([k, v]) => [`${project}:${k}`, cliString(v)])),
        // Keys the program requires to be secrets are marked so, as `pulumi config set --secret` would.
        [...new Set([...SECRET_KEYS.filter((k) => k in values), ...secretKeys])].map((k) => `${project}:${k}`),
    );

    let exportsOfProgram: Record<string, unknown> = {};
    const seen: { resource: pulumi.Resource; type: string; name: string; dependsOn: pulumi.Resource[]; parent?: pulumi.Resource; custom: boolean; registration: Registration }[] = [];
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
                registration: registrationOf(args.props, args.opts),
            });
            return undefined;
        });
        return Promise.resolve(program()).then((exported) => {
            exportsOfProgram = exported;
            return exported;
        });
    });
    // When the program throws, Pulumi's stack resource rejects a few internal promises with the same error
    // besides the one returned here; those are expected, anything else is re-raised.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    let outputs: Record<string, unknown> | undefined;
    let failure: ProgramError | undefined;
    try {
        outputs = await Promise.race([run, mocks.refusal]);
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
        secretInputs: mocks.withSecrets.has(logicalName(s.type, s.name)),
        registration: s.registration,
    }));
    const secretOutputs: string[] = [];
    for (const [name, value] of Object.entries(exportsOfProgram)) {
        if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.push(name);
    }
    return { resources, outputs: outputs ?? {}, secretOutputs };
}

async function waitForRegistrations(): Promise<void> {
    // Registrations finish asynchronously; an empty turn of the event loop after the last one lets them land.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
