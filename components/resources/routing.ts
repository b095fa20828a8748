import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { destinationRuleSpec, ENVOY_FILTER_API, ingressVirtualServiceSpec, meshVirtualServiceSpec, NETWORKING_API, rateLimitFilterSpec } from "../specs/istio-specs";
import { ServicePlan } from "../plan/plan";
import { ingressVirtualServiceName, rateLimitFilterName } from "../config/names";

export interface AppRoutingArgs {
    plan: ServicePlan;
    /** `namespace/name` of the Gateway the ingress routes bind to. */
    gatewayRef: string;
    ingressHost: string;
    /** The Gateway resource and istiod (its validation webhook must serve before Istio objects are created). */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** The Deployments behind the subsets: a route must not point at pods that do not exist yet. */
    workloads: pulumi.Resource[];
}

/**
 * Renders one service's routing: a DestinationRule with its version subsets, and VirtualServices for the
 * ingress gateway and for in-mesh callers, and an EnvoyFilter for a local rate limit. Only these change when a
 * release moves traffic or a policy changes.
 */
export class AppRouting extends pulumi.ComponentResource {
    readonly destinationRule: k8s.apiextensions.CustomResource;
    readonly virtualServices: k8s.apiextensions.CustomResource[];
    readonly rateLimitFilter?: k8s.apiextensions.CustomResource;

    constructor(name: string, args: AppRoutingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppRouting", name, {}, opts);
        const { plan } = args;
        const metadata = (resourceName: string) => ({ name: resourceName, namespace: plan.namespace, labels: { app: plan.name } });

        this.destinationRule = new k8s.apiextensions.CustomResource(
            plan.name,
            { apiVersion: NETWORKING_API, kind: "DestinationRule", metadata: metadata(plan.name), spec: destinationRuleSpec(plan) },
            // A subset names pods by their version label: they exist before it does (or before it is repointed).
            { parent: this, dependsOn: [...args.dependsOn, ...args.workloads] },
        );
        // Make before break: subsets and their pods exist before any route points at them.
        const routeOpts = { parent: this, dependsOn: [...args.dependsOn, this.destinationRule, ...args.workloads] };
        this.virtualServices = [
            new k8s.apiextensions.CustomResource(
                plan.name,
                { apiVersion: NETWORKING_API, kind: "VirtualService", metadata: metadata(plan.name), spec: meshVirtualServiceSpec(plan) },
                routeOpts,
            ),
            new k8s.apiextensions.CustomResource(
                ingressVirtualServiceName(plan.name),
                {
                    apiVersion: NETWORKING_API,
                    kind: "VirtualService",
                    metadata: metadata(ingressVirtualServiceName(plan.name)),
                    spec: ingressVirtualServiceSpec(plan, args.gatewayRef, args.ingressHost),
                },
                routeOpts,
            ),
        ];
        if (plan.rateLimit !== undefined) {
            this.rateLimitFilter = new k8s.apiextensions.CustomResource(
                rateLimitFilterName(plan.name),
                {
                    apiVersion: ENVOY_FILTER_API,
                    kind: "EnvoyFilter",
                    metadata: metadata(rateLimitFilterName(plan.name)),
                    spec: rateLimitFilterSpec(plan.name, plan.rateLimit),
                },
                { parent: this, dependsOn: [...args.dependsOn, ...args.workloads] },
            );
        }
        this.registerOutputs({ split: plan.split });
    }
}
