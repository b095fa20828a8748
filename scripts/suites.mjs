// Runs the mocha suite and the rollout scenarios side by side, under the one c8 that `npm test` starts: the
// scenarios mostly wait (on Prometheus and their intervals), and in a process of their own they use the
// second core rather than the suite's. Prints the suite's output, then the scenarios', and fails if either fails.
import { spawn } from "child_process";

function mocha(args) {
    return new Promise((resolve) => {
        const child = spawn("mocha", args, { env: process.env });
        const output = [];
        child.on("error", (error) => resolve({ code: 1, output: String(error) }));
        child.stdout.on("data", (chunk) => output.push(chunk));
        child.stderr.on("data", (chunk) => output.push(chunk));
        child.on("close", (code) => resolve({ code: code ?? 1, output: Buffer.concat(output).toString() }));
    });
}

const runs = await Promise.all([mocha([]), mocha(["--no-config", "--timeout", "60000", "bin/tests/scenarios/*.test.js"])]);
for (const { output } of runs) process.stdout.write(output);
process.exit(runs.some((r) => r.code !== 0) ? 1 : 0);
