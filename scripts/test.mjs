// `npm test`: type-check (strict), lint and run the suite, with the two cores both busy.
// 1. Every file is transpiled on its own into bin/ (tsconfig's isolatedModules makes that the JavaScript tsc
//    would emit), with source maps, so the suite can start at once; only what changed since the last run.
// 2. The suite and the rollout scenarios (two mochas under one c8 and its coverage thresholds, suites.mjs) run
//    in a child process, their output held back. The scenarios query Debian's `prometheus`, which is found
//    or installed, and started, first (prometheus.mjs); the report's test loads its page in Debian's headless
//    `chromium`, found or installed likewise (chromium.mjs).
// 3. Meanwhile one TypeScript program is built and type-checked, and typescript-eslint lints that same
//    program, so the type information is built once rather than once by tsc and again by the linter.
// Plain JavaScript: it runs before anything is compiled. Exits non-zero if the types, the lint or the suite fail.
import { spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fileURLToPath } from "url";
import ts from "typescript";
import { ESLint } from "eslint";
import { findPrometheus, freePort, startPrometheus } from "./prometheus.mjs";
import { findChromium } from "./chromium.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const formatHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n" };
const formatted = (diagnostics) => ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost);

const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
        process.stderr.write(formatted([d]));
        process.exit(1);
    },
});
if (config.errors.length > 0) {
    process.stderr.write(formatted(config.errors));
    process.exit(1);
}

let prometheusBinary;
let chromiumBinary;
try {
    prometheusBinary = findPrometheus((line) => process.stdout.write(line));
    chromiumBinary = findChromium((line) => process.stdout.write(line));
} catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
}
const exporterPort = await freePort();
const prometheus = await startPrometheus(prometheusBinary, `127.0.0.1:${exporterPort}`);
// The release train's scenarios: three stacks, each a cluster of its own with its own Prometheus and exporter.
const trainExporterPorts = [await freePort(), await freePort(), await freePort()];
const trainPrometheus = await Promise.all(trainExporterPorts.map((port) => startPrometheus(prometheusBinary, `127.0.0.1:${port}`)));

// Incremental: a file is transpiled again when its source's content changed since the last complete transpile
// (or its output is missing), everything when the compiler or its options change; output whose source is gone is
// removed. The record is removed first and written once every file is done: after an interrupted run, all is redone.
const outDir = config.options.outDir;
const recordFile = path.join(outDir, ".transpiled.json");
const compiler = JSON.stringify({ typescript: ts.version, options: config.options });
let record;
try {
    record = JSON.parse(fs.readFileSync(recordFile, "utf8"));
} catch {
    record = undefined;
}
if (record?.compiler !== compiler) {
    fs.rmSync(outDir, { recursive: true, force: true });
    record = { compiler, sources: {} };
}
fs.rmSync(recordFile, { force: true });
const jsOf = (file) => path.join(outDir, path.relative(root, file)).replace(/\.ts$/, ".js");
const expected = new Set(config.fileNames.map(jsOf));
const existing = fs.existsSync(outDir) ? fs.readdirSync(outDir, { recursive: true }).map((f) => path.join(outDir, String(f))) : [];
for (const file of existing) if (/\.js(\.map)?$/.test(file) && !expected.has(file.replace(/\.map$/, ""))) fs.rmSync(file);
const sources = {};
for (const file of config.fileNames) {
    const js = jsOf(file);
    const text = fs.readFileSync(file, "utf8");
    const key = path.relative(root, file);
    sources[key] = createHash("sha256").update(text).digest("hex");
    if (record.sources[key] === sources[key] && fs.existsSync(js) && fs.existsSync(`${js}.map`)) continue;
    const { outputText, sourceMapText } = ts.transpileModule(text, { compilerOptions: config.options, fileName: file });
    const map = JSON.parse(sourceMapText);
    map.sources = [path.relative(path.dirname(js), file)];
    fs.mkdirSync(path.dirname(js), { recursive: true });
    fs.writeFileSync(js, outputText);
    fs.writeFileSync(`${js}.map`, JSON.stringify(map));
}
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(recordFile, JSON.stringify({ compiler, sources }));

const suite = new Promise((resolve) => {
    const bin = path.join(root, "node_modules", ".bin");
    const env = { ...process.env, FORCE_COLOR: "0", ROLLOUT_TEST_PROMETHEUS: prometheus.url, ROLLOUT_TEST_EXPORTER_PORT: String(exporterPort), TRAIN_TEST_PROMETHEUS: trainPrometheus.map((p) => p.url).join(","), TRAIN_TEST_EXPORTER_PORTS: trainExporterPorts.join(","), REPORT_TEST_CHROMIUM: chromiumBinary, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` };
    const child = spawn(path.join(bin, "c8"), ["node", path.join(root, "scripts", "suites.mjs")], { cwd: root, env });
    const output = [];
    child.on("error", (error) => resolve({ code: 1, output: String(error) }));
    child.stdout.on("data", (chunk) => output.push(chunk));
    child.stderr.on("data", (chunk) => output.push(chunk));
    child.on("close", (code) => resolve({ code: code ?? 1, output: Buffer.concat(output).toString() }));
});

// The suites are the longer path: the type check and the lint yield the cores to them, a little (nice 4, not
// more: beside another busy job a lower weight starved them and doubled npm test). On Linux this lowers the main
// thread's priority (V8's helper threads keep theirs); the suites' processes, started before, keep theirs.
try {
    os.setPriority(4);
} catch {
    // A platform that refuses only changes how the cores are shared.
}

const program = ts.createProgram({ rootNames: config.fileNames, options: { ...config.options, noEmit: true } });
const typeErrors = ts.getPreEmitDiagnostics(program);
process.stdout.write(typeErrors.length > 0 ? formatted(typeErrors) : "types: no errors (tsc strict)\n");

const eslint = new ESLint({ cwd: root, overrideConfig: { languageOptions: { parserOptions: { programs: [program] } } } });
const results = await eslint.lintFiles(["."]);
const lintFailed = results.some((r) => r.errorCount > 0);
process.stdout.write((await eslint.loadFormatter("stylish")).format(results) || "lint: no problems\n");

const { code, output } = await suite;
await Promise.all([prometheus, ...trainPrometheus].map((p) => p.stop()));
process.stdout.write(output);
process.exit(typeErrors.length > 0 || lintFailed || code !== 0 ? 1 : 0);
