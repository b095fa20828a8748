import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { SCALAR_DEFAULTS } from "../components/config/config";
import { PROJECT_ROOT, stackConfig, stackNames } from "../lib/mock-program";
import { DECIMAL_KEYS } from "../components/config/observability-config";

const read = (file: string) => fs.readFileSync(path.join(PROJECT_ROOT, file), "utf8");

describe("project files agree with the code", () => {
    it("Pulumi.yaml declares every scalar key with its type, the code's default and a description", () => {
        const project = parse(read("Pulumi.yaml")) as { config: Record<string, { type: string; default: unknown; description: string }> };
        const defaults = SCALAR_DEFAULTS;
        assert.deepEqual(Object.keys(project.config).sort(), Object.keys(defaults).sort());
        for (const [key, fallback] of Object.entries(defaults)) {
            const declared = project.config[key];
            const type = typeof fallback === "number" ? (DECIMAL_KEYS.includes(key) ? "string" : "integer") : typeof fallback === "boolean" ? "boolean" : "string";
            assert.equal(declared.type, type, key);
            assert.equal(String(declared.default), String(fallback), key);
            assert.ok(declared.description.length > 20, key);
        }
    });

    it("every stack file gives each declared key a value of its declared type, as the Pulumi CLI checks", () => {
        const project = parse(read("Pulumi.yaml")) as { config: Record<string, { type: string }> };
        const yamlType = (value: unknown) => (typeof value === "number" ? (Number.isInteger(value) ? "integer" : "number") : typeof value);
        for (const stack of stackNames()) {
            for (const [key, value] of Object.entries(stackConfig(stack))) {
                const declared = (project.config[key] as { type: string } | undefined)?.type;
                if (declared !== undefined) assert.equal(yamlType(value), declared, `Pulumi.${stack}.yaml ${key}`);
            }
        }
    });

    it("CI runs the README's install-and-test command", () => {
        const command = /```bash\n(npm ci && npm test)\n```/.exec(read("README.md"))?.[1];
        assert.equal(command, "npm ci && npm test");
        assert.ok(read(".ci/run").split("\n").includes(command));
    });
});
