import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { isRecord } from "../config/config-reader";
import { ingressRouteName, versionServiceName } from "../config/names";
import { edgeGatewaySpec, edgeHttpRouteSpec, EDGE_GATEWAY, GATEWAY_API, GATEWAY_API_CRDS_FILE, httpsRedirectRouteSpec, meshHttpRouteSpec } from "../specs/gateway-api-specs";
import { NETWORKING_API, versionDestinationRuleSpec } from "../specs/istio-specs";
import { GATEWAY_NAMESPACE, GATEWAY_RELEASE } from "../specs/mesh-specs";
import { appLabels, servicePort, versionSelector } from "../specs/workload-specs";
import { AppRoutingArgs, Edge, EdgeArgs, rateLimitFilter, RoutingBackend } from "./routing";

/** An object of the install file: what the API server needs to create it. */
interface InstallObject {
    readonly apiVersion: string;
    readonly kind: string;
    readonly metadata: { readonly name: string } & Record<string, unknown>;
    readonly spec: Record<string, unknown>;
}

function isInstallObject(doc: unknown): doc is InstallObject {
    return isRecord(doc) && typeof doc.apiVersion === "string" && typeof doc.kind === "string" && isRecord(doc.metadata) && typeof doc.metadata.name === "string" && isRecord(doc.spec);
}

let installObjects: readonly InstallObject[] | undefined;

/**
 * The Gateway API's standard-channel install as the program carries it (CRDs, and the admission policy that
 * keeps experimental CRDs off them), read once: the project root holds Pulumi.yaml, above components/ in
 * TypeScript and above bin/ compiled.
 */
export function gatewayApiInstall(): readonly InstallObject[] {
    if (installObjects !== undefined) return installObjects;
    const root = [path.resolve(__dirname, "..", ".."), path.resolve(__dirname, "..", "..", "..")].find((dir) => fs.existsSync(path.join(dir, GATEWAY_API_CRDS_FILE)));
    if (root === undefined) throw new Error(`The Gateway API install ${GATEWAY_API_CRDS_FILE} is missing from the project`);
    const docs = parseAllDocuments(fs.readFileSync(path.join(root, GATEWAY_API_CRDS_FILE), "utf8")).map((d) => d.toJS() as unknown);
    installObjects = docs.filter(isInstallObject).map(({ apiVersion, kind, metadata, spec }) => ({ apiVersion, kind, metadata, spec }));
    return installObjects;
}

/** The Gateway API's edge: its CRDs, installed first and pinned, and a Gateway on the ingress gateway Istio runs. */
export class GatewayApiEdge extends pulumi.ComponentResource implements Edge {
    readonly crds: k8s.apiextensions.CustomResource[];
    readonly gateway: k8s.apiextensions.CustomResource;
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:GatewayApiEdge", name, {}, opts);
        this.crds = gatewayApiInstall().map((object) => new k8s.apiextensions.CustomResource(object.metadata.name, { ...object }, { parent: this }));
        const gatewayService = `${GATEWAY_RELEASE}.${GATEWAY_NAMESPACE}.svc.cluster.local`;
        this.gateway = new k8s.apiextensions.CustomResource(
            EDGE_GATEWAY,
            { apiVersion: GATEWAY_API, kind: "Gateway", metadata: { name: EDGE_GATEWAY, namespace: GATEWAY_NAMESPACE }, spec: edgeGatewaySpec(args.ingressHost, args.tls, args.appNamespace, gatewayService) },
            // istiod programs it, onto the gateway release's pods; its HTTPS listener names the TLS Secret.
            { parent: this, dependsOn: [...this.crds, args.mesh.istiod, args.mesh.gatewayRelease, ...args.mesh.tlsSecrets] },
        );
        const redirect = args.tls?.httpsRedirect
            ? [
                  new k8s.apiextensions.CustomResource(
                      "edge-https-redirect",
                      { apiVersion: GATEWAY_API, kind: "HTTPRoute", metadata: { name: "edge-https-redirect", namespace: args.appNamespace }, spec: httpsRedirectRouteSpec(GATEWAY_NAMESPACE, args.ingressHost) },
                      { parent: this, dependsOn: [this.gateway] },
                  ),
              ]
            : [];
        this.ready = [args.mesh.istiod, this.gateway, ...redirect];
        this.registerOutputs({ gateway: `${GATEWAY_NAMESPACE}/${EDGE_GATEWAY}` });
    }
}

/**
 * One service's routing in the Gateway API: a Service per version (the API has no subsets), an HTTPRoute at the
 * edge and a GAMMA HTTPRoute in the mesh, a DestinationRule per version where the service has a traffic policy,
 * and the rate limit. A release moves the HTTPRoutes and nothing else.
 */
export class GatewayApiAppRouting extends pulumi.ComponentResource {
    readonly versionServices: k8s.core.v1.Service[];
    readonly routes: k8s.apiextensions.CustomResource[];

    constructor(name: string, args: AppRoutingArgs<GatewayApiEdge>, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:GatewayApiAppRouting", name, {}, opts);
        const { plan } = args;
        const metadata = (objectName: string, extra: Record<string, string> = {}) => ({ name: objectName, namespace: plan.namespace, labels: { ...appLabels(plan.name), ...extra } });
        const dependsOn = [...args.dependsOn, ...args.edge.ready];
        const versions = [...new Set(plan.subsets.map((s) => s.version))];
        this.versionServices = versions.map((version) => {
            const serviceName = versionServiceName(plan.name, version);
            return new k8s.core.v1.Service(serviceName, { metadata: metadata(serviceName, { version }), spec: { selector: versionSelector(plan.name, version), ports: [servicePort(plan)] } }, { parent: this, dependsOn: args.dependsOn });
        });
        const policies = versions.flatMap((version) => {
            const serviceName = versionServiceName(plan.name, version);
            const spec = versionDestinationRuleSpec(plan, `${serviceName}.${plan.namespace}.svc.cluster.local`);
            return spec === undefined ? [] : [new k8s.apiextensions.CustomResource(serviceName, { apiVersion: NETWORKING_API, kind: "DestinationRule", metadata: metadata(serviceName, { version }), spec }, { parent: this, dependsOn })];
        });
        // Make before break: every version's Service, policy and pods exist before a route points at them.
        const routeOpts = { parent: this, dependsOn: [...dependsOn, ...this.versionServices, ...policies, ...args.workloads] };
        this.routes = [
            new k8s.apiextensions.CustomResource(plan.name, { apiVersion: GATEWAY_API, kind: "HTTPRoute", metadata: metadata(plan.name), spec: meshHttpRouteSpec(plan) }, routeOpts),
            new k8s.apiextensions.CustomResource(
                ingressRouteName(plan.name),
                { apiVersion: GATEWAY_API, kind: "HTTPRoute", metadata: metadata(ingressRouteName(plan.name)), spec: edgeHttpRouteSpec(plan, GATEWAY_NAMESPACE, args.ingressHost, args.tls) },
                routeOpts,
            ),
        ];
        rateLimitFilter(plan, { parent: this, dependsOn: [...dependsOn, ...args.workloads] });
        this.registerOutputs({ split: plan.split });
    }
}

/** Routes in the Gateway API: its CRDs and edge Gateway, and per service version Services and two HTTPRoutes. */
export const gatewayApiRouting: RoutingBackend = (name, args) => {
    const edge = new GatewayApiEdge(name, args);
    return { route: (service, routeArgs) => new GatewayApiAppRouting(service, { ...routeArgs, edge }) };
};
