// `npm run release` end to end with real parts: three stacks, each a cluster of its own with its own Prometheus
// (Debian's, on a loopback port, started by npm test) scraping its own exporter, whose traffic follows that
// stack's rendered routes; the train's entry point on the render engine, each stack's rollout `npm run rollout`
// itself, and Git (a clone of a bare remote for the pull-request path). Two waves: staging, then prod-eu and
// prod-us together. The scenarios run all at once, in the scenarios' mocha.
import { strict as assert } from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { main } from "../../scripts/release";
import { readTrainState, TrainState } from "../../rollout/train-runner";
import { MeshMetricsExporter, VersionBehaviour, waitForSeries } from "../support/mesh-metrics";

const PROJECT = "istio-progressive-delivery";
const STACKS = ["staging", "prod-eu", "prod-us"] as const;
type Stack = (typeof STACKS)[number];
const HEALTHY: VersionBehaviour = { errorRate: 0, latencyMs: 40 };
const FAILING: VersionBehaviour = { errorRate: 0.3, latencyMs: 40 };
const IMAGE = "ghcr.io/acme/shop:2.0.0";

/** One cluster per stack: its Prometheus, and the exporter it scrapes. */
interface Cluster {
    readonly prometheus: string;
    readonly exporter: MeshMetricsExporter;
}
const clusters = new Map<Stack, Cluster>();

interface Scenario {
    readonly name: string;
    /** How v2 behaves on each stack (healthy unless given). */
    readonly candidate?: Partial<Record<Stack, VersionBehaviour>>;
    readonly returnEarlierWaves?: boolean;
}

interface Result {
    readonly codes: readonly number[];
    readonly log: string;
    readonly dir: string;
    readonly remote?: string;
}

const git = (dir: string, ...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

function stackFile(scenario: Scenario, stack: Stack): string {
    const config = {
        platform: "kind",
        observability: false,
        appNamespace: `${scenario.name}-${stack}`,
        services: { shop: { path: "/shop", release: "single", versions: ["v1"] } },
        rollout: { steps: [25, 100], interval: "2s", prometheusUrl: clusters.get(stack)?.prometheus, analysis: { minRequests: 10, failedChecks: 2, progressDeadline: "60s", errorMargin: 10, bakeTime: "0s" } },
    };
    return stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, v])) });
}

const TRAIN = (returnEarlierWaves: boolean) =>
    stringify({ waves: [{ name: "staging", stacks: ["staging"], bake: "4s" }, { name: "production", stacks: ["prod-eu", "prod-us"], bake: "4s" }], returnEarlierWaves });

/** The project folder: three stack files and the train, committed; each stack's traffic served. */
async function project(scenario: Scenario, remote?: string): Promise<string> {
    let dir: string;
    if (remote === undefined) {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), `train-${scenario.name}-`));
        git(dir, "init", "--quiet", "--initial-branch", "main");
    } else {
        execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch", "main", remote]);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), `train-${scenario.name}-clone-`));
        execFileSync("git", ["clone", "--quiet", remote, dir], { stdio: "ignore" });
    }
    git(dir, "config", "user.name", "train test");
    git(dir, "config", "user.email", "train@example.com");
    fs.writeFileSync(path.join(dir, ".gitignore"), ".rollout/\nrendered/\n");
    fs.writeFileSync(path.join(dir, "release-train.yaml"), TRAIN(scenario.returnEarlierWaves ?? false));
    for (const stack of STACKS) fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), stackFile(scenario, stack));
    git(dir, "add", ".");
    git(dir, "commit", "--quiet", "-m", "stacks and their train");
    if (remote !== undefined) git(dir, "push", "--quiet", "origin", "main");
    for (const stack of STACKS) {
        const cluster = clusters.get(stack);
        if (cluster === undefined) throw new Error(`no cluster for ${stack}`);
        await cluster.exporter.add({ namespace: `${scenario.name}-${stack}`, app: "shop", requestsPerSecond: 600, versions: { v1: HEALTHY, v2: scenario.candidate?.[stack] ?? HEALTHY }, renderDir: path.join(dir, "rendered", stack), stable: "v1" });
    }
    await Promise.all(STACKS.map((stack) => waitForSeries(clusters.get(stack)?.prometheus ?? "", `${scenario.name}-${stack}`)));
    return dir;
}

async function release(dir: string, args: readonly string[], signal = new AbortController().signal): Promise<{ code: number; log: string }> {
    const lines: string[] = [];
    const code = await main(["--cwd", dir, "--engine", "render", "--actor", "train test", ...args], (l) => lines.push(l), (l) => lines.push(l), signal);
    return { code, log: lines.join("\n") };
}

const START = ["--service", "shop", "--version", "v2", "--image", IMAGE];

/** `npm run release` as a process of its own (the compiled entry point), killed with SIGKILL once `kill` holds of its state. */
function killedWhen(dir: string, kill: (s: TrainState) => boolean): Promise<{ code: number | null; log: string }> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(__dirname, "..", "..", "scripts", "release.js"), "--cwd", dir, "--engine", "render", "--actor", "train test", ...START]);
        let log = "";
        child.stdout.on("data", (d: Buffer) => (log += d.toString()));
        child.stderr.on("data", (d: Buffer) => (log += d.toString()));
        const poll = setInterval(() => {
            let state: TrainState | undefined;
            try {
                state = readTrainState(dir);
            } catch {
                return;
            }
            if (state !== undefined && kill(state)) {
                clearInterval(poll);
                child.kill("SIGKILL");
            }
        }, 100);
        child.on("close", (code) => {
            clearInterval(poll);
            resolve({ code, log });
        });
    });
}

const plays = new Map<string, Promise<Result>>();

async function direct(scenario: Scenario): Promise<Result> {
    const dir = await project(scenario);
    const { code, log } = await release(dir, START);
    return { codes: [code], log, dir };
}

/** Killed (as a lost CI runner is) while wave 2's rollouts run; --resume, in another process, finishes the train. */
async function interrupted(scenario: Scenario): Promise<Result> {
    const dir = await project(scenario);
    // Two seconds after both prod stacks are boarded: their rollouts are under way.
    let boardedAt: number | undefined;
    const killed = await killedWhen(dir, (s) => {
        if (s.stacks["prod-eu"].status === "boarded" && s.stacks["prod-us"].status === "boarded") boardedAt ??= Date.now();
        return boardedAt !== undefined && Date.now() - boardedAt > 2000;
    });
    const stateWhenKilled = readTrainState(dir);
    const resumed = await release(dir, ["--resume"]);
    return { codes: [killed.code ?? -9, resumed.code], log: [`--- killed (${String(killed.code)}), state ${JSON.stringify(stateWhenKilled?.waves)}:`, killed.log, "--- resumed:", resumed.log].join("\n"), dir };
}

/** By pull requests against a bare remote: propose wave 1, merge it, `merged` rolls it out and proposes wave 2; merge that, and `merged` finishes. */
async function byPullRequests(scenario: Scenario): Promise<Result> {
    const remote = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "train-remote-")), "platform.git");
    const dir = await project(scenario, remote);
    const logs: string[] = [];
    const codes: number[] = [];
    const step = async (args: string[]) => {
        const r = await release(dir, args);
        codes.push(r.code);
        logs.push(`--- ${args.join(" ")} (${r.code}):`, r.log);
    };
    const merge = (branch: string) => {
        git(dir, "fetch", "--quiet", "origin");
        git(dir, "merge", "--quiet", "--no-ff", "-m", `Merge ${branch}`, `origin/${branch}`);
        git(dir, "push", "--quiet", "origin", "main");
    };
    const output = path.join(dir, "..", `${path.basename(dir)}-pr.json`);
    await step(["propose", ...START, "--push", "--output", output]);
    logs.push(`--- pr: ${fs.readFileSync(output, "utf8")}`);
    logs.push(`--- remote after propose: ${git(remote, "branch", "--list")}`);
    merge("release/shop-v2-staging");
    await step(["merged", "--push", "--output", output]);
    logs.push(`--- pr: ${fs.readFileSync(output, "utf8")}`);
    logs.push(`--- remote after wave 1: ${git(remote, "branch", "--list")}`);
    merge("release/shop-v2-production");
    await step(["merged", "--push"]);
    // A branch left from an earlier train is never reused.
    git(dir, "branch", "release/shop-v3-staging");
    await step(["propose", "--service", "shop", "--version", "v3", "--image", IMAGE]);
    return { codes, log: logs.join("\n"), dir, remote };
}

const SCENARIOS: readonly (Scenario & { readonly play: (s: Scenario) => Promise<Result> })[] = [
    { name: "healthy", play: direct },
    { name: "wave2-fails", candidate: { "prod-us": FAILING }, play: direct },
    { name: "wave2-fails-return", candidate: { "prod-us": FAILING }, returnEarlierWaves: true, play: direct },
    { name: "interrupted", play: interrupted },
    { name: "pull-requests", play: byPullRequests },
];

const result = (name: string): Promise<Result> => plays.get(name) ?? Promise.reject(new Error(`no scenario ${name}`));
const shop = (r: Result, stack: Stack): unknown => (parse(fs.readFileSync(path.join(r.dir, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, { shop: unknown }> }).config[`${PROJECT}:services`].shop;
const PROMOTED = { path: "/shop", release: "single", versions: [{ name: "v2", image: IMAGE }] };
const BEFORE = { path: "/shop", release: "single", versions: ["v1"] };
const state = (r: Result) => readTrainState(r.dir);
const clean = (r: Result) => git(r.dir, "status", "--porcelain", "--", "Pulumi.staging.yaml", "Pulumi.prod-eu.yaml", "Pulumi.prod-us.yaml", ".release") === "";
/** What the stack's exporter served v2 at most, in percent of live requests: what its users saw. */
const maxV2 = async (scenario: string, stack: Stack) => (await clusters.get(stack)?.exporter.stats(`${scenario}-${stack}`, "shop"))?.maxLivePercent.v2 ?? 0;

describe("npm run release: a train across three stacks in two waves, each with its own Prometheus", function () {
    this.timeout(240_000);

    before(async () => {
        const urls = (process.env.TRAIN_TEST_PROMETHEUS ?? "").split(",");
        const ports = (process.env.TRAIN_TEST_EXPORTER_PORTS ?? "").split(",").map(Number);
        if (urls.length !== 3 || ports.length !== 3) throw new Error("The train scenarios need the three Prometheus that npm test starts: run them with npm test");
        for (const [i, stack] of STACKS.entries()) {
            const exporter = new MeshMetricsExporter();
            await exporter.start(ports[i]);
            clusters.set(stack, { prometheus: urls[i], exporter });
        }
        for (const s of SCENARIOS) {
            const play = s.play(s);
            // Awaited by its test; a rejection is reported there, not as an unhandled one here.
            play.catch(() => undefined);
            plays.set(s.name, play);
        }
    });

    after(async () => {
        await Promise.allSettled(plays.values());
        for (const c of clusters.values()) await c.exporter.stop();
    });

    it("carries a healthy candidate through both waves: every stack promoted with the same version and image, each change committed", async () => {
        const r = await result("healthy");
        assert.deepEqual(r.codes, [0], r.log);
        for (const stack of STACKS) assert.deepEqual(shop(r, stack), PROMOTED, stack);
        const s = state(r);
        assert.equal(s?.phase, "done");
        assert.deepEqual(s?.waves.map((w) => w.status), ["done", "done"]);
        assert.deepEqual(STACKS.map((stack) => s?.stacks[stack].status), ["promoted", "promoted", "promoted"]);
        assert.ok(clean(r), "every stack file and the state committed");
        const subjects = git(r.dir, "log", "--format=%s").split("\n");
        // Staging first, alone; production's two stacks only after staging was baked.
        const at = (pattern: RegExp) => subjects.findIndex((l) => pattern.test(l));
        assert.ok(at(/^rollout\(staging\): shop promoted/) > at(/wave staging released/), subjects.join("\n"));
        assert.ok(at(/wave staging released/) > at(/board prod-eu/), subjects.join("\n"));
        assert.ok(at(/^rollout\(prod-eu\): shop promoted/) >= 0 && at(/^rollout\(prod-us\): shop promoted/) >= 0);
        assert.match(r.log, /wave staging promoted on staging; baking 4s/);
        for (const stack of STACKS) assert.equal(await maxV2("healthy", stack), 100, stack);
    });

    it("stops at a failure in wave 2: the wave rolled back and its candidate taken off, wave 1 keeping the version", async () => {
        const r = await result("wave2-fails");
        assert.deepEqual(r.codes, [1], r.log);
        assert.deepEqual(shop(r, "staging"), PROMOTED);
        assert.deepEqual(shop(r, "prod-us"), BEFORE);
        assert.deepEqual(shop(r, "prod-eu"), BEFORE, "the sibling stack goes back too");
        const s = state(r);
        assert.equal(s?.phase, "failed");
        assert.deepEqual(s?.waves.map((w) => w.status), ["done", "failed"]);
        assert.equal(s?.stacks.staging.status, "promoted");
        assert.match(r.log, /prod-us's rollout rolled back: rolling back the rest of wave production/);
        assert.match(r.log, /stopped; staging keep v2/);
        assert.ok(clean(r));
        assert.ok((await maxV2("wave2-fails", "prod-us")) < 100, "prod-us never served v2 alone");
    });

    it("returns wave 1 too when the train says so: the version before serving again, through a safe sequence of updates", async () => {
        const r = await result("wave2-fails-return");
        assert.deepEqual(r.codes, [1], r.log);
        for (const stack of STACKS) assert.deepEqual(shop(r, stack), BEFORE, stack);
        const s = state(r);
        assert.deepEqual(s?.waves.map((w) => w.status), ["returned", "failed"]);
        assert.equal(s?.stacks.staging.status, "returned");
        // v1 back beside v2 first, then every request to it, then v2 removed.
        assert.match(r.log, /staging: v1 back beside v2, at weight 0\n(.*\n)*.*staging: every request to v1\n(.*\n)*.*staging: shop's entry as before the train/);
        assert.ok(clean(r));
    });

    it("resumes a train whose process was killed mid-wave: the rollouts under way taken over, the train finished", async () => {
        const r = await result("interrupted");
        assert.equal(r.codes[1], 0, r.log);
        assert.notEqual(r.codes[0], 0, "the first process was killed");
        for (const stack of STACKS) assert.deepEqual(shop(r, stack), PROMOTED, stack);
        assert.match(r.log, /--- killed \(null\), state \[\{"status":"done"[^}]*\},\{"status":"rolling"\}\]/);
        assert.match(r.log, /--- resumed:(.*\n)*.*continuing its rollout/);
        assert.equal(state(r)?.phase, "done");
        assert.ok(clean(r));
    });

    it("goes by pull requests: each wave a branch on the remote, merged, rolled out, and the next wave proposed", async () => {
        const r = await result("pull-requests");
        assert.deepEqual(r.codes, [4, 4, 0, 2], r.log);
        assert.match(r.log, /Branch release\/shop-v3-staging already exists here .*: wave staging is not proposed\. Fix: once its pull request is closed, delete it \(git branch -D release\/shop-v3-staging\), then run this again/);
        const remote = r.remote ?? "";
        const branches = git(remote, "branch", "--list", "--format=%(refname:short)").split("\n").sort();
        assert.deepEqual(branches, ["main", "release/shop-v2-production", "release/shop-v2-staging"]);
        // Each wave's branch changes that wave's stack files and the train's state, nothing else.
        const changed = (branch: string) => git(remote, "diff", "--name-only", `${branch}~1`, branch).split("\n").sort();
        assert.deepEqual(changed("release/shop-v2-staging"), [".release/train.json", "Pulumi.staging.yaml"]);
        assert.deepEqual(changed("release/shop-v2-production"), [".release/train.json", "Pulumi.prod-eu.yaml", "Pulumi.prod-us.yaml"]);
        assert.match(git(remote, "log", "-1", "--format=%B", "release/shop-v2-production"), /^release\(shop v2\): wave production \(prod-eu, prod-us\)\n\n- prod-eu: v1 \+ v2 \(canary at weight 0\)\n- prod-us: v1 \+ v2/);
        assert.match(r.log, /--- pr: \{"branch":"release\/shop-v2-production","wave":"production","gate":"automatic","title":"release\(shop v2\): wave production \(prod-eu, prod-us\)"/);
        // Main on the remote holds every outcome: the train done, each stack promoted.
        git(r.dir, "fetch", "--quiet", "origin");
        assert.equal(git(r.dir, "rev-parse", "origin/main"), git(r.dir, "rev-parse", "HEAD"));
        const remoteState = JSON.parse(git(remote, "show", "main:.release/train.json")) as TrainState;
        assert.equal(remoteState.phase, "done");
        for (const stack of STACKS) assert.deepEqual((parse(git(remote, "show", `main:Pulumi.${stack}.yaml`)) as { config: Record<string, { shop: unknown }> }).config[`${PROJECT}:services`].shop, PROMOTED, stack);
    });
});
