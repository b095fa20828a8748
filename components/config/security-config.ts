// Zero-trust settings from stack config: mTLS, authorization edges, JWT at the edge, gateway TLS and the
// namespaces' Pod Security level. Pure validation into typed settings.
import { X509Certificate, createPrivateKey } from "crypto";
import { isRecord, Reader, setCommand, setPathCommand, show } from "./config-reader";
import type { ServiceSettings } from "./catalogue";

export type MtlsMode = "STRICT" | "PERMISSIVE";
export type PodSecurityLevel = "privileged" | "baseline" | "restricted";
export const MTLS_MODES: readonly MtlsMode[] = ["STRICT", "PERMISSIVE"];
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = ["restricted", "baseline", "privileged"];

/** An allowed in-mesh call: `from` (a Kubernetes service account) may call `to` with these methods and paths. */
export interface MeshEdge {
    /** `namespace/serviceaccount` of the caller. */
    readonly from: string;
    readonly to: string;
    readonly methods: readonly string[];
    readonly paths: readonly string[];
}

export interface JwtSettings {
    readonly issuer: string;
    readonly jwksUri?: string;
    /** Inline JWKS document (JSON). */
    readonly jwks?: string;
    readonly audiences: readonly string[];
    /** Ingress paths that require a valid token; `*` suffix for a prefix, as in AuthorizationPolicy. */
    readonly protectedPaths: readonly string[];
}

/** HTTPS on the ingress Gateway: a Secret built from secret config, or one that already exists. */
export type GatewayTls =
    | { readonly source: "config"; readonly credentialName: string; readonly certificate: string; readonly privateKey: string; readonly httpsRedirect: boolean }
    | { readonly source: "existing"; readonly credentialName: string; readonly httpsRedirect: boolean };

export interface SecuritySettings {
    readonly mtlsMode: MtlsMode;
    readonly denyByDefault: boolean;
    readonly meshEdges: readonly MeshEdge[];
    readonly jwt?: JwtSettings;
    readonly tls?: GatewayTls;
    readonly podSecurity: PodSecurityLevel;
}

export const SECURITY_DEFAULTS = {
    mtlsMode: "STRICT",
    denyByDefault: true,
    podSecurity: "restricted",
    tlsCredentialName: "",
    httpsRedirect: false,
} as const;

export const SECURITY_KEYS = ["mtlsMode", "denyByDefault", "meshEdges", "jwt", "tlsCertificate", "tlsPrivateKey", "tlsCredentialName", "httpsRedirect", "podSecurity"] as const;
/** Keys whose values must be Pulumi secrets and never appear in errors, outputs or rendered files. */
export const SECRET_KEYS = ["tlsCertificate", "tlsPrivateKey"] as const;

/** The Secret the program creates from `tlsCertificate` / `tlsPrivateKey`, in the gateway namespace. */
export const GATEWAY_TLS_SECRET = "ingress-tls";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
// No . or .. segment: Istio resolves them in every request's path before a policy sees it, so such a path never matches.
const AUTH_PATH = /^(?!.*(?:^|\/)\.{1,2}(?:\/|\*?$))(\*|\/[A-Za-z0-9._~\-/]*\*?|\*[A-Za-z0-9._~\-/]+)$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function stringList(r: Reader, at: string, value: unknown, item: RegExp | readonly string[], allowed: string, example: string): string[] | undefined {
    const ok = (v: unknown) => typeof v === "string" && (item instanceof RegExp ? item.test(v) : item.includes(v));
    if (!Array.isArray(value) || value.length === 0 || !value.every(ok)) {
        r.fail(at, show(value), `must be a non-empty list of ${allowed}`, setPathCommand(`${at}[0]`, example));
        return undefined;
    }
    return value.map(String);
}

function readEdges(r: Reader, services: readonly ServiceSettings[], namespace: string): MeshEdge[] {
    const raw = r.raw("meshEdges");
    if (raw === undefined) return [];
    const parsed = r.json("meshEdges");
    const fix = setPathCommand("meshEdges[0].from", "user-service");
    if (!Array.isArray(parsed)) {
        r.fail("meshEdges", show(raw), "must be a list of { from, to, methods?, paths? }", fix);
        return [];
    }
    const names = services.map((s) => s.name);
    const edges: MeshEdge[] = [];
    parsed.forEach((edge: unknown, i) => {
        const at = `meshEdges[${i}]`;
        if (!r.fields(at, edge, ["from", "to", "methods", "paths"], "{ from, to, methods?, paths? }", fix)) return;
        const before = r.problems.length;
        const { from, to } = edge;
        if ((typeof from === "string" && r.refusedServices.has(from)) || (typeof to === "string" && r.refusedServices.has(to))) return;
        let caller: string | undefined;
        if (typeof from === "string" && names.includes(from)) caller = `${namespace}/${from}`;
        else if (typeof from === "string" && SERVICE_ACCOUNT.test(from)) caller = from;
        else r.fail(`${at}.from`, show(from), `must be a service of the catalogue (${names.join(", ")}) or a namespace/serviceaccount`, setPathCommand(`${at}.from`, names[0]));
        if (typeof to !== "string" || !names.includes(to)) {
            r.fail(`${at}.to`, show(to), `must be a service of the catalogue: ${names.join(", ")}`, setPathCommand(`${at}.to`, names[names.length - 1]));
        }
        const methods = edge.methods === undefined ? METHODS : stringList(r, `${at}.methods`, edge.methods, METHODS, `HTTP methods (${METHODS.join(", ")})`, "GET");
        const paths = edge.paths === undefined ? ["*"] : stringList(r, `${at}.paths`, edge.paths, AUTH_PATH, "paths such as /products or /products/* (a * at one end only, and no . or .. segment, which Istio resolves before matching)", "/products*");
        if (r.problems.length === before && caller !== undefined && typeof to === "string" && methods && paths) {
            edges.push({ from: caller, to, methods, paths });
        }
    });
    return edges;
}

function readJwt(r: Reader): JwtSettings | undefined {
    const fix = setPathCommand("jwt.issuer", "https://issuer.example.com");
    const value = r.object("jwt", "{ issuer, jwksUri | jwks, audiences?, protectedPaths }", fix);
    if (value === undefined || !r.fields("jwt", value, ["issuer", "jwksUri", "jwks", "audiences", "protectedPaths"], "{ issuer, jwksUri | jwks, audiences?, protectedPaths }", fix)) return undefined;
    const before = r.problems.length;
    const issuer = r.stringAt("jwt.issuer", value.issuer, /^\S+$/, "must be the token issuer (the iss claim)", "https://issuer.example.com");
    const { jwksUri, jwks } = value;
    if ((jwksUri === undefined) === (jwks === undefined)) {
        r.fail("jwt", show(value), "must set exactly one of jwksUri (an https URL) or jwks (an inline JWKS document)", setPathCommand("jwt.jwksUri", "https://issuer.example.com/.well-known/jwks.json"));
    }
    if (jwksUri !== undefined) r.stringAt("jwt.jwksUri", jwksUri, /^https:\/\/\S+$/, "must be an https URL", "https://issuer.example.com/.well-known/jwks.json");
    let inline: string | undefined;
    if (jwks !== undefined) {
        // Accept the document as an object (YAML in the stack file) or as a JSON string.
        const text = typeof jwks === "string" ? jwks : JSON.stringify(jwks);
        let doc: unknown;
        try {
            doc = JSON.parse(text);
        } catch {
            doc = undefined;
        }
        if (!isRecord(doc) || !Array.isArray(doc.keys) || doc.keys.length === 0) {
            r.fail("jwt.jwks", show(jwks), 'must be a JWKS document: { "keys": [ ... ] } with at least one key', "pulumi config set --path jwt.jwks \"$(cat jwks.json)\"");
        } else {
            inline = text;
        }
    }
    const audiences = value.audiences === undefined ? [] : stringList(r, "jwt.audiences", value.audiences, /^\S+$/, "audience strings (the aud claim)", "api.example.com");
    const protectedPaths = stringList(r, "jwt.protectedPaths", value.protectedPaths, AUTH_PATH, "ingress paths that need a token, such as /orders* (no . or .. segment, which Istio resolves before matching)", "/orders*");
    if (r.problems.length !== before || issuer === undefined || audiences === undefined || protectedPaths === undefined) return undefined;
    return { issuer, ...(typeof jwksUri === "string" && { jwksUri }), ...(inline !== undefined && { jwks: inline }), audiences, protectedPaths };
}

/** Checks the certificate and key parse, belong together and cover the ingress host. */
function checkTlsPair(r: Reader, certificate: string, privateKey: string, ingressHost: string): boolean {
    let cert: X509Certificate;
    try {
        cert = new X509Certificate(certificate);
    } catch {
        r.fail("tlsCertificate", "[secret]", "must be a PEM certificate (-----BEGIN CERTIFICATE-----), leaf first", "pulumi config set --secret tlsCertificate < tls.crt");
        return false;
    }
    try {
        if (!cert.checkPrivateKey(createPrivateKey(privateKey))) {
            r.fail("tlsPrivateKey", "[secret]", "must be the private key of tlsCertificate; this key belongs to another certificate", "pulumi config set --secret tlsPrivateKey < tls.key");
            return false;
        }
    } catch {
        r.fail("tlsPrivateKey", "[secret]", "must be a PEM private key (-----BEGIN PRIVATE KEY-----)", "pulumi config set --secret tlsPrivateKey < tls.key");
        return false;
    }
    const host = ingressHost.startsWith("*.") ? `probe${ingressHost.slice(1)}` : ingressHost;
    if (ingressHost !== "*" && cert.checkHost(host) === undefined) {
        r.fail("tlsCertificate", "[secret]", `must cover the ingress host ${ingressHost}; it names ${cert.subjectAltName ?? cert.subject}`, "pulumi config set --secret tlsCertificate < tls.crt (a certificate for the ingress host)");
        return false;
    }
    return true;
}

function readTls(r: Reader, ingressHost: string): GatewayTls | undefined {
    const httpsRedirect = r.boolean("httpsRedirect", SECURITY_DEFAULTS.httpsRedirect, "answer plain HTTP with a redirect to HTTPS");
    const certificate = r.raw("tlsCertificate");
    const privateKey = r.raw("tlsPrivateKey");
    const existing = r.pattern("tlsCredentialName", SECURITY_DEFAULTS.tlsCredentialName, /^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be the name of a kubernetes.io/tls Secret in the istio-ingress namespace", "api-example-com-tls");
    for (const key of SECRET_KEYS) {
        if (r.raw(key) !== undefined && !r.isSecret(key)) {
            r.fail(key, "[redacted]", "is stored in plain text; TLS material must be a Pulumi secret", `pulumi config rm ${key} && pulumi config set --secret ${key} < ${key === "tlsCertificate" ? "tls.crt" : "tls.key"}`);
        }
    }
    if ((certificate === undefined) !== (privateKey === undefined)) {
        r.fail(certificate === undefined ? "tlsCertificate" : "tlsPrivateKey", "(unset)", "tlsCertificate and tlsPrivateKey go together", `pulumi config set --secret ${certificate === undefined ? "tlsCertificate < tls.crt" : "tlsPrivateKey < tls.key"}`);
        return undefined;
    }
    if (certificate !== undefined && privateKey !== undefined) {
        if (existing !== "") {
            r.fail("tlsCredentialName", show(existing), "use either tlsCredentialName (an existing Secret) or tlsCertificate/tlsPrivateKey, not both", "pulumi config rm tlsCredentialName");
            return undefined;
        }
        return checkTlsPair(r, certificate, privateKey, ingressHost) ? { source: "config", credentialName: GATEWAY_TLS_SECRET, certificate, privateKey, httpsRedirect } : undefined;
    }
    if (existing !== "") return { source: "existing", credentialName: existing, httpsRedirect };
    if (httpsRedirect) {
        r.fail("httpsRedirect", "true", "needs gateway TLS: set tlsCertificate and tlsPrivateKey, or tlsCredentialName", "pulumi config set --secret tlsCertificate < tls.crt && pulumi config set --secret tlsPrivateKey < tls.key");
    }
    return undefined;
}

export function readSecurity(r: Reader, services: readonly ServiceSettings[], namespace: string, ingressHost: string, production: boolean): SecuritySettings {
    const mtlsMode = r.oneOf("mtlsMode", SECURITY_DEFAULTS.mtlsMode, MTLS_MODES, "mutual TLS between workloads of the app namespace");
    if (production && mtlsMode !== "STRICT") {
        r.fail("mtlsMode", show(mtlsMode), "a production stack requires STRICT mutual TLS", setCommand("mtlsMode", "STRICT"));
    }
    const denyByDefault = r.boolean("denyByDefault", SECURITY_DEFAULTS.denyByDefault, "deny every request in the app namespace that no policy allows");
    if (production && !denyByDefault) {
        r.fail("denyByDefault", "false", "a production stack denies by default", setCommand("denyByDefault", true));
    }
    const podSecurity = r.oneOf("podSecurity", SECURITY_DEFAULTS.podSecurity, POD_SECURITY_LEVELS, "Pod Security level enforced on the app namespace; baseline and restricted install Istio's CNI chart");
    if (production && podSecurity === "privileged") {
        r.fail("podSecurity", show(podSecurity), "a production stack enforces baseline or restricted Pod Security on the app namespace", setCommand("podSecurity", "restricted"));
    }
    const jwt = readJwt(r);
    const tls = readTls(r, ingressHost);
    if (production && tls === undefined && !r.problems.some((p) => p.key.startsWith("tls"))) {
        r.fail("tlsCredentialName", show(""), "a production stack serves HTTPS at the ingress: name an existing kubernetes.io/tls Secret in istio-ingress, or set tlsCertificate and tlsPrivateKey", setCommand("tlsCredentialName", "api-example-com-tls"));
    }
    return {
        mtlsMode,
        denyByDefault,
        meshEdges: readEdges(r, services, namespace),
        ...(jwt && { jwt }),
        ...(tls && { tls }),
        podSecurity,
    };
}

