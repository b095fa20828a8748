// The decision log: one JSON line per thing a rollout does, in `.rollout/<stack>/<rollout id>.jsonl` beside the
// stack file: its start (who, what, the thresholds), each update, each interval's decision (every query as sent
// and its answer, each version's counts, each test's evidence against its bounds, the hard limits' verdict), each
// operator's action, and its outcome. Its lines follow decision-log.schema.json, field by field in
// docs/watching.md; `npm run rollout:report` draws a log.
import * as fs from "fs";
import * as path from "path";
import type { AnalysisSettings } from "../components/config/rollout-config";
import type { Action, ServiceStatus } from "./control";
import type { MetricReading } from "./metrics";
import type { QueryTrace } from "./prometheus";

/** Each version's share of a service's live requests (percent), and the share mirrored to the candidate. */
export interface ServiceWeights {
    readonly stable: number;
    readonly candidate: number;
    readonly mirrored?: number;
}

interface EntryBase {
    readonly at: string;
    /** The rollout's id: the log file's name. */
    readonly rollout: string;
    readonly stack: string;
    /** Where the rollout stands: "step 2/4 (10%)", "after the switch", "promotion". */
    readonly phase: string;
    /** The step (1-based); steps + 1 from the promotion on. */
    readonly step: number;
    readonly weights: Readonly<Record<string, ServiceWeights>>;
}

export interface StartEntry extends EntryBase {
    readonly event: "start";
    readonly actor: string;
    readonly action: Action["action"];
    readonly reason: string;
    readonly targets: readonly { readonly service: string; readonly release: "canary" | "blueGreen"; readonly stable: string; readonly candidate: string }[];
    readonly steps: readonly number[];
    readonly intervalMs: number;
    readonly analysis: AnalysisSettings;
}

export interface UpdateEntry extends EntryBase {
    readonly event: "update";
    readonly update: string;
    readonly objects: readonly string[];
}

export interface DecisionEntry extends EntryBase {
    readonly event: "decision";
    readonly decision: "advance" | "hold" | "rollback";
    readonly reason: string;
    readonly services: readonly (ServiceStatus & { readonly queries: readonly QueryTrace[]; readonly metrics?: readonly MetricReading[] })[];
}

export interface ActionEntry extends EntryBase {
    readonly event: "action";
    readonly actor: string;
    readonly action: Action["action"];
    readonly full?: boolean;
    readonly reason: string;
    readonly result: string;
}

export interface OutcomeEntry extends EntryBase {
    readonly event: "outcome";
    readonly outcome: "promoted" | "rolledBack" | "held" | "stopped";
    readonly reason: string;
}

export type LogEntry = StartEntry | UpdateEntry | DecisionEntry | ActionEntry | OutcomeEntry;

/** A log entry as the driver gives it (`at` on its clock): the rollout's id and stack filled in by the log. */
export type NewEntry = LogEntry extends infer E ? (E extends LogEntry ? Omit<E, "rollout" | "stack"> : never) : never;

export const logFile = (dir: string, stack: string, rollout: string) => path.join(dir, ".rollout", stack, `${rollout}.jsonl`);

/** A sortable id for a new rollout: when it started, and a random part. */
export const rolloutId = (nowMs: number, random: string) => `${new Date(nowMs).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${random}`;

/** Appends entries to one rollout's log; a line it cannot write is reported once, and the rollout goes on. */
export class DecisionLog {
    private failed = false;

    constructor(
        readonly file: string,
        private readonly rollout: string,
        private readonly stack: string,
        private readonly warn: (line: string) => void,
    ) {}

    append(entry: NewEntry): void {
        const { at, ...rest } = entry;
        const line = JSON.stringify({ at, rollout: this.rollout, stack: this.stack, ...rest }, (_, value: unknown) => (value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : value));
        try {
            fs.mkdirSync(path.dirname(this.file), { recursive: true });
            fs.appendFileSync(this.file, `${line}\n`);
        } catch (error) {
            if (!this.failed) this.warn(`The decision log ${this.file} could not be written (${error instanceof Error ? error.message : String(error)}); the rollout goes on`);
            this.failed = true;
        }
    }
}
