import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER_PORT, SERVICE_PORT } from "./istio-specs";
import { ServicePlan } from "./plan";
import { deploymentName } from "./names";

export interface AppWorkloadsArgs {
    plan: ServicePlan;
    image: string;
    replicas: number;
    /** Created in the app namespace, after istiod: pods must get their sidecar on first start. */
    namespace: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Labels that every object of one app carries; `app` alone selects all its versions. */
export function appLabels(app: string): Record<string, string> {
    return { app, "app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "pulumi" };
}

/** Selector of one version's pods: `app` and `version`, both needed for Istio subsets to match. */
export function versionSelector(app: string, version: string): Record<string, string> {
    return { app, version };
}

// hashicorp/http-echo 1.0.0 is a distroless image that runs as `nonroot`, UID and GID 65532; runAsNonRoot needs
// the number to verify it, and a different UID would leave the process without its image's ownership.
export const HTTP_ECHO_UID = 65532;

export function deploymentSpec(plan: ServicePlan, version: string, image: string, replicas: number): k8s.types.input.apps.v1.DeploymentSpec {
    const podLabels = { ...appLabels(plan.name), ...versionSelector(plan.name, version), "app.kubernetes.io/version": version };
    return {
        replicas,
        selector: { matchLabels: versionSelector(plan.name, version) },
        template: {
            // Istio rewrites HTTP probes to its agent (port 15020), so kubelet's probes pass mTLS and
            // deny-by-default authorization; said explicitly so a mesh-wide change cannot break them.
            metadata: { labels: podLabels, annotations: { "sidecar.istio.io/rewriteAppHTTPProbers": "true" } },
            spec: {
                serviceAccountName: plan.name,
                // The app never calls the Kubernetes API; the sidecar gets its own projected token.
                automountServiceAccountToken: false,
                securityContext: { runAsNonRoot: true, runAsUser: HTTP_ECHO_UID, runAsGroup: HTTP_ECHO_UID, seccompProfile: { type: "RuntimeDefault" } },
                containers: [
                    {
                        name: plan.name,
                        image,
                        args: [`-text=${plan.responseText[version]}`, `-listen=:${CONTAINER_PORT}`],
                        ports: [{ name: "http", containerPort: CONTAINER_PORT, protocol: "TCP" }],
                        readinessProbe: { httpGet: { path: "/health", port: "http" }, periodSeconds: 5, failureThreshold: 3 },
                        livenessProbe: { httpGet: { path: "/health", port: "http" }, initialDelaySeconds: 5, periodSeconds: 10, failureThreshold: 3 },
                        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m", memory: "64Mi" } },
                        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                    },
                ],
            },
        },
    };
}

/** One app: a ServiceAccount, one Service spanning all versions, and a Deployment per version. */
export class AppWorkloads extends pulumi.ComponentResource {
    readonly deployments: k8s.apps.v1.Deployment[];
    readonly service: k8s.core.v1.Service;

    constructor(name: string, args: AppWorkloadsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppWorkloads", name, {}, opts);
        const { plan } = args;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const labels = appLabels(plan.name);

        new k8s.core.v1.ServiceAccount(plan.name, { metadata: { name: plan.name, namespace: args.namespace, labels } }, childOpts);
        this.service = new k8s.core.v1.Service(
            plan.name,
            {
                metadata: { name: plan.name, namespace: args.namespace, labels },
                spec: {
                    // `app` only, so the Service spans every version and Istio picks the version by subset.
                    selector: { app: plan.name },
                    ports: [{ name: "http", port: SERVICE_PORT, targetPort: "http", protocol: "TCP" }],
                },
            },
            childOpts,
        );
        this.deployments = plan.subsets.map(
            ({ version }) =>
                new k8s.apps.v1.Deployment(
                    deploymentName(plan.name, version),
                    {
                        metadata: { name: deploymentName(plan.name, version), namespace: args.namespace, labels: { ...labels, version } },
                        spec: deploymentSpec(plan, version, args.image, args.replicas),
                    },
                    childOpts,
                ),
        );
        this.registerOutputs({ service: this.service.metadata.name });
    }
}
