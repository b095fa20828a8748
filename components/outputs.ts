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

/** The split as a fixed-width table: service, release, then `subset=percent` for each subset. */
export function splitTable(plan: TrafficPlan): string {
    const rows = plan.services.map((s) => [s.name, s.release, s.path, Object.entries(s.split).map(([subset, w]) => `${subset}=${w}%`).join("  ")]);
    const header = ["SERVICE", "RELEASE", "PATH", "SPLIT (plain requests)"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
