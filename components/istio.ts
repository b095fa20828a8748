import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { GatewayServiceType } from "./config";
import { gatewaySpec, NETWORKING_API } from "./istio-specs";

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

/** The `istiod` chart values this program sets. */
export interface IstiodChartValues {
    meshConfig: { defaultConfig: { holdApplicationUntilProxyStarts: boolean } };
}

export interface IstioMeshArgs {
    /** Chart version of base, istiod and gateway: the Istio release. */
    version: string;
    gatewayServiceType: GatewayServiceType;
    /** Node port for HTTP when gatewayServiceType is NodePort (a kind cluster maps it to the host). */
    gatewayHttpNodePort: number;
    ingressHost: string;
}

export function gatewayChartValues(args: Pick<IstioMeshArgs, "gatewayServiceType" | "gatewayHttpNodePort">): GatewayChartValues {
    const nodePort = args.gatewayServiceType === "NodePort" ? { nodePort: args.gatewayHttpNodePort } : {};
    return {
        service: {
            type: args.gatewayServiceType,
            // The chart's default ports, with a fixed node port for HTTP so a kind port mapping can reach it.
            ports: [
                { name: "status-port", port: 15021, protocol: "TCP", targetPort: 15021 },
                { name: "http2", port: 80, protocol: "TCP", targetPort: 80, ...nodePort },
                { name: "https", port: 443, protocol: "TCP", targetPort: 443 },
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

        const systemNs = new k8s.core.v1.Namespace(ISTIO_NAMESPACE, { metadata: { name: ISTIO_NAMESPACE } }, parent);
        // Injection stays on for the gateway namespace: the gateway chart's pods get their proxy from it.
        const gatewayNs = new k8s.core.v1.Namespace(GATEWAY_NAMESPACE, { metadata: { name: GATEWAY_NAMESPACE } }, parent);

        const release = (releaseName: string, chart: string, namespace: k8s.core.v1.Namespace, values: object, dependsOn: pulumi.Resource[]) =>
            new k8s.helm.v3.Release(
                releaseName,
                {
                    name: releaseName,
                    chart,
                    version: args.version,
                    repositoryOpts: { repo: ISTIO_CHART_REPO },
                    namespace: namespace.metadata.name,
                    values,
                    // Wait until the release's workloads are ready, so the next step finds its webhooks serving.
                    skipAwait: false,
                    atomic: true,
                    timeout: 600,
                },
                { ...parent, dependsOn },
            );

        const base = release("istio-base", "base", systemNs, {}, [systemNs]);
        const istiodValues: IstiodChartValues = {
            // App containers start only once their sidecar is ready, so their first calls are not refused.
            meshConfig: { defaultConfig: { holdApplicationUntilProxyStarts: true } },
        };
        this.istiod = release("istiod", "istiod", systemNs, istiodValues, [base]);
        this.gatewayRelease = release(GATEWAY_RELEASE, "gateway", gatewayNs, gatewayChartValues(args), [this.istiod, gatewayNs]);

        this.publicGateway = new k8s.apiextensions.CustomResource(
            PUBLIC_GATEWAY,
            {
                apiVersion: NETWORKING_API,
                kind: "Gateway",
                metadata: { name: PUBLIC_GATEWAY, namespace: GATEWAY_NAMESPACE },
                spec: gatewaySpec({ ...GATEWAY_SELECTOR }, args.ingressHost),
            },
            { ...parent, dependsOn: [this.gatewayRelease] },
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
            this.ingressAddress = pulumi.output(`localhost:${args.gatewayHttpNodePort}`);
        } else {
            this.ingressAddress = pulumi.output(`${GATEWAY_RELEASE}.${GATEWAY_NAMESPACE}.svc.cluster.local:80`);
        }

        this.registerOutputs({ gatewayRef: this.gatewayRef, ingressAddress: this.ingressAddress });
    }
}
