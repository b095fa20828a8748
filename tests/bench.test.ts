import { strict as assert } from "assert";
import { benchRow, formatTable, syntheticServices } from "../scripts/bench";

describe("benchmark (npm run bench)", () => {
    it("synthesises a catalogue of each release strategy", () => {
        const services = syntheticServices(6);
        assert.deepEqual(Object.values(services).map((s) => s.release), ["canary", "blueGreen", "single", "canary", "blueGreen", "single"]);
        assert.equal(Object.keys(services)[5], "svc-0005");
    });

    it("measures the program and the SDK alone at the same resource count, each in its own process", () => {
        const row = benchRow(3);
        assert.equal(row.services, 3);
        assert.ok(row.program.resources > 30 && row.program.seconds > 0 && row.program.peakMb > 50, JSON.stringify(row.program));
        assert.equal(row.sdkAlone.resources, row.program.resources);
        assert.ok(row.sdkAlone.seconds > 0 && row.sdkAlone.peakMb > 50, JSON.stringify(row.sdkAlone));
        const [header, line] = formatTable([row]).split("\n");
        assert.match(header, /^SERVICES {2}RESOURCES {2}SECONDS {2}PEAK MB {2}MS\/SERVICE {2}SDK ALONE: SECONDS {2}PEAK MB$/);
        assert.equal(line.length, header.length);
        assert.deepEqual(line.trim().split(/\s+/).slice(0, 2), ["3", String(row.program.resources)]);
    });
});
