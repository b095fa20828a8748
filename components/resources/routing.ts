import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { destinationRuleSpec, ENVOY_FILTER_API, gatewaySpec, ingressVirtualServiceSpec, meshVirtualServiceSpec, NETWORKING_API, rateLimitFilterSpec } from "../specs/istio-specs";
import { GATEWAY_NAMESPACE, GATEWAY_SELECTOR, PUBLIC_GATEWAY } from "../specs/mesh-specs";
import { ServicePlan } from "../plan/plan";
import { ingressRouteName, rateLimitFilterName } from "../config/names";
import type { GatewayTls } from "../config/security-config";
import type { DataPlane, Settings } from "../config/config";
import type { PodSecurityLevel } from "../config/security-config";
import type { IngressGateway, IstioMesh } from "./istio";

// One traffic plan, one renderer per routing API: each API is an edge (what the ingress routes bind to) and a
// per-service routing component with the same arguments, and index.ts picks the pair `trafficApi` names.

export interface EdgeArgs {
    mesh: IstioMesh;
    ingressHost: string;
    tls?: GatewayTls;
    appNamespace: string;
    /** Who serves the edge, and how its proxies are exposed. */
    gateway: Pick<Settings, "gatewayProvider" | "gatewayServiceType" | "gatewayReplicas" | "gatewayHttpNodePort" | "gatewayHttpsNodePort">;
    podSecurity: PodSecurityLevel;
    dataPlane: DataPlane;
    /** The app namespace: an ambient stack's waypoint lives in it. */
    appNamespaceObject: pulumi.Resource;
}

/** What the ingress routes bind to; the routes wait for `ready`. */
export interface Edge {
    readonly ready: pulumi.Resource[];
    /** The app namespace's waypoint, in ambient mode (the Gateway API's edge creates it: it is a Gateway API Gateway). */
    readonly waypoint?: pulumi.Resource;
    /** Where the edge answers from outside: load balancer address, node port, or how to find it. */
    readonly ingressAddress: pulumi.Output<string>;
}

/** A service's routing, whichever the API. */
export interface ServiceRoutingArgs {
    plan: ServicePlan;
    ingressHost: string;
    tls?: GatewayTls;
    /** istiod (its validation webhook must serve before Istio objects are created) and the app namespace. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** The Deployments behind the versions: a route must not point at pods that do not exist yet. */
    workloads: pulumi.Resource[];
}

export interface AppRoutingArgs<E extends Edge> extends ServiceRoutingArgs {
    edge: E;
}

/** A routing API: its edge, created once, and a function that routes each service through it. */
export type RoutingBackend = (name: string, args: EdgeArgs) => { readonly edge: Edge; readonly route: (service: string, args: ServiceRoutingArgs) => pulumi.ComponentResource };

/** Istio's ingress gateway, which Istio's edge (and the Gateway API's, with Istio as provider) runs on. */
export function istioIngressGateway(mesh: IstioMesh): IngressGateway {
    // Config validation keeps Istio's ingress gateway installed whenever Istio serves the edge.
    if (mesh.ingressGateway === undefined) throw new Error("Istio serves the edge, but its ingress gateway is not installed");
    return mesh.ingressGateway;
}

/** Envoy's local rate limit on the service's sidecars: the same EnvoyFilter whichever API routes to them. */
export function rateLimitFilter(plan: ServicePlan, opts: pulumi.CustomResourceOptions): k8s.apiextensions.CustomResource | undefined {
    if (plan.rateLimit === undefined) return undefined;
    const name = rateLimitFilterName(plan.name);
    return new k8s.apiextensions.CustomResource(
        name,
        { apiVersion: ENVOY_FILTER_API, kind: "EnvoyFilter", metadata: { name, namespace: plan.namespace, labels: { app: plan.name } }, spec: rateLimitFilterSpec(plan.name, plan.rateLimit) },
        opts,
    );
}

/** Istio's edge: the public Gateway (networking.istio.io) on the ingress gateway's pods. */
export class IstioEdge extends pulumi.ComponentResource implements Edge {
    readonly gateway: k8s.apiextensions.CustomResource;
    /** `namespace/name` of the public Gateway, as VirtualServices reference it. */
    readonly gatewayRef = `${GATEWAY_NAMESPACE}/${PUBLIC_GATEWAY}`;
    readonly ready: pulumi.Resource[];
    readonly ingressAddress: pulumi.Output<string>;

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:IstioEdge", name, {}, opts);
        const ingress = istioIngressGateway(args.mesh);
        this.ingressAddress = ingress.address;
        this.gateway = new k8s.apiextensions.CustomResource(
            PUBLIC_GATEWAY,
            { apiVersion: NETWORKING_API, kind: "Gateway", metadata: { name: PUBLIC_GATEWAY, namespace: GATEWAY_NAMESPACE }, spec: gatewaySpec({ ...GATEWAY_SELECTOR }, args.ingressHost, args.tls) },
            // It was the mesh component's child: the alias keeps the object as it is rather than replacing it.
            { parent: this, dependsOn: [ingress.release, ...args.mesh.tlsSecrets], aliases: [{ parent: args.mesh }] },
        );
        this.ready = [args.mesh.istiod, this.gateway];
        this.registerOutputs({ gatewayRef: this.gatewayRef });
    }
}

/**
 * Renders one service's routing: a DestinationRule with its version subsets, and VirtualServices for the
 * ingress gateway and for in-mesh callers, and an EnvoyFilter for a local rate limit. Only these change when a
 * release moves traffic or a policy changes.
 */
export class AppRouting extends pulumi.ComponentResource {
    readonly destinationRule: k8s.apiextensions.CustomResource;
    readonly virtualServices: k8s.apiextensions.CustomResource[];

    constructor(name: string, args: AppRoutingArgs<IstioEdge>, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppRouting", name, {}, opts);
        const { plan } = args;
        const metadata = (resourceName: string) => ({ name: resourceName, namespace: plan.namespace, labels: { app: plan.name } });
        const dependsOn = [...args.dependsOn, ...args.edge.ready];

        this.destinationRule = new k8s.apiextensions.CustomResource(
            plan.name,
            { apiVersion: NETWORKING_API, kind: "DestinationRule", metadata: metadata(plan.name), spec: destinationRuleSpec(plan) },
            // A subset names pods by their version label: they exist before it does (or before it is repointed).
            { parent: this, dependsOn: [...dependsOn, ...args.workloads] },
        );
        // Make before break: subsets and their pods exist before any route points at them.
        const routeOpts = { parent: this, dependsOn: [...dependsOn, this.destinationRule, ...args.workloads] };
        this.virtualServices = [
            new k8s.apiextensions.CustomResource(plan.name, { apiVersion: NETWORKING_API, kind: "VirtualService", metadata: metadata(plan.name), spec: meshVirtualServiceSpec(plan) }, routeOpts),
            new k8s.apiextensions.CustomResource(
                ingressRouteName(plan.name),
                { apiVersion: NETWORKING_API, kind: "VirtualService", metadata: metadata(ingressRouteName(plan.name)), spec: ingressVirtualServiceSpec(plan, args.edge.gatewayRef, args.ingressHost) },
                routeOpts,
            ),
        ];
        rateLimitFilter(plan, { parent: this, dependsOn: [...dependsOn, ...args.workloads] });
        this.registerOutputs({ split: plan.split });
    }
}

/** Routes in Istio's API: the public Gateway, and per service a DestinationRule and two VirtualServices. */
export const istioRouting: RoutingBackend = (name, args) => {
    const edge = new IstioEdge(name, args);
    return { edge, route: (service, routeArgs) => new AppRouting(service, { ...routeArgs, edge }) };
};
