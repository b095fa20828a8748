// Pure specs of the workloads: Deployments per version with their labels, and namespace labels.
import type * as k8s from "@pulumi/kubernetes";
import type * as kx from "@pulumi/kubernetesx";
// The policy pack finds a production stack by this label; one definition serves both.
import { PRODUCTION_LABEL } from "../../policy/checks";
import type { PodSecurityLevel } from "../config/security-config";
import { DataPlane, sidecarsServe } from "../config/config";
import { AMBIENT_NAMESPACE_LABELS, HBONE_SIDECAR_ANNOTATION } from "./ambient-specs";
import type { Autoscaling, Protocol, ResourceList, Resources } from "../config/workload-config";
import type { ServicePlan, VersionWorkload } from "../plan/plan";
import { SERVICE_PORT } from "./istio-specs";

/** Labels that every object of one app carries; `app` alone selects all its versions. */
export function appLabels(app: string): Record<string, string> {
    return { app, "app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "pulumi" };
}

/** Selector of one version's pods: `app` and `version`, both needed for Istio subsets to match. */
export function versionSelector(app: string, version: string): Record<string, string> {
    return { app, version };
}

/** The Service's port: always 80, named for its protocol (Istio's protocol selection) and to the container's port. */
export function servicePort(plan: ServicePlan): k8s.types.input.core.v1.ServicePort {
    const { protocol, port } = plan.workload;
    return { name: protocol, port: SERVICE_PORT, targetPort: port, protocol: "TCP", appProtocol: APP_PROTOCOL[protocol] };
}

const APP_PROTOCOL: Readonly<Record<Protocol, string>> = { http: "http", http2: "kubernetes.io/h2c", grpc: "grpc" };

/** Requests and limits as Kubernetes lists them. */
function resourceRequirements(resources: Resources): k8s.types.input.core.v1.ResourceRequirements {
    const list = (l: ResourceList | undefined) => (l === undefined ? undefined : Object.fromEntries(Object.entries(l).filter((e): e is [string, string] => typeof e[1] === "string")));
    const requests = list(resources.requests);
    const limits = list(resources.limits);
    return { ...(requests && { requests }), ...(limits && { limits }) };
}

function probe(plan: ServicePlan): k8s.types.input.core.v1.Probe {
    const { health, port } = plan.workload;
    // Istio rewrites HTTP and gRPC probes to its agent, so kubelet's probes pass mTLS and authorization.
    return "path" in health ? { httpGet: { path: health.path, port } } : { grpc: { port } };
}

/**
 * A sidecar pod's annotations: probes rewritten to the agent (said explicitly so a mesh-wide change cannot break
 * them; an ambient pod needs none, ztunnel lets the kubelet's probes through), and in ambientReady HBONE accepted.
 */
function podAnnotations(dataPlane: DataPlane): Record<string, string> {
    return { "sidecar.istio.io/rewriteAppHTTPProbers": "true", ...(dataPlane === "ambientReady" && HBONE_SIDECAR_ANNOTATION) };
}

/**
 * An ambient pod is ambient by its own labels, not only its namespace's. Switching back, the namespace takes
 * injection at the start of the update, before the policies that admit sidecar callers to ambient pods exist. The
 * CNI agent re-reads the running pods when their namespace's labels change, and an ambient pod started again from
 * its template in that window (evicted, rescheduled, scaled up) would come up with a sidecar, whose calls the other
 * ambient pods' ztunnel would deny. Istio enrolls a pod labelled istio.io/dataplane-mode=ambient itself and
 * injects none labelled sidecar.istio.io/inject=false. (The other way, a sidecar pod started again as ambient is
 * admitted: the sidecars' allows stay until the switch completes.)
 */
function dataPlanePodLabels(dataPlane: DataPlane): Record<string, string> {
    return dataPlane === "ambient" ? { ...AMBIENT_NAMESPACE_LABELS, "sidecar.istio.io/inject": "false" } : {};
}

/**
 * One version's Deployment spec, in kubernetesx's builder types (env and ports as maps). Selector and pod
 * labels carry `app` and `version` explicitly, so kubernetesx's `{ app: <container> }` default never applies
 * and Istio's subsets select exactly this version's pods.
 */
export function deploymentSpec(plan: ServicePlan, workload: VersionWorkload): kx.types.DeploymentSpec {
    const podLabels = { ...appLabels(plan.name), ...versionSelector(plan.name, workload.version), "app.kubernetes.io/version": workload.version };
    const { protocol, port } = plan.workload;
    return {
        replicas: workload.replicas,
        selector: { matchLabels: versionSelector(plan.name, workload.version) },
        template: {
            // Each stage of the data plane has its own template, so a switch restarts the pods: only a new pod starts
            // without a sidecar, or with one that accepts HBONE.
            metadata: { labels: { ...podLabels, ...dataPlanePodLabels(plan.dataPlane) }, ...(sidecarsServe(plan.dataPlane) && { annotations: podAnnotations(plan.dataPlane) }) },
            spec: {
                serviceAccountName: plan.name,
                // The app never calls the Kubernetes API; the sidecar gets its own projected token.
                automountServiceAccountToken: false,
                securityContext: {
                    runAsNonRoot: true,
                    ...(workload.runAsUser !== undefined && { runAsUser: workload.runAsUser, runAsGroup: workload.runAsUser }),
                    seccompProfile: { type: "RuntimeDefault" },
                },
                containers: [
                    {
                        name: plan.name,
                        image: workload.image,
                        ...(workload.args.length > 0 && { args: [...workload.args] }),
                        env: { ...workload.env },
                        ports: { [protocol]: port },
                        readinessProbe: { ...probe(plan), periodSeconds: 5, failureThreshold: 3 },
                        livenessProbe: { ...probe(plan), initialDelaySeconds: 5, periodSeconds: 10, failureThreshold: 3 },
                        resources: resourceRequirements(workload.resources),
                        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                    },
                ],
            },
        },
    };
}

/** Scales one version's Deployment on CPU, between the service's bounds. */
export function autoscalerSpec(deployment: string, autoscaling: Autoscaling): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
    return {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: deployment },
        minReplicas: autoscaling.minReplicas,
        maxReplicas: autoscaling.maxReplicas,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: autoscaling.cpuUtilization } } }],
    };
}

/** A node drain evicts one pod of the version at a time. */
export function disruptionBudgetSpec(plan: ServicePlan, version: string): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: 1, selector: { matchLabels: versionSelector(plan.name, version) } };
}

/** Pod Security labels: enforced, and warned and audited at the same level so kubectl shows why a pod was refused. */
export function podSecurityLabels(level: PodSecurityLevel): Record<string, string> {
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    };
}

export function namespaceLabels(args: { podSecurity: PodSecurityLevel; production: boolean; dataPlane: DataPlane }): Record<string, string> {
    return {
        ...(sidecarsServe(args.dataPlane) ? { "istio-injection": "enabled" } : AMBIENT_NAMESPACE_LABELS),
        ...podSecurityLabels(args.podSecurity),
        ...(args.production && { [PRODUCTION_LABEL]: "true" }),
    };
}

