// Names: the one place that says how every generated object is named, and the checks that each name is one
// Kubernetes accepts, once per kind and namespace; DNS host names; and OCI image references. Pure.
import { createHash } from "crypto";

/** A DNS-1123 label: what Kubernetes requires of most object names (Services, namespaces, labels' values). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_LABEL = 63;

export const deploymentName = (app: string, version: string): string => `${app}-${version}`;
/** The edge route of an app: its ingress VirtualService, or its edge HTTPRoute. */
export const ingressRouteName = (app: string): string => `${app}-ingress`;
/** A version's own Service, which an HTTPRoute's backendRef names where a VirtualService names a subset (same as its Deployment's name). */
export const versionServiceName = (app: string, version: string): string => `${app}-${version}`;
export const rateLimitFilterName = (app: string): string => `${app}-local-ratelimit`;
export const ingressPolicyName = (app: string): string => `${app}-from-ingress`;
export const meshPolicyName = (app: string): string => `${app}-from-mesh`;
/** The name of a policy's counterpart at the waypoint (targetRefs): both live together in dataPlane ambientReady. */
export const waypointPolicyName = (policyName: string): string => `${policyName}-at-waypoint`;
/** The name of the L4 allow for an app's declared callers that reach it straight from a sidecar, in ambientReady. */
export const directCallersPolicyName = (app: string): string => `${app}-from-sidecars`;
export const serviceEntryName = (host: string): string => hostSlug(host);
export const egressVirtualServiceName = (host: string): string => `via-egress-${hostSlug(host)}`;

/** The longest prefix put before a host slug (`via-egress-`), so every name built on a slug fits a label. */
const SLUG_ROOM = MAX_LABEL - "via-egress-".length;

/**
 * A label for an external host: `api.github.com` -> `api-github-com`. Dots become dashes, which is one-to-one
 * only for hosts without dashes of their own (`a-b.com` and `a.b-com` would meet), so a host with a dash, or
 * one too long for a label, gets a hash of the whole host after a readable, shortened part.
 */
export function hostSlug(host: string): string {
    const readable = host.replace(/^\*\./, "wildcard.").replace(/\./g, "-");
    if (!host.includes("-") && readable.length <= SLUG_ROOM) return readable;
    const hash = createHash("sha256").update(host).digest("hex").slice(0, 8);
    return `${readable.slice(0, SLUG_ROOM - hash.length - 1).replace(/-+$/, "")}-${hash}`;
}

/** Why `host` is not a DNS name (253 characters, labels of 1 to 63), or undefined if it is. */
export function dnsNameProblem(host: string): string | undefined {
    const name = host.startsWith("*.") ? host.slice(2) : host;
    if (host.length > 253) return `is ${host.length} characters; a DNS name has at most 253`;
    const long = name.split(".").find((label) => label.length > MAX_LABEL);
    if (long !== undefined) return `has a label of ${long.length} characters; DNS allows at most 63 between dots`;
    return undefined;
}

/** An OCI image reference, as the distribution spec's grammar reads it. */
export interface ImageReference {
    readonly name: string;
    readonly tag?: string;
    readonly digest?: string;
}

// The grammar of distribution's reference package (the one container runtimes use), written out.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const MAX_IMAGE_NAME = 255;

/** The reference's parts, or why it is not one. */
export function parseImage(reference: string): ImageReference | string {
    if (reference.length > MAX_IMAGE_NAME + 1 + 128 + 1 + 200) return `is ${reference.length} characters, longer than any image reference`;
    const match = REFERENCE.exec(reference);
    if (match === null) return "is not an image reference (registry/name:tag or name@sha256:digest, lowercase name)";
    const [, name, tag, digest] = match;
    if (name.length > MAX_IMAGE_NAME) return `has a name of ${name.length} characters; at most ${MAX_IMAGE_NAME}`;
    // Optional groups that did not take part are undefined; a tag or digest that did is never empty.
    return { name, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The digests container runtimes verify (go-digest): each algorithm's exact length, in lowercase hex. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

/** Why a digest the grammar accepts is one a runtime would refuse, or undefined. */
function digestProblem(digest: string): string | undefined {
    const [algorithm, hex] = digest.split(":");
    const length = Object.hasOwn(DIGEST_HEX_LENGTH, algorithm) ? DIGEST_HEX_LENGTH[algorithm] : undefined;
    if (length === undefined) return `has a ${algorithm} digest, and container runtimes verify only ${Object.keys(DIGEST_HEX_LENGTH).join(", ")}`;
    if (!/^[a-f0-9]+$/.test(hex)) return `has a ${algorithm} digest with uppercase hex, and a digest is lowercase hex`;
    if (hex.length !== length) return `has a ${algorithm} digest of ${hex.length} hex digits, and a ${algorithm} digest has ${length} (a cut-off digest?)`;
    return undefined;
}

/** Why `reference` is no image this program runs (a pinned tag or digest is required), or undefined. */
export function imageProblem(reference: string): string | undefined {
    const parsed = parseImage(reference);
    if (typeof parsed === "string") return parsed;
    const digest = parsed.digest === undefined ? undefined : digestProblem(parsed.digest);
    if (digest !== undefined) return digest;
    return parsed.tag === undefined && parsed.digest === undefined ? "pins no tag or digest (an implicit latest)" : undefined;
}

/** hashicorp/http-echo, the labs' image: it takes its answer and port as flags. */
export function isHttpEcho(reference: string): boolean {
    const parsed = parseImage(reference);
    return typeof parsed !== "string" && /^(docker\.io\/)?hashicorp\/http-echo$/.test(parsed.name);
}

/** One object the program will create, and the config key its name comes from. */
export interface GeneratedName {
    readonly kind: string;
    readonly namespace: string;
    readonly name: string;
    /** The config key (or path) whose value the name is made of, and that value as an error shows it. */
    readonly from: string;
    readonly value: string;
}

/** The generated names that are not DNS-1123 labels, and the later of any two that are the same. */
export function nameProblems(names: readonly GeneratedName[]): { readonly name: GeneratedName; readonly problem: string }[] {
    const problems: { name: GeneratedName; problem: string }[] = [];
    const seen = new Map<string, GeneratedName>();
    for (const n of names) {
        if (n.name.length > MAX_LABEL || !DNS_LABEL.test(n.name)) {
            problems.push({ name: n, problem: `makes the ${n.kind} name ${JSON.stringify(n.name)}, ${n.name.length > MAX_LABEL ? `${n.name.length} characters; Kubernetes allows at most ${MAX_LABEL}` : "which is not a DNS label"}` });
            continue;
        }
        const key = `${n.kind}/${n.namespace}/${n.name}`;
        const first = seen.get(key);
        if (first !== undefined && first.from !== n.from) {
            problems.push({ name: n, problem: `makes the ${n.kind} name ${JSON.stringify(n.name)} in ${n.namespace}, which ${first.from} makes too` });
        }
        seen.set(key, first ?? n);
    }
    return problems;
}
