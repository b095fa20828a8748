// The policies of the pack, wired to the checks in checks.ts.
import { Policies, ReportViolation } from "@pulumi/policy";
import {
    CheckedResource,
    checkImagesPinned,
    checkNoProductionFaults,
    checkProbesAndLimits,
    checkProductionGatewayTls,
    checkProductionMtls,
    checkRoutedSubsets,
    checkRouteWeights,
} from "./checks";

type ResourceCheck = (r: CheckedResource) => string[];
type StackCheck = (resources: readonly CheckedResource[]) => string[];

const report = (violations: string[], reportViolation: ReportViolation) => {
    for (const v of violations) reportViolation(v);
};

function resourcePolicy(name: string, description: string, check: ResourceCheck): Policies[number] {
    return {
        name,
        description,
        enforcementLevel: "mandatory",
        validateResource: (args, reportViolation) => {
            report(check({ type: args.type, name: args.name, props: args.props }), reportViolation);
        },
    };
}

function stackPolicy(name: string, description: string, check: StackCheck): Policies[number] {
    return {
        name,
        description,
        enforcementLevel: "mandatory",
        validateStack: (args, reportViolation) => {
            report(check(args.resources.map((r) => ({ type: r.type, name: r.name, props: r.props }))), reportViolation);
        },
    };
}

export const policies: Policies = [
    resourcePolicy("route-weights-valid", "VirtualService route weights are whole percents that sum to 100.", checkRouteWeights),
    stackPolicy("routed-subsets-defined", "Every subset a VirtualService routes to is defined in a DestinationRule.", checkRoutedSubsets),
    resourcePolicy("images-pinned", "Container images are pinned to a tag other than latest, or a digest.", checkImagesPinned),
    resourcePolicy("probes-and-limits", "Every app container has readiness and liveness probes, CPU and memory requests and a memory limit.", checkProbesAndLimits),
    stackPolicy("production-strict-mtls", "Production app namespaces enforce STRICT mutual TLS.", checkProductionMtls),
    stackPolicy("production-gateway-tls", "A production ingress Gateway serves HTTPS.", checkProductionGatewayTls),
    stackPolicy("no-fault-injection-in-production", "Production routes inject no faults.", checkNoProductionFaults),
];

/** Which check each policy runs, for the tests. */
export const CHECKS: Record<string, ResourceCheck | StackCheck> = {
    "route-weights-valid": checkRouteWeights,
    "routed-subsets-defined": checkRoutedSubsets,
    "images-pinned": checkImagesPinned,
    "probes-and-limits": checkProbesAndLimits,
    "production-strict-mtls": checkProductionMtls,
    "production-gateway-tls": checkProductionGatewayTls,
    "no-fault-injection-in-production": checkNoProductionFaults,
};
