// What a rollout changes, as config edits: which key carries each service's weight, what each step sets, what
// promotion and rollback write. Pure: the driver applies these edits and `--dry-run` prints them.
import { ConfigProblem, isRecord, show } from "../components/config/config-reader";
import { Color, DEFAULT_SERVICES, ServiceSettings, subsetsOf } from "../components/config/catalogue";
import type { Settings } from "../components/config/config";
import { applyEdits, ConfigEdit, ConfigPath, ConfigValue, pathKey, StackConfig, valueAt } from "./config-edit";

/** One service a rollout moves: where its weight lives, and which versions are judged. */
export interface RolloutTarget {
    readonly service: string;
    readonly release: "canary" | "blueGreen";
    /** The version serving now (the active color's, for blue/green). */
    readonly stableVersion: string;
    /** The version being released. */
    readonly candidateVersion: string;
    /** Canary: the key holding the weight (the service's own, or the stack's canaryWeight). */
    readonly weightPath?: ConfigPath;
    /** Blue/green: the color serving now, and the mirror share the stack had before the rollout. */
    readonly activeColor?: Color;
    readonly mirrorBefore?: ConfigValue;
}

/** A problem with what was asked (`--service`), named like a config problem: flag, value, allowed, fix. */
export class RolloutRefusal extends Error {
    constructor(readonly problems: readonly ConfigProblem[]) {
        super(`The rollout cannot start; nothing was changed:\n${problems.map((p) => `  - ${p.key} = ${p.value}: ${p.allowed}.\n    Fix: ${p.fix}`).join("\n")}`);
        this.name = "RolloutRefusal";
    }
}

export const otherColor = (color: Color): Color => (color === "blue" ? "green" : "blue");

/**
 * The commands that apply `edits` to the stack as it is, joined by &&: `pulumi config set` per edit (top-level
 * values as text, as Pulumi stores them). A structured value, and a path under `services` on a stack without a
 * catalogue of its own (where a --path set would replace the default catalogue with that one field), go whole: the
 * key as edited, written by one `pulumi config set-all --json`.
 */
export function configCommands(project: string, config: StackConfig, edits: readonly ConfigEdit[]): string {
    const base: StackConfig = isRecord(config.services) ? config : { ...config, services: defaultServices() };
    const goesWhole = (e: ConfigEdit) => (e.value !== undefined && typeof e.value === "object") || (e.path[0] === "services" && !isRecord(config.services));
    const wholeKeys = [...new Set(edits.filter(goesWhole).map((e) => e.path[0]))];
    const commands: string[] = [];
    if (wholeKeys.length > 0) {
        const edited = applyEdits(base, edits.filter((e) => wholeKeys.includes(e.path[0])));
        const json = Object.fromEntries(wholeKeys.map((key) => [`${project}:${key}`, { value: JSON.stringify(edited[key]), objectValue: edited[key], secret: false }]));
        commands.push(`pulumi config set-all --json '${JSON.stringify(json)}'`);
    }
    for (const { path, value } of edits.filter((e) => !wholeKeys.includes(e.path[0]))) {
        if (value === undefined) commands.push(`pulumi config rm --path '${pathKey(path)}'`);
        else if (typeof value !== "object") commands.push(path.length === 1 ? `pulumi config set ${path[0]} ${String(value)}` : `pulumi config set --path '${pathKey(path)}' ${String(value)}`);
    }
    return commands.join(" && ");
}

/** The name of the version after `last`: v1 -> v2, api-9 -> api-10; otherwise last-2. */
function nextVersion(last: string): string {
    const numbered = /^(.*?)(\d+)$/.exec(last);
    return numbered === null ? `${last}-2` : `${numbered[1]}${Number(numbered[2]) + 1}`;
}

/** The services `--service` names, checked: each runs two versions, and moving its weight moves no service left out. */
export function rolloutTargets(settings: Settings, config: StackConfig, names: readonly string[], project: string): RolloutTarget[] {
    const problems: ConfigProblem[] = [];
    const known = settings.services.map((s) => s.name);
    const chosen: ServiceSettings[] = [];
    for (const name of names) {
        const service = settings.services.find((s) => s.name === name);
        if (service === undefined) {
            problems.push({ key: "--service", value: show(name), allowed: `is not a service of this stack (services: ${known.join(", ")})`, fix: `--service ${known.find((k) => settings.services.find((s) => s.name === k)?.release !== "single") ?? known[0]}` });
        } else if (service.release === "single") {
            // A canary of its own weight (at 0 until the rollout moves it), so it moves no other service.
            const at = ["services", name] as const;
            const deploy = configCommands(project, config, [
                { path: [...at, "release"], value: "canary" },
                { path: [...at, "versions", service.versions.length], value: nextVersion(service.versions.at(-1) ?? "v1") },
                { path: [...at, "canaryWeight"], value: 0 },
            ]);
            problems.push({ key: "--service", value: show(name), allowed: "runs one version, so there is nothing to roll out", fix: `deploy a candidate first (set its image under services.${name}.versions if it needs one): ${deploy} && pulumi up` });
        } else if (chosen.includes(service)) {
            problems.push({ key: "--service", value: show(name), allowed: "is named twice", fix: `name each service once` });
        } else {
            chosen.push(service);
        }
    }
    const left = (predicate: (s: ServiceSettings) => boolean) => settings.services.filter((s) => predicate(s) && !chosen.includes(s)).map((s) => s.name);
    // The stack's canaryWeight moves every canary without a weight of its own; activeColor switches every blue/green service.
    const sharedWeight = (s: ServiceSettings) => s.release === "canary" && s.canaryWeight === undefined;
    if (chosen.some(sharedWeight) && left(sharedWeight).length > 0) {
        const others = left(sharedWeight);
        problems.push({
            key: "--service",
            value: show(chosen.filter(sharedWeight).map((s) => s.name).join(",")),
            allowed: `moves the stack's canaryWeight, which also moves ${others.join(", ")}, left out of this rollout and of its analysis`,
            fix: `roll them out together (--service ${others[0]}), or give ${others[0]} its own weight: ${configCommands(project, config, [{ path: ["services", others[0], "canaryWeight"], value: settings.canaryWeight }])}`,
        });
    }
    const blueGreen = (s: ServiceSettings) => s.release === "blueGreen";
    if (chosen.some(blueGreen) && left(blueGreen).length > 0) {
        const others = left(blueGreen);
        problems.push({ key: "--service", value: show(chosen.filter(blueGreen).map((s) => s.name).join(",")), allowed: `switches the stack's activeColor, which also switches ${others.join(", ")}, left out of this rollout`, fix: `roll them out together: --service ${others[0]}` });
    }
    const unmirrorable =
        settings.dataPlane === "ambient"
            ? // Envoy sends a mirrored copy from its router, past the filter that counts requests; sidecar stacks count it at the idle pods' sidecars, which ambient pods do not have.
              "with dataPlane ambient no proxy reports them: the waypoint counts the request it routes, not its copy, and the idle pods have no sidecar"
            : settings.trafficApi === "gatewayApi" && settings.gatewayProvider !== "istio"
              ? `with gatewayProvider ${settings.gatewayProvider} the edge cannot mirror into the mesh`
              : undefined;
    if (chosen.some(blueGreen) && settings.rollout.blueGreenTraffic === "mirror" && unmirrorable !== undefined) {
        problems.push({
            key: "rollout.blueGreenTraffic",
            value: show("mirror"),
            allowed: `judges the idle color on mirrored requests, and ${unmirrorable}`,
            fix: configCommands(project, config, [...(settings.policies.previewHeader === undefined ? [{ path: ["previewHeader"], value: "x-preview" } satisfies ConfigEdit] : []), { path: ["rollout", "blueGreenTraffic"], value: "preview" }]),
        });
    }
    if (settings.dataPlane === "ambientReady") {
        // Edge requests reach the versions through the waypoint, mesh calls sidecar to sidecar: no one reporter counts them all.
        problems.push({
            key: "dataPlane",
            value: show("ambientReady"),
            allowed: "is a data-plane switch under way, where the waypoint reports the edge's requests and the sidecars the mesh's, so no one query counts a version's requests; a rollout runs on sidecar or ambient",
            fix: `finish the switch first: ${configCommands(project, config, [{ path: ["dataPlane"], value: "ambient" }])} && pulumi up; or: ${configCommands(project, config, [{ path: ["dataPlane"], value: "sidecar" }])} && pulumi up`,
        });
    }
    if (chosen.some(blueGreen) && settings.rollout.blueGreenTraffic === "preview" && settings.policies.previewHeader === undefined) {
        problems.push({ key: "rollout.blueGreenTraffic", value: show("preview"), allowed: "judges the idle color by preview-header requests, and the stack has no previewHeader", fix: `${configCommands(project, config, [{ path: ["previewHeader"], value: "x-preview" }])}; or: ${configCommands(project, config, [{ path: ["rollout", "blueGreenTraffic"], value: "mirror" }])}` });
    }
    if (chosen.some((s) => s.release === "canary") && !settings.rollout.steps.some((percent) => percent < 100)) {
        problems.push({ key: "rollout.steps", value: show(settings.rollout.steps), allowed: "has no step below 100, so a canary is never judged against its stable version while both serve", fix: configCommands(project, config, [{ path: ["rollout", "steps", 0], value: 10 }]) });
    }
    if (problems.length > 0) throw new RolloutRefusal(problems);
    return chosen.map((service): RolloutTarget => {
        if (service.release === "blueGreen") {
            const active = settings.activeColor;
            const version = (color: Color) => subsetsOf(service).find((s) => s.name === color)?.version ?? color;
            return { service: service.name, release: "blueGreen", stableVersion: version(active), candidateVersion: version(otherColor(active)), activeColor: active, mirrorBefore: valueAt(config, ["mirror", service.name]) };
        }
        const [stableVersion, candidateVersion] = service.versions;
        const weightPath: ConfigPath = service.canaryWeight === undefined ? ["canaryWeight"] : ["services", service.name, "canaryWeight"];
        return { service: service.name, release: "canary", stableVersion, candidateVersion, weightPath };
    });
}

const mirrorEdit = (target: RolloutTarget, value: ConfigValue | undefined): ConfigEdit => ({ path: ["mirror", target.service], ...(value !== undefined && { value }) });

/** The edits of one step: each canary's weight, and the mirrored share of each blue/green idle color. */
export function stepEdits(targets: readonly RolloutTarget[], percent: number, settings: Pick<Settings, "rollout">): ConfigEdit[] {
    return dedupe(
        targets.flatMap((t): ConfigEdit[] => {
            if (t.weightPath !== undefined) return [{ path: t.weightPath, value: percent }];
            return settings.rollout.blueGreenTraffic === "mirror" ? [mirrorEdit(t, percent)] : [];
        }),
    );
}

/** Back to where the rollout started, for its users: no weight on any candidate, every color as it was. */
export function rollbackEdits(targets: readonly RolloutTarget[]): ConfigEdit[] {
    return dedupe(
        targets.flatMap((t): ConfigEdit[] => {
            if (t.weightPath !== undefined) return [{ path: t.weightPath, value: 0 }];
            return [{ path: ["activeColor"], value: t.activeColor ?? "blue" }, mirrorEdit(t, t.mirrorBefore)];
        }),
    );
}

/** Blue/green promotion: the idle color becomes active, the mirror share goes back to what it was. */
export function switchEdits(targets: readonly RolloutTarget[]): ConfigEdit[] {
    return dedupe(targets.flatMap((t): ConfigEdit[] => (t.release === "blueGreen" ? [{ path: ["activeColor"], value: otherColor(t.activeColor ?? "blue") }, mirrorEdit(t, t.mirrorBefore)] : [])));
}

/** The default catalogue as the services key would hold it. */
export function defaultServices(): Record<string, ConfigValue> {
    return Object.fromEntries(DEFAULT_SERVICES.map((s) => [s.name, { path: s.path, release: s.release, versions: [...s.versions] }]));
}

const isVersion = (entry: ConfigValue, name: string) => entry === name || (isRecord(entry) && entry.name === name);

/**
 * Canary promotion, as config: the candidate becomes the service's only version (release: single), and the
 * old stable version is deleted by the `pulumi up` that applies it. The weight key goes back to 0 for the next
 * release; the service's own weight, sticky cookie and mirror, which only a canary has, are removed. Each edit
 * names one field of the service, so the rest of the catalogue (other services, comments) is left as it is; a
 * stack without a catalogue of its own gets the default one written out, promoted.
 */
export function promotionEdits(targets: readonly RolloutTarget[], config: StackConfig): ConfigEdit[] {
    const canaries = targets.filter((t) => t.release === "canary");
    if (canaries.length === 0) return [];
    const edits: ConfigEdit[] = [];
    if (isRecord(config.services)) {
        for (const t of canaries) {
            const at = ["services", t.service] as const;
            const entry = valueAt(config, at);
            const versions = isRecord(entry) && Array.isArray(entry.versions) ? (entry.versions as ConfigValue[]) : [];
            // From the last, so each removal leaves the indexes of the ones before it as they were.
            for (let i = versions.length - 1; i >= 0; i--) if (!isVersion(versions[i], t.candidateVersion)) edits.push({ path: [...at, "versions", i] });
            edits.push({ path: [...at, "release"], value: "single" });
            for (const field of ["canaryWeight", "stickyCanary"]) if (valueAt(config, [...at, field]) !== undefined) edits.push({ path: [...at, field] });
        }
    } else {
        const services = { ...defaultServices() };
        for (const t of canaries) {
            const entry = services[t.service];
            if (isRecord(entry)) services[t.service] = { ...entry, release: "single", versions: [t.candidateVersion] };
        }
        edits.push({ path: ["services"], value: services });
    }
    if (canaries.some((t) => t.weightPath?.length === 1)) edits.push({ path: ["canaryWeight"], value: 0 });
    for (const t of canaries) if (valueAt(config, ["mirror", t.service]) !== undefined) edits.push({ path: ["mirror", t.service] });
    return edits;
}

/** The last edit to each path wins; one edit per path keeps the printed plan readable. */
function dedupe(edits: readonly ConfigEdit[]): ConfigEdit[] {
    const byPath = new Map(edits.map((e) => [pathKey(e.path), e]));
    return [...byPath.values()];
}

/** The stack config after each phase, for checking every one of them before anything is applied. */
export interface RolloutPhases {
    readonly steps: readonly { readonly percent: number; readonly edits: readonly ConfigEdit[]; readonly config: StackConfig }[];
    /**
     * The step the rollout leaves only once the sequential tests show every candidate no worse: the last at which
     * the stable versions still serve (below 100 % for a canary; a mirrored blue/green step leaves it serving all).
     */
    readonly proofStep: number;
    /** Blue/green: the switch, judged before canaries are promoted. */
    readonly switch?: { readonly edits: readonly ConfigEdit[]; readonly config: StackConfig };
    /**
     * Canary promotion from a step below 100 % (the driver applies it only then), first: every request to the
     * candidates. Promotion removes the old
     * version's subset (or Service), and Pulumi updates the DestinationRule before the routes that depend on it:
     * a route still sending a share there would meet no subset (503) until its own update lands. Once no route
     * names the old version, removing it breaks nothing, in any order.
     */
    readonly drain?: { readonly edits: readonly ConfigEdit[]; readonly config: StackConfig };
    readonly promotion: { readonly edits: readonly ConfigEdit[]; readonly config: StackConfig };
    readonly rollback: { readonly edits: readonly ConfigEdit[]; readonly config: StackConfig };
}

export function rolloutPhases(targets: readonly RolloutTarget[], config: StackConfig, settings: Pick<Settings, "rollout">): RolloutPhases {
    let current = config;
    const steps = settings.rollout.steps.map((percent) => {
        const edits = stepEdits(targets, percent, settings);
        current = applyEdits(current, edits);
        return { percent, edits, config: current };
    });
    const switched = switchEdits(targets);
    const afterSwitch = switched.length > 0 ? applyEdits(current, switched) : current;
    // Always planned: a promotion asked for at an earlier step (npm run rollout -- promote) leaves one below 100 %.
    const drained = promotionEdits(targets, afterSwitch).length > 0 ? stepEdits(targets.filter((t) => t.release === "canary"), 100, settings) : [];
    const afterDrain = drained.length > 0 ? applyEdits(afterSwitch, drained) : afterSwitch;
    const promotion = promotionEdits(targets, afterDrain);
    const rollback = rollbackEdits(targets);
    const proofStep = targets.some((t) => t.release === "canary") ? steps.reduce((last, s, i) => (s.percent < 100 ? i : last), -1) : steps.length - 1;
    return {
        steps,
        proofStep,
        ...(switched.length > 0 && { switch: { edits: switched, config: afterSwitch } }),
        ...(drained.length > 0 && { drain: { edits: drained, config: afterDrain } }),
        promotion: { edits: promotion, config: applyEdits(afterDrain, promotion) },
        // A rollback may come at any step; from the last one it undoes the most.
        rollback: { edits: rollback, config: applyEdits(current, rollback) },
    };
}
