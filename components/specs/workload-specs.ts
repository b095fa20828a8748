// Pure specs of the workloads: Deployments per version with their labels, and namespace labels.
import type * as k8s from "@pulumi/kubernetes";
// The policy pack finds a production stack by this label; one definition serves both.
import { PRODUCTION_LABEL } from "../../policy/checks";
import type { PodSecurityLevel } from "../config/security-config";
import type { ServicePlan } from "../plan/plan";
import { CONTAINER_PORT } from "./istio-specs";

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

/** Pod Security labels: enforced, and warned and audited at the same level so kubectl shows why a pod was refused. */
export function podSecurityLabels(level: PodSecurityLevel): Record<string, string> {
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    };
}

export function namespaceLabels(args: { podSecurity: PodSecurityLevel; production: boolean }): Record<string, string> {
    return {
        "istio-injection": "enabled",
        ...podSecurityLabels(args.podSecurity),
        ...(args.production && { [PRODUCTION_LABEL]: "true" }),
    };
}

