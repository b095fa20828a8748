// YAML this project writes (rendered objects, stack-file edits) reads the same in every YAML parser: a string
// that a YAML 1.1 reader (PyYAML, and the YAML handling Kubernetes' own tools build on) would resolve, written
// plain, to another type (`on` and `yes` to true, `12:30` to 750, `0777` to 511, `1_000` to 1000) is quoted.
// A YAML 1.2 reader reads the quoted form as the same string.
import { Document, isMap, isScalar, Node, parse, visit } from "yaml";

const verdicts = new Map<string, boolean>();

/** Would a YAML 1.1 reader take `text`, written plain, for anything but that string? */
function misreadInYaml11(text: string): boolean {
    let verdict = verdicts.get(text);
    if (verdict === undefined) {
        try {
            verdict = parse(text, { version: "1.1" }) !== text;
        } catch {
            verdict = true;
        }
        verdicts.set(text, verdict);
    }
    return verdict;
}

/** Quotes every plain string scalar (values and keys) under `node` that a YAML 1.1 reader would misread. */
export function quoteForYaml11(node: Node | Document): void {
    const visitor = {
        Scalar(_key: unknown, scalar: { value: unknown; type?: string }) {
            if (typeof scalar.value === "string" && (scalar.type === undefined || scalar.type === "PLAIN") && misreadInYaml11(scalar.value)) scalar.type = "QUOTE_DOUBLE";
        },
    };
    visit(node, visitor);
}

/** Quotes the keys along `path` in `doc` (the keys an edit may have created) that a YAML 1.1 reader would misread. */
export function quotePathKeys(doc: Document, path: readonly (string | number)[]): void {
    for (let i = 0; i < path.length; i++) {
        const parent: unknown = i === 0 ? doc.contents : doc.getIn(path.slice(0, i), true);
        if (!isMap(parent)) continue;
        const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === path[i]);
        if (pair === undefined) continue;
        const key = isScalar(pair.key) ? pair.key : doc.createNode(pair.key);
        quoteForYaml11(key);
        pair.key = key;
    }
}

/** `value` as YAML text that every parser reads the same. */
export function yamlText(value: unknown): string {
    const doc = new Document(value);
    quoteForYaml11(doc);
    return doc.toString();
}
