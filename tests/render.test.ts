import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { UsageError } from "../lib/cli";
import { fileName, outDirRefusal, RENDER_MARKER, writeRendered } from "../lib/render-writer";
import { main, parseArgs, render } from "../scripts/render";
import { PROJECT_ROOT, ProgramRun } from "../lib/mock-program";
import { must } from "./harness";

describe("npm run render", () => {
    let out: string;
    beforeEach(() => {
        out = fs.mkdtempSync(path.join(os.tmpdir(), "render-"));
    });
    afterEach(() => {
        fs.rmSync(out, { recursive: true, force: true });
    });

    it("writes one file per object and per Helm release, and prints the split", async () => {
        const lines: string[] = [];
        const written = await render({ stack: "dev", overrides: { canaryWeight: "50" }, out }, (l) => lines.push(l));
        assert.deepEqual(fs.readdirSync(out).filter((f) => f !== RENDER_MARKER).sort(), written);
        assert.ok(written.includes("virtualservice-backend-user-service-ingress.yaml"));
        const vs = parse(fs.readFileSync(path.join(out, "virtualservice-backend-user-service.yaml"), "utf8")) as { spec: { http: { name: string; route: { weight: number }[] }[] } };
        assert.deepEqual(vs.spec.http.find((r) => r.name === "release")?.route.map((r) => r.weight), [50, 50]);
        const istiod = parse(fs.readFileSync(path.join(out, "helm-release-istiod.yaml"), "utf8")) as { helmRelease: Record<string, unknown> };
        assert.deepEqual(Object.keys(istiod.helmRelease).sort(), ["chart", "name", "namespace", "repository", "values", "version"]);
        const printed = lines.join("\n");
        assert.match(printed, /^user-service\s+v1=50%\s+v2=50%$/m);
        assert.match(printed, /^product-service\s+blue=100%\s+green=0%$/m);
        assert.match(printed, /^ {4}beta-users: x-user-type=beta -> v2$/m);
        assert.match(printed, /^ {4}preview-green: x-preview=green -> green$/m);
    });

    it("writes YAML that a YAML 1.1 reader (PyYAML, Kubernetes' own) reads the same: strings such as on, yes, 12:30 and 0777 quoted", async () => {
        const env = { FEATURE: "on", ENABLED: "yes", START: "12:30", MODE: "0777", RATIO: "1_000", PLAIN: "text" };
        const services = { "user-service": { path: "/users", release: "canary", versions: ["v1", "v2"], env }, "product-service": { path: "/products", release: "blueGreen", versions: ["v1", "v2"] }, "order-service": { path: "/orders", release: "single", versions: ["v1"] } };
        await render({ stack: "dev", overrides: { services: JSON.stringify(services), routes: "{}", meshEdges: "[]" }, out }, () => undefined);
        const text = fs.readFileSync(path.join(out, "deployment-backend-user-service-v2.yaml"), "utf8");
        const envOf = (doc: unknown) => Object.fromEntries(((doc as { spec: { template: { spec: { containers: { env: { name: string; value: string }[] }[] } } } }).spec.template.spec.containers[0].env).map((e) => [e.name, e.value]));
        for (const version of ["1.1", "1.2"] as const) {
            const read = envOf(parse(text, { version }));
            for (const [name, value] of Object.entries(env)) assert.equal(read[name], value, `${name} read as YAML ${version}`);
        }
        assert.match(text, /value: text$/m, "a string no parser misreads stays plain");
    });

    it("replaces what an earlier render left, whole", async () => {
        await render({ stack: "dev", overrides: {}, out }, () => undefined);
        fs.writeFileSync(path.join(out, "stale.yaml"), "old");
        await render({ stack: "prod", overrides: {}, out }, () => undefined);
        assert.ok(!fs.existsSync(path.join(out, "stale.yaml")));
        assert.ok(fs.existsSync(path.join(out, "helm-release-istio-egressgateway.yaml")));
        assert.deepEqual(fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith(`.${path.basename(out)}.rendering-`)), [], "no staging folder left");
    });

    it("never deletes what it did not write: a folder with other files, the repository, or a folder holding it", async () => {
        fs.mkdirSync(path.join(out, ".git"));
        fs.writeFileSync(path.join(out, ".git", "HEAD"), "ref: refs/heads/main\n");
        await assert.rejects(render({ stack: "dev", overrides: {}, out }, () => undefined), (e: Error) => e instanceof UsageError && /holds 1 entry that no render wrote/.test(e.message));
        assert.equal(fs.readFileSync(path.join(out, ".git", "HEAD"), "utf8"), "ref: refs/heads/main\n");
        for (const dir of [PROJECT_ROOT, path.dirname(PROJECT_ROOT), "/"]) {
            assert.match(must(outDirRefusal(dir), dir), /is the repository or a folder holding it/);
        }
        assert.equal(outDirRefusal(path.join(PROJECT_ROOT, "rendered", "dev")), undefined);
        const file = path.join(out, "a-file");
        fs.writeFileSync(file, "x");
        assert.match(must(outDirRefusal(file), file), /is a file/);
    });

    it("leaves the previous render intact when a render fails", async () => {
        await render({ stack: "dev", overrides: {}, out }, () => undefined);
        const before = fs.readdirSync(out).sort();
        const broken: ProgramRun = { resources: [{ type: "kubernetes:core/v1:Service", name: "x", custom: true, secretInputs: false, registration: { propertyNames: [], aliasTypes: [], additionalSecretOutputs: [], ignoreChanges: [] }, dependsOn: [], inputs: { apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: { ports: "eighty" } } }], outputs: {}, secretOutputs: [] };
        await assert.rejects(writeRendered(broken, out), /Schema validation failed/);
        assert.deepEqual(fs.readdirSync(out).sort(), before);
        assert.deepEqual(fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith(`.${path.basename(out)}.rendering-`)), []);
    });

    it("keeps file names short and unique for long object names", () => {
        const long = "a".repeat(250);
        const name = fileName("virtualservice", "backend", long);
        assert.ok(name.length <= 120 && name.endsWith(".yaml"));
        assert.notEqual(name, fileName("virtualservice", "backend", `${long}b`));
        assert.equal(name, fileName("virtualservice", "backend", long));
    });

    /** The command as a shell runs it, in this process: exit status and what it printed. */
    async function command(argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
        const [stdout, stderr]: string[][] = [[], []];
        const status = await main(argv, (l) => stdout.push(l), (l) => stderr.push(l));
        return { status, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
    }

    it("refuses --out . in the repository with a message, not a stack trace", async () => {
        assert.equal(process.cwd(), PROJECT_ROOT, "the suite runs from the repository");
        const result = await command(["--stack", "dev", "--out", "."]);
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /^--out "\." is the repository or a folder holding it/);
        assert.doesNotMatch(result.stderr, /\n\s+at /);
    });

    it("parses flags and refuses unknown ones, unknown stacks and malformed --set", () => {
        assert.deepEqual(parseArgs(["--stack", "dev", "--set", "canaryWeight=50", "--set", "activeColor=green", "--out", "x"]), {
            stack: "dev",
            overrides: { canaryWeight: "50", activeColor: "green" },
            out: "x",
        });
        assert.equal(parseArgs(["--help"]), "help");
        assert.throws(() => parseArgs(["--stack", "dev", "--weight", "5"]), (e: Error) => e instanceof UsageError && /Unknown argument "--weight"/.test(e.message) && /Usage:/.test(e.message));
        assert.throws(() => parseArgs(["--stack", "qa"]), /--stack "qa": there is no Pulumi.qa.yaml in .* \(stacks: ambient, dev, envoy-gateway, gateway, kong, prod, staging\)\. Fix: --stack ambient/);
        assert.throws(() => parseArgs(["--stack", "dev", "--set", "canaryWeight"]), /--set takes key=value/);
        assert.throws(() => parseArgs(["--stack"]), /--stack needs a value/);
        assert.throws(() => parseArgs([]), /--stack is required/);
    });

    it("exits 2 with the config error, and writes nothing, when a --set value is invalid", async () => {
        const result = await command(["--stack", "dev", "--set", "canaryWeight=150", "--out", out]);
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /canaryWeight = "150": must be a whole number from 0 to 100/);
        assert.match(result.stderr, /Fix: --set canaryWeight=50/);
        assert.deepEqual(fs.readdirSync(out), []);
    });

    it("prints its usage with --help, exit 0", async () => {
        const result = await command(["--help"]);
        assert.deepEqual([result.status, /^Usage: npm run render/.test(result.stdout)], [0, true]);
    });
});
