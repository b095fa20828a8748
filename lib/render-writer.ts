// What `npm run render` writes and the rollout's render engine writes after each update: one YAML file per
// Kubernetes object and one per Helm release, every object checked against its schema first, secrets redacted.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { isRecord } from "../components/config/config-reader";
import { PROJECT_ROOT, ProgramRun } from "./mock-program";
import { ObjectRef, validateObjects } from "./validate";
import { yamlText } from "./yaml-text";

/** The file render leaves in its output folder, so that a later render may replace that folder and no other. */
export const RENDER_MARKER = ".istio-delivery-render";

const real = (dir: string) => (fs.existsSync(dir) ? fs.realpathSync(dir) : path.resolve(dir));

/** Why render may not write to `out`, or undefined if it may: it replaces the folder whole. */
export function outDirRefusal(out: string): string | undefined {
    const target = real(out);
    const fromTarget = path.relative(target, real(PROJECT_ROOT));
    if (fromTarget === "" || (!fromTarget.startsWith("..") && !path.isAbsolute(fromTarget))) {
        return `--out ${JSON.stringify(out)} is the repository or a folder holding it (${PROJECT_ROOT}); render replaces its output folder whole. Fix: --out rendered/<stack>, or leave --out out`;
    }
    if (!fs.existsSync(target)) return undefined;
    if (!fs.statSync(target).isDirectory()) return `--out ${JSON.stringify(out)} is a file, not a folder. Fix: name a new folder, such as --out rendered/<stack>`;
    const entries = fs.readdirSync(target);
    if (entries.length > 0 && !entries.includes(RENDER_MARKER)) {
        return `--out ${JSON.stringify(out)} holds ${entries.length} entr${entries.length === 1 ? "y" : "ies"} that no render wrote (no ${RENDER_MARKER} file); render replaces its output folder whole. Fix: name a new or empty folder, or an earlier render's`;
    }
    return undefined;
}

/** File systems allow 255 bytes a name; longer object names are cut and keep a hash of the whole, so they stay unique and stable. */
const MAX_FILE_NAME = 120;

export function fileName(...parts: string[]): string {
    const base = parts.join("-").toLowerCase().replace(/[^a-z0-9.-]+/g, "-");
    if (base.length + ".yaml".length <= MAX_FILE_NAME) return `${base}.yaml`;
    const hash = createHash("sha256").update(parts.join("/")).digest("hex").slice(0, 12);
    return `${base.slice(0, MAX_FILE_NAME - ".yaml".length - hash.length - 1)}-${hash}.yaml`;
}

function isObjectRef(inputs: Record<string, unknown>): inputs is Record<string, unknown> & ObjectRef {
    return typeof inputs.apiVersion === "string" && typeof inputs.kind === "string";
}

const REDACTED = "<redacted: from Pulumi secret config>";

/**
 * A Secret's values come from Pulumi secret config, and so may inline JWKS: the rendered file names the
 * Secret's keys and the JWT rule's issuer, never the material.
 */
export function redactSecret(object: Record<string, unknown> & ObjectRef): Record<string, unknown> {
    if (object.kind === "RequestAuthentication" && isRecord(object.spec) && Array.isArray(object.spec.jwtRules)) {
        const jwtRules: unknown[] = object.spec.jwtRules.map((rule: unknown) => (isRecord(rule) && "jwks" in rule ? { ...rule, jwks: REDACTED } : rule));
        return { ...object, spec: { ...object.spec, jwtRules } };
    }
    if (object.kind !== "Secret") return object;
    const redact = (values: unknown) =>
        typeof values === "object" && values !== null ? Object.fromEntries(Object.keys(values).map((k) => [k, REDACTED])) : values;
    return { ...object, ...("data" in object && { data: redact(object.data) }), ...("stringData" in object && { stringData: redact(object.stringData) }) };
}

/**
 * Writes the run's objects and Helm releases into a new folder beside `out`, then swaps it in: a failure
 * leaves the previous render as it was. Returns the file names written.
 */
export async function writeRendered(result: ProgramRun, out: string): Promise<string[]> {
    const refusal = outDirRefusal(out);
    if (refusal !== undefined) throw new Error(refusal);
    const objects = result.resources.filter((r) => r.custom).map((r) => r.inputs).filter(isObjectRef);
    await validateObjects(objects);
    const target = real(out);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const staging = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.rendering-`));
    let written: string[];
    try {
        written = writeFiles(result, objects, staging);
        fs.writeFileSync(path.join(staging, RENDER_MARKER), "Written by npm run render; the next render replaces this folder whole.\n");
    } catch (error) {
        fs.rmSync(staging, { recursive: true, force: true });
        throw error;
    }
    if (fs.existsSync(target)) {
        const previous = `${staging}.previous`;
        fs.renameSync(target, previous);
        fs.renameSync(staging, target);
        fs.rmSync(previous, { recursive: true, force: true });
    } else {
        fs.renameSync(staging, target);
    }
    return written;
}

function writeFiles(result: ProgramRun, objects: readonly (Record<string, unknown> & ObjectRef)[], out: string): string[] {
    const written: string[] = [];
    const write = (name: string, document: object) => {
        if (written.includes(name)) throw new Error(`Two rendered objects would share the file ${name}`);
        fs.writeFileSync(path.join(out, name), yamlText(document));
        written.push(name);
    };
    for (const object of objects) {
        const metadata = object.metadata as { name: string; namespace?: string };
        write(fileName(object.kind, metadata.namespace ?? "cluster", metadata.name), redactSecret(object));
    }
    for (const release of result.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release")) {
        const { name, chart, version, namespace, repositoryOpts, values } = release.inputs;
        write(fileName("helm-release", String(name)), { helmRelease: { name, chart, repository: repositoryOpts, version, namespace, values } });
    }
    // A v4 Chart is rendered by the provider at `pulumi up`, with no release: the file says which chart and values.
    for (const chart of result.resources.filter((r) => r.type === "kubernetes:helm.sh/v4:Chart")) {
        const { chart: name, version, namespace, values } = chart.inputs;
        write(fileName("helm-chart", chart.name), { helmChart: { chart: name, version, namespace, values } });
    }
    return written.sort();
}

/** The top-level key of a problem's key path (`routes` of `routes.user-service[0].to`). */
