// Pure renderers of the zero-trust settings into Istio security specs, typed with Istio's CRD schemas.
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy" with { "resolution-mode": "import" };
import type { IPeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication" with { "resolution-mode": "import" };
import type { IRequestAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication" with { "resolution-mode": "import" };
import { segmentBase } from "../config/catalogue";
import { JwtSettings, MeshEdge, MtlsMode } from "../config/security-config";

export type AuthorizationPolicySpec = NonNullable<IAuthorizationPolicy["spec"]>;
export type PeerAuthenticationSpec = NonNullable<IPeerAuthentication["spec"]>;
export type RequestAuthenticationSpec = NonNullable<IRequestAuthentication["spec"]>;

export const SECURITY_API = "security.istio.io/v1";
/** Istio's default trust domain: SPIFFE identities are `<trust domain>/ns/<namespace>/sa/<account>`. */
export const TRUST_DOMAIN = "cluster.local";

export const principal = (serviceAccount: string): string => {
    const [namespace, account] = serviceAccount.split("/");
    return `${TRUST_DOMAIN}/ns/${namespace}/sa/${account}`;
};

export function peerAuthenticationSpec(mode: MtlsMode): PeerAuthenticationSpec {
    return { mtls: { mode } };
}

/** An ALLOW policy with no rules matches nothing: with it, every request needs another policy's ALLOW. */
export function allowNothingSpec(): AuthorizationPolicySpec {
    return {};
}

/** The edge's proxies as the app's sidecars see them: their service account (`namespace/name`), and no other workload of their namespace. */
export interface EdgeSource {
    readonly serviceAccount: string;
}

/** The edge's identity may call the app's public path prefix, by whole segments as the ingress route matches it. */
export function ingressAllowSpec(app: string, path: string, edge: EdgeSource): AuthorizationPolicySpec {
    const base = segmentBase(path);
    return {
        selector: { matchLabels: { app } },
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: [principal(edge.serviceAccount)] } }], to: [{ operation: { paths: [base, `${base}/*`] } }] }],
    };
}

/** The in-mesh callers declared for one app: one rule per edge (rules are OR'ed; a rule's parts are AND'ed). */
export function meshAllowSpec(app: string, edges: readonly MeshEdge[]): AuthorizationPolicySpec {
    return {
        selector: { matchLabels: { app } },
        action: "ALLOW",
        rules: edges.map((e) => ({ from: [{ source: { principals: [principal(e.from)] } }], to: [{ operation: { methods: [...e.methods], paths: [...e.paths] } }] })),
    };
}

export function requestAuthenticationSpec(jwt: JwtSettings, gatewaySelector: Record<string, string>): RequestAuthenticationSpec {
    return {
        selector: { matchLabels: gatewaySelector },
        jwtRules: [
            {
                issuer: jwt.issuer,
                ...(jwt.jwksUri !== undefined && { jwksUri: jwt.jwksUri }),
                ...(jwt.jwks !== undefined && { jwks: jwt.jwks }),
                ...(jwt.audiences.length > 0 && { audiences: [...jwt.audiences] }),
            },
        ],
    };
}

/** Denies requests to protected paths that carry no valid token (an invalid token is already refused, 401). */
export function requireJwtSpec(jwt: JwtSettings, gatewaySelector: Record<string, string>): AuthorizationPolicySpec {
    return {
        selector: { matchLabels: gatewaySelector },
        action: "DENY",
        rules: [{ from: [{ source: { notRequestPrincipals: ["*"] } }], to: [{ operation: { paths: [...jwt.protectedPaths] } }] }],
    };
}
