import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { deploymentName } from "../config/names";
import { ServicePlan } from "../plan/plan";
import { SERVICE_PORT } from "../specs/istio-specs";
import { appLabels, deploymentSpec } from "../specs/workload-specs";

export interface AppWorkloadsArgs {
    plan: ServicePlan;
    image: string;
    replicas: number;
    /** Created in the app namespace, after istiod: pods must get their sidecar on first start. */
    namespace: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
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
