// The decision log's schema (rollout/decision-log.schema.json), compiled once with its formats, for the tests that
// check a log's lines: every line the driver writes, in a unit run and against the real Prometheus.
import * as fs from "fs";
import * as path from "path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { PROJECT_ROOT } from "../../lib/mock-program";

export const DECISION_LOG_SCHEMA = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "rollout", "decision-log.schema.json"), "utf8")) as Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv);
const validate = ajv.compile(DECISION_LOG_SCHEMA);

/** Each line of a log that does not follow the schema, with why; none for a log that does. */
export function decisionLogProblems(file: string): string[] {
    return fs
        .readFileSync(file, "utf8")
        .trimEnd()
        .split("\n")
        .flatMap((line, i) => (validate(JSON.parse(line)) ? [] : [`line ${i + 1}: ${ajv.errorsText(validate.errors)}: ${line.slice(0, 300)}`]));
}
