import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ambientInstalled, DataPlane, GatewayServiceType, Platform } from "../config/config";
import { GatewayTls, PodSecurityLevel } from "../config/security-config";
import { OutboundTrafficPolicy } from "../config/observability-config";
import {
    GATEWAY_NAMESPACE,
    GATEWAY_RELEASE,
    gatewayChartValues,
    ambientNodeChartValues,
    ISTIO_CHART_REPO,
    ISTIO_NAMESPACE,
    IstiodChartValues,
    loadBalancerAddress,
    platformValues,
    usesCni,
} from "../specs/mesh-specs";
import { TracingExtensionProvider } from "../specs/observability-specs";
import { podSecurityLabels } from "../specs/workload-specs";
import { helmRelease } from "./helm";

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
    /** Whether Istio serves the edge (its ingress gateway chart); false when another Gateway API provider does. */
    ingressGateway: boolean;
    /** ambient adds the ztunnel chart, with istiod and CNI in Istio's ambient profile. */
    dataPlane: DataPlane;
}

/** Istio's ingress gateway: its release, and where it answers from outside. */
export interface IngressGateway {
    readonly release: k8s.helm.v3.Release;
    /** The external address: load balancer IP/hostname, or node port. */
    readonly address: pulumi.Output<string>;
}

/**
 * Istio from its official Helm charts, in dependency order: base (CRDs) -> istiod -> ingress gateway, with the
 * CNI node agent before istiod for sidecars, or istiod -> CNI -> ztunnel in ambient mode (Istio's order: the
 * CNI agent redirects pods' traffic to the ztunnel on their node, and ztunnel takes its config and certificates
 * from istiod). The edge object the app routes bind to is the routing API's (components/resources/routing.ts).
 */
export class IstioMesh extends pulumi.ComponentResource {
    /** Workloads and Istio resources wait on this: injection and validation webhooks are up once it is ready. */
    readonly istiod: k8s.helm.v3.Release;
    /** What a pod's traffic needs before it starts: istiod (sidecars), and in ambient mode the CNI agent and ztunnel too. */
    readonly dataPlane: pulumi.Resource[];
    /** Unset when another provider serves the edge. */
    readonly ingressGateway?: IngressGateway;
    /** The gateway's TLS Secret, when the stack's config holds the certificate: the edge's listeners wait for it. */
    readonly tlsSecrets: k8s.core.v1.Secret[];

    constructor(name: string, args: IstioMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:IstioMesh", name, {}, opts);
        const parent = { parent: this };

        const ambient = ambientInstalled(args.dataPlane);
        const cni = usesCni(args.podSecurity, args.platform, args.dataPlane);
        // The CNI node agent (and ztunnel) need host paths, which only the privileged level allows.
        const systemLabels: Record<string, string> = cni ? { "pod-security.kubernetes.io/enforce": "privileged" } : {};
        const systemNs = new k8s.core.v1.Namespace(ISTIO_NAMESPACE, { metadata: { name: ISTIO_NAMESPACE, labels: systemLabels } }, parent);
        // The gateway chart's pods get their proxy by injection (its `gateway` template), whatever the namespace's labels.
        const gatewayNs = new k8s.core.v1.Namespace(GATEWAY_NAMESPACE, { metadata: { name: GATEWAY_NAMESPACE, labels: podSecurityLabels(args.podSecurity) } }, parent);

        const release = (releaseName: string, chart: string, namespace: string, values: object, dependsOn: pulumi.Resource[]) =>
            helmRelease(releaseName, { repo: ISTIO_CHART_REPO, chart, version: args.version }, namespace, values, { ...parent, dependsOn });

        const base = release("istio-base", "base", ISTIO_NAMESPACE, {}, [systemNs]);
        const sidecarCni = cni && !ambient ? [release("istio-cni", "cni", ISTIO_NAMESPACE, platformValues(args.platform), [base])] : [];
        const istiodValues: IstiodChartValues = {
            // App containers start only once their sidecar is ready, so their first calls are not refused.
            meshConfig: {
                defaultConfig: { holdApplicationUntilProxyStarts: true },
                outboundTrafficPolicy: { mode: args.outboundTrafficPolicy },
                ...(args.tracingProvider && { extensionProviders: [args.tracingProvider] }),
            },
            cni: { enabled: cni },
            ...platformValues(args.platform),
            ...(ambient && { profile: "ambient" as const }),
        };
        this.istiod = release("istiod", "istiod", ISTIO_NAMESPACE, istiodValues, [base, ...sidecarCni]);
        if (ambient) {
            const ambientCni = release("istio-cni", "cni", ISTIO_NAMESPACE, ambientNodeChartValues(args.platform), [this.istiod]);
            const ztunnel = release("ztunnel", "ztunnel", ISTIO_NAMESPACE, ambientNodeChartValues(args.platform), [ambientCni]);
            this.dataPlane = [this.istiod, ambientCni, ztunnel];
        } else {
            this.dataPlane = [this.istiod];
        }

        this.tlsSecrets =
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
        if (args.ingressGateway) {
            const gatewayRelease = release(GATEWAY_RELEASE, "gateway", GATEWAY_NAMESPACE, gatewayChartValues(args), [this.istiod, gatewayNs]);
            this.ingressGateway = { release: gatewayRelease, address: ingressAddressOf(gatewayRelease, args, parent) };
        }

        this.registerOutputs({ ingressAddress: this.ingressGateway?.address });
    }
}

function ingressAddressOf(gatewayRelease: k8s.helm.v3.Release, args: IstioMeshArgs, parent: pulumi.ComponentResourceOptions): pulumi.Output<string> {
    if (args.gatewayServiceType === "LoadBalancer") {
        // Read the chart's Service once the release exists; the ID is unknown during a first preview, so the
        // read waits for the real install instead of failing on an empty cluster.
        const service = k8s.core.v1.Service.get("ingress-gateway-service", pulumi.interpolate`${gatewayRelease.status.namespace}/${gatewayRelease.status.name}`, parent);
        return service.status.apply(loadBalancerAddress);
    }
    if (args.gatewayServiceType === "NodePort") return pulumi.output(`localhost:${args.tls ? args.gatewayHttpsNodePort : args.gatewayHttpNodePort}`);
    return pulumi.output(`${GATEWAY_RELEASE}.${GATEWAY_NAMESPACE}.svc.cluster.local:80`);
}
