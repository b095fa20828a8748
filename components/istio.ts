import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { GatewayServiceType } from "./config";
import { helmRelease } from "./helm";
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
}

export interface IstioMeshArgs {
    /** Chart version of base, istiod and gateway: the Istio release. */
    version: string;
    gatewayServiceType: GatewayServiceType;
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

export const usesCni = (level: PodSecurityLevel): boolean => level !== "privileged";

export function gatewayChartValues(args: Pick<IstioMeshArgs, "gatewayServiceType" | "gatewayHttpNodePort" | "gatewayHttpsNodePort">): GatewayChartValues {
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

        const cni = usesCni(args.podSecurity);
        // The CNI node agent needs host paths, which only the privileged level allows.
        const systemLabels: Record<string, string> = cni ? { "pod-security.kubernetes.io/enforce": "privileged" } : {};
        const systemNs = new k8s.core.v1.Namespace(ISTIO_NAMESPACE, { metadata: { name: ISTIO_NAMESPACE, labels: systemLabels } }, parent);
        // Injection stays on for the gateway namespace: the gateway chart's pods get their proxy from it.
        const gatewayNs = new k8s.core.v1.Namespace(GATEWAY_NAMESPACE, { metadata: { name: GATEWAY_NAMESPACE } }, parent);

        const release = (releaseName: string, chart: string, namespace: string, values: object, dependsOn: pulumi.Resource[]) =>
            helmRelease(releaseName, { repo: ISTIO_CHART_REPO, chart, version: args.version }, namespace, values, { ...parent, dependsOn });

        const base = release("istio-base", "base", ISTIO_NAMESPACE, {}, [systemNs]);
        const cniRelease = cni ? [release("istio-cni", "cni", ISTIO_NAMESPACE, {}, [base])] : [];
        const istiodValues: IstiodChartValues = {
            // App containers start only once their sidecar is ready, so their first calls are not refused.
            meshConfig: {
                defaultConfig: { holdApplicationUntilProxyStarts: true },
                outboundTrafficPolicy: { mode: args.outboundTrafficPolicy },
                ...(args.tracingProvider && { extensionProviders: [args.tracingProvider] }),
            },
            cni: { enabled: cni },
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
