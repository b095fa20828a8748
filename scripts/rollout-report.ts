// `npm run rollout:report -- <decision log> [--out FILE] [--markdown]`: a rollout's decision log drawn as one
// self-contained HTML page, and (--markdown) summed up in Markdown on stdout, for $GITHUB_STEP_SUMMARY or a
// pull request's comment.
import * as fs from "fs";
import * as path from "path";
import { ArgvReader, UsageError } from "../lib/cli";
import { readDecisionLog, reportMarkdown, rolloutReport, writeReportPage } from "../rollout/report";

const USAGE = `Usage: npm run rollout:report -- <decision log> [--out FILE] [--markdown]

  <decision log>  a rollout's .rollout/<stack>/<rollout id>.jsonl (the command prints its path)
  --out FILE      where to write the HTML page (default: the log's path, .html for .jsonl)
  --markdown      also print the summary in Markdown (for $GITHUB_STEP_SUMMARY or a PR comment)
  --help          show this help`;

export interface ReportOptions {
    readonly log: string;
    readonly out: string;
    readonly markdown: boolean;
}

export function parseReportArgs(argv: readonly string[]): ReportOptions | "help" {
    const args = new ArgvReader(argv, USAGE);
    let log: string | undefined;
    let out: string | undefined;
    let markdown = false;
    for (let arg = args.next(); arg !== undefined; arg = args.next()) {
        if (arg === "--help" || arg === "-h") return "help";
        else if (arg === "--out") out = path.resolve(args.value(arg));
        else if (arg === "--markdown") markdown = true;
        else if (arg.startsWith("-") || log !== undefined) throw args.unknown(arg);
        else log = path.resolve(arg);
    }
    if (log === undefined) throw args.error("the decision log is required. Fix: npm run rollout:report -- .rollout/dev/<rollout id>.jsonl (npm run rollout prints its path)");
    if (!fs.existsSync(log)) throw args.error(`${JSON.stringify(log)}: no such file. Fix: name a log the rollout wrote (ls .rollout/*/)`);
    return { log, out: out ?? log.replace(/(\.jsonl)?$/, ".html"), markdown };
}

export function main(argv: readonly string[], out: (line: string) => void, err: (line: string) => void): number {
    try {
        const options = parseReportArgs(argv);
        if (options === "help") {
            out(USAGE);
            return 0;
        }
        const report = rolloutReport(readDecisionLog(options.log));
        writeReportPage(report, options.out);
        if (options.markdown) out(reportMarkdown(report, path.relative(process.cwd(), options.out)));
        else out(`Wrote ${path.relative(process.cwd(), options.out)}`);
        return 0;
    } catch (error) {
        err(error instanceof UsageError || error instanceof Error ? error.message : String(error));
        return 2;
    }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2), console.log, console.error);
