// The stack file as the record of every release: read as Pulumi reads it (its shape, namespaces, secure values),
// and edited by the rollout by path, atomically, against the file as it is now. The property test runs the
// driver over a real file while another person edits it and the disk fails, and checks what must always hold.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import { parseDocument } from "yaml";
import { applyEdits, ConfigEdit, ConfigValue, StackConfig, valueAt } from "../rollout/config-edit";
import { changedPaths, objectChanges, planMismatch, PlannedChange } from "../rollout/diff";
import { Clock, Outcome, prepareRollout, runRollout } from "../rollout/driver";
import { ServiceEvidence, VersionCounts } from "../rollout/analysis";
import { RolloutRefusal } from "../rollout/plan";
import { SetupError, type HeldRollout } from "../rollout/lock";
import { AutomationEngine, RenderEngine } from "../rollout/engines";
import { editStackFile, FileWriter, readStackFile, StackFileError, StackFileWriteError, writeEditedCopy } from "../lib/stack-file";
import { SECRET_VALUE } from "../components/config/config-reader";
import { FileEngine, PROJECT } from "./support/file-engine";
import { PROJECT_ROOT, runProgramWith, stackFileConfig } from "../lib/mock-program";
import { configProblems } from "./harness";
import { testChannel } from "./support/channel";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-file-"));
let files = 0;
const stackFile = (text: string): string => {
    const file = path.join(dir, `Pulumi.t${files++}.yaml`);
    fs.writeFileSync(file, text);
    return file;
};
const P = PROJECT;

/** A stack with a catalogue: a canary, a blue/green service and a single one, with comments inside. */
const CATALOGUE = `# the team's stack
config:
  ${P}:canaryWeight: 0
  ${P}:activeColor: blue
  ${P}:previewHeader: x-preview
  ${P}:rollout: { steps: [20, 50], interval: 1s, analysis: { failedChecks: 2, progressDeadline: 3s, minRequests: 10 } }
  ${P}:services:
    # users: the canary
    user-service:
      path: /users
      release: canary
      versions: [v1, v2] # stable first
    product-service:
      path: /products
      release: blueGreen
      versions: [v1, v2]
    order-service:
      path: /orders
      release: single
      versions: [v1]
`;

describe("stack file: read as Pulumi reads it", () => {
    for (const [what, text, line, problem] of [
        ["config: as a list", `config:\n  - ${P}:canaryWeight: 10\n`, 2, /config: is not a mapping/],
        ["the file as a list", `- config\n`, 1, /not a mapping of keys/],
        ["a misspelled config:", `confg:\n  ${P}:canaryWeight: 50\n`, 1, /"confg" is not a key of a Pulumi stack file \(did you mean config\?\)/],
        ["a key without a namespace", `config:\n  ${P}:replicas: 2\n  canaryWeight: 50\n`, 3, /"canaryWeight" has no namespace/],
        ["a misspelled project", `config:\n  istio-progresive-delivery:canaryWeight: 50\n`, 2, /belongs to "istio-progresive-delivery" \(did you mean istio-progressive-delivery\?\)/],
        ["another project's key", `config:\n  aws:region: eu-west-1\n`, 2, /belongs to "aws"/],
        ["an alias bomb", `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nconfig:\n  ${P}:env: *d\n`, 2, /aliases expand to more than 100 copies/],
        ["a duplicate key", `config:\n  ${P}:canaryWeight: 10\n  ${P}:canaryWeight: 50\n`, 3, /Map keys must be unique \(istio-progressive-delivery:canaryWeight is there twice\)/],
        ["a key of null", `config:\n  ${P}:replicas: 2\n  ${P}:canaryWeight:\n`, 3, /"istio-progressive-delivery:canaryWeight" has no value/],
    ] as const) {
        it(`refuses ${what}, naming the file and line`, () => {
            const file = stackFile(text);
            assert.throws(
                () => readStackFile(file, P),
                (e: unknown) => e instanceof StackFileError && e.line === line && problem.test(e.problem) && e.file === path.basename(file) && e.fix.length > 0,
            );
        });
    }

    it("merges a mapping into another with <<, as the Pulumi CLI's YAML reader does", () => {
        const { config } = readStackFile(stackFile(`config:\n  ${P}:meshEdges:\n    - &edge { from: order-service, to: product-service, methods: [GET] }\n    - { <<: *edge, to: user-service, paths: ["/users*"] }\n`), P);
        assert.deepEqual(config.meshEdges, [
            { from: "order-service", to: "product-service", methods: ["GET"] },
            { from: "order-service", to: "user-service", methods: ["GET"], paths: ["/users*"] },
        ]);
    });

    it("reads the Kubernetes provider's and Pulumi's own keys as theirs, and this project's as its config", () => {
        const { config } = readStackFile(stackFile(`config:\n  kubernetes:context: kind-dev\n  pulumi:tags: { team: web }\n  ${P}:canaryWeight: 25\n`), P);
        assert.deepEqual(config, { canaryWeight: 25 });
    });

    it("runs the program with a secure value as Pulumi would: a secret, shown as [secret]", async () => {
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), "secure-"));
        fs.writeFileSync(path.join(folder, "Pulumi.s.yaml"), `config:\n  ${P}:services:\n    user-service: { path: /users, release: single, versions: [v1], env: { API_TOKEN: { secure: v1:abc } } }\n`);
        const { config, secretKeys } = stackFileConfig("s", folder);
        const run = await runProgramWith("s", config, secretKeys);
        const deployment = run.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name.includes("user-service-v1"));
        assert.ok(deployment?.secretInputs, "the Deployment's spec is a Pulumi secret");
        assert.match(JSON.stringify(deployment.inputs), /"name":"API_TOKEN","value":"\[secret\]"/);
    });

    it("says a key that must have a form cannot be checked from a secure value, and how to render it", () => {
        const [problem] = configProblems({ canaryWeight: SECRET_VALUE }, ["canaryWeight"]);
        assert.deepEqual([problem.value, problem.fix], ["[secret]", "render it with --set canaryWeight=<value>, or run pulumi preview"]);
        assert.match(problem.allowed, /whole number .*; the stack file holds it encrypted \(secure:\), which only the Pulumi CLI decrypts/);
    });

    it("reads a secure value, at the top or inside a key, as a secret whose value it cannot know", () => {
        const { config, secretKeys } = readStackFile(stackFile(`config:\n  ${P}:previewHeader:\n    secure: v1:abc\n  ${P}:services:\n    user-service:\n      path: /users\n      env: { TOKEN: { secure: v1:def } }\n`), P);
        assert.equal(config.previewHeader, SECRET_VALUE);
        assert.equal(valueAt(config, ["services", "user-service", "env", "TOKEN"]), SECRET_VALUE);
        assert.deepEqual([...secretKeys].sort(), ["previewHeader", "services"]);
    });
});

describe("stack file: the rollout's edits", () => {
    it("edits by path: another service, comments and formatting inside the catalogue stay as they were", () => {
        const file = stackFile(CATALOGUE);
        editStackFile(
            file,
            [
                { path: ["services", "user-service", "versions", 0] },
                { path: ["services", "user-service", "release"], value: "single" },
            ],
            P,
        );
        const text = fs.readFileSync(file, "utf8");
        assert.match(text, /# users: the canary/);
        assert.match(text, /# the team's stack/);
        assert.deepEqual(valueAt(readStackFile(file, P).config, ["services", "user-service"]), { path: "/users", release: "single", versions: ["v2"] });
        assert.equal(text.replace(/ {4}user-service:[\s\S]*?(?= {4}product-service)/, ""), CATALOGUE.replace(/ {4}user-service:[\s\S]*?(?= {4}product-service)/, ""), "every line outside the edited service is as it was");
    });

    for (const [what, text] of [
        ["double spaces and a line of spaces beside another namespace's key", `config:\n  ${P}:replicas:  1\n\n  kubernetes:namespace:  canary\n   \n  ${P}:canaryWeight:  0\n  ${P}:rollout:\n    interval: 1s\n`],
        ["4-space indentation and a blank line", `config:\n    ${P}:canaryWeight: 0\n    ${P}:rollout:\n        interval: 1s\n\n    kubernetes:namespace: x\n`],
    ] as const) {
        it(`edits a file with ${what}, every other key of every namespace kept`, () => {
            const file = stackFile(text);
            editStackFile(file, [{ path: ["canaryWeight"], value: 20 }], P);
            const written = parseDocument(fs.readFileSync(file, "utf8")).toJS() as { config: Record<string, unknown> };
            const expected = parseDocument(text).toJS() as { config: Record<string, unknown> };
            assert.deepEqual(written, { config: { ...expected.config, [`${P}:canaryWeight`]: "20" } });
        });
    }

    it("changes only the lines of the keys a step sets in every stack file of the repository, flow mappings and all", () => {
        for (const stack of fs.readdirSync(PROJECT_ROOT).filter((f) => /^Pulumi\.[\w-]+\.yaml$/.test(f))) {
            const original = fs.readFileSync(path.join(PROJECT_ROOT, stack), "utf8");
            // A weight step: the weight's own line, and not a byte else (its one-line flow mappings and lists included).
            const weighted = stackFile(original);
            editStackFile(weighted, [{ path: ["canaryWeight"], value: 5 }], P);
            const [before, after] = [original.split("\n"), fs.readFileSync(weighted, "utf8").split("\n")];
            const changed = before.flatMap((line, i) => (line === after[i] ? [] : [[line, after[i]]]));
            assert.equal(after.length, before.length, stack);
            assert.deepEqual(changed.map(([, line]) => line), [`  ${P}:canaryWeight: "5"`], stack);
            // A key the file does not have yet: appended, the file's own text before it unchanged to the byte.
            const mirrored = stackFile(original);
            editStackFile(mirrored, [{ path: ["mirror", "product-service"], value: 10 }], P);
            assert.equal(fs.readFileSync(mirrored, "utf8"), `${original}  ${P}:mirror:\n    product-service: 10\n`, stack);
        }
    });

    it("refuses, changing nothing, an edit inside a flow mapping the YAML writer would lay out otherwise", () => {
        // Broken over two lines by hand: the writer would join them, so no edit inside keeps the file's layout.
        const twoLines = `config:\n  ${P}:canaryWeight: 0\n  ${P}:services: { user-service: { path: /users, release: canary, versions: [v1, v2] },\n      order-service: { path: /orders, release: single, versions: [v1] } }\n`;
        const file = stackFile(twoLines);
        assert.throws(
            () => editStackFile(file, [{ path: ["services", "user-service", "canaryWeight"], value: 5 }], P),
            (e: unknown) => e instanceof StackFileError && e.line === 3 && /setting services\.user-service\.canaryWeight would reformat lines around it that the rollout does not own/.test(e.message) && /Fix: lay that part of the file out in block style/.test(e.message),
        );
        assert.equal(fs.readFileSync(file, "utf8"), twoLines);
        // On one line, however long, the line is the key's own: it is rewritten, and nothing else.
        const oneLine = `config:\n  ${P}:services: { user-service: { path: /users, release: canary, versions: [v1, v2] }, order-service: { path: /orders, release: single, versions: [v1] } }\n  ${P}:canaryWeight: 0 # the shared weight\n`;
        const long = stackFile(oneLine);
        editStackFile(long, [{ path: ["services", "user-service", "canaryWeight"], value: 5 }], P);
        assert.equal(fs.readFileSync(long, "utf8"), oneLine.replace("versions: [v1, v2] }", "versions: [ v1, v2 ], canaryWeight: 5 }").replace("{ path: /orders, release: single, versions: [v1] }", "{ path: /orders, release: single, versions: [ v1 ] }"));
        // A comment on the edited line stays; a file without a final line end keeps none.
        editStackFile(long, [{ path: ["canaryWeight"], value: 20 }], P);
        assert.match(fs.readFileSync(long, "utf8"), /canaryWeight: "20" # the shared weight\n$/);
        const noFinalEol = stackFile(`config:\n  ${P}:canaryWeight: 0`);
        editStackFile(noFinalEol, [{ path: ["canaryWeight"], value: 20 }], P);
        assert.equal(fs.readFileSync(noFinalEol, "utf8"), `config:\n  ${P}:canaryWeight: "20"`);
        // 4-space indentation, a key three deep where the file has none: indented as the file would indent it.
        const fourSpaces = stackFile(`config:\n    ${P}:canaryWeight: 0\n    ${P}:activeColor: blue\n`);
        editStackFile(fourSpaces, [{ path: ["mirror", "product-service"], value: 10 }], P);
        assert.equal(fs.readFileSync(fourSpaces, "utf8"), `config:\n    ${P}:canaryWeight: 0\n    ${P}:activeColor: blue\n    ${P}:mirror:\n        product-service: 10\n`);
        // A short one on the key's own line is that key's line: rewritten, and nothing else.
        const short = stackFile(`config:\n  ${P}:mirror: {user-service: 5}\n  ${P}:canaryWeight: 0\n`);
        editStackFile(short, [{ path: ["mirror", "user-service"], value: 10 }], P);
        assert.equal(fs.readFileSync(short, "utf8"), `config:\n  ${P}:mirror: { user-service: 10 }\n  ${P}:canaryWeight: 0\n`);
    });

    it("keeps a file's Windows line ends, changing only the edited line", () => {
        const crlf = CATALOGUE.replace(/\n/g, "\r\n");
        const file = stackFile(crlf);
        editStackFile(file, [{ path: ["canaryWeight"], value: 25 }], P);
        assert.equal(fs.readFileSync(file, "utf8"), crlf.replace(`${P}:canaryWeight: 0`, `${P}:canaryWeight: "25"`));
    });

    it("a write that fails part-way (a full disk) leaves the previous file whole and readable", () => {
        const file = stackFile(CATALOGUE);
        const halfThenFull: FileWriter = (fd, text) => {
            fs.writeSync(fd, text.slice(0, text.length / 2));
            throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        };
        assert.throws(() => editStackFile(file, [{ path: ["canaryWeight"], value: 50 }], P, [], halfThenFull), (e: unknown) => e instanceof StackFileWriteError && /ENOSPC/.test(e.message) && /unchanged/.test(e.message));
        assert.equal(fs.readFileSync(file, "utf8"), CATALOGUE);
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), [], "no temporary file is left behind");
    });

    it("refuses before step 1, on either engine, a stack file made read-only", () => {
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), "read-only-"));
        fs.writeFileSync(path.join(folder, "Pulumi.t.yaml"), CATALOGUE, { mode: 0o444 });
        assert.throws(() => { new AutomationEngine(folder, "t", () => undefined).checkWritable(); }, (e: unknown) => e instanceof SetupError && /Pulumi\.t\.yaml is read-only \(mode 444\).*Fix: chmod u\+w/.test(e.message));
        assert.throws(() => { new RenderEngine(folder, "t", path.join(folder, "out")).checkWritable(); }, (e: unknown) => e instanceof StackFileWriteError && /read-only \(mode 444\)/.test(e.message));
    });

    it("refuses, changing nothing, a read-only file, an alias, and an edit into a secure value", () => {
        const readOnly = stackFile(CATALOGUE);
        fs.chmodSync(readOnly, 0o444);
        assert.throws(() => editStackFile(readOnly, [{ path: ["canaryWeight"], value: 50 }], P), (e: unknown) => e instanceof StackFileWriteError && /read-only \(mode 444\).*chmod u\+w/.test(e.message));
        const aliased = stackFile(`${CATALOGUE}  ${P}:mirror: &m { user-service: 5 }\n  ${P}:faults: { x: *m }\n`);
        assert.throws(() => editStackFile(aliased, [{ path: ["canaryWeight"], value: 50 }], P), (e: unknown) => e instanceof StackFileError && e.line === 22 && /alias/.test(e.problem));
        const secure = stackFile(`config:\n  ${P}:canaryWeight:\n    secure: v1:abc\n`);
        assert.throws(() => editStackFile(secure, [{ path: ["canaryWeight"], value: 50 }], P), (e: unknown) => e instanceof StackFileError && /secure value/.test(e.problem));
        for (const file of [readOnly, aliased, secure]) assert.doesNotThrow(() => readStackFile(file, P), "each is still readable as it was");
    });

    it("edits a service named like an Object method as the plain name it is", () => {
        const file = stackFile(`config:\n  ${P}:services:\n    order-service: { path: /orders, release: single, versions: [v1] }\n`);
        for (const name of ["constructor", "toString", "__proto__"]) {
            editStackFile(file, [{ path: ["services", name, "release"], value: "single" }], P);
            assert.deepEqual(valueAt(readStackFile(file, P).config, ["services", name]), { release: "single" });
        }
        assert.equal(valueAt(readStackFile(file, P).config, ["services", "hasOwnProperty"]), undefined);
    });
});

// The driver over a real file, on a fake clock.
const versionCounts = (requests: number, errors: number): VersionCounts => ({ requests, errors, latency: [{ le: 50, count: requests }, { le: Infinity, count: requests }] });
const GOOD: ServiceEvidence = { candidate: versionCounts(500, 0), stable: versionCounts(4500, 5) };
const BAD: ServiceEvidence = { candidate: versionCounts(500, 200), stable: versionCounts(4500, 5) };
const fakeClock = (): Clock => {
    let now = 0;
    return { now: () => now, sleep: (ms) => Promise.resolve((now += ms) > 0) };
};

async function rollOut(engine: FileEngine, evidence: ServiceEvidence, services = ["user-service"]): Promise<Outcome> {
    const prepared = await prepareRollout(engine, "t", services);
    return runRollout({ prepared, engine, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(evidence), webhook: () => Promise.resolve(undefined) });
}

/**
 * A file engine that previews as a real `pulumi up` would plan: the program's own changes under the mocks, plus
 * `extra` ones (a pending change in the checkout) from the update numbered `from` on, less `missing` ones.
 */
class PreviewingEngine extends FileEngine {
    previews = 0;

    constructor(
        file: string,
        private readonly extra: readonly PlannedChange[] = [],
        private readonly from = 0,
        private readonly missing = false,
    ) {
        super(file);
    }

    async preview(edits: readonly ConfigEdit[]): Promise<PlannedChange[]> {
        const { config, secretKeys } = readStackFile(this.stackFile, P);
        const ops = { "+": "create", "~": "update", "-": "delete" } as const;
        const own = objectChanges(await runProgramWith("t", { ...config }, secretKeys), await runProgramWith("t", { ...applyEdits(config, edits) }, secretKeys)).map((c): PlannedChange => ({ op: ops[c.op], type: c.type, name: c.name }));
        return [...(this.missing ? [] : own), ...(this.previews++ >= this.from ? this.extra : [])];
    }
}

const ISTIOD_UPGRADE: PlannedChange = { op: "update", type: "kubernetes:helm.sh/v3:Release", name: "istiod", diffs: ["version", "values"] };

describe("stack file: the preview guard", () => {
    const guarded = async (engine: PreviewingEngine) => {
        const prepared = await prepareRollout(engine, "t", ["user-service"]);
        const { channel, held } = testChannel("t", ["user-service"], prepared.settings.rollout.steps);
        const outcome = await runRollout({ prepared, engine, signal: new AbortController().signal, onInterrupt: "rollback", channel, log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(GOOD), webhook: () => Promise.resolve(undefined) });
        return { outcome, held: await held() };
    };
    const fast = CATALOGUE.replace("minRequests: 10 }", "minRequests: 10, bakeTime: 0s }");

    it("stops before step 1 moves anything when the preview plans a change the step did not ask for, and names it", async () => {
        const file = stackFile(fast);
        const { outcome, held } = await guarded(new PreviewingEngine(file, [ISTIOD_UPGRADE]));
        assert.equal(outcome.kind, "stopped");
        assert.match(outcome.reason, /update kubernetes:helm\.sh\/v3:Release istiod \(version, values\): not a change of this step/);
        assert.match(outcome.reason, /nothing was changed\. Fix: undo those changes in the checkout .* then continue with npm run rollout -- resume --stack t/);
        assert.equal(fs.readFileSync(file, "utf8"), fast, "not a byte written");
        assert.equal(held?.stepIndex, 0, "held at step 1, for resume");
    });

    it("stops when the preview does not plan the step's own change", async () => {
        const { outcome } = await guarded(new PreviewingEngine(stackFile(fast), [], 0, true));
        assert.equal(outcome.kind, "stopped");
        assert.match(outcome.reason, /~ VirtualService backend\/user-service: this step's change, which the preview does not plan/);
    });

    it("never holds a failing candidate in traffic for it: a rollback goes ahead, saying what else it applied", async () => {
        const file = stackFile(fast);
        const engine = new PreviewingEngine(file, [ISTIOD_UPGRADE], 1);
        const lines: string[] = [];
        const prepared = await prepareRollout(engine, "t", ["user-service"]);
        const outcome = await runRollout({ prepared, engine, signal: new AbortController().signal, onInterrupt: "rollback", log: (l) => lines.push(l), clock: fakeClock(), evidence: () => Promise.resolve(BAD), webhook: () => Promise.resolve(undefined) });
        assert.equal(outcome.kind, "rolledBack", outcome.reason);
        assert.equal(valueAt(readStackFile(file, P).config, ["canaryWeight"]), "0");
        assert.match(lines.join("\n"), /The rollback also applies what the rollout did not ask for .*update kubernetes:helm\.sh\/v3:Release istiod/);
    });

    it("compares the properties an update changes: another edit of the same object is not this step's", () => {
        const route = { op: "~" as const, type: "kubernetes:networking.istio.io/v1:VirtualService", name: "user-service", label: "VirtualService backend/user-service", paths: ["spec.http[1].route[0].weight", "spec.http[1].route[1].weight"] };
        const planned = (diffs: string[]): PlannedChange[] => [{ op: "update", type: route.type, name: route.name, diffs }];
        assert.deepEqual(planMismatch([route], planned(["spec.http[1].route[0].weight", "spec.http[1].route[1].weight"])), []);
        // An engine that names only the top-level property, or a whole list, is on the way to the weights.
        assert.deepEqual(planMismatch([route], planned(["spec"])), []);
        assert.deepEqual(planMismatch([route], planned(["spec.http[1].retries.attempts"])), ["update kubernetes:networking.istio.io/v1:VirtualService user-service (spec.http[1].retries.attempts): properties this step does not change"]);
        // The program's own diff names the same paths: a weight step changes the two routes' weights and nothing else.
        assert.deepEqual(changedPaths({ spec: { http: [{ route: [{ weight: 95 }, { weight: 5 }] }], hosts: ["a"] } }, { spec: { http: [{ route: [{ weight: 90 }, { weight: 10 }] }], hosts: ["a"] } }), ["spec.http[0].route[0].weight", "spec.http[0].route[1].weight"]);
        assert.deepEqual(changedPaths({ metadata: { labels: { "app.kubernetes.io/name": "a" } } }, { metadata: { labels: { "app.kubernetes.io/name": "b" } } }), ['metadata.labels["app.kubernetes.io/name"]']);
    });

    it("previews against an edited copy of the stack file: the file itself is never set and put back", () => {
        const file = stackFile(fast);
        const copy = path.join(dir, "preview-copy.yaml");
        writeEditedCopy(file, [{ path: ["canaryWeight"], value: 20 }, { path: ["services", "user-service", "release"], value: "single" }], P, copy);
        assert.equal(fs.readFileSync(file, "utf8"), fast);
        const copied = readStackFile(copy, P).config;
        assert.deepEqual([valueAt(copied, ["canaryWeight"]), valueAt(copied, ["services", "user-service", "release"]), valueAt(copied, ["activeColor"])], ["20", "single", "blue"]);
        // An edit into a secure value is refused there too: only the Pulumi CLI encrypts.
        const secure = stackFile(`config:\n  ${P}:canaryWeight:\n    secure: v1:abc\n`);
        assert.throws(() => { writeEditedCopy(secure, [{ path: ["canaryWeight"], value: 5 }], P, copy); }, (e: unknown) => e instanceof StackFileError && /secure value/.test(e.problem));
    });

    it("lets every update through whose plan is exactly its own, promotion included; stops at the promotion if a change appears then", async () => {
        const exact = new PreviewingEngine(stackFile(fast));
        const promoted = await guarded(exact);
        assert.equal(promoted.outcome.kind, "promoted", promoted.outcome.reason);
        assert.equal(exact.previews, 4, "two steps, the move of every request, and the promotion");
        // A change that appears after the last step: the candidate keeps its last weight, held before the promotion.
        const file = stackFile(fast);
        const late = await guarded(new PreviewingEngine(file, [ISTIOD_UPGRADE], 2));
        assert.equal(late.outcome.kind, "stopped");
        assert.match(late.outcome.reason, /the stack stays as the last update left it \(before the promotion\)/);
        assert.equal(late.held?.stepIndex, 2);
        assert.equal(valueAt(readStackFile(file, P).config, ["canaryWeight"]), "50");
    });
});

describe("stack file: a held rollout resumes only under what it was judged by", () => {
    it("refuses --resume when the steps or the interval changed while held, and never promotes a candidate not proven and baked", async () => {
        const file = stackFile(CATALOGUE);
        const engine = new FileEngine(file);
        const fresh = await prepareRollout(engine, "t", ["user-service"]);
        const held: HeldRollout = { stack: "t", services: ["user-service"], targets: fresh.targets, stepIndex: 1, analysis: {}, heldAt: "2026-12-02T10:00:00Z", steps: [20, 50], intervalMs: 1000 };
        // Shortened to one step while held: the held step index would skip the proof step.
        fs.writeFileSync(file, CATALOGUE.replace("steps: [20, 50]", "steps: [20]"));
        await assert.rejects(prepareRollout(engine, "t", ["user-service"], held), (e: unknown) => e instanceof RolloutRefusal && /rollout\.steps = \[20\]: the held rollout was judged with rollout\.steps \[20,50\].*Fix: set it back/s.test(e.message));
        fs.writeFileSync(file, CATALOGUE.replace("interval: 1s", "interval: 10m"));
        await assert.rejects(prepareRollout(engine, "t", ["user-service"], held), (e: unknown) => e instanceof RolloutRefusal && /rollout\.interval = 10m: the held rollout was judged with rollout\.interval 1000ms/.test(e.message));
        // Held at the promotion with nothing proven (a state file edited by hand, or from before the steps were kept):
        // the driver itself refuses to promote.
        fs.writeFileSync(file, CATALOGUE);
        const atPromotion = { ...held, stepIndex: 2 };
        const prepared = await prepareRollout(engine, "t", ["user-service"], atPromotion);
        const outcome = await runRollout({ prepared, engine, resume: atPromotion, signal: new AbortController().signal, onInterrupt: "rollback", log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(GOOD), webhook: () => Promise.resolve(undefined) });
        assert.equal(outcome.kind, "rolledBack");
        assert.match(outcome.reason, /user-service reached the promotion without being shown no worse and baked/);
        assert.deepEqual(valueAt(readStackFile(file, P).config, ["services", "user-service", "versions"]), ["v1", "v2"], "not promoted");
    });
});

/** Appends a line inside `config:` (the file's last mapping), as a person editing the file would. */
const appendConfig = (file: string, lines: string) => { fs.appendFileSync(file, lines); };

describe("stack file: a rollout against the file as it is now", () => {
    it("keeps a service someone added during the rollout, and every comment, through the promotion", async () => {
        const file = stackFile(CATALOGUE);
        const engine = new FileEngine(file, (operation) => {
            if (operation === 3) appendConfig(file, `    # added while the canary ran\n    search-service: { path: /search, release: single, versions: [v1] }\n`);
        });
        const outcome = await rollOut(engine, GOOD);
        assert.equal(outcome.kind, "promoted", outcome.reason);
        const { config } = readStackFile(file, P);
        assert.deepEqual(valueAt(config, ["services", "search-service"]), { path: "/search", release: "single", versions: ["v1"] });
        assert.deepEqual(valueAt(config, ["services", "user-service"]), { path: "/users", release: "single", versions: ["v2"] });
        const text = fs.readFileSync(file, "utf8");
        for (const comment of ["# the team's stack", "# users: the canary", "# stable first", "# added while the canary ran"]) assert.ok(text.includes(comment), comment);
    });

    it("rolls out and promotes a service named like one of Object's own properties, canary or blue/green", async () => {
        const canary = stackFile(CATALOGUE.replace("    user-service:\n      path: /users", "    constructor:\n      path: /users"));
        assert.equal((await rollOut(new FileEngine(canary), GOOD, ["constructor"])).kind, "promoted");
        assert.deepEqual(valueAt(readStackFile(canary, P).config, ["services", "constructor"]), { path: "/users", release: "single", versions: ["v2"] });
        const blueGreen = stackFile(CATALOGUE.replace("    product-service:\n      path: /products", "    constructor:\n      path: /products"));
        const outcome = await rollOut(new FileEngine(blueGreen), GOOD, ["constructor"]);
        assert.equal(outcome.kind, "promoted", outcome.reason);
        const { config } = readStackFile(blueGreen, P);
        assert.equal(valueAt(config, ["activeColor"]), "green");
        assert.equal(valueAt(config, ["mirror", "constructor"]), undefined, "the mirror share back to none, as before");
    });

    it("stops (exit 2) when someone changes a key it owns: the rest is rolled back, their change is left as they set it", async () => {
        const file = stackFile(CATALOGUE);
        // Someone releases v2 and v3 by hand while the canary is at its first step.
        const engine = new FileEngine(file, (operation) => {
            if (operation === 3) fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("versions: [v1, v2] # stable first", "versions: [v2, v3]"));
        });
        const outcome = await rollOut(engine, GOOD);
        assert.equal(outcome.kind, "stopped");
        assert.match(outcome.reason, /services\.user-service\.versions changed in the stack since the rollout last wrote it/);
        const { config } = readStackFile(file, P);
        assert.deepEqual(valueAt(config, ["services", "user-service", "versions"]), ["v2", "v3"], "their release stands");
        assert.equal(valueAt(config, ["services", "user-service", "release"]), "canary", "not promoted over it");
        assert.equal(valueAt(config, ["canaryWeight"]), "0", "what the rollout moved is rolled back");
    });

    it("stops when a key it wrote is set back to what it was before (no write of its own is taken for it)", async () => {
        const file = stackFile(CATALOGUE);
        // Operation 3 is step 2's read: step 1 wrote the weight; someone sets it back to 0 by hand.
        const engine = new FileEngine(file, (operation) => {
            if (operation === 3) fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/canaryWeight: \S+/, "canaryWeight: 0 # rolled back by hand"));
        });
        const outcome = await rollOut(engine, GOOD);
        assert.equal(outcome.kind, "stopped", outcome.reason);
        assert.match(fs.readFileSync(file, "utf8"), /canaryWeight: 0 # rolled back by hand/);
    });

    it("keeps an edit made while it writes: the write is abandoned, the other edit stands", () => {
        const file = stackFile(CATALOGUE);
        const meanwhile: FileWriter = (fd, text) => {
            fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("activeColor: blue", "activeColor: green"));
            fs.writeSync(fd, text);
        };
        assert.throws(() => editStackFile(file, [{ path: ["canaryWeight"], value: 50 }], P, [], meanwhile), (e: unknown) => e instanceof StackFileWriteError && /changed while the rollout was writing it/.test(e.message));
        assert.deepEqual([valueAt(readStackFile(file, P).config, ["activeColor"]), valueAt(readStackFile(file, P).config, ["canaryWeight"])], ["green", 0]);
    });

    it("resumes a held rollout only if nobody changed its keys while it was held", async () => {
        const file = stackFile(CATALOGUE);
        const controller = new AbortController();
        const first = await prepareRollout(new FileEngine(file), "t", ["user-service"]);
        const stack = testChannel("t", ["user-service"], first.settings.rollout.steps);
        // Ctrl-C during step 1's wait, with --on-interrupt hold.
        const abortAtFirstSleep: Clock = { now: () => 0, sleep: () => { controller.abort(); return Promise.resolve(false); } };
        const outcome = await runRollout({ prepared: first, engine: new FileEngine(file), signal: controller.signal, onInterrupt: "hold", channel: stack.channel, log: () => undefined, clock: abortAtFirstSleep, evidence: () => Promise.resolve(GOOD), webhook: () => Promise.resolve(undefined) });
        assert.equal(outcome.kind, "held");
        const held = await stack.held();
        assert.ok(held !== undefined);
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/canaryWeight: \S+/, "canaryWeight: 0 # v2 is broken"));
        const engine = new FileEngine(file);
        const resumed = await runRollout({ prepared: await prepareRollout(engine, "t", ["user-service"], held), engine, signal: new AbortController().signal, onInterrupt: "rollback", resume: held, log: () => undefined, clock: fakeClock(), evidence: () => Promise.resolve(GOOD), webhook: () => Promise.resolve(undefined) });
        assert.equal(resumed.kind, "stopped", resumed.reason);
        assert.match(fs.readFileSync(file, "utf8"), /canaryWeight: 0 # v2 is broken/);
    });

    it("refuses to resume a held rollout whose release the stack no longer runs", async () => {
        const file = stackFile(CATALOGUE.replace("versions: [v1, v2] # stable first", "versions: [v2, v3]"));
        const engine = new FileEngine(file);
        const held = await prepareRollout(new FileEngine(stackFile(CATALOGUE)), "t", ["user-service"]);
        await assert.rejects(
            prepareRollout(engine, "t", ["user-service"], { stack: "t", services: ["user-service"], targets: held.targets, stepIndex: 1, analysis: {}, heldAt: "2026-12-02T00:00:00Z" }),
            (e: unknown) => e instanceof RolloutRefusal && /services\.user-service = v2 -> v3: the held rollout released v1 -> v2/.test(e.message) && /forget the held rollout \(pulumi stack tag rm rollout\.state/.test(e.message),
        );
    });

    it("refuses before step 1 a rollout that pushes an HTTPRoute past the Gateway API's 16 rules", async () => {
        const rules = Array.from({ length: 15 }, (_, i) => `      - { name: r${i}, headers: { x-r${i}: { exact: "1" } }, to: v2 }\n`).join("");
        const file = stackFile(`${CATALOGUE.replace("      versions: [v1, v2] # stable first\n", "      versions: [v1, v2] # stable first\n      stickyCanary: { cookie: canary, maxAge: 24h }\n")}  ${P}:trafficApi: gatewayApi\n  ${P}:routes:\n    user-service:\n${rules}`);
        // 15 rules and the release rule fit at weight 0; the sticky canary's rule, which a step above 0 adds, makes 17.
        readStackFile(file, P);
        const before = fs.readFileSync(file, "utf8");
        await assert.rejects(rollOut(new FileEngine(file), GOOD), (e: unknown) => e instanceof RolloutRefusal && /HTTPRoute in the mesh and at the edge would hold 17 rules.*allows 16.*\(in the config step 1 \(20%\) would apply\)/.test(e.message));
        assert.equal(fs.readFileSync(file, "utf8"), before);
    });
});

// What another person (or the machine) does to the file between two of the driver's operations.
type Interference =
    | { readonly kind: "addService" | "comment" | "unownedEdit" | "ownedWeight" | "ownedVersions" | "duplicateKey" | "alias" | "readOnly" }
    | { readonly kind: "diskFull" };

const INTERFERENCES: readonly Interference["kind"][] = ["addService", "comment", "unownedEdit", "ownedWeight", "ownedVersions", "duplicateKey", "alias", "readOnly", "diskFull"];

/** The keys a rollout of user-service and product-service may write: everything else must stay as others left it. */
const OWNED: readonly (readonly (string | number)[])[] = [["canaryWeight"], ["activeColor"], ["mirror"], ["services", "user-service", "versions"], ["services", "user-service", "release"], ["services", "user-service", "canaryWeight"], ["services", "user-service", "stickyCanary"]];

function withoutOwned(config: StackConfig): unknown {
    const copy = JSON.parse(JSON.stringify(config)) as Record<string, ConfigValue>;
    for (const owned of OWNED) {
        let parent: unknown = copy;
        for (const part of owned.slice(0, -1)) parent = typeof parent === "object" && parent !== null ? (parent as Record<string, unknown>)[part] : undefined;
        if (typeof parent === "object" && parent !== null) Reflect.deleteProperty(parent, owned[owned.length - 1]);
    }
    return copy;
}

/** A generated stack file: the catalogue in a given style, with more services, the weight where the stack keeps it. */
interface Shape {
    readonly extra: readonly string[];
    readonly blockVersions: boolean;
    readonly ownWeight: boolean;
    /** Indented by 4 spaces, not 2. */
    readonly indent4: boolean;
    /** Blank lines, and a line of spaces, between keys; two spaces after a colon. */
    readonly loose: boolean;
}
function generatedStack({ extra, blockVersions, ownWeight, indent4, loose }: Shape): string {
    let text = CATALOGUE + `  kubernetes:namespace: canary\n`;
    if (blockVersions) text = text.replace("      versions: [v1, v2] # stable first\n", "      versions: # stable first\n        - v1\n        - v2\n");
    if (ownWeight) text = text.replace("      release: canary\n", "      release: canary\n      canaryWeight: 0\n");
    text += extra.map((name, i) => `    ${name}: { path: /extra-${i}, release: single, versions: [v1] } # extra\n`).join("");
    if (loose) text = text.replace(`  ${P}:activeColor: blue\n`, `\n  ${P}:activeColor:  blue\n   \n`).replace(`  ${P}:services:\n`, `\n  ${P}:services:\n`);
    if (indent4) text = text.replace(/^( +)/gm, (spaces) => spaces + spaces);
    return text;
}
const shapes = fc.record({
    extra: fc.uniqueArray(fc.constantFrom("constructor", "on", "yes", "search-service", "cart"), { maxLength: 3 }),
    blockVersions: fc.boolean(),
    ownWeight: fc.boolean(),
    indent4: fc.boolean(),
    loose: fc.boolean(),
});

/** The whole file as data, every namespace's keys, with the keys the rollout owns left out of this project's. */
function wholeWithoutOwned(text: string): unknown {
    const whole = parseDocument(text).toJS() as { config: Record<string, unknown> };
    const project = Object.fromEntries(Object.entries(whole.config).filter(([key]) => key.startsWith(`${P}:`)).map(([key, value]) => [key.slice(P.length + 1), value]));
    const rest = Object.fromEntries(Object.entries(whole.config).filter(([key]) => !key.startsWith(`${P}:`)));
    return { ...whole, config: { ...rest, project: withoutOwned(project as StackConfig) } };
}

describe("stack file: rollouts interleaved with edits and faults (property)", () => {
    it("ends 0, 1 or 2, never throws, always leaves a file that reads (unless another hand broke it), and changes nothing it does not own", async () => {
        await fc.assert(
            fc.asyncProperty(
                shapes,
                fc.boolean(),
                fc.boolean(),
                fc.array(fc.record({ at: fc.nat(12), kind: fc.constantFrom(...INTERFERENCES) }), { maxLength: 3 }),
                async (shape, good, blueGreenToo, interferences) => {
                    const initial = generatedStack(shape);
                    const file = stackFile(initial);
                    fs.chmodSync(file, 0o644);
                    let othersText: string | undefined; // the file as the other hand left it, while it reads
                    let brokenByOthers = false;
                    const applied = new Set<Interference["kind"]>();
                    // Keys the rollout owns that the other hand set: the rollout must never write over them.
                    const theirs = new Map<string, { path: readonly (string | number)[]; value: unknown }>();
                    const act = (kind: Interference["kind"], operation: number) => {
                        const text = fs.readFileSync(file, "utf8");
                        const edits: Record<Exclude<Interference["kind"], "diskFull">, () => void> = {
                            addService: () => { fs.appendFileSync(file, `    search-service: { path: /search, release: single, versions: [v1] } # theirs\n`); },
                            comment: () => { fs.writeFileSync(file, text.replace("config:\n", "config:\n  # reviewed by the on-call\n")); },
                            unownedEdit: () => { fs.writeFileSync(file, text.replace(`${P}:previewHeader: x-preview`, `${P}:previewHeader: x-canary-preview`)); },
                            ownedWeight: () => { fs.writeFileSync(file, text.replace(/(canaryWeight: )\S+/, "$1'77'")); },
                            ownedVersions: () => { fs.writeFileSync(file, text.replace(/(user-service:\n {6}path: \/users\n {6}release: \w+\n {6}versions: )[^\n]*/, "$1[v2, v3]")); },
                            duplicateKey: () => { fs.writeFileSync(file, text.replace("config:\n", `config:\n  ${P}:replicas: 2\n  ${P}:replicas: 3\n`)); },
                            alias: () => { fs.writeFileSync(file, text.replace("config:\n", `config:\n  ${P}:faults: &f {}\n  ${P}:rateLimits: *f\n`)); },
                            readOnly: () => { fs.chmodSync(file, 0o444); },
                        };
                        if (kind === "diskFull") return;
                        edits[kind]();
                        applied.add(kind);
                        let othersConfig: StackConfig;
                        try {
                            othersConfig = readStackFile(file, P).config;
                            othersText = fs.readFileSync(file, "utf8");
                        } catch {
                            brokenByOthers = true;
                            return;
                        }
                        const owned = { ownedWeight: ["canaryWeight"], ownedVersions: ["services", "user-service", "versions"] }[kind as string];
                        // Operation 0 is the rollout's first read: a change before it is where the rollout starts from.
                        if (owned !== undefined && operation > 0 && fs.readFileSync(file, "utf8") !== text) theirs.set(owned.join("."), { path: owned, value: valueAt(othersConfig, owned) });
                    };
                    const faulty: FileWriter = (fd, text) => {
                        fs.writeSync(fd, text.slice(0, 10));
                        throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
                    };
                    const engine = new FileEngine(
                        file,
                        (operation) => { interferences.filter((i) => i.at === operation).forEach((i) => { act(i.kind, operation); }); },
                        (operation) => (interferences.some((i) => i.at === operation && i.kind === "diskFull") ? faulty : undefined),
                    );
                    let outcome: Outcome | undefined;
                    try {
                        outcome = await rollOut(engine, good ? GOOD : BAD, blueGreenToo ? ["user-service", "product-service"] : ["user-service"]);
                    } catch (error) {
                        // Refused before anything moved: only for a file another hand broke or made read-only before the start.
                        assert.ok(error instanceof StackFileError || error instanceof StackFileWriteError || error instanceof RolloutRefusal, String(error));
                        assert.equal(engine.written.length, 0);
                        return;
                    }
                    assert.ok(["promoted", "rolledBack", "stopped"].includes(outcome.kind), outcome.kind);
                    if (brokenByOthers) return;
                    const { config } = readStackFile(file, P);
                    const text = fs.readFileSync(file, "utf8");
                    assert.deepEqual(wholeWithoutOwned(text), wholeWithoutOwned(othersText ?? initial), "nothing the rollout does not own changed, in any namespace");
                    for (const [key, { path: at, value }] of theirs) assert.deepEqual(valueAt(config, at), value, `${key} as the other hand set it`);
                    assert.ok(text.includes("# users: the canary") && text.includes("# the team's stack"), "comments stay");
                    if (applied.has("comment")) assert.ok(text.includes("# reviewed by the on-call"), "their comment stays");
                    assert.equal(parseDocument(text).errors.length, 0);
                },
            ),
            { numRuns: 80, seed: 23 },
        );
    });
});
