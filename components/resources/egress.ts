import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
    EGRESS_GATEWAY,
    EGRESS_NAMESPACE,
    EGRESS_RELEASE,
    egressAllowSpec,
    egressDestinationRuleSpec,
    egressGatewaySpec,
    egressVirtualServiceSpec,
    serviceEntrySpec,
} from "../specs/egress-specs";
import { egressVirtualServiceName, serviceEntryName } from "../config/names";
import { helmRelease } from "./helm";
import { GATEWAY_POD_SECURITY, ISTIO_CHART_REPO } from "../specs/mesh-specs";
import { NETWORKING_API } from "../specs/istio-specs";
import { podSecurityLabels } from "../specs/workload-specs";
import { EgressSettings } from "../config/observability-config";
import { SECURITY_API } from "../specs/security-specs";
import { PodSecurityLevel } from "../config/security-config";

export interface EgressArgs {
    settings: EgressSettings;
    istioVersion: string;
    appNamespace: string;
    podSecurity: PodSecurityLevel;
    /** istiod (webhooks) and the app namespace. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** External hosts the mesh may reach, and optionally an egress gateway that all their traffic goes through. */
export class Egress extends pulumi.ComponentResource {
    constructor(name: string, args: EgressArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:Egress", name, {}, opts);
        const { settings } = args;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const istio = (kind: string, resourceName: string, namespace: string, spec: object, dependsOn: pulumi.Resource[] = [], apiVersion = NETWORKING_API) =>
            new k8s.apiextensions.CustomResource(
                `${kind.toLowerCase()}-${resourceName}`,
                { apiVersion, kind, metadata: { name: resourceName, namespace }, spec },
                { ...childOpts, dependsOn: [...args.dependsOn, ...dependsOn] },
            );

        const entries = settings.hosts.map((h) => istio("ServiceEntry", serviceEntryName(h.host), args.appNamespace, serviceEntrySpec(h)));
        if (settings.gateway) {
            const namespace = new k8s.core.v1.Namespace(EGRESS_NAMESPACE, { metadata: { name: EGRESS_NAMESPACE, labels: podSecurityLabels(args.podSecurity) } }, childOpts);
            // Reached only from inside the mesh.
            const values = { service: { type: "ClusterIP" }, securityContext: GATEWAY_POD_SECURITY };
            const release = helmRelease(EGRESS_RELEASE, { repo: ISTIO_CHART_REPO, chart: "gateway", version: args.istioVersion }, EGRESS_NAMESPACE, values, {
                ...childOpts,
                dependsOn: [...args.dependsOn, namespace],
            });
            istio("AuthorizationPolicy", "allow-app-namespace", EGRESS_NAMESPACE, egressAllowSpec(args.appNamespace), [release], SECURITY_API);
            const gateway = istio("Gateway", EGRESS_GATEWAY, EGRESS_NAMESPACE, egressGatewaySpec(settings.hosts), [release]);
            const rule = istio("DestinationRule", EGRESS_GATEWAY, EGRESS_NAMESPACE, egressDestinationRuleSpec(settings.hosts), [release]);
            settings.hosts.forEach((h, i) => istio("VirtualService", egressVirtualServiceName(h.host), EGRESS_NAMESPACE, egressVirtualServiceSpec(h), [gateway, rule, entries[i]]));
        }
        this.registerOutputs({});
    }
}
