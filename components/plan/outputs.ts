// Human-facing views of the plan: stack outputs and the render summary share them.
import { JWT_CLAIM_HEADER, RequestMatch, RouteRule, ServicePlan, TrafficPlan } from "./plan";
import { StringMatch } from "../config/policy-config";

/** Where clients reach the gateway: the ingress host when it is a name, else the gateway's address. */
export function ingressUrl(address: string, ingressHost: string, https: boolean): string {
    const host = hostHeader(ingressHost);
    const { port } = splitAddress(address, https);
    const defaultPort = https ? "443" : "80";
    return `${https ? "https" : "http"}://${host === undefined ? address : host + (port === defaultPort ? "" : `:${port}`)}`;
}

/** The Host header a client sends so the gateway's host rule matches (none needed for `*`). */
export function hostHeader(ingressHost: string): string | undefined {
    if (ingressHost === "*") return undefined;
    return ingressHost.startsWith("*.") ? `demo.${ingressHost.slice(2)}` : ingressHost;
}

function splitAddress(address: string, https: boolean): { ip: string; port: string } {
    const colon = address.lastIndexOf(":");
    return colon < 0 ? { ip: address, port: https ? "443" : "80" } : { ip: address.slice(0, colon), port: address.slice(colon + 1) };
}

/**
 * One curl per service, and a 100-request tally for services that split traffic between versions. Over
 * HTTPS to a named host, curl resolves the name to the gateway so SNI and the certificate match.
 */
export function curlCommands(plan: TrafficPlan, address: string, ingressHost: string, https: boolean): string[] {
    const host = hostHeader(ingressHost);
    const base = ingressUrl(address, ingressHost, https);
    let curl = "curl -s";
    if (host !== undefined && https) {
        const { ip, port } = splitAddress(address, https);
        curl = `curl -s --resolve ${host}:${port}:${ip === "localhost" ? "127.0.0.1" : ip}`;
    } else if (host !== undefined) {
        curl = `curl -s -H 'Host: ${host}'`;
    } else if (https) {
        curl = "curl -sk";
    }
    const target = host !== undefined && !https ? `http://${address}` : base;
    return plan.services.flatMap((s) => {
        const lines = [`${curl} ${target}${s.path}`];
        if (s.subsets.length > 1) {
            lines.push(`for i in $(seq 100); do ${curl} ${target}${s.path}; done | sort | uniq -c`);
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

/** How the ingress applies each rule with conditions, where it differs from the mesh. */
function edgeLines(s: ServicePlan): string[] {
    return s.rules.flatMap((rule) => {
        if (rule.match === undefined) return [];
        const atIngress = s.ingressRules.find((r) => r.name === rule.name);
        if (atIngress === undefined) return [`${rule.name}: in-mesh callers only; the ingress ignores it`];
        const claims = Object.entries(atIngress.match?.headers ?? {}).filter(([name]) => name.startsWith(JWT_CLAIM_HEADER));
        return claims.map(([name, m]) => `${rule.name}: at the ingress only with a validated token whose ${name.slice(JWT_CLAIM_HEADER.length)} claim${describeMatch(m)}`);
    });
}

/** What each service's routing does besides the split, in words: the `routingPolicies` stack output. */
export type PolicySummary = Record<string, string[]>;

export function policySummary(plan: TrafficPlan): PolicySummary {
    return Object.fromEntries(
        plan.services.map((s) => {
            const release = s.rules[s.rules.length - 1];
            const lines = [...s.rules.map(describeRule), ...edgeLines(s)];
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
