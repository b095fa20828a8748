// The release train's pure parts: its file checked like every key, what boarding a candidate writes to a stack,
// and the updates that take it off again, each checked against how Pulumi applies an update (in any order within
// it): a version takes requests only if it ran before the update, and is removed only if it took none before it.
import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stringify } from "yaml";
import { readSettings } from "../components/config/config";
import { planTraffic } from "../components/plan/plan";
import { PROJECT_ROOT, stackConfig, stackNames } from "../lib/mock-program";
import { main, parseReleaseArgs } from "../scripts/release";
import { newTrainState, readTrainState, writeTrainState } from "../rollout/train-runner";
import { applyEdits, asStackConfig, configSource, StackConfig } from "../rollout/config-edit";
import { BoardingRefusal, boardingEdits, Candidate, returnPhases } from "../rollout/train";
import { parseTrain, TrainConfigError, TRAIN_FILE } from "../rollout/train-config";

const STACKS = ["staging", "prod-eu", "prod-us"];
const CANDIDATE: Candidate = { service: "user-service", version: "v3", image: "ghcr.io/acme/user:3.0.0" };
const stackOf = (name: string) => asStackConfig(stackConfig(name));
const single: StackConfig = { services: { "user-service": { path: "/users", release: "single", versions: ["v2"] } } };
const settingsOf = (config: StackConfig) => readSettings(configSource(config));
const board = (config: StackConfig, candidate = CANDIDATE) => boardingEdits("staging", "istio-progressive-delivery", settingsOf(config), config, [], candidate);

function refusal(fn: () => unknown): string {
    try {
        fn();
    } catch (error) {
        if (error instanceof TrainConfigError || error instanceof BoardingRefusal) return error.message;
        throw error;
    }
    throw new Error("expected a refusal");
}

/** Each version's share of the service's release split (a blue/green color read as its version). */
function shares(config: StackConfig, service: string): Map<string, number> {
    const s = planTraffic(settingsOf(config)).services.find((x) => x.name === service);
    const version = (subset: string) => s?.subsets.find((sub) => sub.name === subset)?.version ?? subset;
    return new Map(Object.entries(s?.split ?? {}).map(([subset, weight]) => [version(subset), weight]));
}
const running = (config: StackConfig, service: string) => new Set(planTraffic(settingsOf(config)).services.find((x) => x.name === service)?.subsets.map((s) => s.version));

/** Every subset some rule (a route, a preview, the sticky cookie, the split; at the edge or in the mesh) sends requests to, with the version it selects. */
function targeted(config: StackConfig, service: string): Map<string, string | undefined> {
    const s = planTraffic(settingsOf(config)).services.find((x) => x.name === service);
    const subsets = [...(s?.rules ?? []), ...(s?.ingressRules ?? [])].flatMap((r) => r.destinations.filter((d) => d.weight > 0).map((d) => d.subset));
    return new Map(subsets.map((subset) => [subset, s?.subsets.find((sub) => sub.name === subset)?.version]));
}

/**
 * Every update from `config` through the edits, in order. Pulumi applies an update's changes in an order of its own
 * (a DestinationRule before or after the routes that name its subsets), so every subset that takes requests before
 * or after an update must select the same version on both sides of it, running on both sides.
 */
function checkUpdates(config: StackConfig, updates: readonly (readonly Parameters<typeof applyEdits>[1][number][])[], service: string): StackConfig {
    let before = config;
    for (const [i, edits] of updates.entries()) {
        const after = applyEdits(before, edits);
        const was = targeted(before, service);
        const will = targeted(after, service);
        const subsetsBefore = new Map(planTraffic(settingsOf(before)).services.find((x) => x.name === service)?.subsets.map((sub) => [sub.name, sub.version]));
        const subsetsAfter = new Map(planTraffic(settingsOf(after)).services.find((x) => x.name === service)?.subsets.map((sub) => [sub.name, sub.version]));
        for (const subset of new Set([...was.keys(), ...will.keys()])) {
            const [v1, v2] = [subsetsBefore.get(subset), subsetsAfter.get(subset)];
            assert.ok(v1 !== undefined && v1 === v2, `update ${i + 1}: subset ${subset} takes requests ${was.has(subset) ? "before" : "after"} the update and selects ${v1 ?? "nothing"} before it, ${v2 ?? "nothing"} after`);
            assert.ok(running(before, service).has(v1) && running(after, service).has(v1), `update ${i + 1}: ${v1} does not run on both sides`);
        }
        before = after;
    }
    return before;
}

describe("release train: the train file", () => {
    it("reads waves with their stacks, bake and gate; returnEarlierWaves defaults to false", () => {
        const train = parseTrain("waves:\n  - { name: staging, stacks: [staging], bake: 10m }\n  - { name: prod, stacks: [prod-eu, prod-us], gate: approval }\n", STACKS);
        assert.deepEqual(train, {
            waves: [
                { name: "staging", stacks: ["staging"], bakeMs: 600_000, bake: "10m", gate: "automatic" },
                { name: "prod", stacks: ["prod-eu", "prod-us"], bakeMs: 0, bake: "0s", gate: "approval" },
            ],
            returnEarlierWaves: false,
        });
    });

    it("the project's own train names its stacks", () => {
        const train = parseTrain(fs.readFileSync(path.join(PROJECT_ROOT, TRAIN_FILE), "utf8"), stackNames());
        assert.deepEqual(train.waves.map((w) => w.stacks), [["dev"], ["staging"], ["prod"]]);
    });

    it("refuses, all at once and each by its field: an unknown stack, a stack twice, a bad bake, a gate on the first wave, an unknown field", () => {
        const message = refusal(() => parseTrain("wave: 1\nreturnEarlierWaves: yes\nwaves:\n  - { name: staging, stacks: [stagin], gate: approval, bake: 10 }\n  - { name: Prod, stacks: [prod-eu, prod-eu], gate: manual }\n", STACKS));
        for (const expected of [
            /- wave = 1: unknown field \(did you mean waves\?\)/,
            /- returnEarlierWaves = "yes": must be true/,
            /- waves\[0\]\.stacks\[0\] = "stagin": is not a stack of this project .*\(did you mean staging\?\)/,
            /- waves\[0\]\.gate = "approval": is the first wave's/,
            /- waves\[0\]\.bake = 10: must be a duration from 0s to 24h/,
            /- waves\[1\]\.name = "Prod": must be a name of lowercase letters/,
            /- waves\[1\]\.stacks\[1\] = "prod-eu": is already in waves\[1\]/,
            /- waves\[1\]\.gate = "manual": must be automatic .* or approval/,
        ]) {
            assert.match(message, expected);
        }
        assert.match(message, /^Invalid release train in release-train\.yaml \(8 problems\); nothing was changed:/);
        assert.match(refusal(() => parseTrain("waves: []\n", STACKS)), /- waves = \[\]: must be a list of one or more waves/);
        assert.match(refusal(() => parseTrain("waves: [\n", STACKS)), /must be YAML/);
    });
});

describe("release train: boarding a candidate", () => {
    const single: StackConfig = { services: { "user-service": { path: "/users", release: "single", versions: [{ name: "v2", replicas: 2 }] } } };

    it("puts a new version beside a single one as a canary at its own weight 0, with the image pinned and the stable's own fields", () => {
        const { edits, before, summary } = board(single);
        const after = applyEdits(single, edits);
        assert.deepEqual((after.services as Record<string, unknown>)["user-service"], { path: "/users", release: "canary", versions: [{ name: "v2", replicas: 2 }, { name: "v3", replicas: 2, image: CANDIDATE.image }], canaryWeight: 0 });
        assert.deepEqual([...shares(after, "user-service")], [["v2", 100], ["v3", 0]]);
        assert.equal(before.serving, "v2");
        assert.equal(summary, "v2 + v3 (canary at weight 0)");
    });

    it("replaces a canary's candidate at weight 0, and the rules that sent testers to it follow the new one", () => {
        const config = stackOf("prod");
        const after = applyEdits(config, board(config).edits);
        const routes = (after.routes as Record<string, { to: string }[]>)["user-service"];
        assert.deepEqual(routes.map((r) => r.to), ["v3"]);
        assert.deepEqual([...running(after, "user-service")], ["v1", "v3"]);
        assert.deepEqual([...shares(after, "user-service")], [["v1", 100], ["v3", 0]]);
    });

    it("writes a blue/green service's new version into its idle color", () => {
        const config = stackOf("staging");
        const after = applyEdits(config, board(config, { ...CANDIDATE, service: "product-service" }).edits);
        assert.deepEqual([...shares(after, "product-service")], [["v1", 100], ["v3", 0]]);
    });

    it("refuses a canary whose candidate serves, and a version the stack already runs, naming the key and the fix", () => {
        assert.match(refusal(() => board(stackOf("staging"))), /- canaryWeight = 10: puts 10% of user-service's requests on its candidate v2 on stack staging: a release is under way there.*\n {4}Fix: finish it first .*pulumi config set canaryWeight 0 && pulumi up/);
        assert.match(refusal(() => board(single, { ...CANDIDATE, version: "v2" })), /- --version = "v2": stack staging already runs user-service v2 .*\n {4}Fix: name the new version \(--version v3\)/);
        assert.match(refusal(() => board(single, { ...CANDIDATE, service: "cart" })), /- --service = "cart": is not a service of stack staging/);
    });
});

describe("release train: rules that send requests to the version replaced", () => {
    it("points them at the serving version for the update that replaces it, then back: blue/green's idle color with its region rule and preview header", () => {
        const config = stackOf("dev");
        const candidate = { ...CANDIDATE, service: "product-service" };
        const { updates } = board(config, candidate);
        assert.deepEqual(updates.map((u) => u.label), ["product-service's rules to the versions that keep running, before: board v3", "board v3", "product-service's rules back, after: board v3"]);
        const end = checkUpdates(config, updates.map((u) => u.edits), "product-service");
        assert.deepEqual(end, applyEdits(config, board(config, candidate).edits), "the end is the boarded config");
        // As one update, the region rule and the preview would reach green while it changes version.
        assert.throws(() => checkUpdates(config, [board(config, candidate).edits], "product-service"), /subset green takes requests before the update and selects v2 before it, v3 after/);
    });

    it("a canary's tester rules and sticky cookie follow the replaced candidate only once the new one runs, on the way in and back out", () => {
        const config = applyEdits(stackOf("dev"), [{ path: ["canaryWeight"], value: 0 }]);
        const { updates, before } = board(config);
        assert.equal(updates.length, 3);
        const boarded = checkUpdates(config, updates.map((u) => u.edits), "user-service");
        assert.deepEqual((boarded.routes as Record<string, { to: string }[]>)["user-service"].map((r) => r.to), ["v3", "v3", "v3"]);
        // Rolled back (weight 0), then taken off: the rules go back to v2 only once v2 runs again.
        const restored = checkUpdates(boarded, returnPhases(CANDIDATE, before, boarded, [], false).map((u) => u.edits), "user-service");
        assert.deepEqual([restored.routes, (restored.services as Record<string, unknown>)["user-service"]], [config.routes, before.entry]);
        const sticky = applyEdits(single, [{ path: ["services", "user-service", "release"], value: "canary" }, { path: ["services", "user-service", "versions", 1], value: "v2b" }, { path: ["services", "user-service", "canaryWeight"], value: 0 }, { path: ["services", "user-service", "stickyCanary"], value: { cookie: "canary", maxAge: "1h" } }]);
        checkUpdates(sticky, board(sticky).updates.map((u) => u.edits), "user-service");
    });
});

describe("release train: taking a candidate off, update by update", () => {
    const single: StackConfig = { services: { "user-service": { path: "/users", release: "single", versions: ["v2"] } } };

    it("returns a promoted canary: the old version back at weight 0, then every request to it, then the entry as it was; no update routes to a version not yet running or removes one serving", () => {
        const { edits, before } = board(single);
        const boarded = applyEdits(single, edits);
        // What the rollout's promotion leaves: the candidate alone.
        const promoted = applyEdits(boarded, [{ path: ["services", "user-service"], value: { path: "/users", release: "single", versions: [{ name: "v3", image: CANDIDATE.image }] } }]);
        const phases = returnPhases(CANDIDATE, before, promoted, [], true);
        assert.equal(phases.length, 3);
        const end = checkUpdates(promoted, phases.map((p) => p.edits), "user-service");
        assert.deepEqual(end.services, single.services);
    });

    it("returns a promoted blue/green service by its color first, and restores a candidate that never served in one update", () => {
        const config = stackOf("staging");
        const candidate = { ...CANDIDATE, service: "product-service" };
        const { edits, before } = board(config, candidate);
        const promoted = applyEdits(applyEdits(config, edits), [{ path: ["activeColor"], value: "green" }]);
        const end = checkUpdates(promoted, returnPhases(candidate, before, promoted, [], true).map((p) => p.edits), "product-service");
        assert.deepEqual([end.activeColor, (end.services as Record<string, unknown>)["product-service"]], [config.activeColor, before.entry]);
        assert.deepEqual(settingsOf(end).services, settingsOf(config).services, "the catalogue written out is the default one");
        const rolledBack = applyEdits(single, board(single).edits);
        const restored = checkUpdates(rolledBack, returnPhases(CANDIDATE, board(single).before, rolledBack, [], false).map((p) => p.edits), "user-service");
        assert.deepEqual(restored.services, single.services);
    });

    it("the model catches an unsafe return: removing a promoted canary's only version in one update", () => {
        const { edits, before } = board(single);
        const promoted = applyEdits(applyEdits(single, edits), [{ path: ["services", "user-service"], value: { path: "/users", release: "single", versions: [{ name: "v3", image: CANDIDATE.image }] } }]);
        assert.throws(() => checkUpdates(promoted, [[{ path: ["services", "user-service"], value: before.entry }]], "user-service"), /update 1: subset v3 takes requests before the update and selects v3 before it, nothing after/);
    });
});

describe("release train: the command line", () => {
    /** What parsing the flags says: the refusal's message, or accepted. */
    const usage = (argv: string[]) => {
        try {
            parseReleaseArgs(argv);
        } catch (error) {
            return error instanceof Error ? error.message : String(error);
        }
        return "accepted";
    };

    it("refuses bad flags before anything moves, naming the flag and the fix", () => {
        assert.match(usage(["--service", "user-service", "--version", "V3"]), /--version "V3": must be a version label.*Fix: --version v3/);
        assert.match(usage(["--service", "user-service", "--version", "v3", "--image", "ghcr.io/acme/user"]), /--image "ghcr.io\/acme\/user": .*Fix: --image /);
        assert.match(usage(["--version", "v3"]), /--service is required/);
        assert.match(usage(["approve"]), /--reason is required by approve/);
        assert.match(usage(["status", "--push"]), /--push does not apply to status/);
        assert.equal(usage(["merged", "--push"]), "accepted");
    });

    it("refuses a flag given twice, control characters and a moving tag", () => {
        assert.match(usage(["--service", "shop", "--version", "v2", "--version", "v3"]), /^--version is given twice/);
        assert.match(usage(["approve", "--reason", "ok\u001b[2Jdone"]), /^--reason "ok\\u001b\[2Jdone": has control or invisible characters.*Fix: --reason "ok \[2Jdone"/);
        assert.match(usage(["--service", "shop", "--version", "v2", "--image", "nginx:latest"]), /^--image "nginx:latest": pins the tag latest, which moves/);
    });

    /** A project in a Git repository: a train of two waves over staging and prod, its stack files, committed. */
    function project(): string {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "release-cli-"));
        const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "ignore" });
        git("init", "--quiet");
        git("config", "user.name", "t");
        git("config", "user.email", "t@example.com");
        fs.writeFileSync(path.join(dir, TRAIN_FILE), "waves: [{ name: staging, stacks: [staging] }, { name: prod, stacks: [prod], gate: approval }]\n");
        for (const stack of ["staging", "prod"]) fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), stringify({ config: { "istio-progressive-delivery:services": { shop: { path: "/shop", release: "single", versions: ["v1"] } } } }));
        git("add", ".");
        git("commit", "--quiet", "-m", "project");
        return dir;
    }
    const run = async (dir: string, argv: string[]) => {
        const lines: string[] = [];
        const code = await main(["--cwd", dir, "--engine", "render", ...argv], (l) => lines.push(l), (l) => lines.push(l), new AbortController().signal);
        return { code, out: lines.join("\n"), head: execFileSync("git", ["-C", dir, "rev-parse", "HEAD"], { encoding: "utf8" }) };
    };

    it("approve checks the waiting wave's stacks again: one that changed meanwhile keeps the train at its gate, nothing committed", async () => {
        const dir = project();
        // A train that released staging and waits at prod's gate, as its state says.
        const state = newTrainState("shop-v2-test", { service: "shop", version: "v2", image: "ghcr.io/acme/shop:2.0.0" }, parseTrain(fs.readFileSync(path.join(dir, TRAIN_FILE), "utf8"), ["prod", "staging"]), new Date());
        Object.assign(state, { phase: "awaitingApproval", wave: 1 });
        state.waves[0].status = "done";
        state.stacks.staging.status = "promoted";
        writeTrainState(dir, state);
        fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), stringify({ config: { "istio-progressive-delivery:services": { shop: { path: "/shop", release: "canary", versions: ["v1", "v1b"], canaryWeight: 20 } } } }));
        execFileSync("git", ["-C", dir, "commit", "--quiet", "-am", "prod moved on"]);
        execFileSync("git", ["-C", dir, "add", "."]);
        execFileSync("git", ["-C", dir, "commit", "--quiet", "-m", "state"]);
        const before = await run(dir, ["status"]);
        const approved = await run(dir, ["approve", "--reason", "go"]);
        assert.equal(approved.code, 2, approved.out);
        assert.match(approved.out, /- services\.shop\.canaryWeight = 20: puts 20% of shop's requests on its candidate v1b on stack prod/);
        assert.equal(approved.head, before.head, "nothing committed");
        assert.equal(readTrainState(dir)?.phase, "awaitingApproval");
    });

    it("a state file that does not read is named, with how to restore it, by every command", async () => {
        const dir = project();
        fs.mkdirSync(path.join(dir, ".release"));
        for (const text of ["{", '{"v":1}']) {
            fs.writeFileSync(path.join(dir, ".release", "train.json"), text);
            const status = await run(dir, ["status"]);
            assert.equal(status.code, 2);
            assert.match(status.out, /^\.release\/train\.json (does not parse as JSON|lacks fields a train's state has).*Fix: restore it from Git/);
        }
    });

    it("asks for --image when the service's versions run images of their own, before anything else", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "release-image-"));
        fs.writeFileSync(path.join(dir, TRAIN_FILE), "waves: [{ name: staging, stacks: [staging] }]\n");
        fs.writeFileSync(path.join(dir, "Pulumi.staging.yaml"), stringify({ config: { "istio-progressive-delivery:services": { shop: { path: "/shop", release: "single", versions: [{ name: "v1", image: "ghcr.io/acme/shop:1.0.0" }] } } } }));
        const lines: string[] = [];
        const code = await main(["--cwd", dir, "--engine", "render", "--service", "shop", "--version", "v2"], (l) => lines.push(l), (l) => lines.push(l), new AbortController().signal);
        assert.equal(code, 2);
        assert.match(lines.join("\n"), /^--image is required: shop's version v1 on stack staging runs an image of its own \(ghcr\.io\/acme\/shop:1\.0\.0\).*Fix: --image ghcr\.io\/acme\/shop:<the new build's tag>/);
        assert.deepEqual(fs.readdirSync(dir).sort(), ["Pulumi.staging.yaml", TRAIN_FILE].sort(), "nothing written");
    });
});
