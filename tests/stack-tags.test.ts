// The rollout's record in a stack's tags: Pulumi's limits on a tag, a record spread over several, a reader that
// never takes a half-written record for a whole one, and a writer that survives another's read-modify-write.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { checkTag, FileStackTags, readRecord, StackTags, TAG_VALUE_LIMIT, writeRecord } from "../rollout/stack-tags";

const tagsFile = () => new FileStackTags(path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stack-tags-")), "t.tags.json"));
/** Text that does not compress: a record this size needs several tags. */
const noise = (length: number) => Array.from({ length }, (_, i) => ((i * 7919) % 9973).toString(36)).join("");
const big = { services: ["user-service"], note: noise(900) };

describe("stack tags: the rollout's record", () => {
    it("enforces Pulumi's limits on a tag: names of 1 to 40 of its characters, values of 256", async () => {
        assert.throws(() => { checkTag("rollout state", "x"); }, /a name is 1 to 40 letters, digits/);
        assert.throws(() => { checkTag("r".repeat(41), "x"); }, /a name is 1 to 40/);
        assert.throws(() => { checkTag("rollout.state", "x".repeat(257)); }, /its value is 257 bytes, more than the 256/);
        await assert.rejects(tagsFile().set("rollout.state", "x".repeat(257)), /more than the 256/);
    });

    it("spreads a large record over tags that each fit, and reads it back whole", async () => {
        const tags = tagsFile();
        await writeRecord(tags, "rollout.state", big);
        const all = await tags.list();
        const chunks = Object.keys(all).filter((t) => t.startsWith("rollout.state."));
        assert.ok(chunks.length >= 2, `${chunks.length} chunks`);
        for (const [name, value] of Object.entries(all)) checkTag(name, value);
        assert.deepEqual(await readRecord(tags, "rollout.state"), big);
        // A smaller record later: the chunks it no longer needs are removed.
        await writeRecord(tags, "rollout.state", { services: ["user-service"] });
        assert.deepEqual(Object.keys(await tags.list()).sort(), ["rollout.state", "rollout.state.1"]);
        assert.deepEqual(await readRecord(tags, "rollout.state"), { services: ["user-service"] });
    });

    it("never reads a half-written record: a header whose chunks do not match is waited out, then named", async () => {
        const tags = tagsFile();
        await writeRecord(tags, "rollout.state", big);
        // Another record's first chunk, under the first record's header: as a reader sees a write under way.
        await tags.set("rollout.state.1", "A".repeat(TAG_VALUE_LIMIT));
        await assert.rejects(readRecord(tags, "rollout.state", 2), /does not read whole: a write was lost\. Fix: wait for the rollout.s next update of it; if none comes, remove the rollout\.state entries from .*t\.tags\.json/);
        assert.equal(await readRecord(tags, "rollout.none"), undefined);
    });

    it("writes again when another writer's read-modify-write puts back the tags it had read", async () => {
        const inner = tagsFile();
        await inner.set("rollout.request", "{}");
        let raced = false;
        // Another process read every tag before this write began, and writes them all back after its first set.
        const stale = await inner.list();
        const racing: StackTags = {
            where: inner.where,
            removal: (name) => inner.removal(name),
            list: () => inner.list(),
            set: async (name, value) => {
                await inner.set(name, value);
                if (!raced) {
                    raced = true;
                    for (const tag of Object.keys(await inner.list())) if (!(tag in stale)) await inner.remove(tag);
                }
            },
            remove: (name) => inner.remove(name),
        };
        await writeRecord(racing, "rollout.state", big);
        assert.ok(raced);
        assert.deepEqual(await readRecord(inner, "rollout.state"), big);
        assert.equal((await inner.list())["rollout.request"], "{}", "the other writer's tag is kept");
    });
});
