import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ServicePlan } from "../plan/plan";
import { ingressPolicyName, meshPolicyName } from "../config/names";
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

export interface MeshSecurityArgs {
    settings: SecuritySettings;
    services: readonly ServicePlan[];
    appNamespace: string;
    gatewayNamespace: string;
    /** Who the edge's proxies are, to the app's sidecars. */
    edgeSource: EdgeSource;
    gatewaySelector: Record<string, string>;
    /** Istio's gateway release, when it serves the edge: policies that select its pods go in after it. */
    gatewayRelease?: pulumi.Resource;
    /** istiod (validation webhook) and the namespaces the policies live in. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * Zero trust for the app namespace: mutual TLS, deny by default with the ingress and the declared mesh edges
 * allowed, and JWT validation at the ingress gateway.
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
            for (const service of args.services) {
                policy("AuthorizationPolicy", ingressPolicyName(service.name), args.appNamespace, ingressAllowSpec(service.name, service.path, args.edgeSource));
                const edges = settings.meshEdges.filter((e) => e.to === service.name);
                if (edges.length > 0) policy("AuthorizationPolicy", meshPolicyName(service.name), args.appNamespace, meshAllowSpec(service.name, edges));
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
