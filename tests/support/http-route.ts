// Where the Gateway API sends a request, by its rules for HTTPRoute (v1.5.1): the routes attached to the edge
// Gateway (by hostname) or, in the mesh, to the called Service (GAMMA); among all their matches the most
// specific wins (an exact path, then the longest path prefix, then the most header matches), then the oldest
// route (here: all created together, so the first by namespace/name), then the first rule in the route. A path
// prefix matches whole path segments. Regular expressions are RE2 matched against the whole value, as Istio
// and Envoy do.
import { RE2JS } from "re2js";
import type { HttpRouteMatch, HttpRouteSpec } from "../../components/specs/gateway-api-specs";
import type { Request } from "../harness";

export interface RenderedRoute {
    readonly namespace: string;
    readonly name: string;
    readonly spec: HttpRouteSpec;
}

/** Percent of matching requests per backend Service; and the Set-Cookie each backend adds. */
export interface HttpRouteOutcome {
    readonly backends: Record<string, number>;
    readonly setCookies: Record<string, string>;
    readonly mirror?: { readonly backend: string; readonly percent: number };
    readonly rule: string;
}

const full = (regex: string, value: string) => RE2JS.compile(regex).matches(value);

function pathMatches(match: HttpRouteMatch, path: string): boolean {
    const p = match.path ?? { type: "PathPrefix", value: "/" };
    if (p.type === "Exact") return path === p.value;
    if (p.type === "RegularExpression") return full(p.value, path);
    const prefix = p.value.replace(/\/+$/, "");
    return prefix === "" || path === prefix || path.startsWith(`${prefix}/`);
}

function headersMatch(match: HttpRouteMatch, headers: Readonly<Record<string, string>>): boolean {
    return (match.headers ?? []).every((h) => {
        const value = headers[h.name.toLowerCase()];
        return value !== undefined && (h.type === "Exact" ? value === h.value : full(h.value, value));
    });
}

function precedence(match: HttpRouteMatch): number[] {
    const p = match.path ?? { type: "PathPrefix", value: "/" };
    return [p.type === "Exact" ? 2 : p.type === "PathPrefix" ? 1 : 0, p.type === "PathPrefix" ? p.value.length : 0, match.headers?.length ?? 0];
}

const compare = (a: readonly number[], b: readonly number[]) => a.map((x, i) => x - b[i]).find((d) => d !== 0) ?? 0;

function attached(route: RenderedRoute, request: Request): boolean {
    if (request.gateway === "mesh") {
        const service = request.host.split(".")[0];
        return route.spec.parentRefs.some((p) => p.kind === "Service" && p.name === service && (p.namespace ?? route.namespace) === request.host.split(".")[1]);
    }
    const [namespace, name] = request.gateway.split("/");
    const onGateway = route.spec.parentRefs.some((p) => (p.kind ?? "Gateway") === "Gateway" && p.name === name && p.namespace === namespace && (p.sectionName ?? "http") === "http");
    const host = route.spec.hostnames === undefined || route.spec.hostnames.some((h) => h === request.host || (h.startsWith("*.") && request.host.endsWith(h.slice(1))));
    return onGateway && host;
}

/** The Gateway API's choice for `request` among `routes`; undefined when no route matches. */
export function routeHttp(routes: readonly RenderedRoute[], request: Request): HttpRouteOutcome | undefined {
    const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const ordered = routes.filter((r) => attached(r, request)).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    let best: { key: number[]; rule: HttpRouteSpec["rules"][number] } | undefined;
    for (const route of ordered) {
        for (const rule of route.spec.rules) {
            for (const match of rule.matches ?? [{}]) {
                if (!pathMatches(match, request.path) || !headersMatch(match, headers)) continue;
                // Strictly more specific only: on a tie the earlier route, then the earlier rule, keeps it.
                if (best === undefined || compare(precedence(match), best.key) > 0) best = { key: precedence(match), rule };
            }
        }
    }
    if (best === undefined) return undefined;
    const backends: Record<string, number> = {};
    const setCookies: Record<string, string> = {};
    for (const ref of best.rule.backendRefs ?? []) {
        backends[ref.name] = (backends[ref.name] ?? 0) + ref.weight;
        for (const f of ref.filters ?? []) if (f.type === "ResponseHeaderModifier") for (const h of f.responseHeaderModifier.add) if (h.name.toLowerCase() === "set-cookie") setCookies[ref.name] = h.value;
    }
    const mirrorFilter = (best.rule.filters ?? []).find((f) => f.type === "RequestMirror");
    const mirror = mirrorFilter?.type === "RequestMirror" ? { backend: mirrorFilter.requestMirror.backendRef.name, percent: mirrorFilter.requestMirror.percent ?? (100 * (mirrorFilter.requestMirror.fraction?.numerator ?? 1)) / (mirrorFilter.requestMirror.fraction?.denominator ?? 1) } : undefined;
    return { backends, setCookies, ...(mirror && { mirror }), rule: best.rule.name ?? "" };
}
