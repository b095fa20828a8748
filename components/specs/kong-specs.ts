// Pure values for Kong as the Gateway API's edge provider: Kong's `ingress` chart (Kong Ingress Controller and
// Kong Gateway) pinned, its GatewayClass, and what joins Kong's proxies to Istio's mesh. Kong's controller
// translates HTTPRoutes into Kong routes; what it does not translate is refused in config.
import type { GatewayServiceType } from "../config/config";
import type { HelmChart } from "./helm-chart";

export const KONG_NAMESPACE = "kong";
export const KONG_RELEASE = "kong";
export const KONG_GATEWAY_CLASS = "kong";
export const KONG_CONTROLLER = "konghq.com/kic-gateway-controller";
/** The ingress meta-chart 0.24.0: Kong Ingress Controller 3.5 and Kong Gateway 3.9. */
export const KONG_CHART: HelmChart = { repo: "https://charts.konghq.com", chart: "ingress", version: "0.24.0" };
/**
 * On a backend Service, Kong calls the Service's address rather than its pods': the Istio sidecar beside Kong
 * then carries the call over mutual TLS (to pod addresses it would pass plain text through).
 */
export const KONG_SERVICE_UPSTREAM = { "ingress.kubernetes.io/service-upstream": "true" } as const;

export interface KongArgs {
    readonly serviceType: GatewayServiceType;
    readonly replicas: number;
    readonly httpNodePort: number;
    readonly httpsNodePort: number;
}

/**
 * The chart's gateway (Kong's proxies) with Istio's sidecar by pod label, inbound left uncaptured, its proxy
 * Service on ports 80 and 443 as the Gateway's listeners say (Kong's controller does not provision them), and
 * the configured node ports.
 */
export function kongValues(args: KongArgs) {
    const nodePort = (port: number) => (args.serviceType === "NodePort" ? { nodePort: port } : {});
    return {
        gateway: {
            replicaCount: args.replicas,
            podLabels: { "sidecar.istio.io/inject": "true" },
            podAnnotations: { "traffic.sidecar.istio.io/includeInboundPorts": "" },
            proxy: { type: args.serviceType, http: { servicePort: 80, ...nodePort(args.httpNodePort) }, tls: { servicePort: 443, ...nodePort(args.httpsNodePort) } },
        },
    };
}

/** Unmanaged: Kong's controller configures the chart's proxies for the Gateway, rather than provisioning its own. */
export function kongGatewayClass(): { readonly annotations: Readonly<Record<string, string>>; readonly spec: { readonly controllerName: string } } {
    return { annotations: { "konghq.com/gatewayclass-unmanaged": "true" }, spec: { controllerName: KONG_CONTROLLER } };
}
