// Pure values for installing Istio: chart repository, release names and namespaces, and the values of the
// base, cni, istiod and gateway charts.
import { ambientInstalled, type DataPlane, type GatewayServiceType, type Platform } from "../config/config";
import type { PodSecurityLevel } from "../config/security-config";
import type { OutboundTrafficPolicy } from "../config/observability-config";
import type { TracingExtensionProvider } from "./observability-specs";

export const ISTIO_CHART_REPO = "https://istio-release.storage.googleapis.com/charts";
export const ISTIO_NAMESPACE = "istio-system";
export const GATEWAY_NAMESPACE = "istio-ingress";
/**
 * Fixed Helm release name of the ingress gateway. The `gateway` chart labels its pods `app: <name>` and
 * `istio: <name without "istio-">`, so the Gateway resource can select `istio: ingressgateway`.
 */
export const GATEWAY_RELEASE = "istio-ingressgateway";
export const GATEWAY_SELECTOR = { istio: "ingressgateway" } as const;
export const PUBLIC_GATEWAY = "public-gateway";

interface ServicePort {
    name: string;
    port: number;
    protocol: "TCP";
    targetPort: number;
    nodePort?: number;
}

/** The `gateway` chart values this program sets (see the chart's values.schema.json). */
export interface GatewayChartValues {
    service: { type: GatewayServiceType; ports: ServicePort[] };
    /** The chart's HorizontalPodAutoscaler is on by default; its minimum is the floor of gateway pods. */
    autoscaling: { minReplicas: number; maxReplicas: number };
    podDisruptionBudget?: { maxUnavailable: number };
    securityContext: PodSecurityContext;
}

/** The gateway pods' security context: the chart's default (the unprivileged-ports sysctl) plus a seccomp profile. */
export interface PodSecurityContext {
    seccompProfile: { type: "RuntimeDefault" };
    sysctls: { name: string; value: string }[];
}

/** Values shared by every Istio chart that reads a platform profile (`files/profile-platform-<name>.yaml`). */
export interface PlatformValues {
    global?: { platform: ChartPlatform };
}

/** The `istiod` chart values this program sets (Istio 1.30's istiod chart takes them at the top level). */
export interface IstiodChartValues {
    meshConfig: {
        defaultConfig: { holdApplicationUntilProxyStarts: boolean };
        outboundTrafficPolicy: { mode: OutboundTrafficPolicy };
        extensionProviders?: TracingExtensionProvider[];
    };
    /** With the CNI node agent, injected pods need no NET_ADMIN init container. */
    cni: { enabled: boolean };
    global?: { platform: ChartPlatform };
    /** Istio's ambient profile (files/profile-ambient.yaml): PILOT_ENABLE_AMBIENT, HBONE for sidecars, CNI in ambient mode. */
    profile?: "ambient";
}

/** The `cni` and `ztunnel` chart values for ambient mode: Istio's ambient profile, and the platform's profile. */
export interface AmbientNodeChartValues extends PlatformValues {
    profile: "ambient";
}

export const ambientNodeChartValues = (platform: Platform): AmbientNodeChartValues => ({ profile: "ambient", ...platformValues(platform) });

/** The platform profiles Istio 1.30's charts ship (kind, EKS and AKS need none: the generic defaults fit them). */
export type ChartPlatform = "gke" | "openshift";

/**
 * The charts' `global.platform` for a platform, or undefined where the generic defaults apply. The charts fail
 * on a platform they have no profile for, so `kind`, `eks` and `aks` are not passed on.
 */
export function chartPlatform(platform: Platform): ChartPlatform | undefined {
    return platform === "gke" || platform === "openshift" ? platform : undefined;
}

export function platformValues(platform: Platform): PlatformValues {
    const chart = chartPlatform(platform);
    return chart === undefined ? {} : { global: { platform: chart } };
}

/** OpenShift runs Istio only with its CNI plugin; elsewhere CNI is what lets app pods pass Pod Security; ambient mode redirects pods' traffic to ztunnel with it. */
export const usesCni = (level: PodSecurityLevel, platform: Platform, dataPlane: DataPlane): boolean => ambientInstalled(dataPlane) || level !== "privileged" || platform === "openshift";

/**
 * The gateway chart's pod security context. The chart's default has only the sysctl that lets Envoy bind
 * ports 80 and 443 unprivileged (safe since Kubernetes 1.22); a RuntimeDefault seccomp profile is what the
 * restricted Pod Security level adds, and the chart's proxy container already drops every capability.
 */
export const GATEWAY_POD_SECURITY: PodSecurityContext = {
    seccompProfile: { type: "RuntimeDefault" },
    sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
};

/** How far the chart's autoscaler may scale the gateway by default. */
export const GATEWAY_MAX_REPLICAS = 5;

/** What the ingress gateway's chart values are made of. */
export interface GatewayChartArgs {
    gatewayServiceType: GatewayServiceType;
    /** Node ports for HTTP and HTTPS when gatewayServiceType is NodePort (a kind cluster maps them to the host). */
    gatewayHttpNodePort: number;
    gatewayHttpsNodePort: number;
    /** Ingress gateway pods at least; 2 or more get a PodDisruptionBudget. */
    gatewayReplicas: number;
}

export function gatewayChartValues(args: GatewayChartArgs): GatewayChartValues {
    const nodePort = (port: number) => (args.gatewayServiceType === "NodePort" ? { nodePort: port } : {});
    return {
        service: {
            type: args.gatewayServiceType,
            // The chart's default ports, with a fixed node port for HTTP so a kind port mapping can reach it.
            ports: [
                { name: "status-port", port: 15021, protocol: "TCP", targetPort: 15021 },
                { name: "http2", port: 80, protocol: "TCP", targetPort: 80, ...nodePort(args.gatewayHttpNodePort) },
                { name: "https", port: 443, protocol: "TCP", targetPort: 443, ...nodePort(args.gatewayHttpsNodePort) },
            ],
        },
        autoscaling: { minReplicas: args.gatewayReplicas, maxReplicas: Math.max(GATEWAY_MAX_REPLICAS, args.gatewayReplicas) },
        // A node drain evicts one gateway pod at a time, so the edge keeps serving.
        ...(args.gatewayReplicas >= 2 && { podDisruptionBudget: { maxUnavailable: 1 } }),
        securityContext: GATEWAY_POD_SECURITY,
    };
}

/** What a cloud load balancer may have reported so far: nothing, an IP, or a host name. */
export interface LoadBalancerStatus {
    loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] };
}

export function loadBalancerAddress(status: LoadBalancerStatus | undefined): string {
    const ingress = status?.loadBalancer?.ingress?.[0];
    return ingress?.ip ?? ingress?.hostname ?? `pending (kubectl -n ${GATEWAY_NAMESPACE} get svc ${GATEWAY_RELEASE})`;
}

