// The real browser the report test loads `npm run rollout:report`'s HTML in: Debian's headless Chromium, found
// ($CHROMIUM_BIN, PATH) or installed by npm test on a fresh Debian or Ubuntu machine.
import { findOrInstall } from "./system-package.mjs";

function installLine(family) {
    if (process.platform === "darwin") return "brew install --cask chromium";
    if (/debian/.test(family)) return "sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium";
    if (/ubuntu/.test(family)) return "install Google Chrome or Chromium from a .deb (Ubuntu's chromium package is a snap), then set CHROMIUM_BIN";
    if (/fedora|rhel|centos/.test(family)) return "sudo dnf install -y chromium";
    if (/alpine/.test(family)) return "sudo apk add chromium";
    if (/arch/.test(family)) return "sudo pacman -S chromium";
    return "install Chromium or Google Chrome and set CHROMIUM_BIN to its binary";
}

/** The path of a Chromium (or Chrome) binary. */
export function findChromium(log) {
    // Debian's own chromium only: Ubuntu's (ID_LIKE debian) is a snap, which does not run in containers.
    return findOrInstall({ envVar: "CHROMIUM_BIN", binaries: ["chromium", "chromium-browser", "google-chrome"], debianPackage: "chromium", purpose: "The report's browser test", installLine, log, installOn: /^debian\b/ });
}
