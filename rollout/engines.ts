// The driver talks to a stack through one interface: read its config, apply config edits and bring the stack
// up to them. Two implementations: Pulumi's Automation API (a real `pulumi up` of this project and stack), and
// a render engine that runs the program under the mocks, writes the render and edits the stack file exactly
// as `pulumi config set --path` would (for tests and rehearsals without a cluster).
import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace, OpType, Stack } from "@pulumi/pulumi/automation";
import { ProgramRun, projectName, runProgramWith, stackFileConfig } from "../lib/mock-program";
import { checkEditable, editStackFile, readOnlyMode, writeEditedCopy } from "../lib/stack-file";
import { writeRendered } from "../lib/render-writer";
import { applyEdits, asStackConfig, checkExpected, ConfigEdit, ConfigValue, Expectation, pathKey, StackConfig } from "./config-edit";
import { changedObjects, PlannedChange } from "./diff";
import { SetupError } from "./lock";
import { checkTag, FileStackTags, StackTags } from "./stack-tags";

export interface StackEngine {
    /** For messages: which engine and stack. */
    readonly description: string;
    /** The stack file that holds the config, which `--commit` commits. */
    readonly stackFile: string;
    readConfig(): Promise<{ readonly config: StackConfig; readonly secretKeys: readonly string[] }>;
    /** Throws (before anything moves) when the rollout could not write the stack's config at each step. */
    checkWritable(): void;
    /**
     * Sets the config as the edits say, then updates the stack to it; returns a line per object changed. Refuses
     * (ChangedUnderRollout), setting nothing, unless each `expected` key holds its value in the config as it is now.
     */
    apply(edits: readonly ConfigEdit[], message: string, expected?: readonly Expectation[]): Promise<readonly string[]>;
    /**
     * What an update with the edits would change, as a real preview plans it, leaving the config as it was. An
     * engine whose update is the program's own run under the mocks (the render engine) has none: its plan is the
     * expected one by construction.
     */
    preview?(edits: readonly ConfigEdit[]): Promise<readonly PlannedChange[]>;
}

/** An engine whose stack has tags: where the command's rollout keeps its record for operators (rollout/control.ts). */
export interface TaggedEngine extends StackEngine {
    readonly tags: StackTags;
}

/** `pulumi up` through the Automation API, on this project (its Pulumi.yaml's folder) and stack. */
export class AutomationEngine implements TaggedEngine {
    readonly description: string;
    readonly stackFile: string;
    private stack?: Stack;

    /** The stack's tags in its backend (`pulumi stack tag`): Pulumi Cloud, or a DIY backend with Pulumi 3.211 or later. */
    readonly tags: StackTags;

    constructor(
        private readonly dir: string,
        private readonly stackName: string,
        private readonly log: (line: string) => void,
    ) {
        this.description = `pulumi (Automation API) stack ${stackName}`;
        this.stackFile = path.join(dir, `Pulumi.${stackName}.yaml`);
        this.tags = {
            where: `the tags of stack ${stackName}`,
            removal: (name) => `pulumi stack tag rm ${name} --stack ${stackName}`,
            list: async () => (await this.selected()).listTags(),
            set: async (name, value) => {
                checkTag(name, value);
                await (await this.selected()).setTag(name, value);
            },
            remove: async (name) => (await this.selected()).removeTag(name),
        };
    }

    private async selected(): Promise<Stack> {
        try {
            this.stack ??= await LocalWorkspace.selectStack({ stackName: this.stackName, workDir: this.dir });
        } catch (error) {
            const message = error instanceof Error ? error.message.split("\n").find((l) => l.includes("stderr:")) ?? error.message : String(error);
            throw new SetupError(`The automation engine could not select stack ${this.stackName} in ${this.dir} (${message.trim()}). Fix: install the Pulumi CLI and log in (pulumi login), create the stack (pulumi stack init ${this.stackName}), or rehearse without a cluster: --engine render`);
        }
        return this.stack;
    }

    checkWritable(): void {
        // The Pulumi CLI writes the config to the stack file, when the stack has one.
        const readOnly = fs.existsSync(this.stackFile) ? readOnlyMode(this.stackFile) : undefined;
        if (readOnly !== undefined) throw new SetupError(`${path.basename(this.stackFile)} is read-only (mode ${readOnly}), and each step of the rollout sets config in it. Fix: chmod u+w ${path.basename(this.stackFile)}`);
    }

    async readConfig(): Promise<{ config: StackConfig; secretKeys: string[] }> {
        const all = await (await this.selected()).getAllConfig();
        const prefix = `${projectName()}:`;
        const config: Record<string, ConfigValue> = {};
        const secretKeys: string[] = [];
        for (const [key, { value, secret }] of Object.entries(all)) {
            if (!key.startsWith(prefix)) continue;
            const name = key.slice(prefix.length);
            Object.defineProperty(config, name, { value: parseStructured(value), enumerable: true, writable: true, configurable: true });
            if (secret === true) secretKeys.push(name);
        }
        return { config, secretKeys };
    }

    async apply(edits: readonly ConfigEdit[], message: string, expected: readonly Expectation[] = []): Promise<string[]> {
        const stack = await this.selected();
        checkExpected((await this.readConfig()).config, expected);
        await this.setConfig(stack, edits);
        const result = await stack.up({ message, onOutput: (out) => {
                this.log(out.trimEnd());
            },
        });
        return Object.entries(result.summary.resourceChanges ?? {})
            .filter(([op]) => op !== "same")
            .map(([op, count]) => `${op}: ${count}`);
    }

    /**
     * Previews against a copy of the stack file with the edits (`pulumi preview --config-file`), beside it and removed
     * after: the stack's own config is never set and put back, so nothing is left half-done by a failure, and a
     * secret stays encrypted as the file holds it.
     */
    async preview(edits: readonly ConfigEdit[]): Promise<PlannedChange[]> {
        const stack = await this.selected();
        const copy = path.join(path.dirname(this.stackFile), `.${path.basename(this.stackFile)}.${process.pid}.preview.yaml`);
        try {
            // A stack without a file of its own yet (pulumi config set would create it): the edits alone.
            if (!fs.existsSync(this.stackFile)) fs.writeFileSync(copy, "config: {}\n", { mode: 0o600 });
            writeEditedCopy(fs.existsSync(this.stackFile) ? this.stackFile : copy, edits, projectName(), copy);
            const planned = new Map<string, PlannedChange>();
            await stack.preview({
                configFile: copy,
                onEvent: (event) => {
                    const step = event.resourcePreEvent?.metadata;
                    const op = step === undefined ? undefined : PLANNED_OPS[step.op];
                    // Custom resources only: components and the stack itself have no objects of their own.
                    if (step === undefined || op === undefined || (step.new?.custom ?? step.old?.custom) !== true) return;
                    const name = step.urn.slice(step.urn.lastIndexOf("::") + 2);
                    const diffs = step.detailedDiff === undefined ? step.diffs : Object.keys(step.detailedDiff);
                    // A replacement is a create and a delete of one resource: one change.
                    planned.set(`${step.type}::${name}`, { op, type: step.type, name, ...(diffs !== undefined && { diffs }) });
                },
            });
            return [...planned.values()];
        } finally {
            fs.rmSync(copy, { force: true });
        }
    }

    private async setConfig(stack: Stack, edits: readonly ConfigEdit[]): Promise<void> {
        for (const edit of edits) {
            const isPath = edit.path.length > 1;
            if (typeof edit.value === "object" || edit.path.some((part) => typeof part === "number")) {
                // A structured value goes whole, with its types, as `pulumi config set-all --json` takes it: set
                // leaf by leaf with --path, a string such as an env value "8080" would turn into a number. So does
                // a list element's removal: the list is written without it, as the stack holds it now.
                const [key] = edit.path;
                const current = await this.readConfig();
                const whole = applyEdits(current.config, [edit])[key];
                // A key that holds a secret anywhere stays a secret, whole: its decrypted values never reach the file in plain text.
                const secret = current.secretKeys.includes(key);
                await stack.setAllConfigJson(JSON.stringify({ [`${projectName()}:${key}`]: { value: JSON.stringify(whole), objectValue: whole, secret } }));
            } else if (edit.value === undefined) {
                await stack.removeConfig(pathKey(edit.path), isPath);
            } else {
                await stack.setConfig(pathKey(edit.path), { value: String(edit.value) }, isPath);
            }
        }
    }
}

/** The engine's operations that change an object, as a plan's changes; the rest (same, read, refresh) change none. */
const PLANNED_OPS: Partial<Record<OpType, PlannedChange["op"]>> = { create: "create", update: "update", delete: "delete", replace: "replace", "create-replacement": "replace", "delete-replaced": "replace", import: "create", "import-replacement": "replace" };

/** A structured config value arrives from the CLI as JSON text. */
function parseStructured(value: string): ConfigValue {
    if (!/^\s*[[{]/.test(value)) return value;
    try {
        return JSON.parse(value) as ConfigValue;
    } catch {
        return value;
    }
}

/**
 * The render engine: config lives in `dir`'s stack file, and an update runs the program under the mocks with
 * it, validates every object and writes them to `out`, as `npm run render` does.
 */
export class RenderEngine implements TaggedEngine {
    readonly description: string;
    readonly stackFile: string;
    /** A rehearsal has no backend: its tags are a file beside its lock, read and written as the Pulumi CLI does. */
    readonly tags: StackTags;
    private lastRun?: ProgramRun;

    constructor(
        private readonly dir: string,
        private readonly stackName: string,
        private readonly out: string,
    ) {
        this.description = `render of stack ${stackName} into ${out}`;
        this.stackFile = path.join(dir, `Pulumi.${stackName}.yaml`);
        this.tags = new FileStackTags(path.join(dir, ".rollout", `${stackName}.tags.json`));
    }

    checkWritable(): void {
        checkEditable(this.stackFile, projectName());
    }

    readConfig(): Promise<{ config: StackConfig; secretKeys: readonly string[] }> {
        const { config, secretKeys } = stackFileConfig(this.stackName, this.dir);
        return Promise.resolve({ config: asStackConfig(config), secretKeys });
    }

    /** What the last update applied (for tests that drive traffic from it). */
    get applied(): ProgramRun | undefined {
        return this.lastRun;
    }

    async apply(edits: readonly ConfigEdit[], _message: string, expected: readonly Expectation[] = []): Promise<string[]> {
        this.lastRun ??= await this.up();
        editStackFile(this.stackFile, edits, projectName(), expected);
        const before = this.lastRun;
        this.lastRun = await this.up();
        return changedObjects(before, this.lastRun);
    }

    private async up(): Promise<ProgramRun> {
        const { config, secretKeys } = stackFileConfig(this.stackName, this.dir);
        const run = await runProgramWith(this.stackName, config, secretKeys);
        await writeRendered(run, this.out);
        return run;
    }
}
