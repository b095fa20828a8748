// The release train's decisions, pure: what putting one candidate (a version and its image) on a stack writes to
// its config, and what taking it off again writes, phase by phase, so no request meets a version that is not
// ready or no longer there. The runner (train-runner.ts) applies these edits through a stack engine.
import { ConfigError, ConfigProblem, isRecord, show } from "../components/config/config-reader";
import { readSettings, Settings } from "../components/config/config";
import { checkedPlan } from "../components/specs/checked-plan";
import { planTraffic } from "../components/plan/plan";
import { isDeepStrictEqual } from "util";
import { applyEdits, ConfigEdit, ConfigValue, configSource, plain, StackConfig, valueAt } from "./config-edit";
import { configCommands, defaultServices, otherColor } from "./plan";

/** What a train carries to every stack: the same version name and the same image. */
export interface Candidate {
    readonly service: string;
    readonly version: string;
    readonly image: string;
}

/** What a stack held for the service before the train: what taking the candidate off puts back. */
export interface StackBefore {
    /** The service's catalogue entry. */
    readonly entry: ConfigValue;
    /** The service's routes (`routes.<service>`), when it had any: a route to the replaced candidate follows the new one. */
    readonly routes?: ConfigValue;
    readonly release: "canary" | "blueGreen";
    /** The version that served before the train (a blue/green service's active color's). */
    readonly serving: string;
    /** Blue/green: the color that served. */
    readonly activeColor?: "blue" | "green";
}

export interface Boarding {
    /** The edits as one change (what the stack file holds once boarded). */
    readonly edits: readonly ConfigEdit[];
    /** The same change as the updates that apply it safely (see safeUpdates). */
    readonly updates: readonly Update[];
    readonly before: StackBefore;
    /** For people: "v2 -> v3 (canary, weight 0)". */
    readonly summary: string;
}

const versionName = (entry: ConfigValue | undefined): string | undefined => (typeof entry === "string" ? entry : isRecord(entry) && typeof entry.name === "string" ? entry.name : undefined);

/** The candidate's entry: the version it stands beside (its fields: replicas, resources, env), with its own name and image. */
function candidateEntry(reference: ConfigValue | undefined, candidate: Candidate): ConfigValue {
    const fields = isRecord(reference) ? Object.fromEntries(Object.entries(reference).filter(([k]) => k !== "name" && k !== "image")) : {};
    return { name: candidate.version, ...fields, image: candidate.image };
}

/** A stack that cannot take the candidate as its config is now, named like a config problem: key, value, allowed, fix. */
export class BoardingRefusal extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(`The release train cannot take the candidate there; nothing was changed:\n${problems.map((p) => `  - ${p.key} = ${p.value}: ${p.allowed}.\n    Fix: ${p.fix}`).join("\n")}`);
        this.name = "BoardingRefusal";
    }
}

const refuse = (problems: ConfigProblem[]): never => {
    throw new BoardingRefusal(problems);
};

/**
 * The edits that put `candidate` on a stack beside the version serving now, at no share of traffic: a canary's
 * candidate at its own weight 0 (a service that ran one version becomes a canary), or a blue/green service's idle
 * color. Refused when the stack cannot take it as it is: the service is missing, already runs the version, or is
 * mid-release (a canary's candidate with traffic). The config after the edits is checked as the program checks it.
 */
export function boardingEdits(stack: string, project: string, settings: Settings, config: StackConfig, secretKeys: readonly string[], candidate: Candidate): Boarding {
    const { service: name, version } = candidate;
    const service = settings.services.find((s) => s.name === name);
    if (service === undefined) return refuse([{ key: "--service", value: show(name), allowed: `is not a service of stack ${stack} (services: ${settings.services.map((s) => s.name).join(", ")})`, fix: `name one of them, or add ${name} to the stack's services first` }]);
    const at = ["services", name] as const;
    const catalogue = isRecord(config.services) ? config : { ...config, services: defaultServices() };
    const entry = valueAt(catalogue, at);
    const versions = isRecord(entry) && Array.isArray(entry.versions) ? (entry.versions as ConfigValue[]) : [];
    if (service.versions.includes(version)) {
        return refuse([{ key: "--version", value: show(version), allowed: `stack ${stack} already runs ${name} ${version} (versions ${service.versions.join(", ")}): a train carries a new version`, fix: `name the new version (--version ${bump(service.versions.at(-1) ?? version)}), or take ${version} out of services.${name}.versions first` }]);
    }
    const edits: ConfigEdit[] = [];
    let before: StackBefore;
    let summary: string;
    const routes = valueAt(config, ["routes", name]);
    if (service.release === "blueGreen") {
        const active = settings.activeColor;
        const idle = active === "blue" ? 1 : 0;
        const serving = service.versions[1 - idle];
        edits.push({ path: [...at, "versions", idle], value: candidateEntry(versions[1 - idle], candidate) });
        before = { entry: entry ?? {}, release: "blueGreen", serving, activeColor: active };
        summary = `${otherColor(active)} ${service.versions[idle]} -> ${version} (blue/green, ${active} ${serving} serving)`;
    } else {
        const serving = service.versions[0];
        const replaced = service.versions.at(1);
        if (service.release === "canary") {
            const weight = service.canaryWeight ?? settings.canaryWeight;
            if (weight !== 0) {
                const key = service.canaryWeight === undefined ? "canaryWeight" : `services.${name}.canaryWeight`;
                return refuse([{ key, value: show(weight), allowed: `puts ${weight}% of ${name}'s requests on its candidate ${replaced} on stack ${stack}: a release is under way there, and a train does not replace a candidate that serves`, fix: `finish it first (npm run rollout -- --stack ${stack} --service ${name}), or take its traffic off: ${configCommands(project, config, [{ path: service.canaryWeight === undefined ? ["canaryWeight"] : [...at, "canaryWeight"], value: 0 }])} && pulumi up` }]);
            }
        }
        edits.push({ path: [...at, "versions", 1], value: candidateEntry(versions[0], candidate) }, { path: [...at, "release"], value: "canary" }, { path: [...at, "canaryWeight"], value: 0 });
        // A rule that sends testers to the replaced candidate (release-testing) sends them to the new one.
        if (replaced !== undefined && Array.isArray(routes)) {
            (routes as ConfigValue[]).forEach((rule, i) => {
                if (isRecord(rule) && rule.to === replaced) edits.push({ path: ["routes", name, i, "to"], value: version });
            });
        }
        before = { entry: entry ?? {}, release: "canary", serving, ...(routes !== undefined && { routes }) };
        summary = replaced === undefined ? `${serving} + ${version} (canary at weight 0)` : `${replaced} -> ${version} beside ${serving} (canary at weight 0)`;
    }
    // On a stack without a catalogue of its own, the default one is written out with the change.
    const written: ConfigEdit[] = isRecord(config.services) ? edits : [{ path: ["services"], value: applyEdits(catalogue, edits.filter((e) => e.path[0] === "services")).services }, ...edits.filter((e) => e.path[0] !== "services")];
    checkPhase(stack, "with the candidate on board", applyEdits(config, written), secretKeys);
    const updates = safeUpdates(name, config, secretKeys, [{ label: `board ${version}`, edits: written }]);
    let current = config;
    for (const update of updates) {
        current = applyEdits(current, update.edits);
        checkPhase(stack, update.label, current, secretKeys);
    }
    return { edits: written, updates, before, summary };
}

function bump(version: string): string {
    const numbered = /^(.*?)(\d+)$/.exec(version);
    return numbered === null ? `${version}-2` : `${numbered[1]}${Number(numbered[2]) + 1}`;
}

/** Refuses a config the program would refuse, naming the phase that would write it. */
export function checkPhase(stack: string, label: string, config: StackConfig, secretKeys: readonly string[]): void {
    try {
        checkedPlan(configSource(config, secretKeys));
    } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        throw new BoardingRefusal(error.problems.map((p) => ({ ...p, allowed: `${p.allowed} (in the config stack ${stack} would have ${label})` })));
    }
}

/** One update of a stack: its edits and why. */
export interface Update {
    readonly label: string;
    readonly edits: readonly ConfigEdit[];
}

/** The service's subsets in a config, each with the version it selects. */
function subsetVersions(config: StackConfig, service: string, secretKeys: readonly string[]): Map<string, string> {
    const s = planTraffic(readSettings(configSource(config, secretKeys))).services.find((x) => x.name === service);
    return new Map(s?.subsets.map((sub) => [sub.name, sub.version]));
}

/**
 * Requests that a rule other than the release split sends to a subset which selects another version after the
 * update, or none (a route to the replaced candidate, a blue/green preview or region rule to the idle color, the
 * sticky canary's cookie): during the update Pulumi may apply the DestinationRule before the routes or after, so
 * such a request could meet a version not yet running, or one already gone. The rules are pointed at `anchor` (a
 * subset that selects the same running version before and after) for the update, and put back after it, once the
 * update has brought the new version up: the edits for before, during and after.
 */
function detour(service: string, before: StackConfig, after: StackConfig, secretKeys: readonly string[]): { readonly first: ConfigEdit[]; readonly during: ConfigEdit[]; readonly last: ConfigEdit[] } {
    const was = subsetVersions(before, service, secretKeys);
    const will = subsetVersions(after, service, secretKeys);
    const steady = (subset: unknown) => typeof subset === "string" && was.has(subset) && was.get(subset) === will.get(subset);
    const split = planTraffic(readSettings(configSource(before, secretKeys))).services.find((x) => x.name === service)?.split ?? {};
    const anchor = Object.entries(split)
        .filter(([subset]) => steady(subset))
        .sort(([, a], [, b]) => b - a)
        .at(0)?.[0];
    const first: ConfigEdit[] = [];
    const during: ConfigEdit[] = [];
    const last: ConfigEdit[] = [];
    // A route that must be detoured needs a version running on both sides; every update the train makes keeps one.
    const detoured = (): string => {
        if (anchor === undefined) throw new Error(`${service}: no version serves on both sides of the update, so its routes cannot be detoured around it`);
        return anchor;
    };
    const rulesOf = (config: StackConfig) => {
        const list = valueAt(config, ["routes", service]);
        return Array.isArray(list) ? (list as ConfigValue[]) : [];
    };
    rulesOf(before).forEach((rule, i) => {
        if (isRecord(rule) && !steady(rule.to)) first.push({ path: ["routes", service, i, "to"], value: detoured() });
    });
    rulesOf(after).forEach((rule, i) => {
        if (isRecord(rule) && !steady(rule.to)) {
            during.push({ path: ["routes", service, i, "to"], value: detoured() });
            last.push({ path: ["routes", service, i, "to"], value: rule.to });
        }
    });
    // The sticky canary's rule sends its cookie's holders to the candidate.
    const sticky = (config: StackConfig) => valueAt(config, ["services", service, "stickyCanary"]);
    const candidateSubset = (config: StackConfig) => [...subsetVersions(config, service, secretKeys).keys()][1];
    if ((sticky(before) !== undefined && !steady(candidateSubset(before))) || (sticky(after) !== undefined && !steady(candidateSubset(after)))) {
        if (sticky(before) !== undefined) first.push({ path: ["services", service, "stickyCanary"] });
        during.push({ path: ["services", service, "stickyCanary"] });
        const kept = sticky(after);
        if (kept !== undefined) last.push({ path: ["services", service, "stickyCanary"], value: kept });
    }
    // A blue/green preview header reaches each color by name: every service's, as the key is the stack's.
    const preview = valueAt(after, ["previewHeader"]);
    const colorMoves = [...was.keys(), ...will.keys()].some((subset) => (subset === "blue" || subset === "green") && !steady(subset));
    if (typeof preview === "string" && preview !== "" && colorMoves) {
        first.push({ path: ["previewHeader"] });
        during.push({ path: ["previewHeader"] });
        last.push({ path: ["previewHeader"], value: preview });
    }
    return { first, during, last };
}

/**
 * The updates, each made safe in any order Pulumi applies its changes: where a rule would send requests to a
 * subset whose version the update changes, the rules are pointed at a steady subset first, the update made with
 * them there, and the rules put back after (detour). The release split is each update's own to keep safe.
 */
export function safeUpdates(service: string, config: StackConfig, secretKeys: readonly string[], updates: readonly Update[]): Update[] {
    const result: Update[] = [];
    let current = config;
    for (const update of updates) {
        const target = applyEdits(current, update.edits);
        const { first, during, last } = detour(service, current, target, secretKeys);
        if (first.length === 0 && during.length === 0) {
            result.push(update);
        } else {
            if (first.length > 0) result.push({ label: `${service}'s rules to the versions that keep running, before: ${update.label}`, edits: first });
            result.push({ label: update.label, edits: [...update.edits, ...during] });
            if (last.length > 0) result.push({ label: `${service}'s rules back, after: ${update.label}`, edits: last });
        }
        current = target;
    }
    return result;
}

/** The edits that put the service's entry and routes back as they were before the train (the train changes no other key). */
function restoration(candidate: Candidate, before: StackBefore, config: StackConfig): ConfigEdit[] {
    const routesChanged = !isDeepStrictEqual(plain(valueAt(config, ["routes", candidate.service])), plain(before.routes));
    return [{ path: ["services", candidate.service], value: before.entry }, ...(routesChanged ? [{ path: ["routes", candidate.service], ...(before.routes !== undefined && { value: before.routes }) } satisfies ConfigEdit] : [])];
}

/**
 * The updates that take the candidate off a stack and leave it as it was before the train, each safe in any
 * order Pulumi applies its changes: a version takes requests only once it runs (an update before), and is removed
 * only once no route sends it any (an update after).
 * - `promoted` false (the candidate never served, or was rolled back to weight 0 / the old color): one update,
 *   the entry as it was.
 * - a promoted blue/green service: the old color back first (it still runs), then the entry.
 * - a promoted canary, which now runs the candidate alone: the version it replaced back beside it at weight 0,
 *   then all requests to it, then the entry as it was.
 */
export function returnPhases(candidate: Candidate, before: StackBefore, config: StackConfig, secretKeys: readonly string[], promoted: boolean): Update[] {
    return safeUpdates(candidate.service, config, secretKeys, coreReturn(candidate, before, config, promoted));
}

function coreReturn(candidate: Candidate, before: StackBefore, config: StackConfig, promoted: boolean): Update[] {
    const restore = { label: `${candidate.service}'s entry as before the train`, edits: restoration(candidate, before, config) };
    if (!promoted) return [restore];
    if (before.release === "blueGreen") return [{ label: `${before.activeColor ?? "blue"} (${before.serving}) serving again`, edits: [{ path: ["activeColor"], value: before.activeColor ?? "blue" }] }, restore];
    const at = ["services", candidate.service] as const;
    const entry = valueAt(config, at);
    const current = isRecord(entry) && Array.isArray(entry.versions) ? (entry.versions as ConfigValue[]) : [];
    const beforeVersions = isRecord(before.entry) && Array.isArray(before.entry.versions) ? (before.entry.versions as ConfigValue[]) : [];
    const servingEntry = beforeVersions.find((v) => versionName(v) === before.serving) ?? before.serving;
    const promotedEntry = current.find((v) => versionName(v) === candidate.version) ?? candidate.version;
    return [
        { label: `${before.serving} back beside ${candidate.version}, at weight 0`, edits: [{ path: [...at], value: { ...(isRecord(entry) ? entry : {}), release: "canary", versions: [promotedEntry, servingEntry], canaryWeight: 0 } }] },
        { label: `every request to ${before.serving}`, edits: [{ path: [...at, "canaryWeight"], value: 100 }] },
        restore,
    ];
}
