// `npm run render -- --stack dev [--set canaryWeight=50]`: runs the program under Pulumi's mocks (no CLI,
// no cluster) and writes what `pulumi up` would apply: one YAML file per Kubernetes object and one per Helm
// release, under rendered/<stack>/. Every object is checked against its schema first.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, ConfigProblem, isRecord } from "../components/config/config-reader";
import { PolicySummary, splitTable, TrafficSplit } from "../components/plan/outputs";
import { ConfigValue, PROJECT_ROOT, ProgramError, ProgramRun, runProgram, stackNames } from "./mock-program";
import { StackFileError } from "./stack-file";
import { ArgvReader, UsageError } from "./cli";
import { ObjectRef, validateObjects } from "./validate";
import { yamlText } from "./yaml-text";

const USAGE = `Usage: npm run render -- --stack <name> [--set key=value ...] [--out <dir>]

  --stack <name>     stack to render: one of the Pulumi.<name>.yaml files (${stackNames().join(", ")})
  --set key=value    override one config key for this render, as 'pulumi config set key value' would
  --out <dir>        where to write (default: rendered/<stack>): a new or empty folder, or an earlier render,
                     which is replaced whole; never the repository or a folder holding it
  --help             show this help`;

export interface RenderOptions {
    stack: string;
    overrides: Record<string, string>;
    out: string;
}

/** Parses the command line; throws UsageError naming the bad flag and what is allowed. */
export function parseArgs(argv: readonly string[]): RenderOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let stack: string | undefined;
    let out: string | undefined;
    const overrides: Record<string, string> = {};
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--stack":
                stack = args.value(flag);
                break;
            case "--out":
                out = args.value(flag);
                break;
            case "--set": {
                const assignment = args.value(flag);
                const eq = assignment.indexOf("=");
                if (eq <= 0) throw args.error(`--set takes key=value, got "${assignment}" (for example --set canaryWeight=50)`);
                // A key named __proto__ is a key like any other (and refused as unknown), not the object's prototype.
                Object.defineProperty(overrides, assignment.slice(0, eq), { value: assignment.slice(eq + 1), enumerable: true, writable: true, configurable: true });
                break;
            }
            default:
                throw args.unknown(flag);
        }
    }
    const stackName = args.stack(stack, stackNames(), PROJECT_ROOT);
    const target = out ?? path.join(PROJECT_ROOT, "rendered", stackName);
    const refusal = outDirRefusal(target);
    if (refusal !== undefined) throw args.error(refusal);
    return { stack: stackName, overrides, out: target };
}

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
    if (refusal !== undefined) throw new UsageError(refusal, USAGE);
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
const topKey = (key: string) => /^[^.[]*/.exec(key)?.[0] ?? key;

/**
 * A problem's fix in render's words when the value came from `--set`: `--set key=value` instead of
 * `pulumi config set key value`, which would change the stack rather than this render.
 */
export function renderFix(problem: ConfigProblem, overrides: Readonly<Record<string, string>>): ConfigProblem {
    const top = topKey(problem.key);
    if (!Object.hasOwn(overrides, top)) return problem;
    const plain = /^pulumi config set (\S+) (.+)$/.exec(problem.fix);
    if (plain !== null && plain[1] === top) return { ...problem, fix: `--set ${top}=${plain[2]}` };
    const path = /^pulumi config set --path '([^']+)' (.+)$/.exec(problem.fix);
    if (path !== null) return { ...problem, fix: `in --set ${top}=<JSON>, set ${path[1]} to ${path[2]}` };
    return { ...problem, fix: `${problem.fix.replace(/^pulumi config rm (--path )?/, "remove ")} from --set ${top}=...` };
}

export async function render(options: RenderOptions, log: (line: string) => void): Promise<string[]> {
    const overrides: Record<string, ConfigValue> = options.overrides;
    let result: ProgramRun;
    try {
        result = await runProgram(options.stack, overrides);
    } catch (error) {
        if (error instanceof ProgramError && error.cause instanceof ConfigError) {
            throw new ProgramError(new ConfigError(error.cause.problems.map((p) => renderFix(p, options.overrides))), error.registered);
        }
        throw error;
    }
    const written = await writeRendered(result, options.out);
    log(`Rendered stack ${options.stack}: ${written.length} files in ${path.relative(process.cwd(), options.out) || "."}`);
    log("");
    log(splitTable(result.outputs.trafficSplit as TrafficSplit));
    log("");
    log("Routing rules and policies (first matching rule wins):");
    for (const [service, lines] of Object.entries(result.outputs.routingPolicies as PolicySummary)) {
        log(`  ${service}`);
        for (const line of lines) log(`    ${line}`);
    }
    const tryIt = result.outputs.tryIt;
    if (Array.isArray(tryIt)) {
        log("");
        log("Try it once deployed:");
        for (const line of tryIt) log(`  ${String(line)}`);
    }
    return written;
}

/**
 * Render's exit status for an error: 2 for input it refuses (flags, config, a stack file), with the message
 * alone; 1 for anything else, which is a bug worth its stack trace.
 */
export function exitStatus(error: unknown): { code: 1 | 2; message: string } {
    const cause = error instanceof ProgramError ? error.cause : error;
    if (cause instanceof UsageError || cause instanceof ConfigError || cause instanceof StackFileError) return { code: 2, message: cause.message };
    return { code: 1, message: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause) };
}

/** The command: parses `argv`, renders, and returns the exit status; `out` and `err` print a line each. */
export async function main(argv: readonly string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
    try {
        const options = parseArgs(argv);
        if (options === "help") {
            out(USAGE);
            return 0;
        }
        await render(options, out);
        return 0;
    } catch (error) {
        const { code, message } = exitStatus(error);
        err(message);
        return code;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2), console.log, console.error).then((code) => {
        process.exitCode = code;
    });
}
