import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Dashboard } from "@grafana/schema";
import { ObservabilitySettings } from "../config/observability-config";
import { ADDON_CHARTS, ADDON_NAMESPACE, grafanaValues, jaegerValues, kialiValues, prometheusValues, telemetrySpec } from "../specs/observability-specs";
import { helmRelease } from "./helm";

export interface ObservabilityArgs {
    settings: ObservabilitySettings;
    /** A local cluster (platform kind): Kiali lets anyone in without a token. */
    localCluster: boolean;
    /** The canary dashboard Grafana is provisioned with. */
    canaryDashboard: Dashboard;
    /** istiod and its namespace: the add-ons and the Telemetry resource need both. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Prometheus, Grafana, Kiali and Jaeger from their charts, and the mesh's Telemetry resource. */
export class Observability extends pulumi.ComponentResource {
    constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:Observability", name, {}, opts);
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        if (args.settings.enabled) {
            const release = (releaseName: keyof typeof ADDON_CHARTS, values: object, dependsOn: pulumi.Resource[] = []) =>
                helmRelease(releaseName, ADDON_CHARTS[releaseName], ADDON_NAMESPACE, values, { ...childOpts, dependsOn: [...args.dependsOn, ...dependsOn] });
            const prometheus = release("prometheus", prometheusValues(args.settings.prometheusVolume));
            const grafana = release("grafana", grafanaValues(args.canaryDashboard), [prometheus]);
            const jaeger = release("jaeger", jaegerValues());
            release("kiali", kialiValues(args.localCluster), [prometheus, grafana, jaeger]);
        }
        const spec = telemetrySpec(args.settings);
        if (spec !== undefined) {
            new k8s.apiextensions.CustomResource(
                "mesh-default",
                { apiVersion: "telemetry.istio.io/v1", kind: "Telemetry", metadata: { name: "mesh-default", namespace: ADDON_NAMESPACE }, spec },
                childOpts,
            );
        }
        this.registerOutputs({});
    }
}
