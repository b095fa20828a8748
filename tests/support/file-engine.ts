// A rollout engine over a real stack file, without the program's run: each update edits the file exactly as the
// render engine does (editStackFile: by path, atomic, checked), then checks the config as the program does before
// creating anything. Hooks let a test act between the driver's operations (another person's edit, a full disk).
import { ConfigEdit, configSource, Expectation, StackConfig } from "../../rollout/config-edit";
import type { StackEngine } from "../../rollout/engines";
import { checkedPlan } from "../../components/specs/checked-plan";
import { checkEditable, editStackFile, FileWriter, readStackFile } from "../../lib/stack-file";

export const PROJECT = "istio-progressive-delivery";

export class FileEngine implements StackEngine {
    readonly description = "stack file";
    /** Every config the file held right after one of the driver's updates wrote it. */
    readonly written: StackConfig[] = [];
    private operations = 0;

    constructor(
        readonly stackFile: string,
        /** Called before each read or update with its index: a test's chance to change the file meanwhile. */
        private readonly between: (operation: number) => void = () => undefined,
        /** How the next write puts its bytes on disk (a full disk fails part-way). */
        private readonly writer: (operation: number) => FileWriter | undefined = () => undefined,
    ) {}

    checkWritable(): void {
        checkEditable(this.stackFile, PROJECT);
    }

    readConfig(): Promise<{ config: StackConfig; secretKeys: readonly string[] }> {
        this.between(this.operations++);
        return Promise.resolve(readStackFile(this.stackFile, PROJECT));
    }

    apply(edits: readonly ConfigEdit[], _message: string, expected: readonly Expectation[] = []): Promise<string[]> {
        const operation = this.operations++;
        this.between(operation);
        const config = editStackFile(this.stackFile, edits, PROJECT, expected, this.writer(operation));
        this.written.push(config);
        // The update: what `pulumi up` would refuse before creating anything, it refuses here.
        checkedPlan(configSource(config, readStackFile(this.stackFile, PROJECT).secretKeys));
        return Promise.resolve([]);
    }
}
