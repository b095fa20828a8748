// Pure renderers for what leaves the mesh: ServiceEntries, and the egress gateway's Gateway, DestinationRule,
// VirtualServices and AuthorizationPolicy that send each external host's traffic through it. Sidecars reach the
// egress gateway over Istio mutual TLS, so the gateway knows (and checks) who is calling out.
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy" with { "resolution-mode": "import" };
import type { IServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry" with { "resolution-mode": "import" };
import { DestinationRuleSpec, GatewaySpec, MESH_GATEWAY, VirtualServiceSpec } from "./istio-specs";
import { EGRESS_GATEWAY_PORTS, EgressHost } from "../config/observability-config";
import { hostSlug } from "../config/names";

export type ServiceEntrySpec = NonNullable<IServiceEntry["spec"]>;

export const EGRESS_NAMESPACE = "istio-egress";
export const EGRESS_RELEASE = "istio-egressgateway";
export const EGRESS_SELECTOR = { istio: "egressgateway" } as const;
export const EGRESS_GATEWAY = "egress-gateway";
export const EGRESS_GATEWAY_HOST = `${EGRESS_RELEASE}.${EGRESS_NAMESPACE}.svc.cluster.local`;


export function serviceEntrySpec(entry: EgressHost): ServiceEntrySpec {
    return {
        hosts: [entry.host],
        location: "MESH_EXTERNAL",
        resolution: entry.resolution,
        ports: entry.ports.map((p) => ({ number: p.number, name: `${p.protocol.toLowerCase()}-${p.number}`, protocol: p.protocol })),
    };
}

const isTls = (protocol: string) => protocol === "TLS" || protocol === "HTTPS";

const hasHttp = (entry: EgressHost) => entry.ports.some((p) => p.protocol === "HTTP");
const hasTls = (entry: EgressHost) => entry.ports.some((p) => isTls(p.protocol));

/**
 * The egress gateway's servers, all terminating Istio mutual TLS from the sidecars: plain HTTP inside it on
 * port 80 (routed by Host), and on port 443 the app's own TLS inside it, passed on as TCP. A TCP stream has no
 * Host to route by, so each TLS host gets a server of its own, chosen by the SNI its DestinationRule subset sets.
 */
export function egressGatewaySpec(hosts: readonly EgressHost[]): GatewaySpec {
    const withHttp = hosts.filter(hasHttp).map((h) => h.host);
    const mutual = { mode: "ISTIO_MUTUAL" as const };
    return {
        selector: { ...EGRESS_SELECTOR },
        servers: [
            ...(withHttp.length > 0 ? [{ port: { number: EGRESS_GATEWAY_PORTS.HTTP, name: "https-mesh-http", protocol: "HTTPS" }, hosts: withHttp, tls: mutual }] : []),
            ...hosts.filter(hasTls).map((h) => ({ port: { number: EGRESS_GATEWAY_PORTS.TLS, name: `tls-${hostSlug(h.host)}`, protocol: "TLS" }, hosts: [h.host], tls: mutual })),
        ],
    };
}

/**
 * The egress gateway as a destination: one subset per external host, so each route is its own cluster, whose
 * sidecar connections use Istio mutual TLS with the host as SNI (the gateway picks its server by it).
 */
export function egressDestinationRuleSpec(hosts: readonly EgressHost[]): DestinationRuleSpec {
    return {
        host: EGRESS_GATEWAY_HOST,
        subsets: hosts.map((h) => ({
            name: hostSlug(h.host),
            trafficPolicy: {
                portLevelSettings: [...(hasHttp(h) ? [EGRESS_GATEWAY_PORTS.HTTP] : []), ...(hasTls(h) ? [EGRESS_GATEWAY_PORTS.TLS] : [])].map((port) => ({
                    port: { number: port },
                    tls: { mode: "ISTIO_MUTUAL" as const, sni: h.host },
                })),
            },
        })),
    };
}

export type AuthorizationPolicySpec = NonNullable<IAuthorizationPolicy["spec"]>;

/** Only workloads of the app namespace, by their mesh identity, may send traffic out through the egress gateway. */
export function egressAllowSpec(appNamespace: string): AuthorizationPolicySpec {
    return {
        selector: { matchLabels: { ...EGRESS_SELECTOR } },
        action: "ALLOW",
        rules: [{ from: [{ source: { namespaces: [appNamespace] } }] }],
    };
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
            tls: tls.map((p) => ({ match: [{ gateways: [MESH_GATEWAY], port: p.number, sniHosts: [entry.host] }], route: [{ destination: viaGateway(EGRESS_GATEWAY_PORTS.TLS), weight: 100 }] })),
            // Past the gateway's mutual TLS, the app's TLS is an opaque stream: forwarded as TCP.
            tcp: tls.map((p) => ({ match: [{ gateways: [gateway], port: EGRESS_GATEWAY_PORTS.TLS }], route: [{ destination: { host: entry.host, port: { number: p.number } }, weight: 100 }] })),
        }),
    };
}
