// The stack's tags: where a running rollout and the operator commands (`npm run rollout -- status|promote|...`)
// share its state, seen from any shell or CI job logged in to the stack's backend (Pulumi Cloud, and the DIY
// backends since Pulumi 3.211). A tag holds at most 256 characters, so a record larger than that is compressed and
// spread over numbered tags, with a header naming their count and digest, written last: a reader never takes a
// half-written record for a whole one. `pulumi stack tag set` reads every tag and writes them all back, so two
// writers can lose each other's tag: every write is read back, and written again until it reads.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { deflateRawSync, inflateRawSync } from "zlib";

/** One stack's tags, as `pulumi stack tag ls/set/rm` read and write them. */
export interface StackTags {
    /** Where the tags live, for messages. */
    readonly where: string;
    /** How a person removes a record from them by hand (`name` the record's tag), for fixes. */
    removal(name: string): string;
    list(): Promise<Readonly<Record<string, string>>>;
    set(name: string, value: string): Promise<void>;
    remove(name: string): Promise<void>;
}

/** Pulumi's own limits on a tag (pulumi/sdk's ValidateStackTags): a name of 1 to 40 of these characters, a value of 256. */
const TAG_NAME = /^[a-zA-Z0-9\-_.:]{1,40}$/;
export const TAG_VALUE_LIMIT = 256;

export function checkTag(name: string, value: string): void {
    if (!TAG_NAME.test(name)) throw new Error(`stack tag ${JSON.stringify(name)}: a name is 1 to 40 letters, digits, -, _, . or :`);
    // The CLI measures a value in bytes (Go's len), not characters.
    const bytes = Buffer.byteLength(value);
    if (bytes > TAG_VALUE_LIMIT) throw new Error(`stack tag ${name}: its value is ${bytes} bytes, more than the ${TAG_VALUE_LIMIT} a tag holds`);
}

/**
 * Tags kept in a file, for the render engine (a rehearsal has no backend): each set or removal reads the whole
 * map and writes it back, as the Pulumi CLI does, so two processes race here as they do on a real backend.
 */
export class FileStackTags implements StackTags {
    constructor(readonly file: string) {}

    get where(): string {
        return this.file;
    }

    removal(name: string): string {
        return `remove the ${name} entries from ${this.file}, or delete the file`;
    }

    private read(): Record<string, string> {
        let text: string;
        try {
            text = fs.readFileSync(this.file, "utf8");
        } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
            throw error;
        }
        try {
            return JSON.parse(text) as Record<string, string>;
        } catch {
            throw new RecordError(`${this.file} is not the JSON of a stack's tags. Fix: delete it (it holds only the rehearsal's rollout record)`);
        }
    }

    private write(tags: Record<string, string>): void {
        fs.mkdirSync(path.dirname(this.file), { recursive: true });
        const temporary = `${this.file}.${process.pid}.tmp`;
        fs.writeFileSync(temporary, JSON.stringify(tags, null, 2));
        fs.renameSync(temporary, this.file);
    }

    // Promises, as a backend's calls are: a refused tag is a rejection, not a throw.
    list(): Promise<Record<string, string>> {
        return new Promise((resolve) => {
            resolve(this.read());
        });
    }

    set(name: string, value: string): Promise<void> {
        return new Promise((resolve) => {
            checkTag(name, value);
            this.write({ ...this.read(), [name]: value });
            resolve();
        });
    }

    remove(name: string): Promise<void> {
        return new Promise((resolve) => {
            this.write(Object.fromEntries(Object.entries(this.read()).filter(([tag]) => tag !== name)));
            resolve();
        });
    }
}

/** The record's header: `v1 <chunks> <digest>`; its chunks are `<name>.1` to `<name>.<chunks>`. */
const header = (chunks: number, digest: string) => `v1 ${chunks} ${digest}`;
const digestOf = (data: string) => createHash("sha256").update(data).digest("hex").slice(0, 16);

function encode(record: unknown): { head: string; chunks: string[] } {
    const data = deflateRawSync(Buffer.from(JSON.stringify(record))).toString("base64");
    const chunks: string[] = [];
    for (let at = 0; at < data.length; at += TAG_VALUE_LIMIT) chunks.push(data.slice(at, at + TAG_VALUE_LIMIT));
    return { head: header(chunks.length, digestOf(data)), chunks };
}

/** The record in `tags` under `name`: undefined when there is none, "torn" while a write is under way (or was lost). */
function decode(tags: Readonly<Record<string, string>>, name: string): unknown {
    if (!Object.hasOwn(tags, name)) return undefined;
    const head = tags[name];
    const match = /^v1 (\d+) ([0-9a-f]{16})$/.exec(head);
    if (match === null) throw new RecordError(`stack tag ${name} holds ${JSON.stringify(head)}, not a rollout record this program writes`);
    const data = Array.from({ length: Number(match[1]) }, (_, i) => tags[`${name}.${i + 1}`] ?? "").join("");
    if (digestOf(data) !== match[2]) return TORN;
    try {
        return JSON.parse(inflateRawSync(Buffer.from(data, "base64")).toString("utf8")) as unknown;
    } catch (error) {
        throw new RecordError(`the rollout record under stack tag ${name} does not decode (${error instanceof Error ? error.message : String(error)})`);
    }
}

/** A record that cannot be read as this program writes them. */
export class RecordError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "RecordError";
    }
}

const TORN = Symbol("torn");

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the record under `name`, waiting out a write under way; a record that stays torn is an error naming the tags. */
export async function readRecord(tags: StackTags, name: string, attempts = 20): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
        const record = decode(await tags.list(), name);
        if (record !== TORN) return record;
        if (attempt >= attempts) throw new RecordError(`the rollout record in ${tags.where} (tags ${name}, ${name}.1, ...) does not read whole: a write was lost. Fix: wait for the rollout's next update of it; if none comes, ${tags.removal(name)}`);
        await pause(250);
    }
}

/** Writes `record` under `name`: the chunks that differ, then the header, then drops chunks left over; read back until it reads. */
export async function writeRecord(tags: StackTags, name: string, record: unknown, attempts = 5): Promise<void> {
    const { head, chunks } = encode(record);
    for (let attempt = 1; ; attempt++) {
        const current = await tags.list();
        for (const [i, chunk] of chunks.entries()) if (current[`${name}.${i + 1}`] !== chunk) await tags.set(`${name}.${i + 1}`, chunk);
        if (current[name] !== head) await tags.set(name, head);
        for (const stale of Object.keys(current).filter((t) => t.startsWith(`${name}.`) && Number(t.slice(name.length + 1)) > chunks.length)) await tags.remove(stale);
        const after = await tags.list();
        if (after[name] === head && chunks.every((chunk, i) => after[`${name}.${i + 1}`] === chunk)) return;
        // Another writer's read-modify-write put back what it had read: write again.
        if (attempt >= attempts) throw new Error(`the rollout record in ${tags.where} did not read back after ${attempts} writes: another process keeps rewriting the stack's tags`);
    }
}
