// `npm test`: builds one TypeScript program, type-checks it (strict) and emits it to bin/, then runs the suite
// (mocha under c8's coverage thresholds) while typescript-eslint lints that same program, so the type
// information is built once rather than once by tsc and again by the linter, and the two cores both work.
// Plain JavaScript: it runs before anything is compiled. Exits non-zero if any of the three fails.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { fileURLToPath } from "url";
import ts from "typescript";
import { ESLint } from "eslint";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) };
const format = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
};

function fail(diagnostics) {
    process.stderr.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, format));
    process.exit(1);
}

const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, host);
if (config.errors.length > 0) fail(config.errors);
fs.rmSync(path.join(root, config.options.outDir), { recursive: true, force: true });
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
if (diagnostics.length > 0) fail(diagnostics);

// The suite in a child process, its output held back so it does not interleave with the linter's.
const suite = new Promise((resolve) => {
    const child = spawn(path.join(root, "node_modules", ".bin", "c8"), ["mocha"], { cwd: root, env: { ...process.env, FORCE_COLOR: "0" } });
    const output = [];
    child.stdout.on("data", (chunk) => output.push(chunk));
    child.stderr.on("data", (chunk) => output.push(chunk));
    child.on("close", (code) => resolve({ code: code ?? 1, output: Buffer.concat(output).toString() }));
});

const eslint = new ESLint({ cwd: root, overrideConfig: { languageOptions: { parserOptions: { programs: [program] } } } });
const results = await eslint.lintFiles(["."]);
const lint = (await eslint.loadFormatter("stylish")).format(results);
const lintFailed = results.some((r) => r.errorCount > 0);
process.stdout.write(lint || "lint: no problems\n");

const { code, output } = await suite;
process.stdout.write(output);
process.exit(lintFailed || code !== 0 ? 1 : 0);
