// Pure values for Envoy Gateway as the Gateway API's edge provider: its pinned charts, its GatewayClass, and the
// EnvoyProxy that joins its proxies to Istio's mesh. Envoy Gateway v1.8 is the release built against Gateway API
// v1.5.1, the CRDs this program installs; its own chart therefore installs no Gateway API CRDs.
import type { GatewayServiceType } from "../config/config";
import type { HelmChart } from "./helm-chart";

export const ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system";
export const ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller";
export const ENVOY_GATEWAY_CLASS = "envoy-gateway";
/** The EnvoyProxy the GatewayClass points at: how Envoy Gateway runs the edge's proxies. */
export const ENVOY_PROXY_CONFIG = "edge-proxy";
/**
 * The proxies' service account, named rather than Envoy Gateway's hashed default (envoy-<ns>-<gateway>-<hash>):
 * their mesh identity, which the apps admit, and nothing else in the namespace has.
 */
export const ENVOY_PROXY_SERVICE_ACCOUNT = "edge-proxy";
/** The port of Envoy Gateway's xDS server, which its proxies dial over TLS of its own (v1.8.3 bootstrap.go). */
export const ENVOY_GATEWAY_XDS_PORT = 18000;
export const ENVOY_PROXY_API = "gateway.envoyproxy.io/v1alpha1";

const VERSION = "v1.8.3";
/** Envoy Gateway's own CRDs (EnvoyProxy and its policies), without the Gateway API's. */
export const ENVOY_GATEWAY_CRDS_CHART: HelmChart = { chart: "oci://docker.io/envoyproxy/gateway-crds-helm", version: VERSION };
export const ENVOY_GATEWAY_CHART: HelmChart = { chart: "oci://docker.io/envoyproxy/gateway-helm", version: VERSION };

export function envoyGatewayCrdsValues() {
    return { crds: { gatewayAPI: { enabled: false }, envoyGateway: { enabled: true } } };
}

/** The controller chart, with no CRDs of its own: the Gateway API's are the program's, Envoy Gateway's the CRD chart's. */
export function envoyGatewayValues() {
    return { crds: { enabled: false } };
}

export interface GatewayClassSpec {
    readonly controllerName: string;
    readonly parametersRef: { readonly group: string; readonly kind: string; readonly name: string; readonly namespace: string };
}

export function envoyGatewayClassSpec(): GatewayClassSpec {
    return { controllerName: ENVOY_GATEWAY_CONTROLLER, parametersRef: { group: "gateway.envoyproxy.io", kind: "EnvoyProxy", name: ENVOY_PROXY_CONFIG, namespace: ENVOY_GATEWAY_NAMESPACE } };
}

/** The EnvoyProxy fields this program sets (Envoy Gateway v1.8's API). */
export interface EnvoyProxySpec {
    readonly routingType: "Service";
    readonly provider: {
        readonly type: "Kubernetes";
        readonly kubernetes: {
            readonly envoyDeployment: { readonly replicas: number; readonly pod: { readonly labels: Readonly<Record<string, string>>; readonly annotations: Readonly<Record<string, string>> } };
            readonly envoyServiceAccount: { readonly name: string };
            readonly envoyPDB?: { readonly minAvailable: number };
            readonly envoyService: {
                readonly type: GatewayServiceType;
                readonly patch?: { readonly type: "StrategicMerge"; readonly value: { readonly spec: { readonly ports: readonly { readonly port: number; readonly nodePort: number }[] } } };
            };
        };
    };
}

export interface EdgeProxyArgs {
    readonly serviceType: GatewayServiceType;
    readonly replicas: number;
    readonly httpNodePort: number;
    readonly httpsNodePort: number;
    readonly https: boolean;
}

/**
 * The edge's proxies as members of the mesh: each gets Istio's sidecar (the pod label asks for it), which
 * leaves their public listeners alone (no inbound capture) and carries their calls to the apps over Istio mutual
 * TLS with their own identity (the named service account); `routingType: Service` makes them call the version's
 * Service address, and each edge route rewrites Host to that Service's name, by which the sidecar picks the
 * upstream. Their own xDS feed (already mutual TLS with Envoy Gateway's certificates) bypasses the sidecar,
 * which under `outboundTrafficPolicy: REGISTRY_ONLY` or its `grpc` port protocol would not carry it. With 2 or
 * more proxies, a disruption budget keeps one serving through a drain. On NodePort, the listeners' node ports are
 * fixed as configured.
 */
export function envoyProxySpec(args: EdgeProxyArgs): EnvoyProxySpec {
    const ports = [{ port: 80, nodePort: args.httpNodePort }, ...(args.https ? [{ port: 443, nodePort: args.httpsNodePort }] : [])];
    return {
        routingType: "Service",
        provider: {
            type: "Kubernetes",
            kubernetes: {
                envoyDeployment: {
                    replicas: args.replicas,
                    pod: {
                        labels: { "sidecar.istio.io/inject": "true" },
                        annotations: { "traffic.sidecar.istio.io/includeInboundPorts": "", "traffic.sidecar.istio.io/excludeOutboundPorts": String(ENVOY_GATEWAY_XDS_PORT) },
                    },
                },
                envoyServiceAccount: { name: ENVOY_PROXY_SERVICE_ACCOUNT },
                ...(args.replicas >= 2 && { envoyPDB: { minAvailable: 1 } }),
                envoyService: { type: args.serviceType, ...(args.serviceType === "NodePort" && { patch: { type: "StrategicMerge", value: { spec: { ports } } } }) },
            },
        },
    };
}
