// Every check the program makes before it creates anything, in one place: the config read and validated, the
// traffic planned, and the plan checked against what its routing API can express. The program and the rollout's
// preparation both call it, so a rollout never starts towards a config that `pulumi up` would refuse.
import { readSettings, Settings } from "../config/config";
import { ConfigError, ConfigSource } from "../config/config-reader";
import { gatewayApiLimitProblems, precedenceProblems } from "./gateway-api-specs";
import { planTraffic, TrafficPlan } from "../plan/plan";

export function checkedPlan(source: ConfigSource): { readonly settings: Settings; readonly plan: TrafficPlan } {
    const settings = readSettings(source);
    const plan = planTraffic(settings);
    // What the HTTPRoutes would route elsewhere than the VirtualServices, or past the Gateway API's limits, is refused.
    const problems = settings.trafficApi === "gatewayApi" ? plan.services.flatMap((service) => [...precedenceProblems(service), ...gatewayApiLimitProblems(service)]) : [];
    if (problems.length > 0) throw new ConfigError(problems);
    return { settings, plan };
}
