import { strict as assert } from "assert";
import { formatTable, measureInChild, syntheticServices } from "../scripts/bench";

describe("benchmark (npm run bench)", () => {
    it("synthesises a catalogue of each release strategy", () => {
        const services = syntheticServices(6);
        assert.deepEqual(Object.values(services).map((s) => s.release), ["canary", "blueGreen", "single", "canary", "blueGreen", "single"]);
        assert.equal(Object.keys(services)[5], "svc-0005");
    });

    it("measures a size in its own process and prints a row per size", () => {
        const row = measureInChild(3);
        assert.equal(row.services, 3);
        assert.ok(row.resources > 30 && row.seconds > 0 && row.peakMb > 50, JSON.stringify(row));
        assert.match(formatTable([row]), /^SERVICES {2}RESOURCES {2}SECONDS {2}PEAK MB {2}MS\/SERVICE\n {7}3 {2}/);
    });
});
