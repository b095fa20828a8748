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
/**
 * On an edge HTTPRoute: Kong's controller sets `preserve_host` on every route it translates from one (KIC 3.5
 * subtranslator/httproute.go), and Kong then sends the client's Host, which names no mesh Service: the sidecar
 * would pass the call through in plain text. Without it Kong sends its target's host, `<service>.<namespace>.svc`,
 * which names the version's Service (Kong 3.9 balancer set_host_header).
 */
export const KONG_ROUTE_ANNOTATIONS = { "konghq.com/preserve-host": "false" } as const;
/** The proxies' service account, as the `ingress` chart names its `gateway` subchart's (`<release>-gateway`). */
export const KONG_PROXY_SERVICE_ACCOUNT = `${KONG_RELEASE}-gateway`;

export interface KongArgs {
    readonly serviceType: GatewayServiceType;
    readonly replicas: number;
    readonly httpNodePort: number;
    readonly httpsNodePort: number;
}

/**
 * The chart's gateway (Kong's proxies) with Istio's sidecar by pod label, inbound left uncaptured, its proxy
 * Service on ports 80 and 443 as the Gateway's listeners say (Kong's controller does not provision them), and
 * the configured node ports. With 2 or more proxies, a disruption budget keeps one serving through a drain (the
 * chart refuses one for a single replica).
 */
export function kongValues(args: KongArgs) {
    const nodePort = (port: number) => (args.serviceType === "NodePort" ? { nodePort: port } : {});
    return {
        gateway: {
            replicaCount: args.replicas,
            ...(args.replicas >= 2 && { podDisruptionBudget: { enabled: true, minAvailable: 1 } }),
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
