import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { HelmChart } from "../specs/helm-chart";

/**
 * A Helm release with a fixed name (no random suffix, so labels derived from it are known), that waits until
 * its workloads are ready (so whatever depends on it finds them serving) and rolls back if they never are.
 */
export function helmRelease(name: string, chart: HelmChart, namespace: string, values: object, opts: pulumi.CustomResourceOptions): k8s.helm.v3.Release {
    return new k8s.helm.v3.Release(
        name,
        {
            name,
            chart: chart.chart,
            version: chart.version,
            ...(chart.repo !== undefined && { repositoryOpts: { repo: chart.repo } }),
            namespace,
            values,
            skipAwait: false,
            atomic: true,
            timeout: 600,
        },
        opts,
    );
}
