// The driver talks to a stack through one interface: read its config, apply config edits and bring the stack
// up to them. Two implementations: Pulumi's Automation API (a real `pulumi up` of this project and stack), and
// a render engine that runs the program under the mocks, writes the render and edits the stack file exactly
// as `pulumi config set --path` would (for tests and rehearsals without a cluster).
import * as fs from "fs";
import * as path from "path";
import { parseDocument } from "yaml";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { ProgramRun, projectName, runProgramWith, stackConfig } from "../scripts/mock-program";
import { writeRendered } from "../scripts/render";
import { quotePathKeys, quoteForYaml11 } from "../scripts/yaml-text";
import { applyEdits, asStackConfig, ConfigEdit, ConfigValue, pathKey, StackConfig, storedValue } from "./config-edit";
import { changedObjects } from "./diff";
import { SetupError } from "./lock";

export interface StackEngine {
    /** For messages: which engine and stack. */
    readonly description: string;
    /** The stack file that holds the config, which `--commit` commits. */
    readonly stackFile: string;
    readConfig(): Promise<{ readonly config: StackConfig; readonly secretKeys: readonly string[] }>;
    /** Sets the config as the edits say, then updates the stack to it; returns a line per object changed. */
    apply(edits: readonly ConfigEdit[], message: string): Promise<readonly string[]>;
}

/** `pulumi up` through the Automation API, on this project (its Pulumi.yaml's folder) and stack. */
export class AutomationEngine implements StackEngine {
    readonly description: string;
    readonly stackFile: string;
    private stack?: Stack;

    constructor(
        private readonly dir: string,
        private readonly stackName: string,
        private readonly log: (line: string) => void,
    ) {
        this.description = `pulumi (Automation API) stack ${stackName}`;
        this.stackFile = path.join(dir, `Pulumi.${stackName}.yaml`);
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

    async readConfig(): Promise<{ config: StackConfig; secretKeys: string[] }> {
        const all = await (await this.selected()).getAllConfig();
        const prefix = `${projectName()}:`;
        const config: Record<string, ConfigValue> = {};
        const secretKeys: string[] = [];
        for (const [key, { value, secret }] of Object.entries(all)) {
            if (!key.startsWith(prefix)) continue;
            const name = key.slice(prefix.length);
            config[name] = parseStructured(value);
            if (secret === true) secretKeys.push(name);
        }
        return { config, secretKeys };
    }

    async apply(edits: readonly ConfigEdit[], message: string): Promise<string[]> {
        const stack = await this.selected();
        for (const edit of edits) {
            const isPath = edit.path.length > 1;
            if (edit.value === undefined) {
                await stack.removeConfig(pathKey(edit.path), isPath);
            } else if (typeof edit.value === "object") {
                // A structured value goes whole, with its types, as `pulumi config set-all --json` takes it: set
                // leaf by leaf with --path, a string such as an env value "8080" would turn into a number.
                const [key] = edit.path;
                const whole = applyEdits((await this.readConfig()).config, [edit])[key];
                await stack.setAllConfigJson(JSON.stringify({ [`${projectName()}:${key}`]: { value: JSON.stringify(whole), objectValue: whole, secret: false } }));
            } else {
                await stack.setConfig(pathKey(edit.path), { value: String(edit.value) }, isPath);
            }
        }
        const result = await stack.up({ message, onOutput: (out) => {
                this.log(out.trimEnd());
            },
        });
        return Object.entries(result.summary.resourceChanges ?? {})
            .filter(([op]) => op !== "same")
            .map(([op, count]) => `${op}: ${count}`);
    }
}

/** A structured config value arrives from the CLI as JSON text. */
function parseStructured(value: string): ConfigValue {
    if (!/^\s*[[{]/.test(value)) return value;
    try {
        return JSON.parse(value) as ConfigValue;
    } catch {
        return value;
    }
}

/** Edits a stack file in place as `pulumi config set --path` / `pulumi config rm --path` would, keeping its comments. */
export function editStackFile(file: string, edits: readonly ConfigEdit[]): void {
    const doc = parseDocument(fs.readFileSync(file, "utf8"));
    const project = projectName();
    for (const edit of edits) {
        const [key, ...rest] = edit.path;
        const at = ["config", `${project}:${key}`, ...rest];
        if (edit.value === undefined) {
            doc.deleteIn(at);
        } else {
            const node = doc.createNode(storedValue(edit.path, edit.value));
            // Only what the edit writes: the rest of the file stays as its authors wrote it.
            quoteForYaml11(node);
            doc.setIn(at, node);
            quotePathKeys(doc, at);
        }
    }
    fs.writeFileSync(file, doc.toString());
}

/**
 * The render engine: config lives in `dir`'s stack file, and an update runs the program under the mocks with
 * it, validates every object and writes them to `out`, as `npm run render` does.
 */
export class RenderEngine implements StackEngine {
    readonly description: string;
    readonly stackFile: string;
    private lastRun?: ProgramRun;

    constructor(
        private readonly dir: string,
        private readonly stackName: string,
        private readonly out: string,
    ) {
        this.description = `render of stack ${stackName} into ${out}`;
        this.stackFile = path.join(dir, `Pulumi.${stackName}.yaml`);
    }

    readConfig(): Promise<{ config: StackConfig; secretKeys: string[] }> {
        return Promise.resolve({ config: asStackConfig(stackConfig(this.stackName, this.dir)), secretKeys: [] });
    }

    /** What the last update applied (for tests that drive traffic from it). */
    get applied(): ProgramRun | undefined {
        return this.lastRun;
    }

    async apply(edits: readonly ConfigEdit[]): Promise<string[]> {
        this.lastRun ??= await this.up();
        editStackFile(this.stackFile, edits);
        const before = this.lastRun;
        this.lastRun = await this.up();
        return changedObjects(before, this.lastRun);
    }

    private async up(): Promise<ProgramRun> {
        const run = await runProgramWith(this.stackName, stackConfig(this.stackName, this.dir));
        await writeRendered(run, this.out);
        return run;
    }
}
