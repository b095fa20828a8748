import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BenchRow, formatTable, measureInChild, measureProgram, replay, syntheticServices, TARGET_RATIO } from "../scripts/bench";
import { runUnderMocks } from "../lib/mock-program";
import { run } from "./harness";

describe("benchmark (npm run bench)", () => {
    it("synthesises a catalogue of each release strategy", () => {
        const services = syntheticServices(6);
        assert.deepEqual(Object.values(services).map((s) => s.release), ["canary", "blueGreen", "single", "canary", "blueGreen", "single"]);
        assert.equal(Object.keys(services)[5], "svc-0005");
    });

    it("replays exactly what the program registers: the same resources, inputs, parents and dependencies", async () => {
        const program = await run("prod");
        const replayed = await runUnderMocks("prod", {}, [], {}, () => {
            replay(program.resources);
            return {};
        });
        const view = (r: (typeof program.resources)[number]) => [r.type, r.name, r.parent, r.dependsOn, r.custom ? [r.inputs, r.registration] : {}];
        assert.deepEqual(replayed.resources.map(view), program.resources.map(view));
    });

    it("measures a replay in its own process from the program's registration log, and tabulates the ratios", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-test-"));
        try {
            const log = path.join(dir, "registrations.json");
            const program = await measureProgram(1, log);
            // The replay runs as npm run bench runs it: a fresh process reading the log the program wrote.
            const replayed = measureInChild("replay", "", log);
            assert.ok(program.resources >= 30 && program.seconds > 0 && program.peakMb > 50, JSON.stringify(program));
            assert.equal(replayed.resources, program.resources);
            assert.ok(replayed.seconds > 0 && replayed.peakMb > 50, JSON.stringify(replayed));
            checkTable({ services: 1, program, replay: replayed });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

/** The table has a row per size with its ratios, and says the target. */
function checkTable(row: BenchRow): void {
    const [header, line, note] = formatTable([row]).split("\n");
    assert.match(header, /^SERVICES {2}RESOURCES {2}SECONDS {2}PEAK MB {2}REPLAY: SECONDS {2}PEAK MB {2}RATIO: TIME {2}MEMORY$/);
    assert.equal(line.length, header.length);
    const cells = line.trim().split(/\s+/);
    assert.deepEqual(cells.slice(0, 2), [String(row.services), String(row.program.resources)]);
    assert.equal(cells[6], `${(row.program.seconds / row.replay.seconds).toFixed(2)}x`);
    assert.match(note, new RegExp(`Target: ${TARGET_RATIO.toFixed(2)}x`));
}
