// Pure renderers from the traffic plan to Istio resource specs, typed with Istio's own CRD schemas
// (@kubernetes-models/istio) so that a misspelled or misplaced field fails to compile.
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule" with { "resolution-mode": "import" };
import type { IGateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway" with { "resolution-mode": "import" };
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService" with { "resolution-mode": "import" };
import { ServicePlan } from "./plan";

export type VirtualServiceSpec = NonNullable<IVirtualService["spec"]>;
export type HttpRoute = NonNullable<VirtualServiceSpec["http"]>[number];
export type HttpMatch = NonNullable<HttpRoute["match"]>[number];
export type DestinationRuleSpec = NonNullable<IDestinationRule["spec"]>;
export type GatewaySpec = NonNullable<IGateway["spec"]>;

export const NETWORKING_API = "networking.istio.io/v1";
/** The reserved gateway name for all sidecars in the mesh. */
export const MESH_GATEWAY = "mesh";

export function destinationRuleSpec(plan: ServicePlan): DestinationRuleSpec {
    return {
        host: plan.host,
        subsets: plan.subsets.map((s) => ({ name: s.name, labels: { version: s.version } })),
    };
}

function httpRoutes(plan: ServicePlan, extraMatch: HttpMatch | undefined): HttpRoute[] {
    return plan.rules.map((rule) => ({
        name: rule.name,
        ...(extraMatch === undefined ? {} : { match: [extraMatch] }),
        route: rule.destinations.map((d) => ({
            destination: { host: plan.host, subset: d.subset, port: { number: SERVICE_PORT } },
            weight: d.weight,
        })),
    }));
}

/** Routes for calls from other workloads in the mesh, so a split holds for service-to-service traffic. */
export function meshVirtualServiceSpec(plan: ServicePlan): VirtualServiceSpec {
    return {
        hosts: [plan.host],
        gateways: [MESH_GATEWAY],
        http: httpRoutes(plan, undefined),
    };
}

/**
 * Routes for requests through the ingress gateway, by path prefix. A separate VirtualService from the mesh
 * one because Istio refuses a `*` host on a VirtualService bound to the mesh.
 */
export function ingressVirtualServiceSpec(plan: ServicePlan, gateway: string, ingressHost: string): VirtualServiceSpec {
    return {
        hosts: [ingressHost],
        gateways: [gateway],
        http: httpRoutes(plan, { uri: { prefix: plan.path } }),
    };
}

/** Port of every app Service; the container behind it listens on CONTAINER_PORT. */
export const SERVICE_PORT = 80;
export const CONTAINER_PORT = 8080;

export function gatewaySpec(selector: Record<string, string>, ingressHost: string): GatewaySpec {
    return {
        selector,
        servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: [ingressHost] }],
    };
}
