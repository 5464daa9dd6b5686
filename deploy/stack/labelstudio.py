"""Label Studio (PyPI ``label-studio``), the labeling tool Conveyor drives as a vendor.

Installed into its own virtualenv, ``.stack/label-studio/venv`` (its pins clash with the
project's: never into .venv), at the version pinned in versions.env; a marker file in that venv
records the version, so a later ``up`` installs nothing. Data (sqlite database, uploads) in
``.stack/label-studio/data``. The admin user and its API token are made at the first start from
the environment (they only apply when the organisation is created). Health: the process this
stack started listens on the configured port (Label Studio silently takes the next free port
when that one is busy) and ``GET /health`` answers ``{"status": "UP"}``. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy.stack.config import StackError, rel, say
from deploy.stack.process import (
    Server,
    find_server,
    log_tail,
    open_log,
    require_ports_free,
    spawn,
)
from shared.endpoints import HOST

PROBE_TIMEOUT = 3.0  # seconds for one health probe
INSTALL_PROGRESS_EVERY = 20.0  # seconds between progress lines while pip runs
PACKAGE = "label-studio"


class LabelStudio(Server):
    """``label-studio start`` on 127.0.0.1, its venv and data under .stack/label-studio/."""

    name = "labelstudio"
    # The first start applies Label Studio's migrations to a new sqlite database (minutes).
    start_timeout = 600.0
    slow_install = True  # ~1 GB of packages, minutes on a fresh machine

    @property
    def home(self) -> Path:
        return self.settings.state / "label-studio"

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def marker(self) -> Path:
        """Written last by a complete install: the package and version it installed."""
        return self.venv / ".conveyor-installed"

    @property
    def port(self) -> int:
        return self.settings.ports.label_studio

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def address(self) -> str:
        return f"{self.url} (admin {self.settings.label_studio_admin_email})"

    def pid(self) -> int | None:
        return find_server(self.settings.run / "labelstudio.pid", f"--data-dir {self.data}")

    # ----------------------------------------------------------------------- install

    def installed(self) -> bool:
        """Whether the venv holds the pinned version (a complete install wrote the marker)."""
        try:
            return self.marker.read_text() == self.wanted_marker
        except OSError:
            return False

    @property
    def wanted_marker(self) -> str:
        return f"{PACKAGE}=={self.settings.label_studio_version}\n"

    def install(self) -> None:
        """Install the pinned label-studio into its own venv unless already there.

        Made afresh when the marker is missing or names another version (an interrupted
        install leaves no marker), with a progress line every INSTALL_PROGRESS_EVERY seconds:
        it downloads ~1 GB and takes minutes on a fresh machine.
        """
        if self.installed():
            return
        version = self.settings.label_studio_version
        say(f"labelstudio: installing {PACKAGE}=={version} into {rel(self.venv)} (minutes, once)")
        began = time.monotonic()
        shutil.rmtree(self.venv, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.settings.log("labelstudio-pip")
        self.run_with_progress(log, [sys.executable, "-m", "venv", str(self.venv)], "venv")
        self.run_with_progress(
            log,
            [
                str(self.venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                f"{PACKAGE}=={version}",
            ],
            "pip install",
        )
        if not (self.venv / "bin" / "label-studio").is_file():
            raise StackError(f"pip installed {PACKAGE} but bin/label-studio is missing")
        self.marker.write_text(self.wanted_marker)
        say(f"labelstudio: installed {PACKAGE}=={version} in {time.monotonic() - began:.0f} s")

    def run_with_progress(self, log: Path, argv: list[str], what: str) -> None:
        """Run a command with its output in log, saying how far it got now and then."""
        fd = open_log(log, f"{what}: {' '.join(argv)}")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT
            )
        finally:
            os.close(fd)
        began = time.monotonic()
        while True:
            try:
                code = proc.wait(timeout=INSTALL_PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - began
                say(f"labelstudio: {what} running for {elapsed:.0f} s: {_last_line(log)}")
        if code != 0:
            raise StackError(f"labelstudio: {what} failed (exit {code})\n{log_tail(log)}")

    # ----------------------------------------------------------------------- run

    def environment(self) -> dict[str, str]:
        """Label Studio's environment: data here, nothing sent out, the admin and its token."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
            and not key.startswith("DJANGO_")
        }
        settings = self.settings
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.venv),
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data),
            # Errors go to the vendor's Sentry and usage to its analytics unless turned off.
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            LABEL_STUDIO_COLLECT_ANALYTICS="false",
            LATEST_VERSION_CHECK="false",  # else every start asks pypi.org for a newer version
            # Webhooks to Conveyor on 127.0.0.1 are refused otherwise.
            LABEL_STUDIO_SSRF_PROTECTION_ENABLED="false",
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",  # noqa: S106 - a switch, not a secret
            LABEL_STUDIO_USERNAME=settings.label_studio_admin_email,
            LABEL_STUDIO_PASSWORD=settings.label_studio_admin_password,
            LABEL_STUDIO_USER_TOKEN=settings.label_studio_token,
        )
        return env

    def start(self) -> None:
        """Install if needed and start ``label-studio start`` in the background."""
        self.install()
        self.data.mkdir(parents=True, exist_ok=True)
        require_ports_free(self.name, (self.port,))
        spawn(
            [
                str(self.venv / "bin" / "label-studio"),
                "start",
                "--no-browser",
                "--internal-host",
                HOST,
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data),
            ],
            cwd=self.home,
            log=self.log,
            pidfile=self.settings.run / "labelstudio.pid",
            env=self.environment(),
        )

    def health(self) -> str | None:
        """None when our process listens on the configured port and /health says UP."""
        pid = self.pid()
        if pid is None:
            return "no Label Studio process of this stack is running"
        ports = listening_ports(pid)
        if not ports:
            return "not listening yet"
        if self.port not in ports:
            found = ", ".join(map(str, sorted(ports)))
            return f"listens on port {found}, not {self.port} (was {self.port} busy at its start?)"
        try:
            health = f"{self.url}/health"
            with urllib.request.urlopen(health, timeout=PROBE_TIMEOUT) as answer:  # noqa: S310
                body = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            return f"GET /health failed: {exc}"
        if not isinstance(body, dict) or body.get("status") != "UP":
            return f"GET /health answered {body!r}"
        return None

    def provision(self) -> None:
        """Check that the configured API token is the admin's (it is fixed at the first start)."""
        request = urllib.request.Request(  # noqa: S310 - an http URL made here
            f"{self.url}/api/current-user/whoami",
            headers={"Authorization": f"Token {self.settings.label_studio_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                who = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise StackError(
                f"labelstudio: the configured API token is refused (HTTP {exc.code}). The admin "
                f"and token are made at the first start only: use the token {rel(self.data)} was "
                "made with (CONVEYOR_LABEL_STUDIO_TOKEN), or stop the stack and delete that folder"
            ) from exc
        except (OSError, ValueError) as exc:
            raise StackError(f"labelstudio: checking the API token failed: {exc}") from exc
        email = who.get("email") if isinstance(who, dict) else None
        if email != self.settings.label_studio_admin_email:
            say(f"labelstudio: the API token belongs to {email!r}, not the configured admin")


def _last_line(log: Path) -> str:
    """The last non-empty line of a log, shortened, for progress messages."""
    with contextlib.suppress(OSError):
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4096))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines()]
        for line in reversed(lines):
            if line and not line.startswith("====="):  # not open_log's header
                return line[:100]
    return "(no output yet)"


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state held by a process or any of its descendants (from /proc)."""
    family = _descendants(pid) | {pid}
    inodes: set[str] = set()
    for member in family:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{member}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                columns = row.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN; column 9 is the inode.
                if len(columns) > 9 and columns[3] == "0A" and columns[9] in inodes:
                    ports.add(int(columns[1].rsplit(":", 1)[1], 16))
    return ports


def _descendants(pid: int) -> set[int]:
    """Every process below pid (Label Studio may serve from a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
