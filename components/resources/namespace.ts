import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { PodSecurityLevel } from "../config/security-config";
import type { DataPlane } from "../config/config";
import { namespaceLabels } from "../specs/workload-specs";

export interface AppNamespaceArgs {
    name: string;
    podSecurity: PodSecurityLevel;
    /** Labels the namespace so policies (the CrossGuard pack) can tell a production stack's objects. */
    production: boolean;
    /** Sidecar injection, or enrolled in ambient mode. */
    dataPlane: DataPlane;
    /** istiod (the injection webhook), or the ambient data plane, must serve before the namespace's first pod starts. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** The namespace the services run in: sidecar injection on (or enrolled in ambient mode), Pod Security enforced. */
export class AppNamespace extends pulumi.ComponentResource {
    readonly name: pulumi.Output<string>;
    readonly namespace: k8s.core.v1.Namespace;

    constructor(name: string, args: AppNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppNamespace", name, {}, opts);
        this.namespace = new k8s.core.v1.Namespace(
            args.name,
            { metadata: { name: args.name, labels: namespaceLabels(args) } },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.name = this.namespace.metadata.name;
        this.registerOutputs({ name: this.name });
    }
}
