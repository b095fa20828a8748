// The code's layers, as folders: config (read, validate) -> plan (pure) -> specs (pure renderers) ->
// resources (ComponentResources) -> index.ts. A layer imports only itself and the layers below it, and no
// module imports itself through others.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../lib/mock-program";

const LAYERS = ["components/config", "components/plan", "components/specs", "components/resources", "index"] as const;

/** A module's layer: its index in LAYERS, or undefined outside them (scripts, tests, the policy pack). */
function layerOf(file: string): number | undefined {
    const index = LAYERS.findIndex((layer) => file === layer || file.startsWith(`${layer}/`));
    return index < 0 ? undefined : index;
}

/** Relative imports of every module of the program, as repository paths without extension. */
export function importGraph(root: string): Map<string, string[]> {
    const files = ["index.ts", ...fs.readdirSync(path.join(root, "components"), { recursive: true, encoding: "utf8" }).map((f) => `components/${f}`)].filter((f) => f.endsWith(".ts"));
    const graph = new Map<string, string[]>();
    for (const file of files) {
        const text = fs.readFileSync(path.join(root, file), "utf8");
        const imports = [...text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)].map((m) => path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1])));
        graph.set(file.replace(/\.ts$/, ""), imports);
    }
    return graph;
}

/** The import cycles in a graph, each as the modules along it. */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
    const found: string[][] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (node: string, trail: string[]) => {
        if (state.get(node) === "done") return;
        if (state.get(node) === "visiting") {
            found.push([...trail.slice(trail.indexOf(node)), node]);
            return;
        }
        state.set(node, "visiting");
        for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
        state.set(node, "done");
    };
    for (const node of graph.keys()) visit(node, []);
    return found;
}

/** Imports that reach a layer above the importing module's. */
export function upwardImports(graph: ReadonlyMap<string, readonly string[]>): string[] {
    return [...graph].flatMap(([from, imports]) =>
        imports.filter((to) => (layerOf(to) ?? -1) > (layerOf(from) ?? Infinity)).map((to) => `${from} -> ${to}`),
    );
}

describe("layout", () => {
    const graph = importGraph(PROJECT_ROOT);

    it("puts every module of the program in a layer folder", () => {
        assert.deepEqual([...graph.keys()].filter((m) => layerOf(m) === undefined), []);
        for (const layer of LAYERS.slice(0, 4)) assert.ok([...graph.keys()].some((m) => m.startsWith(layer)), layer);
    });

    it("has no import cycles", () => {
        assert.deepEqual(cycles(graph), []);
    });

    it("never imports a layer above", () => {
        assert.deepEqual(upwardImports(graph), []);
    });

    it("keeps scripts/ to entry points: no library, the rollout or the program imports one", () => {
        const scripts = fs.readdirSync(path.join(PROJECT_ROOT, "scripts")).filter((f) => f.endsWith(".ts"));
        // Each is a command: it runs when node starts it.
        assert.deepEqual(scripts.filter((f) => !fs.readFileSync(path.join(PROJECT_ROOT, "scripts", f), "utf8").includes("require.main === module")), []);
        const importers = ["index.ts", ...["components", "rollout", "lib", "policy"].flatMap((dir) => fs.readdirSync(path.join(PROJECT_ROOT, dir), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") && !f.includes("node_modules")).map((f) => `${dir}/${f}`))];
        assert.deepEqual(importers.filter((f) => /from\s+"(\.\.\/)+scripts\//.test(fs.readFileSync(path.join(PROJECT_ROOT, f), "utf8"))), []);
    });

    it("the checks catch a cycle and an upward import", () => {
        const broken = new Map([
            ["components/config/a", ["components/config/b"]],
            ["components/config/b", ["components/plan/plan"]],
            ["components/plan/plan", ["components/config/a"]],
        ]);
        assert.deepEqual(cycles(broken), [["components/config/a", "components/config/b", "components/plan/plan", "components/config/a"]]);
        assert.deepEqual(upwardImports(broken), ["components/config/b -> components/plan/plan"]);
    });
});
