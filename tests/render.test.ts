import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import { parse } from "yaml";
import { UsageError } from "../scripts/cli";
import { parseArgs, render } from "../scripts/render";
import { PROJECT_ROOT } from "../scripts/mock-program";

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
        assert.deepEqual(fs.readdirSync(out).sort(), written);
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

    it("replaces what an earlier render left", async () => {
        fs.writeFileSync(path.join(out, "stale.yaml"), "old");
        await render({ stack: "prod", overrides: {}, out }, () => undefined);
        assert.ok(!fs.existsSync(path.join(out, "stale.yaml")));
    });

    it("parses flags and refuses unknown ones, unknown stacks and malformed --set", () => {
        assert.deepEqual(parseArgs(["--stack", "dev", "--set", "canaryWeight=50", "--set", "activeColor=green", "--out", "x"]), {
            stack: "dev",
            overrides: { canaryWeight: "50", activeColor: "green" },
            out: "x",
        });
        assert.equal(parseArgs(["--help"]), "help");
        assert.throws(() => parseArgs(["--stack", "dev", "--weight", "5"]), (e: Error) => e instanceof UsageError && /Unknown argument "--weight"/.test(e.message) && /Usage:/.test(e.message));
        assert.throws(() => parseArgs(["--stack", "qa"]), /Unknown stack "qa": there is no Pulumi.qa.yaml \(stacks: dev, prod, staging\)/);
        assert.throws(() => parseArgs(["--stack", "dev", "--set", "canaryWeight"]), /--set takes key=value/);
        assert.throws(() => parseArgs(["--stack"]), /--stack needs a value/);
        assert.throws(() => parseArgs([]), /--stack is required/);
    });

    it("exits 2 with the config error, and writes nothing, when a --set value is invalid", () => {
        const result = spawnSync(process.execPath, [require.resolve("ts-node/dist/bin"), "scripts/render.ts", "--stack", "dev", "--set", "canaryWeight=150", "--out", out], {
            cwd: PROJECT_ROOT,
            encoding: "utf8",
            env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
        });
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /canaryWeight = "150": must be a whole number from 0 to 100/);
        assert.deepEqual(fs.readdirSync(out), []);
    });
});
