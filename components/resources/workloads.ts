import * as k8s from "@pulumi/kubernetes";
import * as kx from "@pulumi/kubernetesx";
import * as pulumi from "@pulumi/pulumi";
import { deploymentName } from "../config/names";
import { ServicePlan } from "../plan/plan";
import { appLabels, autoscalerSpec, deploymentSpec, disruptionBudgetSpec, servicePort } from "../specs/workload-specs";

export interface AppWorkloadsArgs {
    plan: ServicePlan;
    /** Created in the app namespace, after istiod: pods must get their sidecar on first start. */
    namespace: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * One app: a ServiceAccount, one Service spanning all versions, and per version a Deployment (built with
 * kubernetesx), an autoscaler where the service asks for one, and a PodDisruptionBudget from 2 pods.
 */
export class AppWorkloads extends pulumi.ComponentResource {
    readonly deployments: k8s.apps.v1.Deployment[];
    readonly service: k8s.core.v1.Service;

    constructor(name: string, args: AppWorkloadsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppWorkloads", name, {}, opts);
        const { plan } = args;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const labels = appLabels(plan.name);
        const metadata = (objectName: string, extra: Record<string, string> = {}) => ({ name: objectName, namespace: args.namespace, labels: { ...labels, ...extra } });

        new k8s.core.v1.ServiceAccount(plan.name, { metadata: metadata(plan.name) }, childOpts);
        this.service = new k8s.core.v1.Service(
            plan.name,
            // `app` only, so the Service spans every version and Istio picks the version by subset.
            { metadata: metadata(plan.name), spec: { selector: { app: plan.name }, ports: [servicePort(plan)] } },
            childOpts,
        );
        this.deployments = plan.workloads.map((workload) => {
            const deployment = deploymentName(plan.name, workload.version);
            const created = new kx.Deployment(deployment, { metadata: metadata(deployment, { version: workload.version }), spec: deploymentSpec(plan, workload) }, childOpts);
            const versionOpts = { parent: this, dependsOn: [created] };
            if (plan.autoscaling !== undefined) {
                new k8s.autoscaling.v2.HorizontalPodAutoscaler(deployment, { metadata: metadata(deployment, { version: workload.version }), spec: autoscalerSpec(deployment, plan.autoscaling) }, versionOpts);
            }
            if (workload.minPods >= 2) {
                new k8s.policy.v1.PodDisruptionBudget(deployment, { metadata: metadata(deployment, { version: workload.version }), spec: disruptionBudgetSpec(plan, workload.version) }, versionOpts);
            }
            return created;
        });
        this.registerOutputs({ service: this.service.metadata.name });
    }
}
