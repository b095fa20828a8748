// The traffic plan: which versions of each service run, how they are named as Istio subsets, and which share
// of requests each subset receives. Pure data from the settings model; the components only render it.
import { Settings, ServiceSettings } from "./config";

export interface Subset {
    /** Subset name in the DestinationRule (`v1`, or `blue` / `green` for blue/green services). */
    readonly name: string;
    /** Value of the pods' `version` label. */
    readonly version: string;
}

export interface WeightedSubset {
    readonly subset: string;
    readonly weight: number;
}

/** One HTTP route rule, in the order Istio evaluates them. */
export interface RouteRule {
    readonly name: string;
    readonly destinations: readonly WeightedSubset[];
}

export interface ServicePlan {
    readonly name: string;
    readonly namespace: string;
    /** The Service's cluster-local FQDN, the host Istio routes to. */
    readonly host: string;
    readonly path: string;
    readonly release: ServiceSettings["release"];
    readonly subsets: readonly Subset[];
    /** Ordered rules; the last one has no match and carries the release split. */
    readonly rules: readonly RouteRule[];
    /** Percent of plain requests per subset (the default rule), for outputs and summaries. */
    readonly split: Readonly<Record<string, number>>;
    /** The text each version's pods answer with, so a curl shows which version served it. */
    readonly responseText: Readonly<Record<string, string>>;
}

export interface TrafficPlan {
    readonly namespace: string;
    readonly ingressHost: string;
    readonly services: readonly ServicePlan[];
}

function subsetsOf(service: ServiceSettings): Subset[] {
    if (service.release === "blueGreen") {
        const [blue, green] = service.versions;
        return [
            { name: "blue", version: blue },
            { name: "green", version: green },
        ];
    }
    return service.versions.map((version) => ({ name: version, version }));
}

/** The default split of a service: the one decision canaryWeight and activeColor control. */
export function releaseSplit(service: ServiceSettings, settings: Pick<Settings, "canaryWeight" | "activeColor">): WeightedSubset[] {
    switch (service.release) {
        case "canary": {
            const [stable, candidate] = service.versions;
            return [
                { subset: stable, weight: 100 - settings.canaryWeight },
                { subset: candidate, weight: settings.canaryWeight },
            ];
        }
        case "blueGreen":
            return [
                { subset: "blue", weight: settings.activeColor === "blue" ? 100 : 0 },
                { subset: "green", weight: settings.activeColor === "green" ? 100 : 0 },
            ];
        case "single":
            return [{ subset: service.versions[0], weight: 100 }];
    }
}

function planService(service: ServiceSettings, settings: Settings): ServicePlan {
    const subsets = subsetsOf(service);
    const split = releaseSplit(service, settings);
    const responseText: Record<string, string> = {};
    for (const s of subsets) {
        responseText[s.version] = s.name === s.version ? `${service.name} ${s.version}` : `${service.name} ${s.version} (${s.name})`;
    }
    return {
        name: service.name,
        namespace: settings.appNamespace,
        host: `${service.name}.${settings.appNamespace}.svc.cluster.local`,
        path: service.path,
        release: service.release,
        subsets,
        rules: [{ name: "release", destinations: split }],
        split: Object.fromEntries(split.map((d) => [d.subset, d.weight])),
        responseText,
    };
}

export function planTraffic(settings: Settings): TrafficPlan {
    return {
        namespace: settings.appNamespace,
        ingressHost: settings.ingressHost,
        services: settings.services.map((s) => planService(s, settings)),
    };
}
