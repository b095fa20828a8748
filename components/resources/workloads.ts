import * as k8s from "@pulumi/kubernetes";
import * as kx from "@pulumi/kubernetesx";
import * as pulumi from "@pulumi/pulumi";
import { deploymentName } from "../config/names";
import { ServicePlan } from "../plan/plan";
import { WAYPOINT_SERVICE_LABELS } from "../specs/ambient-specs";
import { ambientInstalled } from "../config/config";
import { appLabels, autoscalerSpec, deploymentSpec, disruptionBudgetSpec, servicePort } from "../specs/workload-specs";

export interface AppWorkloadsArgs {
    plan: ServicePlan;
    /** Created in the app namespace, after istiod: pods must get their sidecar on first start. */
    namespace: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** In ambient mode, the waypoint the app's Service names: it exists before the Service sends calls through it. */
    waypoint?: pulumi.Resource;
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
        this.deployments = plan.workloads.map((workload) => {
            const deployment = deploymentName(plan.name, workload.version);
            // With an autoscaler, the count is never dropped from what Pulumi applies: under server-side apply a field
            // nobody else owns would fall back to its default, 1, until the autoscaler (created after the
            // Deployment) scales it up again: 3 -> 1 the moment autoscaling is turned on. With `ignoreChanges`,
            // @pulumi/kubernetes (v4.32, await.go handleSSAIgnoreFields) sends the live count while it owns the
            // field, and leaves the field out once the autoscaler has scaled and so owns it. Without one, the
            // configured count wins (patchForce), also over the autoscaler being removed in the same update, which
            // still owns the field when the Deployment is updated.
            const opts = plan.autoscaling === undefined ? childOpts : { ...childOpts, ignoreChanges: ["spec.replicas"] };
            const force = plan.autoscaling === undefined && { annotations: { "pulumi.com/patchForce": "true" } };
            const created = new kx.Deployment(deployment, { metadata: { ...metadata(deployment, { version: workload.version }), ...force }, spec: deploymentSpec(plan, workload) }, opts);
            const versionOpts = { parent: this, dependsOn: [created] };
            if (plan.autoscaling !== undefined) {
                new k8s.autoscaling.v2.HorizontalPodAutoscaler(deployment, { metadata: metadata(deployment, { version: workload.version }), spec: autoscalerSpec(deployment, plan.autoscaling) }, versionOpts);
            }
            if (workload.minPods >= 2) {
                new k8s.policy.v1.PodDisruptionBudget(deployment, { metadata: metadata(deployment, { version: workload.version }), spec: disruptionBudgetSpec(plan, workload.version) }, versionOpts);
            }
            return created;
        });
        this.service = new k8s.core.v1.Service(
            plan.name,
            // `app` only, so the Service spans every version and Istio picks the version by subset.
            {
                metadata: metadata(plan.name, ambientInstalled(plan.dataPlane) ? WAYPOINT_SERVICE_LABELS : {}),
                spec: { selector: { app: plan.name }, ports: [servicePort(plan)] },
            },
            // Named by the waypoint only once it exists and the pods behind accept HBONE (restarted for it in ambientReady).
            { ...childOpts, dependsOn: [...args.dependsOn, ...this.deployments, ...(args.waypoint ? [args.waypoint] : [])] },
        );
        this.registerOutputs({ service: this.service.metadata.name });
    }
}
