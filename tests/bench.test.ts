import { strict as assert } from "assert";
import { benchRow, formatTable, replay, syntheticServices, TARGET_RATIO } from "../scripts/bench";
import { runUnderMocks } from "../scripts/mock-program";
import { run } from "./harness";

describe("benchmark (npm run bench)", () => {
    it("synthesises a catalogue of each release strategy", () => {
        const services = syntheticServices(6);
        assert.deepEqual(Object.values(services).map((s) => s.release), ["canary", "blueGreen", "single", "canary", "blueGreen", "single"]);
        assert.equal(Object.keys(services)[5], "svc-0005");
    });

    it("replays exactly what the program registers: the same resources, inputs, parents and dependencies", async () => {
        const program = await run("prod");
        const replayed = await runUnderMocks("prod", {}, [], () => {
            replay(program.resources);
            return {};
        });
        const view = (r: (typeof program.resources)[number]) => [r.type, r.name, r.parent, r.dependsOn, r.custom ? [r.inputs, r.registration] : {}];
        assert.deepEqual(replayed.resources.map(view), program.resources.map(view));
    });

    it("measures the program and its replay at the same resource count, each in its own process", () => {
        const row = benchRow(1);
        assert.equal(row.services, 1);
        assert.ok(row.program.resources >= 30 && row.program.seconds > 0 && row.program.peakMb > 50, JSON.stringify(row.program));
        assert.equal(row.replay.resources, row.program.resources);
        assert.ok(row.replay.seconds > 0 && row.replay.peakMb > 50, JSON.stringify(row.replay));
        const [header, line, note] = formatTable([row]).split("\n");
        assert.match(header, /^SERVICES {2}RESOURCES {2}SECONDS {2}PEAK MB {2}REPLAY: SECONDS {2}PEAK MB {2}RATIO: TIME {2}MEMORY$/);
        assert.equal(line.length, header.length);
        const cells = line.trim().split(/\s+/);
        assert.deepEqual(cells.slice(0, 2), ["1", String(row.program.resources)]);
        assert.equal(cells[6], `${(row.program.seconds / row.replay.seconds).toFixed(2)}x`);
        assert.match(note, new RegExp(`Target: ${TARGET_RATIO.toFixed(2)}x`));
    });
});
