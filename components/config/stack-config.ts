import * as pulumi from "@pulumi/pulumi";
import { ConfigSource } from "./config-reader";
import { SECRET_KEYS } from "./security-config";

/**
 * The running stack's config as a ConfigSource. Values are read raw (secrets too, so they can be validated
 * before anything is created); the program wraps secret values with pulumi.secret where it uses them.
 */
export function stackConfigSource(): ConfigSource {
    const prefix = `${pulumi.getProject()}:`;
    // The SDK knows which keys were set with --secret but does not type the function that says so.
    const isConfigSecret: unknown = Reflect.get(pulumi.runtime, "isConfigSecret");
    return {
        get: (key) => pulumi.runtime.getConfig(prefix + key),
        keys: () => Object.keys(pulumi.runtime.allConfig()).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)),
        isSecret: (key) => typeof isConfigSecret === "function" && Reflect.apply(isConfigSecret, undefined, [prefix + key]) === true,
    };
}

/** The parts of a resource's inputs that carry config values; names and kinds stay readable in every diff. */
const CONFIG_DERIVED_INPUTS = new Set(["spec", "values", "data", "stringData"]);

/**
 * Keys whose secrets never reach an object or output: the TLS keys (their own Secret), and `rollout`, whose
 * secrets are URLs only the rollout command calls (webhooks, notifiers); the program reads only its interval.
 * A notifier's URL set with --secret leaves every diff and output readable.
 */
const SECRETS_KEPT_OUT_OF_OBJECTS: readonly string[] = [...SECRET_KEYS, "rollout"];

/**
 * Keeps every key set with `--secret` secret. Any secret key but those above may reach any object or output, so
 * all of them are stored as Pulumi secrets: encrypted in state, masked in previews and outputs. Returns how to
 * export an output under that rule.
 */
export function keepConfigSecretsSecret(source: ConfigSource): <T>(value: T) => pulumi.Output<pulumi.Unwrap<T>> {
    const secretKeys = source.keys().filter((key) => source.isSecret(key) && !SECRETS_KEPT_OUT_OF_OBJECTS.includes(key));
    if (secretKeys.length === 0) return (value) => pulumi.output(value);
    pulumi.runtime.registerStackTransformation((args) => {
        if (!(args.resource instanceof pulumi.CustomResource)) return undefined;
        const props = Object.fromEntries(Object.entries(args.props).map(([name, value]) => [name, CONFIG_DERIVED_INPUTS.has(name) ? pulumi.secret(value) : value]));
        return { props, opts: args.opts };
    });
    return (value) => pulumi.secret(value);
}
