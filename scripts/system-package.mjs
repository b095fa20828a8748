// A program the suite needs from the system (Prometheus, Chromium): found on PATH (or named by an environment
// variable), or installed from Debian's packages on a fresh Debian or Ubuntu machine (apt-get, as root or through
// sudo); elsewhere the suite stops with the install line for that system.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

function osRelease() {
    try {
        return Object.fromEntries(fs.readFileSync("/etc/os-release", "utf8").split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^"|"$/g, "")]));
    } catch {
        return {};
    }
}

/**
 * The path of the program: $`envVar`, else the first of `binaries` on PATH, else installed from Debian's
 * `debianPackage` on a system whose family (ID and ID_LIKE) `installOn` matches (default: Debian and Ubuntu);
 * throws with the install line `installLine(family)` gives otherwise.
 */
export function findOrInstall({ envVar, binaries, debianPackage, purpose, installLine, log, installOn = /debian|ubuntu/ }) {
    const onPath = () => [process.env[envVar], ...binaries.flatMap((name) => (process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, name)))].find((file) => file && fs.existsSync(file));
    const found = onPath();
    if (found) return found;
    const release = osRelease();
    const family = `${release.ID ?? ""} ${release.ID_LIKE ?? ""}`;
    const root = process.getuid?.() === 0;
    const sudo = !root && spawnSync("sudo", ["-n", "true"]).status === 0;
    if (installOn.test(family) && (root || sudo)) {
        log(`${binaries[0]}: not found; installing Debian's package (apt-get install ${debianPackage}) for ${purpose}\n`);
        const run = (args) => execFileSync(root ? args[0] : "sudo", root ? args.slice(1) : ["-n", ...args], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
        run(["apt-get", "update", "-qq"]);
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", debianPackage]);
        const installed = onPath();
        if (installed) return installed;
    }
    throw new Error(`${purpose} need${purpose.endsWith("s") ? "" : "s"} ${binaries[0]}, which is not installed and this suite cannot install it here. Install it (or set ${envVar}), then run npm test again:\n  ${installLine(family)}`);
}
