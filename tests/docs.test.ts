// The docs say what the code does: every link resolves, the config reference matches Pulumi.yaml and the code,
// sample output and numbers come from the program, and every example config is accepted as written.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { CONFIG_KEYS, SCALAR_DEFAULTS } from "../components/config/config";
import { SECRET_VALUE } from "../components/config/config-reader";
import { ADDON_CHARTS } from "../components/specs/observability-specs";
import { TARGET_RATIO } from "../scripts/bench";
import { ConfigValue, PROJECT_ROOT, stackConfig } from "../lib/mock-program";
import { render } from "../scripts/render";
import { configProblems, must, settingsFor } from "./harness";
import { DECISION_LOG_SCHEMA } from "./support/decision-log-schema";

const read = (file: string) => fs.readFileSync(path.join(PROJECT_ROOT, file), "utf8");
const DOCS = ["README.md", ...fs.readdirSync(path.join(PROJECT_ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** Fenced code blocks of a Markdown file, with their language. */
function codeBlocks(text: string): { lang: string; body: string }[] {
    return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], body: m[2] }));
}

/** GitHub's anchor for a heading. */
const anchor = (heading: string) =>
    heading
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, "")
        .replace(/ /g, "-");

/** The `# stack: <name>` an example names as its base, or dev. */
const baseStack = (body: string) => /^\s*# stack: (\w+)$/m.exec(body)?.[1] ?? "dev";

/** The docs' example certificate files, played by the test-only fixtures. */
const FILES: Readonly<Record<string, string>> = { "tls.crt": "tests/fixtures/test-only-tls.crt", "tls.key": "tests/fixtures/test-only-tls.key" };

/**
 * Applies `pulumi config set [--path] [--secret] key value` (or `< file`) and `pulumi config rm` lines to a
 * config, as the CLI would.
 */
function applyCommands(config: Record<string, ConfigValue>, lines: readonly string[]): Record<string, ConfigValue> {
    const result = structuredClone(config);
    for (const line of lines) {
        const words = (line.match(/'[^']*'|"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^['"]|['"]$/g, ""));
        const isPath = words.includes("--path");
        const [verb, key, given, file] = words.slice(2).filter((w) => w !== "--path" && w !== "--secret");
        const value = given === "<" ? read(FILES[file]) : given;
        if (!isPath) {
            if (verb === "rm") Reflect.deleteProperty(result, key);
            else result[key] = value;
            continue;
        }
        // --path a.b[0].c: walk the object, creating what is missing.
        const steps = key.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== "");
        let at: Record<string, unknown> = result;
        steps.slice(0, -1).forEach((step, i) => {
            if (typeof at[step] !== "object" || at[step] === null) at[step] = /^\d+$/.test(steps[i + 1]) ? [] : {};
            at = at[step] as Record<string, unknown>;
        });
        const last = steps[steps.length - 1];
        if (verb === "rm") Reflect.deleteProperty(at, last);
        else at[last] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === "true" || value === "false" ? value === "true" : value;
    }
    return result;
}

describe("docs", () => {
    it("the README is short and points to each document, and every link in the docs resolves", () => {
        const readme = read("README.md");
        assert.ok(readme.split("\n").length <= 200, `README has ${readme.split("\n").length} lines`);
        for (const doc of DOCS.filter((d) => d.startsWith("docs/"))) assert.ok(readme.includes(`](${doc})`), `README links ${doc}`);
        for (const doc of DOCS) {
            for (const [, target, hash] of read(doc).matchAll(/\]\(((?!https?:)[^)#]*)(?:#([^)]+))?\)/g)) {
                const file = target === "" ? doc : path.posix.normalize(path.posix.join(path.posix.dirname(doc), target));
                assert.ok(fs.existsSync(path.join(PROJECT_ROOT, file)), `${doc} links ${file}`);
                if (hash !== undefined && file.endsWith(".md")) {
                    const anchors = [...read(file).matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1]));
                    assert.ok(anchors.includes(hash), `${doc} links ${file}#${hash}`);
                }
            }
        }
    });

    it("docs/watching.md documents every field of the decision log's schema", () => {
        const fields = new Set<string>();
        const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;
        const walk = (node: unknown): void => {
            if (Array.isArray(node)) node.forEach(walk);
            else if (isObject(node)) {
                for (const [key, value] of Object.entries(node)) {
                    if (key === "properties" && isObject(value)) for (const field of Object.keys(value)) fields.add(field);
                    walk(value);
                }
            }
        };
        walk(DECISION_LOG_SCHEMA);
        const page = read("docs/watching.md");
        const undocumented = [...fields].filter((f) => !page.includes(`\`${f}\``));
        assert.deepEqual(undocumented, []);
        assert.ok(fields.size > 40, `${fields.size} fields`);
    });

    it("the config reference has one row per key, and each scalar's type and default are Pulumi.yaml's", () => {
        const project = parse(read("Pulumi.yaml")) as { config: Record<string, { type: string; default: unknown }> };
        const doc = read("docs/configuration.md");
        const section = doc.slice(doc.indexOf("## Config reference"), doc.indexOf("\n## ", doc.indexOf("## Config reference") + 1));
        const rows = section
            .split("\n")
            .flatMap((line) => {
                const cells = /^\| `([A-Za-z]+)` \|(.*)$/.exec(line);
                return cells === null ? [] : [{ key: cells[1], cells: cells[2].split(" | ").map((c) => c.trim()) }];
            });
        assert.deepEqual(rows.map((r) => r.key).sort(), [...CONFIG_KEYS].sort());
        for (const { key, cells } of rows.filter((r) => r.key in SCALAR_DEFAULTS)) {
            const declared = project.config[key];
            const [type, fallback] = cells;
            const shown = declared.default === "" ? '`""`' : `\`${String(declared.default)}\``;
            assert.ok(fallback.startsWith(shown), `${key}: default ${fallback}, Pulumi.yaml ${shown}`);
            const words: Record<string, RegExp> = { integer: /integer/, boolean: /boolean/, string: /string|`/ };
            assert.match(type, words[declared.type], `${key}: type ${type}, Pulumi.yaml ${declared.type}`);
        }
    });

    it("the README's render sample is what render prints", async () => {
        const readme = read("README.md");
        const command = /^npm run render -- (.+)$/m.exec(readme)?.[1].split(" ") ?? [];
        const sample = codeBlocks(readme).find((b) => b.body.startsWith("Rendered stack"))?.body.trimEnd().split("\n") ?? [];
        assert.deepEqual(command.slice(0, 2), ["--stack", "dev"]);
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "docs-render-"));
        try {
            const printed: string[] = [];
            const [key, value] = command[3].split("=");
            await render({ stack: "dev", overrides: { [key]: value }, out: path.join(out, "dev") }, (l) => printed.push(...l.split("\n")));
            assert.equal(sample[0], printed[0].replace(/ in .*$/, " in rendered/dev"));
            let at = 1;
            for (const line of sample.slice(1)) {
                at = printed.indexOf(line, at);
                assert.ok(at > 0, `render does not print ${JSON.stringify(line)}`);
            }
        } finally {
            fs.rmSync(out, { recursive: true, force: true });
        }
    });

    it("numbers in the docs come from the code: chart versions, Kubernetes node, coverage, bench target", () => {
        const operations = read("docs/operations.md");
        for (const chart of Object.values(ADDON_CHARTS)) assert.match(operations, new RegExp(`\\| \`[^|]*${chart.chart}\` \\| ${chart.version.replace(/\./g, "\\.")} \\|`));
        const node = /image: (kindest\/node:v[\d.]+)/.exec(read("kind-config.yaml"))?.[1] ?? "";
        assert.ok(read(".github/workflows/e2e.yml").includes(`node_image: ${node}`));
        assert.ok(operations.includes(node.replace("kindest/node:", "kindest/node:")));
        const c8 = JSON.parse(read(".c8rc.json")) as { lines: number; branches: number };
        assert.ok(read("docs/testing.md").includes(`${String(c8.lines)} % of lines, ${String(c8.branches)} % of branches`));
        assert.ok(operations.includes(`${TARGET_RATIO.toFixed(2)}x or`));
    });

    it("the environments table says what each stack file sets", () => {
        const doc = read("docs/configuration.md");
        const table = doc.slice(doc.indexOf("## Environments"), doc.indexOf("## Config reference"));
        const row = (label: string) => must(table.split("\n").find((l) => l.startsWith(`| ${label} |`)), label).split(" | ").slice(1).map((c) => c.replace(/ \|$/, ""));
        const stacks = ["dev", "staging", "prod"].map((s) => settingsFor(s));
        assert.deepEqual(row("replicas per version"), stacks.map((s) => String(s.replicas)));
        assert.deepEqual(row("ingress gateway pods (min, with a PodDisruptionBudget from 2)"), stacks.map((s) => String(s.gatewayReplicas)));
        assert.deepEqual(row("canaryWeight").map((c) => c.split(" ")[0]), stacks.map((s) => String(s.canaryWeight)));
        assert.deepEqual(row("mtlsMode"), stacks.map((s) => s.security.mtlsMode));
        assert.deepEqual(row("edgeRuleAccess").map((c) => c.split(" ")[0]), stacks.map((s) => s.policies.edgeRuleAccess));
        assert.deepEqual(row("production (faults refused)"), stacks.map((s) => (s.policies.production ? "yes" : "no")));
        assert.deepEqual(row("podSecurity").map((c) => c.split(" ")[0]), stacks.map((s) => s.security.podSecurity));
        const sampling = row("observability (trace sampling)").map((c) => /(\d+) %/.exec(c)?.[1]);
        assert.deepEqual(sampling, stacks.map((s) => String(s.observability.traceSamplingPercent)));
    });

    it("every example config in the docs is accepted as written on its stack", () => {
        let examples = 0;
        for (const doc of DOCS) {
            for (const { lang, body } of codeBlocks(read(doc))) {
                let config: Record<string, ConfigValue> | undefined;
                const stack = baseStack(body);
                if (lang === "yaml" && body.includes("istio-progressive-delivery:")) {
                    // A secure: value reads as the stack file reader gives it without the Pulumi CLI.
                    const values = parse(body.replace(/^ {2}/gm, "").replace(/\n( +)\w+:\n\1 {2}secure: .*/g, (block) => block.replace(/:\n.*secure: .*/, `: "${SECRET_VALUE}"`))) as Record<string, ConfigValue>;
                    // The Kubernetes provider's keys (kubernetes:context) are the provider's, not the program's.
                    config = { ...stackConfig(stack), ...Object.fromEntries(Object.entries(values).filter(([k]) => !k.startsWith("kubernetes:")).map(([k, v]) => [k.replace("istio-progressive-delivery:", ""), v])) };
                } else if (lang === "bash") {
                    const commands = body
                        .split("\n")
                        .flatMap((line) => line.split("&&"))
                        .map((c) => c.replace(/#.*$/, "").trim())
                        .filter((c) => /^pulumi config (set|rm) /.test(c) && !c.includes("kubernetes:"));
                    if (commands.length > 0) config = applyCommands(stackConfig(stack), commands);
                }
                if (config === undefined) continue;
                examples++;
                assert.deepEqual(configProblems(config, ["tlsCertificate", "tlsPrivateKey"]), [], `${doc}:\n${body}`);
            }
        }
        assert.ok(examples >= 15, `${String(examples)} examples`);
    });
});
