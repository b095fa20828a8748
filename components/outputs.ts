// Human-facing views of the plan: stack outputs and the render summary share them.
import { TrafficPlan } from "./plan";

export function ingressUrl(address: string): string {
    return `http://${address}`;
}

/** The Host header a client sends so the gateway's host rule matches (none needed for `*`). */
export function hostHeader(ingressHost: string): string | undefined {
    if (ingressHost === "*") return undefined;
    return ingressHost.startsWith("*.") ? `demo.${ingressHost.slice(2)}` : ingressHost;
}

/** One curl per service, and a 100-request tally for services that split traffic between versions. */
export function curlCommands(plan: TrafficPlan, baseUrl: string, ingressHost: string): string[] {
    const host = hostHeader(ingressHost);
    const curl = `curl -s${host === undefined ? "" : ` -H 'Host: ${host}'`}`;
    return plan.services.flatMap((s) => {
        const lines = [`${curl} ${baseUrl}${s.path}`];
        if (s.subsets.length > 1) {
            lines.push(`for i in $(seq 100); do ${curl} ${baseUrl}${s.path}; done | sort | uniq -c`);
        }
        return lines;
    });
}

/** Percent of plain requests per subset, per service: the `trafficSplit` stack output. */
export type TrafficSplit = Record<string, Record<string, number>>;

export function trafficSplit(plan: TrafficPlan): TrafficSplit {
    return Object.fromEntries(plan.services.map((s) => [s.name, { ...s.split }]));
}

/** The split as a fixed-width table, one service a row. */
export function splitTable(split: TrafficSplit): string {
    const rows = Object.entries(split).map(([service, shares]) => [service, Object.entries(shares).map(([subset, w]) => `${subset}=${w}%`).join("  ")]);
    const header = ["SERVICE", "TRAFFIC SPLIT (requests without a matching rule)"];
    const width = Math.max(header[0].length, ...rows.map((r) => r[0].length));
    return [header, ...rows].map(([service, shares]) => `${service.padEnd(width)}  ${shares}`).join("\n");
}
