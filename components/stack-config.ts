import * as pulumi from "@pulumi/pulumi";
import { ConfigSource } from "./config-reader";

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
