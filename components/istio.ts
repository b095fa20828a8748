import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { GatewayServiceType, Platform } from "./config";
import { helmRelease } from "./helm";
import { podSecurityLabels } from "./namespace";
import { gatewaySpec, NETWORKING_API } from "./istio-specs";
import { GatewayTls, PodSecurityLevel } from "./security-config";
import { OutboundTrafficPolicy } from "./observability-config";
import { TracingExtensionProvider } from "./observability";

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
}

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

export interface IstioMeshArgs {
    /** Chart version of base, istiod and gateway: the Istio release. */
    version: string;
    gatewayServiceType: GatewayServiceType;
    /** Ingress gateway pods at least; 2 or more get a PodDisruptionBudget. */
    gatewayReplicas: number;
    platform: Platform;
    /** Node ports for HTTP and HTTPS when gatewayServiceType is NodePort (a kind cluster maps them to the host). */
    gatewayHttpNodePort: number;
    gatewayHttpsNodePort: number;
    ingressHost: string;
    /** baseline and restricted app namespaces need Istio's CNI chart: istio-init's NET_ADMIN breaks both. */
    podSecurity: PodSecurityLevel;
    tls?: GatewayTls;
    /** REGISTRY_ONLY: sidecars reach only hosts in the registry (Services and ServiceEntries). */
    outboundTrafficPolicy: OutboundTrafficPolicy;
    /** Where proxies send traces, when observability is on. */
    tracingProvider?: TracingExtensionProvider;
}

/** OpenShift runs Istio only with its CNI plugin; elsewhere CNI is what lets app pods pass Pod Security. */
export const usesCni = (level: PodSecurityLevel, platform: Platform): boolean => level !== "privileged" || platform === "openshift";

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
const GATEWAY_MAX_REPLICAS = 5;

export function gatewayChartValues(args: Pick<IstioMeshArgs, "gatewayServiceType" | "gatewayHttpNodePort" | "gatewayHttpsNodePort" | "gatewayReplicas">): GatewayChartValues {
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

/**
 * Istio from its official Helm charts, in dependency order: base (CRDs) -> istiod -> ingress gateway, then
 * the public Gateway resource that the app routes bind to.
 */
export class IstioMesh extends pulumi.ComponentResource {
    /** Workloads and Istio resources wait on this: injection and validation webhooks are up once it is ready. */
    readonly istiod: k8s.helm.v3.Release;
    readonly gatewayRelease: k8s.helm.v3.Release;
    readonly publicGateway: k8s.apiextensions.CustomResource;
    /** `namespace/name` of the public Gateway, as VirtualServices reference it. */
    readonly gatewayRef: string;
    /** The ingress gateway's external address: load balancer IP/hostname, or node port. */
    readonly ingressAddress: pulumi.Output<string>;

    constructor(name: string, args: IstioMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:IstioMesh", name, {}, opts);
        const parent = { parent: this };

        const cni = usesCni(args.podSecurity, args.platform);
        // The CNI node agent needs host paths, which only the privileged level allows.
        const systemLabels: Record<string, string> = cni ? { "pod-security.kubernetes.io/enforce": "privileged" } : {};
        const systemNs = new k8s.core.v1.Namespace(ISTIO_NAMESPACE, { metadata: { name: ISTIO_NAMESPACE, labels: systemLabels } }, parent);
        // The gateway chart's pods get their proxy by injection (its `gateway` template), whatever the namespace's labels.
        const gatewayNs = new k8s.core.v1.Namespace(GATEWAY_NAMESPACE, { metadata: { name: GATEWAY_NAMESPACE, labels: podSecurityLabels(args.podSecurity) } }, parent);

        const release = (releaseName: string, chart: string, namespace: string, values: object, dependsOn: pulumi.Resource[]) =>
            helmRelease(releaseName, { repo: ISTIO_CHART_REPO, chart, version: args.version }, namespace, values, { ...parent, dependsOn });

        const base = release("istio-base", "base", ISTIO_NAMESPACE, {}, [systemNs]);
        const cniRelease = cni ? [release("istio-cni", "cni", ISTIO_NAMESPACE, platformValues(args.platform), [base])] : [];
        const istiodValues: IstiodChartValues = {
            // App containers start only once their sidecar is ready, so their first calls are not refused.
            meshConfig: {
                defaultConfig: { holdApplicationUntilProxyStarts: true },
                outboundTrafficPolicy: { mode: args.outboundTrafficPolicy },
                ...(args.tracingProvider && { extensionProviders: [args.tracingProvider] }),
            },
            cni: { enabled: cni },
            ...platformValues(args.platform),
        };
        this.istiod = release("istiod", "istiod", ISTIO_NAMESPACE, istiodValues, [base, ...cniRelease]);
        this.gatewayRelease = release(GATEWAY_RELEASE, "gateway", GATEWAY_NAMESPACE, gatewayChartValues(args), [this.istiod, gatewayNs]);

        const tlsSecret =
            args.tls?.source === "config"
                ? [
                      new k8s.core.v1.Secret(
                          args.tls.credentialName,
                          {
                              metadata: { name: args.tls.credentialName, namespace: GATEWAY_NAMESPACE },
                              type: "kubernetes.io/tls",
                              // Secret outputs stay encrypted in state and masked in previews and logs.
                              stringData: { "tls.crt": pulumi.secret(args.tls.certificate), "tls.key": pulumi.secret(args.tls.privateKey) },
                          },
                          { ...parent, dependsOn: [gatewayNs], additionalSecretOutputs: ["data", "stringData"] },
                      ),
                  ]
                : [];
        this.publicGateway = new k8s.apiextensions.CustomResource(
            PUBLIC_GATEWAY,
            {
                apiVersion: NETWORKING_API,
                kind: "Gateway",
                metadata: { name: PUBLIC_GATEWAY, namespace: GATEWAY_NAMESPACE },
                spec: gatewaySpec({ ...GATEWAY_SELECTOR }, args.ingressHost, args.tls),
            },
            { ...parent, dependsOn: [this.gatewayRelease, ...tlsSecret] },
        );
        this.gatewayRef = `${GATEWAY_NAMESPACE}/${PUBLIC_GATEWAY}`;

        if (args.gatewayServiceType === "LoadBalancer") {
            // Read the chart's Service once the release exists; the ID is unknown during a first preview, so the
            // read waits for the real install instead of failing on an empty cluster.
            const service = k8s.core.v1.Service.get(
                "ingress-gateway-service",
                pulumi.interpolate`${this.gatewayRelease.status.namespace}/${this.gatewayRelease.status.name}`,
                parent,
            );
            this.ingressAddress = service.status.apply(loadBalancerAddress);
        } else if (args.gatewayServiceType === "NodePort") {
            this.ingressAddress = pulumi.output(`localhost:${args.tls ? args.gatewayHttpsNodePort : args.gatewayHttpNodePort}`);
        } else {
            this.ingressAddress = pulumi.output(`${GATEWAY_RELEASE}.${GATEWAY_NAMESPACE}.svc.cluster.local:80`);
        }

        this.registerOutputs({ gatewayRef: this.gatewayRef, ingressAddress: this.ingressAddress });
    }
}
