// Human-facing views of the plan: stack outputs and the render summary share them.
import { RequestMatch, RouteRule, TrafficPlan } from "./plan";
import { StringMatch } from "./policy-config";

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

function describeMatch(match: StringMatch): string {
    return "exact" in match ? `=${match.exact}` : "prefix" in match ? ` starts with ${match.prefix}` : ` ~ /${match.regex}/`;
}

function describeConditions(match: RequestMatch): string {
    const parts = Object.entries(match.headers ?? {}).map(([name, m]) => `${name}${describeMatch(m)}`);
    if (match.path) parts.push(`path${describeMatch(match.path)}`);
    return parts.join(" and ");
}

function describeRule(rule: RouteRule): string {
    const to = rule.destinations.filter((d) => d.weight > 0).map((d) => (d.weight === 100 ? d.subset : `${d.subset} ${d.weight}%`)).join(", ");
    return rule.match === undefined ? `${rule.name}: everything else -> ${to}` : `${rule.name}: ${describeConditions(rule.match)} -> ${to}`;
}

function fieldsText(fields: Readonly<Record<string, string | number | undefined>>): string {
    return Object.entries(fields)
        .flatMap(([key, value]) => (value === undefined ? [] : [`${key}=${String(value)}`]))
        .join(", ");
}

/** What each service's routing does besides the split, in words: the `routingPolicies` stack output. */
export type PolicySummary = Record<string, string[]>;

export function policySummary(plan: TrafficPlan): PolicySummary {
    return Object.fromEntries(
        plan.services.map((s) => {
            const release = s.rules[s.rules.length - 1];
            const lines = s.rules.map(describeRule);
            if (release.mirror) lines.push(`mirror: ${release.mirror.percent}% of plain traffic copied to ${release.mirror.subset}`);
            const { fault, timeout, retries } = release;
            if (fault?.delay) lines.push(`fault: ${fault.delay.percent}% of requests delayed ${fault.delay.fixedDelay}`);
            if (fault?.abort) lines.push(`fault: ${fault.abort.percent}% of requests aborted with HTTP ${fault.abort.httpStatus}`);
            if (timeout) lines.push(`timeout: ${timeout}`);
            if (retries) lines.push(`retries: ${retries.attempts}${retries.perTryTimeout ? ` x ${retries.perTryTimeout}` : ""}${retries.retryOn ? ` on ${retries.retryOn}` : ""}`);
            const { connectionPool, outlierDetection } = s.trafficPolicy;
            if (connectionPool) lines.push(`connection pool: ${fieldsText(connectionPool)}`);
            if (outlierDetection) lines.push(`outlier detection: ${fieldsText(outlierDetection)}`);
            if (s.rateLimit) lines.push(`rate limit: ${s.rateLimit.tokensPerFill} requests per ${s.rateLimit.fillInterval} per pod, bursts up to ${s.rateLimit.maxTokens}`);
            return [s.name, lines];
        }),
    );
}
