import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ServicePlan } from "../plan/plan";
import { directCallersPolicyName, ingressPolicyName, meshPolicyName, waypointPolicyName } from "../config/names";
import { SecuritySettings } from "../config/security-config";
import {
    allowNothingSpec,
    EdgeSource,
    ingressAllowSpec,
    meshAllowSpec,
    peerAuthenticationSpec,
    requestAuthenticationSpec,
    requireJwtSpec,
    SECURITY_API,
} from "../specs/security-specs";
import { allowWaypointSpec, ambientIngressAllowSpec, ambientMeshAllowSpec, directCallersAllowSpec } from "../specs/ambient-specs";
import { ambientInstalled, DataPlane, sidecarsServe } from "../config/config";

export interface MeshSecurityArgs {
    settings: SecuritySettings;
    services: readonly ServicePlan[];
    appNamespace: string;
    gatewayNamespace: string;
    /** Who the edge's proxies are, to the app's sidecars. */
    edgeSource: EdgeSource;
    gatewaySelector: Record<string, string>;
    /** Sidecars enforce every policy on their pod; in ambient mode ztunnel enforces L4 and the waypoint L7. */
    dataPlane: DataPlane;
    /** Istio's gateway release, when it serves the edge: policies that select its pods go in after it. */
    gatewayRelease?: pulumi.Resource;
    /** istiod (validation webhook) and the namespaces the policies live in. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * Zero trust for the app namespace: mutual TLS, deny by default with the ingress and the declared mesh edges
 * allowed, and JWT validation at the ingress gateway. In ambient mode the allows are the waypoint's (bound to the
 * app's Services by targetRefs), and ztunnel admits only the waypoint: a path or method rule on a pod selector
 * would never match at ztunnel, which sees connections, not requests.
 */
export class MeshSecurity extends pulumi.ComponentResource {
    constructor(name: string, args: MeshSecurityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:MeshSecurity", name, {}, opts);
        const { settings } = args;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const policy = (kind: string, resourceName: string, namespace: string, spec: object, dependsOn: pulumi.Input<pulumi.Resource>[] = []) =>
            new k8s.apiextensions.CustomResource(
                `${namespace}-${resourceName}`,
                { apiVersion: SECURITY_API, kind, metadata: { name: resourceName, namespace }, spec },
                { ...childOpts, dependsOn: [...args.dependsOn, ...dependsOn] },
            );

        policy("PeerAuthentication", "default", args.appNamespace, peerAuthenticationSpec(settings.mtlsMode));
        if (settings.denyByDefault) {
            policy("AuthorizationPolicy", "allow-nothing", args.appNamespace, allowNothingSpec());
            // Up to ambientReady the sidecars enforce each app's allows on its pods; from ambientReady on the waypoint does,
            // and ztunnel admits the waypoint. Both sets live together in ambientReady, so either way a switch never
            // leaves a pod without the allows its own proxy reads.
            const sidecars = sidecarsServe(args.dataPlane);
            const ambient = ambientInstalled(args.dataPlane);
            if (ambient) policy("AuthorizationPolicy", "allow-waypoint", args.appNamespace, allowWaypointSpec(args.appNamespace));
            for (const service of args.services) {
                const edges = settings.meshEdges.filter((e) => e.to === service.name);
                if (sidecars) {
                    policy("AuthorizationPolicy", ingressPolicyName(service.name), args.appNamespace, ingressAllowSpec(service.name, service.path, args.edgeSource));
                    if (edges.length > 0) policy("AuthorizationPolicy", meshPolicyName(service.name), args.appNamespace, meshAllowSpec(service.name, edges));
                }
                if (ambient) {
                    policy("AuthorizationPolicy", waypointPolicyName(ingressPolicyName(service.name)), args.appNamespace, ambientIngressAllowSpec(service, args.edgeSource));
                    if (edges.length > 0) policy("AuthorizationPolicy", waypointPolicyName(meshPolicyName(service.name)), args.appNamespace, ambientMeshAllowSpec(service, edges));
                }
                if (args.dataPlane === "ambientReady" && edges.length > 0) policy("AuthorizationPolicy", directCallersPolicyName(service.name), args.appNamespace, directCallersAllowSpec(service.name, edges));
            }
        }
        if (settings.jwt !== undefined) {
            const spec = requestAuthenticationSpec(settings.jwt, args.gatewaySelector);
            // Inline key material is handled as a secret: encrypted in state, masked in previews.
            const gateway = args.gatewayRelease === undefined ? [] : [args.gatewayRelease];
            policy("RequestAuthentication", "ingress-jwt", args.gatewayNamespace, settings.jwt.jwks === undefined ? spec : pulumi.secret(spec), gateway);
            policy("AuthorizationPolicy", "ingress-require-jwt", args.gatewayNamespace, requireJwtSpec(settings.jwt, args.gatewaySelector), gateway);
        }
        this.registerOutputs({});
    }
}
