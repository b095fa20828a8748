// The real Prometheus the rollout scenarios query. `npm test` finds the binary or installs it (the whole set-up
// on a fresh Debian or Ubuntu machine: apt-get, as root or through sudo; elsewhere it stops with the install
// line for that system; $PROMETHEUS_BIN, when set, names the binary), then starts it on a loopback port.
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { findOrInstall } from "./system-package.mjs";

/** The line that installs Prometheus on a system of this family, for the message when the suite cannot do it itself. */
function installLine(family) {
    if (process.platform === "darwin") return "brew install prometheus";
    if (/debian|ubuntu/.test(family)) return "sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus";
    if (/fedora|rhel|centos/.test(family)) return "sudo dnf install -y golang-github-prometheus";
    if (/alpine/.test(family)) return "sudo apk add prometheus";
    if (/arch/.test(family)) return "sudo pacman -S prometheus";
    return "download it from https://prometheus.io/download/ and put it on PATH (or set PROMETHEUS_BIN)";
}

/** The path of a prometheus binary ($PROMETHEUS_BIN, PATH, or Debian's package installed). */
export function findPrometheus(log) {
    return findOrInstall({ envVar: "PROMETHEUS_BIN", binaries: ["prometheus"], debianPackage: "prometheus", purpose: "The rollout scenarios", installLine, log });
}

/**
 * Starts Prometheus on a loopback port, scraping `target` (host:port, where the scenarios' exporter will
 * listen) twice a second. Started before anything else, as Prometheus first scrapes a target about five
 * seconds after it starts; the scenarios wait for their own series.
 */
export async function startPrometheus(binary, target) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-prometheus-"));
    const config = path.join(dir, "prometheus.yml");
    fs.writeFileSync(config, `global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n  - job_name: mesh\n    static_configs:\n      - targets: ["${target}"]\n`);
    const port = await freePort();
    const child = spawn(binary, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"], { stdio: "ignore" });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    return {
        url: `http://127.0.0.1:${port}`,
        stop: async () => {
            if (child.exitCode === null) {
                child.kill("SIGTERM");
                await exited;
            }
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** A loopback port free now. */
export function freePort() {
    return new Promise((resolve) => {
        const probe = net.createServer();
        probe.listen(0, "127.0.0.1", () => {
            const { port } = probe.address();
            probe.close(() => resolve(port));
        });
    });
}
