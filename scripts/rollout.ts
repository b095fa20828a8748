// `npm run rollout -- --stack <stack> --service <name>`: a metric-gated release, step by step, each step a
// stack update (see rollout/driver.ts); and the commands that operate it from any shell or CI job (status,
// pause, resume, promote, abort, retry), through the rollout's record on the stack (rollout/control.ts).
// Exit codes: 0 promoted (or a command done), 1 rolled back, 2 bad input or set-up or stopped (the stack file
// changed under it, or could not be written), 3 a request not yet acknowledged, 130 held by Ctrl-C.
import * as os from "os";
import * as path from "path";
import { ConfigError, durationMs } from "../components/config/config-reader";
import { AutomationEngine, RenderEngine, TaggedEngine } from "../rollout/engines";
import { prepareRollout, RolloutNews, runRollout } from "../rollout/driver";
import { commitMessage, commitProblem, commitStackFile } from "../rollout/git";
import { alive, HeldRollout, RolloutLock, SetupError } from "../rollout/lock";
import { RolloutRefusal } from "../rollout/plan";
import { ChangedUnderRollout, checkExpected, pathKey, valueAt } from "../rollout/config-edit";
import { observedRates, previewRollout } from "../rollout/preview";
import { preflightProblems } from "../rollout/prometheus";
import { Action, ACTIVE_PHASES, ACTOR_LIMIT, newId, OperatorAction, OperatorRequest, readRequest, readRollout, REASON_LIMIT, reasonRoom, REQUEST_TAG, requestTagValue, RolloutChannel, RolloutRecord, STATE_TAG, statusLines, thisRunner } from "../rollout/control";
import { RecordError } from "../rollout/stack-tags";
import { changePlan } from "../rollout/change";
import { DecisionLog, logFile, rolloutId } from "../rollout/decision-log";
import { Notifications } from "../rollout/notify";
import { readDecisionLog, rolloutReport, writeReportPage } from "../rollout/report";
import { NotifyEvent, urlProblem } from "../components/config/rollout-config";
import { actorOf, ArgvReader, commandMain, runAsProcess, UsageError } from "../lib/cli";
import { PROJECT_ROOT, stackNames } from "../lib/mock-program";
import { StackFileError, StackFileWriteError } from "../lib/stack-file";

const USAGE = `Usage: npm run rollout -- --stack <name> --service <name> [--service <name> ...] [options]
       npm run rollout -- <command> --stack <name> [--reason <text>] [options]

Start a rollout:
  --stack <name>         the stack to release on (its Pulumi.<name>.yaml)
  --service <name>       a service whose candidate to release; repeat it to move several together, gated by
                         all their analyses (one failing rolls all back)
  --engine <name>        automation (default): each step is a pulumi up through the Automation API;
                         render: each step runs the program under the mocks, writes rendered/<stack> and
                         edits the stack file as pulumi config set would (a rehearsal without a cluster)
  --dry-run              print each step's split, the objects it changes, the queries and thresholds, and
                         the worst case before a rollback; change nothing (reads Pulumi.<stack>.yaml and
                         runs the program under the mocks: no Pulumi CLI or cluster needed)
  --request-rate <n>     requests per second for the dry run's worst case (default: observed in Prometheus)
  --commit               commit Pulumi.<stack>.yaml with the outcome, the deciding metrics and who did what
  --report-url <url>     where the report will be seen (a CI run's page), for notifications; default: the
                         report's path (.rollout/<stack>/<rollout id>.html, written when the rollout ends)
  --on-interrupt <what>  what Ctrl-C does: rollback (default) or hold (resume continues)
  --cwd <dir>            the project folder (default: this repository)
  --help                 show this help

Operate it, from any shell or CI job that reaches the stack (its record is in the stack's tags):
  status                 phase, step, each candidate's and stable's counts, each test's evidence against its
                         bounds, the next decision and who did what; --json prints the record
  pause                  keep judging (a failing candidate is still rolled back) but neither advance nor promote
  resume                 a paused rollout goes on; a held one (Ctrl-C with --on-interrupt hold) continues here
  promote                skip the remaining steps: promote once every candidate is shown no worse and baked;
                         --full: now, without the analysis or the bake (the confirmPromotion webhook still asks)
  abort                  roll back now
  retry                  start the last rolled-back rollout again, with the same services
  plan --base <rev>      when Pulumi.<stack>.yaml adds or moves a candidate since Git revision <rev>, print the
                         dry run of rolling it out (--markdown: as a pull request comment); otherwise nothing
  --reason <text>        why (required by each command but status; at most ${REASON_LIMIT} characters)
  --actor <name>         who (default: git config user.name, else $GITHUB_ACTOR, else user@host)
  --take-over            resume, promote or abort a rollout whose runner is gone, here
  --wait <duration>      how long a request waits for the running rollout's answer (default 2m; 1s to 1h)
Each is recorded with its actor and reason in the rollout's record and in its --commit message. A request to a
running rollout is answered when it next looks (every 5 seconds while it waits, and after an update in flight);
one sent to a rollout that has since ended is never acted on, and Ctrl-C withdraws it.

Exit codes: 0 promoted, or the command done; 1 rolled back; 2 bad input or set-up, or stopped because the stack
file changed under the rollout or could not be written (what it moved is rolled back where it can be); 3 a
request the rollout has not answered yet (it stays on the stack); 130 held by Ctrl-C.`;

export type RolloutCommand = "start" | "status" | "retry" | "plan" | OperatorAction;
const COMMANDS: readonly RolloutCommand[] = ["status", "pause", "resume", "promote", "abort", "retry", "plan"];

export interface RolloutOptions {
    readonly command: RolloutCommand;
    readonly stack: string;
    readonly services: readonly string[];
    readonly engine: "automation" | "render";
    readonly dryRun: boolean;
    readonly requestRate?: number;
    readonly commit: boolean;
    readonly onInterrupt: "rollback" | "hold";
    readonly cwd: string;
    readonly reason?: string;
    readonly actor?: string;
    readonly full: boolean;
    readonly json: boolean;
    readonly takeOver: boolean;
    /** How long a request to a running rollout waits for its answer. */
    readonly waitMs: number;
    /** Where notifications say the report is. */
    readonly reportUrl?: string;
    /** plan: the Git revision the stack file is compared with, and whether to print Markdown. */
    readonly base?: string;
    readonly markdown: boolean;
}

export function parseRolloutArgs(argv: readonly string[]): RolloutOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let command: RolloutCommand = "start";
    let stack: string | undefined;
    const services: string[] = [];
    let engine: RolloutOptions["engine"] = "automation";
    let onInterrupt: RolloutOptions["onInterrupt"] = "rollback";
    let requestRate: number | undefined;
    let reason: string | undefined;
    let actor: string | undefined;
    let cwd = PROJECT_ROOT;
    let waitMs = ANSWER_WAIT_MS;
    let reportUrl: string | undefined;
    let base: string | undefined;
    const flags = { dryRun: false, commit: false, full: false, json: false, takeOver: false, markdown: false };
    const given = new Set<string>();
    for (let flag = args.next(); flag !== undefined; flag = args.next()) {
        given.add(flag);
        switch (flag) {
            case "--help":
            case "-h":
                return "help";
            case "--stack":
                stack = args.value(flag);
                break;
            case "--service":
                services.push(...args.value(flag).split(",").filter((s) => s !== ""));
                break;
            case "--engine":
                engine = args.choice(flag, ["automation", "render"], "automation (pulumi up through the Automation API) or render (a rehearsal under the mocks)", "render");
                break;
            case "--on-interrupt":
                onInterrupt = args.choice(flag, ["rollback", "hold"], "rollback or hold", "hold");
                break;
            case "--request-rate": {
                const value = args.value(flag);
                requestRate = Number(value);
                if (!/^\d+(\.\d+)?$/.test(value) || !(requestRate > 0)) throw args.error(`--request-rate ${JSON.stringify(value)}: must be a positive number of requests per second. Fix: --request-rate 100`);
                break;
            }
            case "--reason":
                reason = args.value(flag).trim();
                if (reason === "" || reason.length > REASON_LIMIT) throw args.error(`--reason ${JSON.stringify(reason)}: must be 1 to ${REASON_LIMIT} characters (it goes into the stack's tags, ${REASON_LIMIT} at most). Fix: --reason "${reason.slice(0, 60) || "INC-1234 fixed in the candidate"}"`);
                break;
            case "--actor":
                actor = args.value(flag).trim();
                if (actor === "" || actor.length > ACTOR_LIMIT) throw args.error(`--actor ${JSON.stringify(actor)}: must be 1 to ${ACTOR_LIMIT} characters. Fix: --actor "${actor.slice(0, ACTOR_LIMIT) || os.userInfo().username}"`);
                break;
            case "--cwd":
                cwd = path.resolve(args.value(flag));
                break;
            case "--dry-run":
                flags.dryRun = true;
                break;
            case "--commit":
                flags.commit = true;
                break;
            case "--full":
                flags.full = true;
                break;
            case "--json":
                flags.json = true;
                break;
            case "--take-over":
                flags.takeOver = true;
                break;
            case "--markdown":
                flags.markdown = true;
                break;
            case "--base":
                base = args.value(flag);
                if (!/^[\w./@^~-]+$/.test(base)) throw args.error(`--base ${JSON.stringify(base)}: must be a Git revision (a branch, a tag, a commit, FETCH_HEAD). Fix: --base origin/main`);
                break;
            case "--report-url": {
                const value = args.value(flag);
                const problem = urlProblem(value);
                if (problem !== undefined) throw args.error(`--report-url ${JSON.stringify(value)}: must be an http or https URL (it ${problem}). Fix: --report-url https://github.com/acme/platform/actions/runs/123`);
                reportUrl = value;
                break;
            }
            case "--wait": {
                const value = args.value(flag);
                waitMs = /^\d+(\.\d+)?(ms|s|m|h)$/.test(value) ? durationMs(value) : NaN;
                if (!(waitMs >= 1000 && waitMs <= 3_600_000)) throw args.error(`--wait ${JSON.stringify(value)}: must be a duration from 1s to 1h (a number and ms, s, m or h). Fix: --wait 5m`);
                break;
            }
            case "--resume":
                throw args.error(`--resume is now a command: it continues a held rollout, or a paused one. Fix: npm run rollout -- resume --stack ${stack ?? "dev"} --reason "continue after the hold"`);
            default: {
                const named = COMMANDS.find((c) => c === flag);
                if (flag.startsWith("-") || command !== "start") throw args.unknown(flag);
                if (named === undefined) throw args.error(`${JSON.stringify(flag)} is not a command: the commands are ${COMMANDS.join(", ")}; a rollout starts with flags alone. Fix: npm run rollout -- status --stack ${stack ?? "dev"}`);
                command = named;
            }
        }
    }
    const stackName = args.stack(stack, stackNames(cwd), cwd);
    // Each flag, and the commands it belongs to.
    const only: [string, readonly RolloutCommand[]][] = [
        ["--service", ["start"]],
        ["--dry-run", ["start"]],
        ["--request-rate", ["start", "plan"]],
        ["--base", ["plan"]],
        ["--markdown", ["plan"]],
        ["--full", ["promote"]],
        ["--json", ["status"]],
        ["--take-over", ["resume", "promote", "abort"]],
        ["--wait", ["pause", "resume", "promote", "abort"]],
        // The commands that may carry a rollout out in this process.
        ["--commit", ["start", "retry", "resume", "promote", "abort"]],
        ["--report-url", ["start", "retry", "resume", "promote", "abort"]],
        ["--on-interrupt", ["start", "retry", "resume", "promote"]],
        ["--engine", ["start", "status", "retry", "resume", "promote", "abort", "pause", "plan"]],
        ["--reason", ["start", "retry", "resume", "promote", "abort", "pause"]],
        ["--actor", ["start", "retry", "resume", "promote", "abort", "pause"]],
    ];
    for (const [flag, commands] of only) {
        if (given.has(flag) && !commands.includes(command)) throw args.error(`${flag} does not apply to ${command === "start" ? "starting a rollout" : command} (it goes with ${commands.map((c) => (c === "start" ? "starting a rollout" : c)).join(", ")}). Fix: leave ${flag} out`);
    }
    if (command === "start" && services.length === 0) throw args.error("--service is required: the service whose candidate to release. Fix: --service user-service");
    if (command === "plan" && base === undefined) throw args.error("plan needs --base: the Git revision the stack file is compared with. Fix: --base origin/main");
    if (command !== "start" && command !== "status" && command !== "plan" && reason === undefined) throw args.error(`--reason is required by ${command}: it is recorded, with who asked, in the rollout's record and its commit. Fix: --reason "INC-1234 fixed in the candidate"`);
    // A request is one stack tag of 256 bytes: the reason gets what the rest (the longest actor) leaves.
    if (reason !== undefined && command !== "start" && command !== "retry") {
        const room = reasonRoom(actor ?? "x".repeat(ACTOR_LIMIT));
        const bytes = Buffer.byteLength(JSON.stringify(reason)) - 2;
        if (bytes > room) throw args.error(`--reason ${JSON.stringify(reason)}: ${bytes} bytes as the request's JSON holds it, and a request is one stack tag of 256 bytes, which leaves ${room} for the reason${actor === undefined ? " (with an actor of up to 40 characters)" : ""}. Fix: --reason ${JSON.stringify(reason.slice(0, Math.max(10, Math.floor(room / 2))))}`);
    }
    if (requestRate !== undefined && !flags.dryRun && command !== "plan") throw args.error("--request-rate applies to --dry-run only. Fix: add --dry-run, or leave --request-rate out");
    if (flags.dryRun && flags.commit) throw args.error(`--dry-run changes nothing, so it takes no --commit. Fix: leave it out`);
    return { command, stack: stackName, services, engine, onInterrupt, cwd, waitMs, ...(reportUrl !== undefined && { reportUrl }), ...(base !== undefined && { base }), ...flags, ...(requestRate !== undefined && { requestRate }), ...(reason !== undefined && { reason }), ...(actor !== undefined && { actor }) };
}

const EXIT = { promoted: 0, rolledBack: 1, stopped: 2, held: 130 } as const;
/** A request sent to a running rollout that has not answered yet: it stays on the stack. */
const UNANSWERED = 3;
const ANSWER_WAIT_MS = 120_000;

/** A dry run (and a plan) reads the stack file and runs the program under the mocks, whatever the engine: no Pulumi CLI, no cluster. */
export function engineFor(options: Pick<RolloutOptions, "engine" | "dryRun" | "command" | "cwd" | "stack">, log: (line: string) => void): TaggedEngine {
    return options.engine === "render" || options.dryRun || options.command === "plan" ? new RenderEngine(options.cwd, options.stack, path.join(options.cwd, "rendered", options.stack)) : new AutomationEngine(options.cwd, options.stack, log);
}

const where = (r: RolloutRecord) => (r.step > r.steps.length ? "the promotion" : `step ${r.step}`);

/** Is the rollout's runner gone? Only knowable on its own host; elsewhere --take-over says so. */
const runnerGone = (r: RolloutRecord) => r.runner !== undefined && r.runner.host === os.hostname() && !alive(r.runner.pid);

/** Text as one shell word, for a fix printed to paste. */
const shellWord = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);

/**
 * Sends a request to the running rollout and waits up to `waitMs` for its answer, setting it again if another
 * writer's tag update lost it. A pending request of someone else's is refused unless it went unanswered for a whole
 * default wait, or was sent to another rollout: then it is replaced. Ctrl-C withdraws the request.
 */
async function sendRequest(engine: TaggedEngine, record: RolloutRecord, request: OperatorRequest, options: RolloutOptions, signal: AbortSignal, out: (line: string) => void): Promise<number> {
    const pending = await readRequest(engine.tags);
    if (pending !== undefined && pending !== "other" && pending.id !== request.id) {
        const age = Date.now() - Date.parse(pending.at);
        if (pending.rollout === record.id && age < ANSWER_WAIT_MS) {
            throw new SetupError(`${pending.actor}'s ${pending.action} (${pending.at}, "${pending.reason}") is waiting for the rollout's answer; one request at a time. Fix: wait ${Math.ceil((ANSWER_WAIT_MS - age) / 1000)}s for it (npm run rollout -- status --stack ${record.stack}), then ask again`);
        }
        out(`Replacing ${pending.actor}'s ${pending.action} of ${pending.at}, which the rollout never answered`);
    }
    const mine = async () => {
        const now = await readRequest(engine.tags);
        return now !== undefined && now !== "other" && now.id === request.id;
    };
    const deadline = Date.now() + options.waitMs;
    for (;;) {
        const current = await readRollout(engine.tags);
        const answer = current?.actions.find((a) => a.id === request.id);
        if (answer !== undefined) {
            // A copy set again as the rollout removed the answered one: not to be found by anyone later.
            if (await mine()) await engine.tags.remove(REQUEST_TAG);
            out(answer.result ?? "done");
            return 0;
        }
        if (current?.id !== record.id || !["running", "paused"].includes(current.phase)) {
            if (await mine()) await engine.tags.remove(REQUEST_TAG);
            out(`The rollout ended before it answered: ${current === undefined ? "no record" : `${current.phase}: ${current.decision ?? ""}`}`);
            return 2;
        }
        if (!(await mine())) await engine.tags.set(REQUEST_TAG, requestTagValue(request));
        if (signal.aborted) {
            if (await mine()) await engine.tags.remove(REQUEST_TAG);
            out("Interrupted: the request is withdrawn");
            return 130;
        }
        if (Date.now() >= deadline) {
            const here = request.action === "pause" ? "abort" : request.action;
            const fix = `npm run rollout -- ${here}${request.full === true ? " --full" : ""} --stack ${record.stack} --reason ${shellWord(request.reason)} --take-over`;
            out(`Not answered within ${Math.round(options.waitMs / 1000)}s: the request stays on the stack, and the rollout acts on it when it next looks (an update may be in flight; last heard ${current.updatedAt} from pid ${current.runner?.pid ?? "?"} on ${current.runner?.host ?? "?"}). If that runner is gone, carry the rollout out here: ${fix}`);
            return UNANSWERED;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
    }
}

interface Drive {
    readonly services: readonly string[];
    /** What was done to start this run, recorded first. */
    readonly action: Action;
    /** The record being continued (held, or taken over), with what resume needs. */
    readonly continued?: RolloutRecord & { readonly resume: HeldRollout };
    /** An operator's request to act on at once (abort or promote of a held rollout). */
    readonly request?: OperatorRequest;
}

/** Carries a rollout out in this process: a new one, or one held (or taken over) continued. */
async function drive(options: RolloutOptions, engine: TaggedEngine, signal: AbortSignal, out: (line: string) => void, d: Drive): Promise<number> {
    const abort = d.request?.action === "abort";
    const prepared = await prepareRollout(engine, options.stack, d.services, d.continued?.resume, abort);
    const written = d.continued?.resume.written ?? [];
    try {
        checkExpected(prepared.config, written);
    } catch (error) {
        if (!(error instanceof ChangedUnderRollout)) throw error;
        // The record on the stack carries the rollout's state, not its stack file: that travels with Git.
        const left = written.filter((w) => error.paths.includes(pathKey(w.path))).map((w) => ("digest" in w ? `${pathKey(w.path)} (a secret: not shown)` : `${pathKey(w.path)}: ${JSON.stringify(w.value)} (here: ${JSON.stringify(valueAt(prepared.config, w.path))})`));
        throw new SetupError(
            `${path.basename(engine.stackFile)} here does not hold what the rollout of ${d.services.join(", ")} last wrote (${left.join("; ")}): it was changed while the rollout was held, or the rollout was held in another checkout. Nothing was changed. Fix: continue it from the checkout where it was held, or put those keys back as it left them (pulumi config set --path), then run this again`,
        );
    }
    const problem = options.commit ? commitProblem(engine.stackFile, d.continued !== undefined) : undefined;
    if (problem !== undefined) throw new SetupError(problem);
    engine.checkWritable();
    const lock = RolloutLock.acquire(options.cwd, options.stack, d.services);
    let outcome;
    let channel: RolloutChannel;
    let decisions: DecisionLog;
    try {
        // An abort moves no traffic but back: it needs no analysis, so no Prometheus.
        const problems = abort ? [] : await preflightProblems(prepared.settings.rollout.prometheusUrl, prepared.targets, prepared.counters, prepared.metricQueries, signal);
        if (problems.length > 0) throw new SetupError(`The rollout cannot start; nothing was changed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        const resume = d.continued?.resume;
        const id = d.continued?.id ?? rolloutId(Date.now(), newId());
        decisions = new DecisionLog(logFile(options.cwd, options.stack, id), id, options.stack, out);
        channel = new RolloutChannel(
            engine.tags,
            {
                v: 1,
                id,
                stack: options.stack,
                services: d.services,
                phase: "running",
                step: (resume?.stepIndex ?? 0) + 1,
                steps: prepared.settings.rollout.steps,
                updatedAt: new Date().toISOString(),
                runner: thisRunner(),
                actions: [...(d.continued?.actions ?? []), d.action],
                evidence: d.continued?.evidence ?? [],
                ...(resume !== undefined && { resume }),
            },
            out,
        );
        await channel.publish({});
        out(`Rolling out ${d.services.join(", ")} on ${engine.description}${resume !== undefined ? `, continued at ${resume.stepIndex < prepared.phases.steps.length ? `step ${resume.stepIndex + 1}` : "the promotion"}` : ""}; decision log: ${path.relative(options.cwd, decisions.file)}`);
        const page = decisions.file.replace(/\.jsonl$/, ".html");
        const notifications = new Notifications(prepared.settings.rollout.notify, out);
        const services = prepared.targets.map((t) => ({ service: t.service, release: t.release, stable: t.stableVersion, candidate: t.candidateVersion }));
        const notify = (event: NotifyEvent, news: RolloutNews) => {
            notifications.send({ event, stack: options.stack, rollout: id, services, report: options.reportUrl ?? path.relative(options.cwd, page), ...(engine instanceof RenderEngine && { rehearsal: true }), ...news });
        };
        try {
            outcome = await runRollout({ prepared, engine, signal, onInterrupt: options.onInterrupt, channel, decisions, notify, log: out, ...(resume !== undefined && { resume }), ...(d.request !== undefined && { request: d.request }) });
        } finally {
            await notifications.settled();
        }
        // The rollout drawn, beside its log: where the notifications point when no --report-url says otherwise.
        try {
            writeReportPage(rolloutReport(readDecisionLog(decisions.file)), page);
        } catch (error) {
            out(`The report could not be written (${error instanceof Error ? error.message : String(error)}); the decision log has it all`);
        }
    } finally {
        lock.release();
    }
    out(`${{ promoted: "PROMOTED", rolledBack: "ROLLED BACK", stopped: "STOPPED", held: "HELD" }[outcome.kind]}: ${outcome.reason}`);
    out(`Decision log: ${path.relative(options.cwd, decisions.file)}; report: ${path.relative(options.cwd, decisions.file.replace(/\.jsonl$/, ".html"))}`);
    // A stopped rollout leaves a file someone else was changing: theirs to commit.
    if (options.commit && (outcome.kind === "promoted" || outcome.kind === "rolledBack")) out(`Committed ${path.basename(engine.stackFile)}: ${commitStackFile(engine.stackFile, commitMessage(options.stack, d.services, outcome, channel.current.actions))}`);
    return EXIT[outcome.kind];
}

/** plan: the dry run of rolling out what the change since --base adds or moves, as text or a pull request comment. */
async function planChange(options: RolloutOptions, engine: TaggedEngine, out: (line: string) => void): Promise<number> {
    const base = options.base ?? "HEAD";
    const plan = await changePlan(engine, options.cwd, options.stack, base, options.requestRate);
    if (plan === undefined) {
        if (!options.markdown) out(`No candidate added or moved on stack ${options.stack} since ${base}: no rollout to plan.`);
        return 0;
    }
    const what = plan.changes.map((c) => `${c.detail} on ${c.service}`).join("; ");
    const command = `npm run rollout -- --stack ${options.stack} --service ${plan.changes.map((c) => c.service).join(",")}`;
    if (!options.markdown) {
        out(`This change ${what}. ${command} would:`);
        for (const line of plan.lines) out(line);
        return 0;
    }
    // A fence longer than any backtick run inside, so no line of the plan ends it.
    const fence = "`".repeat(Math.max(3, ...[...plan.lines.join("\n").matchAll(/`+/g)].map((m) => m[0].length + 1)));
    out([`<!-- rollout-plan:${options.stack} -->`, `### Rollout plan: stack ${options.stack}`, "", `This change ${what}. What \`${command}\` would do from here:`, "", `${fence}text`, ...plan.lines, fence, ""].join("\n"));
    return 0;
}

async function dryRun(options: RolloutOptions, engine: TaggedEngine, out: (line: string) => void): Promise<number> {
    const prepared = await prepareRollout(engine, options.stack, options.services);
    let rates: Record<string, number> | undefined;
    let source: string;
    if (options.requestRate !== undefined) {
        rates = Object.fromEntries(options.services.map((s) => [s, options.requestRate ?? 0]));
        source = `${options.requestRate} requests/s (--request-rate)`;
    } else {
        try {
            rates = await observedRates(prepared);
            source = `the rates Prometheus observes now`;
        } catch (error) {
            source = `Prometheus at ${prepared.settings.rollout.prometheusUrl} did not answer: ${error instanceof Error ? error.message : String(error)}`;
        }
    }
    await previewRollout(prepared, rates, source, out);
    return 0;
}

/** The stack's rollout record; one that does not read is a set-up problem naming how to forget it. */
async function recordOn(engine: TaggedEngine, stack: string): Promise<RolloutRecord | undefined> {
    try {
        return await readRollout(engine.tags);
    } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        throw new SetupError(`The rollout's record on stack ${stack} does not read: ${error.message}${error.message.includes("Fix:") ? "" : `. Fix: ${engine.tags.removal(STATE_TAG)} (it only records rollouts: the stack itself is untouched)`}`);
    }
}

export async function rollout(options: RolloutOptions, engine: TaggedEngine, signal: AbortSignal, out: (line: string) => void): Promise<number> {
    if (options.dryRun) return dryRun(options, engine, out);
    if (options.command === "plan") return planChange(options, engine, out);
    const record = await recordOn(engine, options.stack);
    const stack = options.stack;
    if (options.command === "status") {
        if (record === undefined) out(`No rollout is recorded on stack ${stack} (${engine.tags.where}).`);
        else out(options.json ? JSON.stringify(record, null, 2) : [...statusLines(record, Date.now()), ...(runnerGone(record) ? [`  its runner, pid ${record.runner?.pid ?? "?"} on this host, is gone: carry it out here with resume, promote or abort and --take-over`] : [])].join("\n"));
        return 0;
    }
    const actor = actorOf(options.actor, options.cwd, ACTOR_LIMIT);
    const reason = options.reason ?? "(no reason given)";
    const at = new Date().toISOString();
    const active = record !== undefined && ACTIVE_PHASES.includes(record.phase);
    if (options.command === "start" || options.command === "retry") {
        if (active) {
            const gone = runnerGone(record);
            const how =
                record.phase === "held" || gone
                    ? `${gone ? `its runner (pid ${record.runner?.pid ?? "?"} on this host) is gone: ` : ""}resume it (npm run rollout -- resume --stack ${stack} --reason "continue the held release"${gone ? " --take-over" : ""}) or roll it back (npm run rollout -- abort --stack ${stack} --reason "start over"${gone ? " --take-over" : ""})`
                    : `wait for it, or steer it: npm run rollout -- status --stack ${stack}`;
            throw new SetupError(`A rollout of ${record.services.join(", ")} on stack ${stack} is ${record.phase} at ${where(record)} (${record.updatedAt}${record.runner !== undefined && record.phase !== "held" ? `, pid ${record.runner.pid} on ${record.runner.host}` : ""}). One rollout of a stack at a time. Fix: ${how}`);
        }
        if (options.command === "retry" && record?.phase !== "rolledBack") {
            throw new SetupError(`retry starts the last rolled-back rollout again, and stack ${stack}'s last rollout ${record === undefined ? "is not recorded" : `was ${record.phase}`}. Fix: start one: npm run rollout -- --stack ${stack} --service ${record?.services.join(",") ?? "user-service"}`);
        }
        const services = options.command === "retry" && record !== undefined ? record.services : options.services;
        return drive(options, engine, signal, out, { services, action: { id: newId(), action: options.command, actor, reason, at } });
    }
    const action = options.command;
    if (record === undefined || !active) {
        throw new SetupError(`${action}: no rollout of stack ${stack} is running or held (${record === undefined ? "none is recorded" : `the last was ${record.phase}: ${record.decision ?? ""}`}). Fix: npm run rollout -- status --stack ${stack}`);
    }
    const request: OperatorRequest = { id: newId(), rollout: record.id, action, ...(options.full && { full: true }), actor, reason, at };
    const running = record.phase === "running" || record.phase === "paused";
    // On its own host a runner's life is known: one that still runs is never taken over (two drivers on one stack).
    if (options.takeOver && running && record.runner?.host === os.hostname() && alive(record.runner.pid)) {
        throw new SetupError(`--take-over: the rollout's runner, pid ${record.runner.pid} on this host, is still running. Fix: leave --take-over out to ask it (npm run rollout -- ${action} --stack ${stack} --reason ${shellWord(reason)}), or stop it first`);
    }
    if (running && !options.takeOver && !runnerGone(record)) {
        out(`Asking the rollout of ${record.services.join(", ")} (pid ${record.runner?.pid ?? "?"} on ${record.runner?.host ?? "?"}, at ${where(record)}) to ${action}${options.full ? " --full" : ""}...`);
        return sendRequest(engine, record, request, options, signal, out);
    }
    if (action === "pause") throw new SetupError(`pause: the rollout of ${record.services.join(", ")} on stack ${stack} is ${record.phase === "held" ? "held" : "without a runner"}: nothing moves until it is resumed. Fix: when it should go on, npm run rollout -- resume --stack ${stack} --reason "continue the held release"`);
    const resume = record.resume;
    if (resume === undefined) throw new SetupError(`${action}: the record of stack ${stack}'s rollout holds nothing to continue it from. Fix: forget it (${engine.tags.removal(STATE_TAG)}) and start again`);
    const continued = { ...record, resume };
    // Resumed here: the request is this run's start; abort and promote are acted on before anything moves.
    if (action === "resume") return drive(options, engine, signal, out, { services: record.services, continued, action: { ...request, result: `continued by pid ${process.pid} on ${os.hostname()}` } });
    return drive(options, engine, signal, out, { services: record.services, continued, action: { id: newId(), action: "resume", actor, reason: `to ${action}`, at, result: `continued by pid ${process.pid} on ${os.hostname()}` }, request });
}

/** Bad input and set-up problems, which exit 2 with the message alone. */
const EXPECTED = [UsageError, ConfigError, RolloutRefusal, SetupError, StackFileError, StackFileWriteError];

export const main = commandMain(parseRolloutArgs, USAGE, (options, out, signal) => rollout(options, engineFor(options, out), signal, out), EXPECTED);

if (require.main === module) runAsProcess(main, "Interrupted: finishing the current update, then acting as --on-interrupt says (Ctrl-C again stops at once)");
