// Property: any config is either refused with the documented error format (key, value, allowed, fix), before
// anything is registered, or rendered into objects that pass their schemas, with names Kubernetes accepts
// (DNS labels of at most 63 characters) and no two alike per kind and namespace.
import { strict as assert } from "assert";
import fc from "fast-check";
import { ConfigError } from "../components/config/config-reader";
import { DNS_LABEL } from "../components/config/names";
import { ProgramError, runProgram } from "../lib/mock-program";
import { validateObjects } from "../lib/validate";
import { objects } from "./harness";

/** Mostly what is expected, sometimes what a person might mistype or an attacker might try. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 9 }, { arbitrary: bad, weight: 1 });

const goodName = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/);
const nameLike = mostly(goodName, fc.constantFrom("__proto__", "constructor", "toString", "Web", "a_b", "", "b-c", "a-b", "x".repeat(70)));
const hostLike = mostly(fc.domain(), fc.constantFrom("a-b.com", "a.b-com", "*.example.com", "localhost", `${"h".repeat(64)}.com`, "UPPER.com", "x..y.com"));
const VERSION_COUNT = { canary: 2, blueGreen: 2, single: 1, rolling: 2 } as const;

/** One service: its path and versions usually fit its release strategy. */
const serviceFor = (name: string) =>
    fc.constantFrom("canary", "blueGreen", "single", "canary", "rolling").chain((release) =>
        fc.record({
            path: mostly(fc.constant(`/${name}`), fc.constantFrom("/", "/a", "relative", `/${name}/x`)),
            release: fc.constant(release),
            versions: mostly(fc.uniqueArray(nameLike, { minLength: VERSION_COUNT[release], maxLength: VERSION_COUNT[release] }), fc.array(nameLike, { maxLength: 3 })),
        }),
    );

const servicesArbitrary = fc
    .uniqueArray(nameLike, { minLength: 1, maxLength: 3 })
    .chain((names) => fc.tuple(...names.map((name) => serviceFor(name).map((service) => [name, service] as const))))
    .map((entries) => Object.fromEntries(entries));

const configArbitrary = fc.record(
    {
        canaryWeight: mostly(fc.integer({ min: 0, max: 100 }), fc.integer({ min: -10, max: 110 })).map(String),
        activeColor: mostly(fc.constantFrom("blue", "green"), fc.constant("purple")),
        image: mostly(fc.constantFrom("hashicorp/http-echo:1.0.0", `ghcr.io/acme/user@sha256:${"a".repeat(64)}`, "localhost:5000/app:v1"), fc.constantFrom("nginx", "nginx:1.0:2.0")),
        services: servicesArbitrary,
        egressHosts: fc.array(fc.record({ host: hostLike, ports: fc.constant([{ number: 443, protocol: "TLS" }]) }), { maxLength: 3 }),
        previewHeader: mostly(fc.constantFrom("", "x-preview"), fc.constantFrom("X-Preview", "__proto__")),
    },
    { requiredKeys: ["services"] },
);

describe("generated configs (fast-check)", () => {
    it("are refused with the error format before anything is registered, or render valid, uniquely named objects", async () => {
        let accepted = 0;
        await fc.assert(
            fc.asyncProperty(configArbitrary, async (config) => {
                // No routes, edges or rate limits of dev's own catalogue: the generated services replace it.
                const overrides = { ...config, routes: {}, meshEdges: [], observability: false };
                let result;
                try {
                    result = await runProgram("dev", overrides);
                } catch (error) {
                    assert.ok(error instanceof ProgramError && error.cause instanceof ConfigError, String(error));
                    assert.deepEqual(error.registered, []);
                    for (const p of error.cause.problems) {
                        assert.ok(p.key.length > 0 && p.value.length > 0 && p.allowed.length > 0 && p.fix.length > 0, JSON.stringify(p));
                    }
                    return;
                }
                accepted++;
                const all = objects(result);
                await validateObjects(all);
                const seen = new Set<string>();
                for (const o of all) {
                    assert.ok(o.metadata.name.length <= 63 && DNS_LABEL.test(o.metadata.name), `${o.kind} ${o.metadata.name}`);
                    const key = `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
                    assert.ok(!seen.has(key), `two ${key}`);
                    seen.add(key);
                }
            }),
            { numRuns: 20, seed: 20261122 },
        );
        // The property says little if nothing gets through: the generator must produce accepted configs too.
        assert.ok(accepted >= 5, `only ${accepted} configs accepted`);
    });
});
