// A rollout's record on a stack, for tests that run the driver: the real channel over tags kept in a temporary file
// (as the render engine keeps them), with what a test reads back.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { OperatorRequest, readRollout, REQUEST_TAG, requestTagValue, RolloutChannel, RolloutRecord, thisRunner } from "../../rollout/control";
import type { Clock } from "../../rollout/driver";
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

/** An operator's request to the test channel's rollout, as the command writes it. */
export const operatorRequest = (action: OperatorRequest["action"], actor: string, reason: string, full = false): OperatorRequest => ({ id: `${action}${full ? "-full" : ""}-${actor}`, rollout: TEST_ROLLOUT_ID, action, ...(full && { full }), actor, reason, at: "2026-12-02T10:00:00Z" });

/**
 * A fake clock (time passes only when the driver sleeps, from `startMs`) that, as the driver's sleep numbered `at`
 * begins, calls `watch`, then puts the request due on the stack's tags, as another process would.
 */
export function operatedClock(stack: TestChannel, script: readonly { readonly at: number; readonly request: OperatorRequest }[], options: { readonly startMs?: number; readonly watch?: () => Promise<void> } = {}): Clock & { sleeps: number } {
    let now = options.startMs ?? 0;
    const clock = {
        sleeps: 0,
        now: () => now,
        sleep: async (ms: number) => {
            clock.sleeps++;
            await options.watch?.();
            const due = script.find((s) => s.at === clock.sleeps);
            if (due !== undefined) await stack.tags.set(REQUEST_TAG, requestTagValue(due.request));
            now += ms;
            return true;
        },
    };
    return clock;
}
