// `npm run release -- --service <name> --version <v>`: one candidate through every stack of the release train
// (release-train.yaml), wave by wave, each stack's rollout `npm run rollout` itself (rollout/train-runner.ts); and
// the commands that read and steer the train, and carry it by pull requests.
// Exit codes: 0 released everywhere (or a command done), 1 a wave failed and was rolled back, 2 bad input or
// set-up (nothing changed), 4 stopped at a gate (an approval, or a pull request to merge), 130 interrupted.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, printable } from "../components/config/config-reader";
import { imageProblem } from "../components/config/names";
import { checkedPlan } from "../components/specs/checked-plan";
import { actorOf, ArgvReader, commandMain, runAsProcess, UsageError } from "../lib/cli";
import { PROJECT_ROOT, projectName, stackNames } from "../lib/mock-program";
import { StackFileError, StackFileWriteError } from "../lib/stack-file";
import { configSource } from "../rollout/config-edit";
import { ACTOR_LIMIT, newId, REASON_LIMIT } from "../rollout/control";
import { realClock } from "../rollout/driver";
import { SetupError } from "../rollout/lock";
import { configCommands, RolloutRefusal } from "../rollout/plan";
import { BoardingRefusal, Candidate } from "../rollout/train";
import { readTrain, TrainConfig, TrainConfigError } from "../rollout/train-config";
import { ACTIVE_TRAIN, newTrainState, STATE_FILE, readTrainState, TRAIN_EXIT, trainCommitProblem, TrainRunner, TrainState, trainStatusLines, writeTrainState } from "../rollout/train-runner";
import { engineFor, main as rolloutMain } from "./rollout";

const USAGE = `Usage: npm run release -- --service <name> --version <version> [--image <image>] [options]
       npm run release -- <command> [options]

Run a release train (release-train.yaml): the candidate boarded on each stack of the first wave (its stack file
edited and applied at no share of traffic, then committed), npm run rollout on each of them at once, the promoted
version baked against the hard limits, then the next wave, through the gate into it. A failure in a wave rolls
the wave back (the candidate taken off its stacks) and stops the train; earlier waves keep the version unless
release-train.yaml says returnEarlierWaves: true. Every stack file change is committed with the train's state
(.release/train.json).
  --service <name>       the service to release
  --version <version>    the new version's name (a DNS label such as v3): the same on every stack
  --image <image>        its image, pinned by tag or digest (default: the image the first stack would run it with);
                         every stack gets exactly this image
  --dry-run              print the waves and what each stack's file would get; change nothing
  --engine <name>        automation (default: pulumi up through the Automation API) or render (a rehearsal
                         under the mocks, as npm run rollout -- --engine render)
  --on-interrupt <what>  what Ctrl-C does to the rollouts under way: rollback (default: the wave is taken back and
                         the train stops) or hold (--resume continues them)
  --actor <name>         who (default: git config user.name, else $GITHUB_ACTOR, else user@host)
  --cwd <dir>            the project folder (default: this repository)
  --resume               continue the train where it stopped (interrupted, or its process gone)
  --take-over            with --resume or merged: continue rollouts whose runner is gone on another host

Commands:
  status [--json]        the train's waves, each stack's progress and the last events
  approve --reason <why> let the train into the wave waiting at its approval gate, and go on
  propose --service <name> --version <version> [--image <image>] [--push] [--output <file>]
                         by pull requests: a branch release/<service>-<version>-<wave> whose commit adds the version
                         to the first wave's stack files; --push pushes it to origin; --output writes the branch,
                         the gate and a pull request's title and body as JSON
  merged [--push] [--output <file>] [--take-over]
                         by pull requests, after the proposed wave's pull request is merged: roll that wave out
                         (as above), commit each outcome (--push: push it), and on success propose the next wave;
                         a wave a lost job left under way is continued

Exit codes: 0 released on every stack, or the command done; 1 a wave failed (rolled back, the train stopped); 2 bad
input or set-up (nothing changed); 4 stopped at a gate (an approval, or a pull request to merge); 130 interrupted.`;

type Command = "start" | "resume" | "status" | "approve" | "propose" | "merged";

export interface ReleaseOptions {
    readonly command: Command;
    readonly service?: string;
    readonly version?: string;
    readonly image?: string;
    readonly engine: "automation" | "render";
    readonly onInterrupt: "rollback" | "hold";
    readonly cwd: string;
    readonly actor?: string;
    readonly reason?: string;
    readonly dryRun: boolean;
    readonly json: boolean;
    readonly push: boolean;
    readonly takeOver: boolean;
    readonly output?: string;
}

const VERSION = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseReleaseArgs(argv: readonly string[]): ReleaseOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let command: Command = "start";
    const values: { service?: string; version?: string; image?: string; actor?: string; reason?: string; output?: string } = {};
    let engine: ReleaseOptions["engine"] = "automation";
    let onInterrupt: ReleaseOptions["onInterrupt"] = "rollback";
    let cwd = PROJECT_ROOT;
    const flags = { dryRun: false, json: false, push: false, takeOver: false };
    const given = new Set<string>();
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        if (given.has(flag) && flag.startsWith("--")) throw args.error(`${flag} is given twice: a train carries one of each. Fix: give ${flag} once`);
        given.add(flag);
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--service":
                values.service = args.value(flag);
                break;
            case "--version": {
                const value = args.value(flag);
                if (!VERSION.test(value)) throw args.error(`--version ${JSON.stringify(value)}: must be a version label, a DNS label such as v3 (lowercase letters, digits and '-', a letter first, at most 63 characters): it names the version's Deployment and subset. Fix: --version ${value.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+|-+$/g, "") || "v3"}`);
                values.version = value;
                break;
            }
            case "--image": {
                const value = args.value(flag);
                const problem = imageProblem(value) ?? (/:latest$/.test(value) ? "pins the tag latest, which moves" : undefined);
                if (problem !== undefined) throw args.error(`--image ${JSON.stringify(value)}: ${problem}; every stack runs exactly this image, so it must pin a tag or digest. Fix: --image ghcr.io/acme/user-service:1.5.0`);
                values.image = value;
                break;
            }
            case "--engine":
                engine = args.choice(flag, ["automation", "render"], "automation (pulumi up through the Automation API) or render (a rehearsal under the mocks)", "render");
                break;
            case "--on-interrupt":
                onInterrupt = args.choice(flag, ["rollback", "hold"], "rollback or hold", "hold");
                break;
            case "--actor":
                values.actor = args.value(flag).trim();
                if (values.actor === "" || values.actor.length > ACTOR_LIMIT) throw args.error(`--actor ${JSON.stringify(values.actor)}: must be 1 to ${ACTOR_LIMIT} characters. Fix: --actor "${values.actor.slice(0, ACTOR_LIMIT) || os.userInfo().username}"`);
                break;
            case "--reason":
                values.reason = args.value(flag).trim();
                if (values.reason === "" || values.reason.length > REASON_LIMIT) throw args.error(`--reason ${JSON.stringify(values.reason)}: must be 1 to ${REASON_LIMIT} characters. Fix: --reason "${values.reason.slice(0, 60) || "staging looks good"}"`);
                break;
            case "--output": {
                values.output = path.resolve(args.value(flag));
                const folder = path.dirname(values.output);
                if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw args.error(`--output ${JSON.stringify(values.output)}: its folder ${folder} does not exist. Fix: --output "$RUNNER_TEMP/pr.json", or create the folder first`);
                break;
            }
            case "--cwd":
                cwd = path.resolve(args.value(flag));
                break;
            case "--resume":
                if (command !== "start") throw args.error(`--resume goes alone: it continues the train. Fix: npm run release -- --resume`);
                command = "resume";
                break;
            case "--dry-run":
                flags.dryRun = true;
                break;
            case "--json":
                flags.json = true;
                break;
            case "--push":
                flags.push = true;
                break;
            case "--take-over":
                flags.takeOver = true;
                break;
            default: {
                const named = (["status", "approve", "propose", "merged"] as const).find((c) => c === flag);
                if (flag.startsWith("-") || command !== "start") throw args.unknown(flag);
                if (named === undefined) throw args.error(`${JSON.stringify(flag)} is not a command: the commands are status, approve, propose and merged; a train starts with --service and --version. Fix: npm run release -- status`);
                command = named;
            }
        }
    }
    // Text that reaches the terminal, commit messages and the state: printable, so it cannot forge lines or move the cursor.
    for (const [flag, value] of Object.entries({ "--service": values.service, "--actor": values.actor, "--reason": values.reason })) {
        if (value !== undefined && printable(value) !== value) throw args.error(`${flag} "${printable(value)}": has control or invisible characters, which would reach terminals and commit messages as they are. Fix: ${flag} "${printable(value).replace(/\\[nt]|\\u[0-9a-f]{4}/g, " ").trim() || "text"}"`);
    }
    const only: [string, readonly Command[]][] = [
        ["--service", ["start", "propose"]],
        ["--version", ["start", "propose"]],
        ["--image", ["start", "propose"]],
        ["--dry-run", ["start"]],
        ["--json", ["status"]],
        ["--reason", ["approve"]],
        ["--push", ["propose", "merged", "resume"]],
        ["--output", ["propose", "merged", "resume"]],
        ["--take-over", ["resume", "merged"]],
        ["--on-interrupt", ["start", "resume", "approve", "merged"]],
    ];
    const named = (c: Command) => (c === "start" ? "starting a train" : c === "resume" ? "--resume" : c);
    for (const [flag, commands] of only) {
        if (given.has(flag) && !commands.includes(command)) throw args.error(`${flag} does not apply to ${named(command)} (it goes with ${commands.map(named).join(", ")}). Fix: leave ${flag} out`);
    }
    if ((command === "start" || command === "propose") && values.service === undefined) throw args.error("--service is required: the service to release. Fix: --service user-service");
    if ((command === "start" || command === "propose") && values.version === undefined) throw args.error("--version is required: the new version's name, the same on every stack. Fix: --version v3");
    if (command === "approve" && values.reason === undefined) throw args.error(`--reason is required by approve: it is recorded, with who approved, in the train's state and its commit. Fix: --reason "staging baked clean"`);
    return { command, engine, onInterrupt, cwd, ...values, ...flags };
}

const git = (dir: string, args: readonly string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

const gitSucceeds = (dir: string, args: readonly string[]): boolean => {
    try {
        git(dir, args);
        return true;
    } catch {
        return false;
    }
};

interface Context {
    readonly options: ReleaseOptions;
    readonly out: (line: string) => void;
    readonly signal: AbortSignal;
    readonly actor: string;
    /** By pull requests with --push: pushes the checked-out branch after each commit the train makes there. */
    pushHome?: () => void;
}

function runnerFor(state: TrainState, ctx: Context): TrainRunner {
    const { options, out } = ctx;
    const engines = new Map<string, ReturnType<typeof engineFor>>();
    const engine = (stack: string) => {
        let found = engines.get(stack);
        if (found === undefined) {
            found = engineFor({ engine: options.engine, cwd: options.cwd, stack, dryRun: false, command: "start" }, (l) => {
                out(`[${stack}] ${l}`);
            });
            engines.set(stack, found);
        }
        return found;
    };
    return new TrainRunner(state, {
        dir: options.cwd,
        engineFor: engine,
        rollout: (stack, args, signal) => {
            const log = (l: string) => {
                out(`[${stack}] ${l}`);
            };
            return rolloutMain(["--cwd", options.cwd, "--engine", options.engine, "--stack", stack, ...args], log, log, signal);
        },
        log: out,
        actor: ctx.actor,
        clock: realClock,
        signal: ctx.signal,
        onInterrupt: options.onInterrupt,
        takeOver: options.takeOver,
        // By pull requests, main carries the train: each outcome is pushed as it is committed, so a Deploy of main
        // in the meantime applies what the stacks hold, and a lost job loses nothing.
        ...(options.push && { committed: () => ctx.pushHome?.() }),
    });
}

/** Pushes the branch checked out to origin, over what others pushed meanwhile (rebased, uncommitted edits kept). */
function pushHead(dir: string, out: (line: string) => void): void {
    const branch = git(dir, ["rev-parse", "--abbrev-ref", "HEAD"]);
    try {
        git(dir, ["pull", "--quiet", "--rebase", "--autostash", "origin", branch]);
        git(dir, ["push", "--quiet", "origin", `HEAD:${branch}`]);
    } catch (error) {
        // A rebase that stopped on a conflict is undone: the checkout (and its uncommitted edits) as it was.
        gitSucceeds(dir, ["rebase", "--abort"]);
        out(`[train] could not push ${branch} to origin (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); the commits stay here and the next push carries them`);
    }
}

/** The candidate, its image resolved: --image, or the image the first stack of the first wave would run it with. */
async function candidateOf(options: ReleaseOptions, train: TrainConfig, ctx: Context): Promise<Candidate> {
    const service = options.service ?? "";
    const version = options.version ?? "";
    if (options.image !== undefined) return { service, version, image: options.image };
    const first = train.waves[0].stacks[0];
    const { config, secretKeys } = await engineFor({ engine: options.engine, cwd: options.cwd, stack: first, dryRun: options.dryRun, command: "start" }, ctx.out).readConfig();
    const { settings } = checkedPlan(configSource(config, secretKeys));
    const image = settings.image;
    // Versions with images of their own: a new version is a new build, whose image only the release can name.
    const own = settings.services.find((s) => s.name === service)?.versionSettings.find((v) => v.image !== undefined);
    if (own !== undefined) throw new UsageError(`--image is required: ${service}'s version ${own.name} on stack ${first} runs an image of its own (${own.image ?? ""}), so a new version is a new build whose image the train cannot guess. Fix: --image ${(own.image ?? "registry/app:tag").replace(/[:@][^:@/]*$/, "")}:<the new build's tag>`, USAGE);
    ctx.out(`No --image: every stack gets ${image}, the image stack ${first} runs a version without one of its own`);
    return { service, version, image };
}

function activeTrainProblem(state: TrainState | undefined): void {
    if (state === undefined || !ACTIVE_TRAIN.includes(state.phase)) return;
    const how = state.phase === "awaitingApproval" ? 'approve its next wave (npm run release -- approve --reason "...")' : state.phase === "proposed" ? `merge the pull request of branch ${state.proposal?.branch ?? "?"}, or close it` : "continue it: npm run release -- --resume";
    throw new SetupError(`A release train of ${state.candidate.service} ${state.candidate.version} is ${state.phase} at wave ${state.wave + 1} (${state.updatedAt}); one train at a time. Fix: ${how}; to forget it instead, remove .release/train.json and commit that`);
}

function newState(candidate: Candidate, train: TrainConfig): TrainState {
    const at = new Date();
    return newTrainState(`${candidate.service}-${candidate.version}-${at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${newId().slice(0, 4)}`, candidate, train, at);
}

async function dryRun(options: ReleaseOptions, train: TrainConfig, ctx: Context): Promise<number> {
    const candidate = await candidateOf(options, train, ctx);
    // Checked as the train checks each stack before it boards it, reading the files (no Pulumi CLI).
    const runner = runnerFor(newState(candidate, train), { ...ctx, options: { ...options, engine: "render" } });
    ctx.out(`Release train for ${candidate.service} ${candidate.version} (${candidate.image}); changes nothing:`);
    for (const [i, wave] of train.waves.entries()) {
        ctx.out(`wave ${i + 1} ${wave.name}: ${i === 0 ? "starts with the train" : wave.gate === "approval" ? "waits for npm run release -- approve" : "starts once the wave before is baked"}; bake ${wave.bake}`);
        for (const stack of wave.stacks) {
            const boarding = await runner.boardingOf(stack);
            const { config } = await engineFor({ engine: "render", cwd: options.cwd, stack, dryRun: true, command: "start" }, ctx.out).readConfig();
            ctx.out(`  ${stack}: ${boarding.summary}${boarding.updates.length > 1 ? ` in ${boarding.updates.length} updates (its rules detoured around the one that replaces the version)` : ""}, then npm run rollout -- --stack ${stack} --service ${candidate.service}`);
            ctx.out(`    ${configCommands(projectName(), config, boarding.edits)}`);
        }
    }
    ctx.out(`On a failure: the wave rolled back and the candidate taken off its stacks; earlier waves ${train.returnEarlierWaves ? "returned to the version they ran before" : "keep it"}.`);
    return 0;
}

/** By pull requests: a branch off this commit whose commit writes the candidate into wave `i`'s stack files. */
async function proposeWave(state: TrainState, runner: TrainRunner, i: number, ctx: Context): Promise<number> {
    const { options } = ctx;
    const wave = state.train.waves[i];
    // Every stack of the wave can take the candidate in one merge, or nothing is committed.
    await runner.checkBoarding(i, i, true);
    const branch = `release/${state.candidate.service}-${state.candidate.version}-${wave.name}`;
    const here = gitSucceeds(options.cwd, ["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`]);
    const remote = options.push && git(options.cwd, ["ls-remote", "--heads", "origin", branch]) !== "";
    if (here || remote) {
        const where = [...(here ? ["here"] : []), ...(remote ? ["on origin"] : [])].join(" and ");
        const deletions = [...(here ? [`git branch -D ${branch}`] : []), ...(remote ? [`git push origin --delete ${branch}`] : [])].join(" && ");
        throw new SetupError(`Branch ${branch} already exists ${where} (an earlier train's, or its pull request's): wave ${wave.name} is not proposed. Fix: once its pull request is closed, delete it (${deletions}), then ${i === 0 ? "run this again" : "npm run release -- --resume --push"}`);
    }
    // Main records what waits; the branch carries the change.
    state.phase = "proposed";
    state.pullRequests = true;
    state.proposal = { branch, wave: i };
    writeTrainState(options.cwd, state);
    runner.commit(`release(${state.candidate.service} ${state.candidate.version}): wave ${wave.name} proposed on ${branch}`, []);
    const home = git(options.cwd, ["rev-parse", "--abbrev-ref", "HEAD"]);
    const pushHome = ctx.pushHome;
    git(options.cwd, ["switch", "--quiet", "-c", branch]);
    // The branch is pushed once, whole, below; not as a home branch after each commit.
    ctx.pushHome = undefined;
    let proposed = false;
    try {
        for (const stack of wave.stacks) await runner.propose(stack);
        state.waves[i].status = "proposed";
        writeTrainState(options.cwd, state);
        const lines = wave.stacks.map((s) => `- ${s}: ${state.stacks[s].note ?? ""}`);
        const title = `release(${state.candidate.service} ${state.candidate.version}): wave ${wave.name} (${wave.stacks.join(", ")})`;
        runner.commit(`${title}\n\n${lines.join("\n")}`, wave.stacks);
        if (options.push) git(options.cwd, ["push", "--quiet", "--force-with-lease", "origin", `${branch}:${branch}`]);
        const body = [
            `Release train \`${state.id}\`: ${state.candidate.service} **${state.candidate.version}** (\`${state.candidate.image}\`), wave ${i + 1} of ${state.train.waves.length}: **${wave.name}**.`,
            "",
            ...lines,
            "",
            `Merging this runs \`npm run rollout\` on ${wave.stacks.join(", ")} at once, then bakes ${wave.bake}${i + 1 < state.train.waves.length ? "; success proposes the next wave" : ""}. The previews and rollout plans are commented below.`,
        ].join("\n");
        if (options.output !== undefined) fs.writeFileSync(options.output, `${JSON.stringify({ branch, wave: wave.name, gate: i === 0 ? "approval" : wave.gate, title, body })}\n`);
        ctx.out(`Proposed wave ${wave.name} on branch ${branch}${options.push ? " (pushed to origin)" : ""}`);
        proposed = true;
    } finally {
        // A proposal that failed half-way leaves its edits on the branch, not on main.
        if (!proposed) gitSucceeds(options.cwd, ["checkout", "--", ...wave.stacks.map((st) => `Pulumi.${st}.yaml`), STATE_FILE]);
        git(options.cwd, ["switch", "--quiet", home]);
        ctx.pushHome = pushHome;
        if (!proposed) {
            // Main said the wave waits on a branch that did not come to be: it says so no more, and --resume proposes again.
            gitSucceeds(options.cwd, ["branch", "-D", branch]);
            state.phase = "interrupted";
            state.proposal = undefined;
            state.waves[i].status = "pending";
            writeTrainState(options.cwd, state);
            runner.commit(`release(${state.candidate.service} ${state.candidate.version}): wave ${wave.name} not proposed`, []);
        }
    }
    return TRAIN_EXIT.gate;
}

/** Runs the train on from its state; by pull requests, the outcome is pushed and the next wave proposed. */
async function continued(state: TrainState, runner: TrainRunner, ctx: Context): Promise<number> {
    if (state.pullRequests !== true) return runner.run();
    const code = await runner.run(true);
    return code === TRAIN_EXIT.gate ? proposeWave(state, runner, state.wave, ctx) : code;
}

export async function release(options: ReleaseOptions, out: (line: string) => void, signal: AbortSignal): Promise<number> {
    const ctx: Context = { options, out, signal, actor: actorOf(options.actor, options.cwd, ACTOR_LIMIT), ...(options.push && {
            pushHome: () => {
                pushHead(options.cwd, out);
            },
        }) };
    const stacks = stackNames(options.cwd);
    const state = readTrainState(options.cwd);
    if (options.command === "status") {
        if (state === undefined) out(options.json ? "null" : `No release train is recorded in ${options.cwd} (.release/train.json).`);
        else out(options.json ? JSON.stringify(state, null, 2) : trainStatusLines(state).join("\n"));
        return 0;
    }
    if (options.command === "start" || options.command === "propose") {
        const train = readTrain(options.cwd, stacks);
        activeTrainProblem(state);
        if (options.dryRun) return dryRun(options, train, ctx);
        const candidate = await candidateOf(options, train, ctx);
        const problem = trainCommitProblem(options.cwd, train.waves.flatMap((w) => w.stacks));
        if (problem !== undefined) throw new SetupError(problem);
        const fresh = newState(candidate, train);
        const runner = runnerFor(fresh, ctx);
        // Every stack can take the candidate as its file is now: a refusal stops the train before it moves.
        await runner.checkBoarding(0, undefined, options.command === "propose");
        fresh.history.push({ at: fresh.startedAt, actor: ctx.actor, text: `started: ${candidate.service} ${candidate.version} (${candidate.image}) through ${train.waves.map((w) => `${w.name} [${w.stacks.join(", ")}]`).join(" -> ")}` });
        if (options.command === "propose") {
            // By pull requests each wave's rollouts and bake run in one GitHub Actions job, which GitHub ends at 6 hours.
            const long = train.waves.findIndex((w) => w.bakeMs > 5 * 3_600_000);
            if (long >= 0) throw new TrainConfigError("release-train.yaml", [{ key: `waves[${long}].bake`, value: JSON.stringify(train.waves[long].bake), allowed: "by pull requests a wave's rollouts and bake run in one GitHub Actions job, which GitHub ends at 6 hours, so a bake may be 5h at most", fix: `waves[${long}].bake: 5h, or run the train without pull requests (npm run release)` }]);
            return proposeWave(fresh, runner, 0, ctx);
        }
        writeTrainState(options.cwd, fresh);
        runner.commit(`release(${candidate.service} ${candidate.version}): train ${fresh.id} started`, []);
        return runner.run();
    }
    if (state === undefined) throw new SetupError(`No release train is recorded here (.release/train.json). Fix: start one: npm run release -- --service user-service --version v3`);
    const runner = runnerFor(state, ctx);
    // A stack the train has touched may hold its uncommitted edits (a rollout under way, an update the train applied
    // before it died short of its commit): the train's to commit. Only the stacks it has not reached must be clean.
    const rolling = Object.keys(state.stacks).filter((s) => state.stacks[s].status !== "pending");
    const problem = trainCommitProblem(options.cwd, state.train.waves.flatMap((w) => w.stacks).filter((s) => !rolling.includes(s)), true);
    if (problem !== undefined) throw new SetupError(problem);
    switch (options.command) {
        case "resume":
            if (state.phase !== "running" && state.phase !== "interrupted") throw new SetupError(`--resume continues an interrupted train, and the train of ${state.candidate.service} ${state.candidate.version} is ${state.phase}. Fix: ${state.phase === "awaitingApproval" ? 'npm run release -- approve --reason "..."' : state.phase === "proposed" ? `merge the pull request of ${state.proposal?.branch ?? "its branch"}, then npm run release -- merged` : "npm run release -- status"}`);
            return continued(state, runner, ctx);
        case "approve":
            if (state.phase !== "awaitingApproval") throw new SetupError(`approve lets the train into a wave waiting at its approval gate, and the train of ${state.candidate.service} ${state.candidate.version} is ${state.phase}. Fix: npm run release -- status`);
            // The wave's stacks may have changed while it waited: a stack that cannot take the candidate keeps it waiting.
            await runner.checkBoarding(state.wave, state.wave);
            runner.approve(options.reason ?? "");
            return runner.run();
        case "merged": {
            const i = state.wave;
            const wave = state.train.waves[i] as (typeof state.train.waves)[number] | undefined;
            const merged = state.phase === "proposed" && wave !== undefined && wave.stacks.every((s) => state.stacks[s].status === "proposed");
            // A job lost mid-wave (cancelled, timed out, its runner gone) left the train running: the next one goes on with it.
            const lost = state.pullRequests === true && (state.phase === "running" || state.phase === "interrupted");
            if (!merged && !lost) {
                out(`Nothing merged to roll out: the train of ${state.candidate.service} ${state.candidate.version} is ${state.phase}${state.proposal !== undefined ? `, waiting for branch ${state.proposal.branch}` : ""}.`);
                return 0;
            }
            state.proposal = undefined;
            return continued(state, runner, ctx);
        }
    }
    return 2;
}

/** Bad input and set-up problems, which exit 2 with the message alone. */
const EXPECTED = [UsageError, ConfigError, TrainConfigError, BoardingRefusal, RolloutRefusal, SetupError, StackFileError, StackFileWriteError];

export const main = commandMain(parseReleaseArgs, USAGE, release, EXPECTED);

if (require.main === module) runAsProcess(main, "Interrupted: the rollouts under way finish their current update, then act as --on-interrupt says (Ctrl-C again stops at once)");
