"""Make sure a Chromium for the browser tests is on this machine (``make test`` runs this).

Playwright's own browser download reaches a CDN this project cannot rely on, so the tests drive
the system's Chromium (Debian's ``chromium`` package) through ``executable_path``. Quick when it
is there; installs it with apt-get when missing and root (or password-less sudo) is available;
otherwise exits 1 saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "The browser tests need Chromium. Install it with `sudo apt-get install -y chromium` "
    "(Debian/Ubuntu), or point CONVEYOR_CHROMIUM at a Chromium or Chrome binary."
)


def find_chromium() -> str | None:
    """The Chromium binary to use: $CONVEYOR_CHROMIUM, /usr/bin/chromium, or one on PATH."""
    chosen = os.environ.get("CONVEYOR_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt_prefix() -> list[str] | None:
    """How to run apt-get as root here, or None when that needs a password."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def ensure_chromium() -> str:
    """The Chromium binary, installed with apt-get if it is missing and that is possible."""
    found = find_chromium()
    if found:
        return found
    prefix = _apt_prefix()
    if prefix is None:
        raise SystemExit(f"Chromium not found. {INSTALL_HINT}")
    print("Chromium not found: installing Debian's chromium package with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, check=False)
    done = subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "chromium"], env=env)
    found = find_chromium()
    if done.returncode != 0 or found is None:
        raise SystemExit(f"Installing chromium with apt-get failed. {INSTALL_HINT}")
    return found


def main() -> None:
    path = ensure_chromium()
    if "-q" not in sys.argv[1:]:
        print(f"Chromium for the browser tests: {path}")


if __name__ == "__main__":
    main()
