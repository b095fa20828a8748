import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface AppNamespaceArgs {
    name: string;
    /** istiod: the injection webhook must serve before the namespace's first pod starts. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** The namespace the services run in, with Istio sidecar injection on. */
export class AppNamespace extends pulumi.ComponentResource {
    readonly name: pulumi.Output<string>;
    readonly namespace: k8s.core.v1.Namespace;

    constructor(name: string, args: AppNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-delivery:index:AppNamespace", name, {}, opts);
        this.namespace = new k8s.core.v1.Namespace(
            args.name,
            { metadata: { name: args.name, labels: { "istio-injection": "enabled" } } },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.name = this.namespace.metadata.name;
        this.registerOutputs({ name: this.name });
    }
}
