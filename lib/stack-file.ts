// A stack file as Pulumi reads it, and the rollout's edits to it.
// Reading checks the YAML (syntax, duplicate keys, aliases that expand past a bound) and the shape Pulumi
// requires: `config:` a mapping of `<namespace>:<key>` keys. It returns this project's keys, with each `secure:`
// value (which only the Pulumi CLI can decrypt) as a secret whose value reads "[secret]".
// Writing edits by path, so every other key, comment and line stays as its authors wrote it. It writes a
// temporary file beside the stack file, checks that it reads back as intended, then renames it over the old one:
// a write that fails at any point leaves the previous file whole.
import * as fs from "fs";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import { Document, isMap, isScalar, LineCounter, Node, parseDocument, visit } from "yaml";
import { didYouMean, isRecord, SECRET_VALUE } from "../components/config/config-reader";
import { quotePathKeys, quoteForYaml11 } from "./yaml-text";
import { applyEdits, asStackConfig, checkExpected, ConfigEdit, ConfigValue, Expectation, pathKey, StackConfig, storedValue, valueAt } from "../rollout/config-edit";

/** A stack file that is not what Pulumi reads: where, what, and how to fix it. */
export class StackFileError extends Error {
    constructor(
        readonly file: string,
        readonly line: number,
        readonly column: number,
        readonly problem: string,
        readonly fix: string,
    ) {
        super(`${file} line ${line}, column ${column}: ${problem}.\n    Fix: ${fix}`);
        this.name = "StackFileError";
    }
}

/** The stack file could not be written; the file is as it was before the write. */
export class StackFileWriteError extends Error {
    constructor(
        readonly file: string,
        readonly reason: string,
    ) {
        super(`${file} could not be written (${reason}); it is unchanged`);
        this.name = "StackFileWriteError";
    }
}

const YAML_FIXES: Readonly<Record<string, string>> = {
    DUPLICATE_KEY: "a key may appear once in a map; delete one of the two, or merge them",
    TAB_AS_INDENT: "indent with spaces; YAML does not allow tabs",
};

/** Namespaces of config keys besides the project's: the Kubernetes provider's, and Pulumi's own (pulumi:tags). */
const OTHER_NAMESPACES = ["kubernetes", "pulumi"];

/** The keys Pulumi reads at the top of a stack file. */
const STACK_FILE_KEYS = ["config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"];

/** Aliases a stack file may expand: plenty for shared blocks, far too few for an alias bomb. */
const MAX_ALIAS_EXPANSIONS = 100;

interface CheckedDocument {
    readonly doc: Document;
    readonly at: (node: Node | undefined) => { readonly line: number; readonly col: number };
}

function checkedDocument(file: string, text: string): CheckedDocument {
    const name = path.basename(file);
    const lineCounter = new LineCounter();
    // merge: `<<: *base` merges a mapping, as the Pulumi CLI's YAML reader (go-yaml v3) does.
    const doc = parseDocument(text, { uniqueKeys: true, merge: true, lineCounter });
    const at = (node: Node | undefined) => (node?.range === undefined || node.range === null ? { line: 1, col: 1 } : lineCounter.linePos(node.range[0]));
    if (doc.errors.length > 0) {
        const error = doc.errors[0];
        const position = error.linePos?.[0] ?? { line: 1, col: 1 };
        const duplicate = error.code === "DUPLICATE_KEY" ? /^\s*(?:-\s+)?("[^"]*"|'[^']*'|\S.*?)\s*:(?:\s|$)/.exec(text.split("\n")[position.line - 1] ?? "")?.[1] : undefined;
        const problem = error.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "") + (duplicate === undefined ? "" : ` (${duplicate} is there twice)`);
        const fix = YAML_FIXES[error.code] ?? "line the keys of one map up under each other, indent each value under its key, and close every [ and {";
        throw new StackFileError(name, position.line, position.col, problem, fix);
    }
    try {
        doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS });
    } catch {
        const first = firstAlias(doc);
        const { line, col } = at(first);
        throw new StackFileError(name, line, col, `its aliases expand to more than ${MAX_ALIAS_EXPANSIONS} copies (an alias bomb, or a very deep chain of aliases)`, "write the values out in full instead of as aliases (*name) of anchors (&name)");
    }
    return { doc, at };
}

function firstAlias(doc: Document): Node | undefined {
    let found: Node | undefined;
    visit(doc, {
        Alias(_key, node) {
            found = node;
            return visit.BREAK;
        },
    });
    return found;
}

const isSecure = (value: unknown): boolean => isRecord(value) && Object.keys(value).length === 1 && typeof value.secure === "string";

/** A value with each `secure:` value inside it replaced by the placeholder; `found` is set when there was one. */
function withSecretsHidden(value: unknown, found: { secret: boolean }): unknown {
    if (isSecure(value)) {
        found.secret = true;
        return SECRET_VALUE;
    }
    if (Array.isArray(value)) return value.map((v) => withSecretsHidden(v, found));
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withSecretsHidden(v, found)]));
    return value;
}

export interface StackFileConfig {
    /** This project's keys, without the project prefix. */
    readonly config: StackConfig;
    /** Keys holding a `secure:` value (at the top or inside): Pulumi treats the whole key as a secret. */
    readonly secretKeys: readonly string[];
}

/** The config of a checked stack document: its shape checked as Pulumi checks it, keys of another namespace refused. */
function configOf(file: string, checked: CheckedDocument, project: string): StackFileConfig {
    const name = path.basename(file);
    const { doc, at } = checked;
    if (doc.contents !== null && !isMap(doc.contents)) {
        const { line, col } = at(doc.contents);
        throw new StackFileError(name, line, col, "the file is not a mapping of keys (config:, and optionally encryptionsalt:, secretsprovider:, environment:)", "start the file with config: and indent the stack's keys under it, each as <project>:<key>: value");
    }
    for (const pair of doc.contents?.items ?? []) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (STACK_FILE_KEYS.includes(key)) continue;
        const { line, col } = at(pair.key as Node);
        throw new StackFileError(name, line, col, `${JSON.stringify(key)} is not a key of a Pulumi stack file${didYouMean(key, STACK_FILE_KEYS)} (${STACK_FILE_KEYS.join(", ")}), so nothing under it would be read`, key.toLowerCase().startsWith("conf") ? "rename it config:" : "delete it, or move its keys under config:");
    }
    const configNode: unknown = doc.contents === null ? undefined : doc.contents.get("config", true);
    if (configNode === undefined || (isScalar(configNode) && configNode.value === null)) return { config: {}, secretKeys: [] };
    if (!isMap(configNode)) {
        const { line, col } = at(configNode as Node);
        throw new StackFileError(name, line, col, "config: is not a mapping of keys to values (Pulumi reads config as <namespace>:<key>: value pairs)", `indent the keys under config: as ${project}:<key>: value, without a leading "- "`);
    }
    const config: Record<string, ConfigValue> = {};
    const secretKeys: string[] = [];
    for (const pair of configNode.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const { line, col } = at(keyNode ?? undefined);
        const separator = key.indexOf(":");
        if (separator <= 0) {
            throw new StackFileError(name, line, col, `config key ${JSON.stringify(key)} has no namespace, and Pulumi reads config keys as <namespace>:<key>`, `rename it ${project}:${key}`);
        }
        const namespace = key.slice(0, separator);
        if (namespace !== project) {
            if (OTHER_NAMESPACES.includes(namespace)) continue;
            throw new StackFileError(name, line, col, `config key ${JSON.stringify(key)} belongs to ${JSON.stringify(namespace)}${didYouMean(namespace, [project])}, and this program reads its own keys (${project}:<key>) and the Kubernetes provider's (kubernetes:<key>)`, `rename it ${project}:${key.slice(separator + 1)}, or delete it`);
        }
        const raw: unknown = (pair.value as Node | null)?.toJS(doc, { maxAliasCount: MAX_ALIAS_EXPANSIONS }) ?? null;
        if (raw === null) throw new StackFileError(name, line, col, `config key ${JSON.stringify(key)} has no value (YAML reads an empty value as null)`, `give it a value, or delete the line (pulumi config rm ${key.slice(separator + 1)})`);
        const found = { secret: false };
        const value = withSecretsHidden(raw, found);
        const short = key.slice(separator + 1);
        // defineProperty: a key named __proto__ is a key like any other (refused as unknown), not the prototype.
        Object.defineProperty(config, short, { value, enumerable: true, writable: true, configurable: true });
        if (found.secret) secretKeys.push(short);
    }
    try {
        return { config: asStackConfig(config), secretKeys };
    } catch (error) {
        throw new StackFileError(name, 1, 1, error instanceof Error ? error.message : String(error), "give the key a value, or delete it");
    }
}

/** Reads a stack file's config for `project`: a StackFileError (file, line, problem, fix) for anything Pulumi would refuse. */
export function readStackFile(file: string, project: string): StackFileConfig {
    return configOf(file, checkedDocument(file, fs.readFileSync(file, "utf8")), project);
}

/** Parses a stack file, turning YAML's errors into a StackFileError that names the file, the line and a fix. */
export function parseStackFile(file: string): unknown {
    return checkedDocument(file, fs.readFileSync(file, "utf8")).doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }) as unknown;
}

const errorText = (error: unknown) => (error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error));

/** Writes all of `text` to an open file; a test may pass one that fails part-way, as a full disk does. */
export type FileWriter = (fd: number, text: string) => void;
const writeFully: FileWriter = (fd, text) => { fs.writeFileSync(fd, text); };

/**
 * The file's mode when no one may write it, as octal text; undefined when it is writable. Read from the mode, not
 * from access(2): root may write any file, and a file made read-only says its owner wants it left alone.
 */
export function readOnlyMode(file: string): string | undefined {
    const mode = fs.statSync(file).mode;
    return (mode & 0o222) === 0 ? (mode & 0o777).toString(8) : undefined;
}

/** The file read and checked for editing: readable, writable (its mode too: read-only is respected, even by root), no alias. */
function openForEdit(file: string, project: string): { readonly text: string; readonly checked: CheckedDocument; readonly before: StackFileConfig } {
    const name = path.basename(file);
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
        fs.accessSync(file, fs.constants.W_OK);
    } catch (error) {
        throw new StackFileWriteError(name, `${errorText(error)}: the rollout needs to read and write it`);
    }
    const readOnly = readOnlyMode(file);
    if (readOnly !== undefined) throw new StackFileWriteError(name, `it is read-only (mode ${readOnly}), and the rollout writes each step to it; make it writable (chmod u+w ${name}) to roll out`);
    const checked = checkedDocument(file, text);
    const before = configOf(file, checked, project);
    const alias = firstAlias(checked.doc);
    if (alias !== undefined) {
        const { line, col } = checked.at(alias);
        throw new StackFileError(name, line, col, "the file holds an alias (*name): the rollout edits config by path, and an alias makes one value stand for two keys, so an edit of one could change the other", "write the aliased value out in full where the alias stands");
    }
    return { text, checked, before };
}

/** Throws what editStackFile would refuse, before a rollout starts: the file unreadable, read-only, malformed or aliased. */
export function checkEditable(file: string, project: string): void {
    openForEdit(file, project);
}

/**
 * Edits a stack file in place as `pulumi config set --path` / `pulumi config rm --path` would, keeping its comments
 * and every key the edits do not name; returns the config it now holds. Refuses (StackFileError) a file that no
 * longer reads, one with an alias (an edit of one copy would change another key), and an edit that would reach into
 * a secure value; (ChangedUnderRollout) a file whose `expected` keys hold other values. Throws StackFileWriteError,
 * with the file unchanged, when the write fails.
 */
/** How the YAML writer lays the file out here: a flow collection stays on one line however long (it folds at 80 by default, where the file rarely does). */
const WRITER = { lineWidth: 0 } as const;

/** Refuses an edit into a `secure:` value: only the Pulumi CLI can encrypt it. */
function checkNotSecure(name: string, before: StackFileConfig, edits: readonly ConfigEdit[]): void {
    for (const edit of edits) {
        for (let i = 1; i <= edit.path.length; i++) {
            if (valueAt(before.config, edit.path.slice(0, i)) === SECRET_VALUE && before.secretKeys.includes(edit.path[0])) {
                throw new StackFileError(name, 1, 1, `${pathKey(edit.path)} is a secure value, encrypted by the Pulumi CLI, which the rollout does not write`, `set it in plain text (pulumi config set --path '${pathKey(edit.path.slice(0, i))}' <value>), or leave it out of the rollout`);
            }
        }
    }
}

/** The edits, by path, into the parsed file: each value stored as `pulumi config set --path` stores it. */
function editDocument(doc: CheckedDocument["doc"], edits: readonly ConfigEdit[], project: string): void {
    for (const edit of edits) {
        const [key, ...rest] = edit.path;
        const at = ["config", `${project}:${key}`, ...rest];
        if (edit.value === undefined) {
            doc.deleteIn(at);
        } else {
            const node = doc.createNode(storedValue(edit.path, edit.value));
            // A comment on the value it replaces stays with the line.
            const old = doc.getIn(at, true);
            if (isScalar(old) && isScalar(node) && old.comment !== undefined) node.comment = old.comment;
            // Only what the edit writes: the rest of the file stays as its authors wrote it.
            quoteForYaml11(node);
            doc.setIn(at, node);
            quotePathKeys(doc, at);
        }
    }
}

/**
 * The stack file with the edits, laid out by the YAML writer, written to `copy`: what a preview reads as its
 * --config-file, so the stack's own file is never touched by a preview.
 */
export function writeEditedCopy(file: string, edits: readonly ConfigEdit[], project: string, copy: string): void {
    const { checked, before } = openForEdit(file, project);
    checkNotSecure(path.basename(file), before, edits);
    editDocument(checked.doc, edits, project);
    fs.writeFileSync(copy, checked.doc.toString(WRITER), { mode: 0o600 });
}

export function editStackFile(file: string, edits: readonly ConfigEdit[], project: string, expected: readonly Expectation[] = [], write: FileWriter = writeFully): StackConfig {
    const name = path.basename(file);
    const { text, checked, before } = openForEdit(file, project);
    checkExpected(before.config, expected);
    checkNotSecure(name, before, edits);
    const { doc } = checked;
    // The file as the YAML writer would lay it out unedited: what differs from the file itself is formatting.
    const base = doc.toString(WRITER);
    editDocument(doc, edits, project);
    const intended = applyEdits(before.config, edits);
    // The whole file as intended, every key of every namespace: what the written text must read back as.
    const wholeFile = asPlain(doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }));
    const readsAsIntended = (written: string): boolean => {
        const reread = parseDocument(written, { uniqueKeys: true, merge: true });
        return reread.errors.length === 0 && isDeepStrictEqual(asPlain(reread.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS })), wholeFile) && isDeepStrictEqual(asPlain(configOf(file, checkedDocument(file, written), project).config), asPlain(intended));
    };
    // The edits in the file's own formatting, only the lines of the keys they set changed; where that cannot be done
    // (an edit inside a line laid out otherwise than the YAML writer would, such as a one-line flow mapping), refused:
    // a reformatted file would bury the step in noise in review, and commit it.
    const merged = keepFormatting(text, base, doc.toString(WRITER));
    if (typeof merged !== "string" || !readsAsIntended(merged)) {
        const line = typeof merged === "string" ? 1 : merged.line;
        const keys = [...new Set(edits.map((e) => pathKey(e.path)))].join(", ");
        throw new StackFileError(name, line, 1, `setting ${keys} would reformat lines around it that the rollout does not own (a flow mapping or list laid out on one line, or an unusual indentation)`, `lay that part of the file out in block style, one key per line (as pulumi config set writes it), or set ${keys} by hand`);
    }
    writeChecked(file, text, merged, write, readsAsIntended);
    return intended;
}

/** Line-index pairs of a longest common subsequence of lines, lines compared by `key`: where `a` and `b` agree, in order. */
function commonLines(a: readonly string[], b: readonly string[], key: (line: string) => string = (line) => line): [number, number][] {
    const [ka, kb] = [a.map(key), b.map(key)];
    const lengths = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
    for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lengths[i][j] = ka[i] === kb[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    const pairs: [number, number][] = [];
    for (let i = 0, j = 0; i < a.length && j < b.length; ) {
        if (ka[i] === kb[j]) pairs.push([i++, j++]);
        else if (lengths[i + 1][j] >= lengths[i][j + 1]) i++;
        else j++;
    }
    return pairs;
}

/** A line without its whitespace: the file's line and the writer's layout of it agree on this however each spaces it. */
const unspaced = (line: string) => line.replace(/\s+/g, "");
const indentOf = (line: string) => /^ */.exec(line)?.[0].length ?? 0;
const sameLines = (x: readonly string[], y: readonly string[], key: (line: string) => string = (line) => line) => x.length === y.length && x.every((line, i) => key(line) === key(y[i]));

/**
 * The edits as a change to the file's own text, by a three-way merge of lines: `base` is the file as the YAML
 * writer lays it out, `edited` the same with the edits. A line of the file pairs with the writer's line that differs
 * from it only in spacing. Between lines all three share, a stretch the edits did not change is the file's own; a
 * stretch they changed is the edited lines, indented as the file indents (4 spaces where it uses 4), where the file
 * has that stretch as the writer would but for spacing, or the file's own lines with the edited lines added around
 * them where the edits only add (a key after a one-line flow list). Otherwise the edits meet the file's own layout
 * (inside a flow mapping laid out on one line the writer would break), and no merge keeps it: the line where they
 * meet. So only the lines of the keys the edits set change, however the authors formatted the rest.
 */
function keepFormatting(original: string, base: string, edited: string): string | { readonly line: number } {
    // A file saved with Windows line ends keeps them.
    const eol = original.includes("\r\n") ? "\r\n" : "\n";
    // The writer ends its text with a line end; a file without one is merged as if it had it, and keeps none.
    const finalEol = original.endsWith(eol);
    const [o, b, e] = [(finalEol ? original : `${original}${eol}`).split(eol), base.split("\n"), edited.split("\n")];
    const baseToOriginal = commonLines(b, o, unspaced);
    const inOriginal = new Map(baseToOriginal);
    const inEdited = new Map(commonLines(b, e));
    // The file's indentation for each of the writer's: 2 to 4, 4 to 8 in a file indented by 4.
    const indents = new Map(baseToOriginal.map(([bi, oi]) => [indentOf(b[bi]), indentOf(o[oi])]));
    const scale = (indents.get(2) ?? 2) / 2;
    const reindent = (line: string) => {
        const indent = indentOf(line);
        return " ".repeat(indents.get(indent) ?? indent * scale) + line.slice(indent);
    };
    const mergeStretch = (oc: readonly string[], bc: readonly string[], ec: readonly string[]): readonly string[] | undefined => {
        if (sameLines(ec, bc)) return oc;
        if (sameLines(oc, bc, unspaced)) return ec.map(reindent);
        for (let start = 0; bc.length > 0 && start + bc.length <= ec.length; start++) {
            if (sameLines(ec.slice(start, start + bc.length), bc)) return [...ec.slice(0, start).map(reindent), ...oc, ...ec.slice(start + bc.length).map(reindent)];
        }
        return undefined;
    };
    const anchors = b.map((_, i) => i).filter((i) => inOriginal.has(i) && inEdited.has(i));
    const out: string[] = [];
    let [bi, oi, ei] = [0, 0, 0];
    for (const anchor of [...anchors, b.length]) {
        const [oNext, eNext] = anchor === b.length ? [o.length, e.length] : [inOriginal.get(anchor) ?? 0, inEdited.get(anchor) ?? 0];
        const stretch = mergeStretch(o.slice(oi, oNext), b.slice(bi, anchor), e.slice(ei, eNext));
        if (stretch === undefined) return { line: oi + 1 };
        out.push(...stretch);
        if (anchor < b.length) out.push(o[oNext]);
        [bi, oi, ei] = [anchor + 1, oNext + 1, eNext + 1];
    }
    const merged = out.join(eol);
    return finalEol || !merged.endsWith(eol) ? merged : merged.slice(0, -eol.length);
}

/** Plain JSON data, so objects built by spreading and objects read from YAML compare equal. */
const asPlain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** Writes `text` to a temporary file beside `file`, checks it reads back as intended, and renames it over `file`. */
function writeChecked(file: string, original: string, text: string, write: FileWriter, readsAsIntended: (written: string) => boolean): void {
    const name = path.basename(file);
    const temporary = path.join(path.dirname(file), `.${name}.${process.pid}.tmp`);
    try {
        const mode = fs.statSync(file).mode & 0o777;
        const fd = fs.openSync(temporary, "w", mode);
        try {
            write(fd, text);
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        if (!readsAsIntended(fs.readFileSync(temporary, "utf8"))) throw new Error("the written file does not read back as the edits intended");
        // Someone else's edit since the file was read would be lost under the rename: it wins, and nothing is written.
        if (fs.readFileSync(file, "utf8") !== original) throw new Error("the file changed while the rollout was writing it; run the rollout again once it is saved");
        fs.renameSync(temporary, file);
    } catch (error) {
        fs.rmSync(temporary, { force: true });
        throw new StackFileWriteError(name, errorText(error));
    }
}

