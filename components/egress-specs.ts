// Pure renderers for what leaves the mesh: ServiceEntries, and the egress gateway's Gateway, DestinationRule
// and VirtualServices that send each external host's traffic through it.
import type { IServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry" with { "resolution-mode": "import" };
import { DestinationRuleSpec, GatewaySpec, MESH_GATEWAY, VirtualServiceSpec } from "./istio-specs";
import { EGRESS_GATEWAY_PORTS, EgressHost } from "./observability-config";

export type ServiceEntrySpec = NonNullable<IServiceEntry["spec"]>;

export const EGRESS_NAMESPACE = "istio-egress";
export const EGRESS_RELEASE = "istio-egressgateway";
export const EGRESS_SELECTOR = { istio: "egressgateway" } as const;
export const EGRESS_GATEWAY = "egress-gateway";
export const EGRESS_GATEWAY_HOST = `${EGRESS_RELEASE}.${EGRESS_NAMESPACE}.svc.cluster.local`;

/** A Kubernetes-safe name for an external host, e.g. `api-github-com`, `wildcard-example-com`. */
export function hostSlug(host: string): string {
    return host.replace(/^\*\./, "wildcard.").replace(/\./g, "-");
}

export function serviceEntrySpec(entry: EgressHost): ServiceEntrySpec {
    return {
        hosts: [entry.host],
        location: "MESH_EXTERNAL",
        resolution: entry.resolution,
        ports: entry.ports.map((p) => ({ number: p.number, name: `${p.protocol.toLowerCase()}-${p.number}`, protocol: p.protocol })),
    };
}

const isTls = (protocol: string) => protocol === "TLS" || protocol === "HTTPS";

/** One server per protocol the egress gateway carries: HTTP on 80, TLS passed through (SNI) on 443. */
export function egressGatewaySpec(hosts: readonly EgressHost[]): GatewaySpec {
    const withHttp = hosts.filter((h) => h.ports.some((p) => p.protocol === "HTTP")).map((h) => h.host);
    const withTls = hosts.filter((h) => h.ports.some((p) => isTls(p.protocol))).map((h) => h.host);
    return {
        selector: { ...EGRESS_SELECTOR },
        servers: [
            ...(withHttp.length > 0 ? [{ port: { number: EGRESS_GATEWAY_PORTS.HTTP, name: "http", protocol: "HTTP" }, hosts: withHttp }] : []),
            ...(withTls.length > 0 ? [{ port: { number: EGRESS_GATEWAY_PORTS.TLS, name: "tls", protocol: "TLS" }, hosts: withTls, tls: { mode: "PASSTHROUGH" as const } }] : []),
        ],
    };
}

/** The egress gateway as a destination, with one subset per external host so each route is its own cluster. */
export function egressDestinationRuleSpec(hosts: readonly EgressHost[]): DestinationRuleSpec {
    return { host: EGRESS_GATEWAY_HOST, subsets: hosts.map((h) => ({ name: hostSlug(h.host) })) };
}

/** Sidecars send the host's traffic to the egress gateway; the gateway sends it on to the host. */
export function egressVirtualServiceSpec(entry: EgressHost): VirtualServiceSpec {
    const gateway = `${EGRESS_NAMESPACE}/${EGRESS_GATEWAY}`;
    const viaGateway = (port: number) => ({ host: EGRESS_GATEWAY_HOST, subset: hostSlug(entry.host), port: { number: port } });
    const http = entry.ports.filter((p) => p.protocol === "HTTP");
    const tls = entry.ports.filter((p) => isTls(p.protocol));
    return {
        hosts: [entry.host],
        gateways: [MESH_GATEWAY, gateway],
        ...(http.length > 0 && {
            http: http.flatMap((p) => [
                { name: `to-egress-gateway-${p.number}`, match: [{ gateways: [MESH_GATEWAY], port: p.number }], route: [{ destination: viaGateway(EGRESS_GATEWAY_PORTS.HTTP), weight: 100 }] },
                { name: `to-${hostSlug(entry.host)}-${p.number}`, match: [{ gateways: [gateway], port: EGRESS_GATEWAY_PORTS.HTTP }], route: [{ destination: { host: entry.host, port: { number: p.number } }, weight: 100 }] },
            ]),
        }),
        ...(tls.length > 0 && {
            tls: tls.flatMap((p) => [
                { match: [{ gateways: [MESH_GATEWAY], port: p.number, sniHosts: [entry.host] }], route: [{ destination: viaGateway(EGRESS_GATEWAY_PORTS.TLS), weight: 100 }] },
                { match: [{ gateways: [gateway], port: EGRESS_GATEWAY_PORTS.TLS, sniHosts: [entry.host] }], route: [{ destination: { host: entry.host, port: { number: p.number } }, weight: 100 }] },
            ]),
        }),
    };
}
