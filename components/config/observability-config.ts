// Observability and egress settings from stack config: which add-ons to install, trace sampling and access
// logs, and what may leave the mesh. Pure validation into typed settings.
import { Reader, setCommand, setPathCommand, show } from "./config-reader";
import { dnsNameProblem } from "./names";
import { quantityValue } from "./workload-config";

export type OutboundTrafficPolicy = "ALLOW_ANY" | "REGISTRY_ONLY";
export const OUTBOUND_POLICIES: readonly OutboundTrafficPolicy[] = ["ALLOW_ANY", "REGISTRY_ONLY"];
export type EgressProtocol = "HTTP" | "HTTPS" | "TLS" | "TCP";
export const EGRESS_PROTOCOLS: readonly EgressProtocol[] = ["HTTP", "HTTPS", "TLS", "TCP"];
export type EgressResolution = "DNS" | "NONE";

export interface ObservabilitySettings {
    /** Install Prometheus, Grafana, Kiali and Jaeger, and trace to Jaeger. */
    readonly enabled: boolean;
    /** Percent of requests traced (with `enabled`). */
    readonly traceSamplingPercent: number;
    /** Envoy access logs to each proxy's stdout. */
    readonly accessLogging: boolean;
    /** Prometheus's data on a PersistentVolumeClaim, or undefined for the pod's own (lost on restart). */
    readonly prometheusVolume?: { readonly size: string; readonly storageClass?: string };
}

export interface EgressHost {
    readonly host: string;
    readonly ports: readonly { readonly number: number; readonly protocol: EgressProtocol }[];
    readonly resolution: EgressResolution;
}

export interface EgressSettings {
    readonly hosts: readonly EgressHost[];
    /** Send the hosts' traffic through a dedicated egress gateway. */
    readonly gateway: boolean;
    readonly outboundTrafficPolicy: OutboundTrafficPolicy;
}

export const OBSERVABILITY_DEFAULTS = {
    observability: false,
    traceSamplingPercent: 1,
    accessLogging: false,
    prometheusVolumeSize: "",
    prometheusStorageClass: "",
    egressGateway: false,
    outboundTrafficPolicy: "ALLOW_ANY",
} as const;

/** Keys that take decimals, which Pulumi.yaml can only declare as strings (it has no number type). */
export const DECIMAL_KEYS: readonly string[] = ["traceSamplingPercent"];

export const OBSERVABILITY_KEYS = ["observability", "traceSamplingPercent", "accessLogging", "prometheusVolumeSize", "prometheusStorageClass", "egressHosts", "egressGateway", "outboundTrafficPolicy"] as const;

/** The ports the egress gateway (the `gateway` chart's defaults) listens on, per protocol. */
export const EGRESS_GATEWAY_PORTS: Readonly<Record<"HTTP" | "TLS", number>> = { HTTP: 80, TLS: 443 };

const EXTERNAL_HOST = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

function readPrometheusVolume(r: Reader, enabled: boolean, production: boolean): ObservabilitySettings["prometheusVolume"] {
    const raw = r.raw("prometheusVolumeSize");
    let size: string = OBSERVABILITY_DEFAULTS.prometheusVolumeSize;
    if (raw !== undefined) {
        const text = raw.trim();
        const bytes = quantityValue(text);
        // A storage request Kubernetes reads as whole bytes, 1Mi or more (20 or 20m would be bytes, or less).
        if (text === "" || (bytes !== undefined && Number.isInteger(bytes) && bytes >= 2 ** 20)) size = text;
        else r.fail("prometheusVolumeSize", show(raw), "must be a volume size of at least 1Mi in Kubernetes' quantity syntax, such as 20Gi, 1.5Ti or 20G, or empty for no volume", setCommand("prometheusVolumeSize", "20Gi"));
    }
    const storageClass = r.pattern("prometheusStorageClass", OBSERVABILITY_DEFAULTS.prometheusStorageClass, /^$|^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be the name of a StorageClass, or empty for the cluster's default", "standard");
    if (storageClass !== "" && size === "") {
        r.fail("prometheusStorageClass", show(storageClass), "needs prometheusVolumeSize: a storage class applies to Prometheus's volume", setCommand("prometheusVolumeSize", "20Gi"));
    }
    if (production && enabled && size === "") {
        // Without a volume, every restart or node drain of the Prometheus pod loses the metrics a release is judged by.
        r.fail("prometheusVolumeSize", show(size), "a production stack with observability keeps Prometheus's data on a persistent volume", setCommand("prometheusVolumeSize", "20Gi"));
    }
    return size === "" ? undefined : { size, ...(storageClass !== "" && { storageClass }) };
}

export function readObservability(r: Reader, production: boolean): ObservabilitySettings {
    const enabled = r.boolean("observability", OBSERVABILITY_DEFAULTS.observability, "install Prometheus, Grafana, Kiali and Jaeger");
    const raw = r.raw("traceSamplingPercent");
    let traceSamplingPercent: number = OBSERVABILITY_DEFAULTS.traceSamplingPercent;
    if (raw !== undefined) {
        const value = Number(raw.trim());
        if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 100) {
            r.fail("traceSamplingPercent", show(raw), "must be a percent from 0 to 100 (decimals allowed, such as 0.5)", "pulumi config set traceSamplingPercent 10");
        } else {
            traceSamplingPercent = value;
        }
    }
    const prometheusVolume = readPrometheusVolume(r, enabled, production);
    return {
        enabled,
        traceSamplingPercent,
        accessLogging: r.boolean("accessLogging", OBSERVABILITY_DEFAULTS.accessLogging, "Envoy access logs on every proxy's stdout"),
        ...(prometheusVolume && { prometheusVolume }),
    };
}

function readEgressHost(r: Reader, at: string, value: unknown): EgressHost | undefined {
    const fix = setPathCommand(`${at}.host`, "api.github.com");
    if (!r.fields(at, value, ["host", "ports", "resolution"], "{ host, ports: [{ number, protocol }], resolution? }", fix)) return undefined;
    const before = r.problems.length;
    let host = r.stringAt(`${at}.host`, value.host, EXTERNAL_HOST, "must be an external DNS name such as api.github.com, or *.example.com", "api.github.com");
    const hostProblem = host === undefined ? undefined : dnsNameProblem(host);
    if (hostProblem !== undefined) {
        r.fail(`${at}.host`, show(host), hostProblem, setPathCommand(`${at}.host`, "api.github.com"));
        host = undefined;
    }
    const resolution = value.resolution ?? (typeof host === "string" && host.startsWith("*.") ? "NONE" : "DNS");
    if (resolution !== "DNS" && resolution !== "NONE") {
        r.fail(`${at}.resolution`, show(resolution), "must be DNS (resolve the name) or NONE (pass through to the requested address; needed for wildcards)", setPathCommand(`${at}.resolution`, "DNS"));
    } else if (resolution === "DNS" && typeof host === "string" && host.startsWith("*.")) {
        r.fail(`${at}.resolution`, show(resolution), "a wildcard host cannot be resolved by DNS; use NONE", setPathCommand(`${at}.resolution`, "NONE"));
    }
    const ports: { number: number; protocol: EgressProtocol }[] = [];
    if (!Array.isArray(value.ports) || value.ports.length === 0) {
        r.fail(`${at}.ports`, show(value.ports), "must be a non-empty list of { number, protocol }", setPathCommand(`${at}.ports[0].number`, 443));
    } else {
        value.ports.forEach((port: unknown, i) => {
            const portAt = `${at}.ports[${i}]`;
            if (!r.fields(portAt, port, ["number", "protocol"], "{ number, protocol }", setPathCommand(`${portAt}.number`, 443))) return;
            const number = r.integerAt(`${portAt}.number`, port.number, 1, 65535, "the external port", 443);
            const protocol = EGRESS_PROTOCOLS.find((p) => p === port.protocol);
            if (protocol === undefined) r.fail(`${portAt}.protocol`, show(port.protocol), `must be one of ${EGRESS_PROTOCOLS.join(", ")}`, setPathCommand(`${portAt}.protocol`, "TLS"));
            if (number !== undefined && protocol !== undefined) ports.push({ number, protocol });
        });
        if (new Set(ports.map((p) => p.number)).size !== ports.length) {
            r.fail(`${at}.ports`, show(value.ports), "must not list a port twice", setPathCommand(`${at}.ports[0].number`, 443));
        }
    }
    if (r.problems.length !== before || host === undefined || (resolution !== "DNS" && resolution !== "NONE")) return undefined;
    return { host, ports, resolution };
}

export function readEgress(r: Reader): EgressSettings {
    const gateway = r.boolean("egressGateway", OBSERVABILITY_DEFAULTS.egressGateway, "route egressHosts through a dedicated egress gateway");
    const outboundTrafficPolicy = r.oneOf("outboundTrafficPolicy", OBSERVABILITY_DEFAULTS.outboundTrafficPolicy, OUTBOUND_POLICIES, "REGISTRY_ONLY blocks every external host not in egressHosts");
    const hosts: EgressHost[] = [];
    const raw = r.raw("egressHosts");
    if (raw !== undefined) {
        const parsed = r.json("egressHosts");
        if (!Array.isArray(parsed)) {
            r.fail("egressHosts", show(raw), "must be a list of { host, ports, resolution? }", setPathCommand("egressHosts[0].host", "api.github.com"));
        } else {
            parsed.forEach((entry: unknown, i) => {
                const host = readEgressHost(r, `egressHosts[${i}]`, entry);
                if (host !== undefined) hosts.push(host);
            });
        }
    }
    const names = hosts.map((h) => h.host);
    names.forEach((name, i) => {
        if (names.indexOf(name) !== i) r.fail(`egressHosts[${i}].host`, show(name), "is listed twice", `pulumi config rm --path 'egressHosts[${i}]'`);
    });
    if (gateway) {
        if (hosts.length === 0) r.fail("egressGateway", "true", "needs at least one entry in egressHosts to route", setPathCommand("egressHosts[0].host", "api.github.com"));
        hosts.forEach((h, i) => {
            if (h.host.startsWith("*.")) {
                r.fail(`egressHosts[${i}].host`, show(h.host), "a wildcard host cannot be routed through the egress gateway (it forwards to one named host); list the hosts", setPathCommand(`egressHosts[${i}].host`, h.host.replace("*.", "api.")));
            }
            h.ports.forEach((p, j) => {
                const kind = p.protocol === "HTTP" ? "HTTP" : p.protocol === "TCP" ? undefined : "TLS";
                if (kind === undefined || p.number !== EGRESS_GATEWAY_PORTS[kind]) {
                    r.fail(`egressHosts[${i}].ports[${j}]`, show(p), "through the egress gateway, use HTTP on port 80 or HTTPS/TLS on port 443 (the ports it listens on)", setPathCommand(`egressHosts[${i}].ports[${j}].number`, 443));
                }
            });
        });
    }
    return { hosts, gateway, outboundTrafficPolicy };
}
