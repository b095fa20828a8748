// A rollout's record on a stack, for tests that run the driver: the real channel over tags kept in a temporary file
// (as the render engine keeps them), with what a test reads back.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readRollout, RolloutChannel, RolloutRecord, thisRunner } from "../../rollout/control";
import type { HeldRollout } from "../../rollout/lock";
import { FileStackTags } from "../../rollout/stack-tags";

/** The id of the rollout every test channel's record is of: requests to it carry it. */
export const TEST_ROLLOUT_ID = "20261202T100000Z-00000000";

export interface TestChannel {
    readonly channel: RolloutChannel;
    readonly tags: FileStackTags;
    /** The record as the stack holds it now. */
    readonly record: () => Promise<RolloutRecord | undefined>;
    /** What `resume` would continue from, when the record says held. */
    readonly held: () => Promise<HeldRollout | undefined>;
}

export function testChannel(stack: string, services: readonly string[], steps: readonly number[], log: (line: string) => void = () => undefined): TestChannel {
    const tags = new FileStackTags(path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rollout-tags-")), `${stack}.tags.json`));
    const channel = new RolloutChannel(tags, { v: 1, id: TEST_ROLLOUT_ID, stack, services, phase: "running", step: 1, steps, updatedAt: new Date().toISOString(), runner: thisRunner(), actions: [], evidence: [] }, log);
    const record = () => readRollout(tags);
    return {
        channel,
        tags,
        record,
        held: async () => {
            const r = await record();
            return r?.phase === "held" ? r.resume : undefined;
        },
    };
}
