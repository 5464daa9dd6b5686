"""Running the stack's servers as background processes: start, find, wait for health, stop.

What every server module (kafka, seaweedfs, postgres, labelstudio) shares: the :class:`Server`
interface the command line drives, log files under ``.stack/logs/``, pid files under
``.stack/run/``, port checks and the lock that serialises ``up`` and ``down``. Standard library
only.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

from deploy.stack.config import Settings, StackError, rel, say
from shared.endpoints import HOST

HEALTH_TIMEOUT = 90.0  # seconds for a server to become healthy after start
STOP_GRACE = 25.0  # seconds between the polite stop signal and SIGKILL
WAIT_PROGRESS_EVERY = 30.0  # seconds between "still waiting" lines while a server starts


class Server(abc.ABC):
    """One server of the stack, as ``stack.py up|down|status`` sees it."""

    name: ClassVar[str]
    # The polite stop signal; SIGKILL follows after STOP_GRACE.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    # Seconds from start to healthy before `up` gives up.
    start_timeout: ClassVar[float] = HEALTH_TIMEOUT
    # True: `up` runs install() in a thread while the servers before it start.
    slow_install: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def log(self) -> Path:
        """The server's log file, .stack/logs/<name>.log."""
        return self.settings.log(self.name)

    def prerequisites(self) -> list[str]:
        """What `up` needs on this machine for this server and cannot find (empty: all there)."""
        return []

    @abc.abstractmethod
    def pid(self) -> int | None:
        """Pid of the running server this stack started, if any."""

    def install(self) -> None:
        """Install what the server needs when that is slow (see slow_install); else nothing.

        Must be safe to call again: start() calls it too (by then it has nothing to do).
        """
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Install or create what is missing and start the server in the background."""

    @abc.abstractmethod
    def health(self) -> str | None:
        """None when the server answers as it should, else why not (one line)."""

    @abc.abstractmethod
    def address(self) -> str:
        """Where it listens, as `status` shows it."""

    @abc.abstractmethod
    def provision(self) -> None:
        """Create what the project needs inside the healthy server (idempotent)."""

    def stop(self) -> None:
        """Stop this one server if it runs (polite signal, SIGKILL after STOP_GRACE)."""
        pid = self.pid()
        if pid is not None:
            stop_pids([(self.name, pid, self.stop_signal)])

    def start_healthy(self) -> None:
        """Start the server and wait until its health check passes (the fault harness's restart)."""
        self.start()
        wait_healthy(self.name, self.health, self.pid, self.log, timeout=self.start_timeout)


# --------------------------------------------------------------------------- logs


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return f"(no log at {rel(path)})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {rel(path)} ---\n" + "\n".join(text)


def open_log(path: Path, what: str) -> int:
    """Open a log for appending and write a header line; returns the file descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    os.write(fd, f"\n===== stack.py {stamp}: {what} =====\n".encode())
    return fd


def run_logged(log: Path, argv: list[str], what: str) -> None:
    """Run a command to completion with its output appended to a log; raise on failure."""
    fd = open_log(log, f"{what}: {' '.join(argv)}")
    try:
        code = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT, check=False
        ).returncode
    finally:
        os.close(fd)
    if code != 0:
        raise StackError(f"{what} failed (exit {code})\n{log_tail(log)}")


# --------------------------------------------------------------------------- ports and lock


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on HOST:port."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_ports_free(name: str, ports: tuple[int, ...]) -> None:
    """Fail if another process already listens on a port the server needs."""
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise StackError(
            f"{name}: port(s) {', '.join(map(str, busy))} on {HOST} are used by another process "
            f"(not one this stack started); stop it first (see `ss -ltnp`)"
        )


@contextlib.contextmanager
def exclusive_lock(state: Path) -> Iterator[None]:
    """Serialise `up` and `down` runs (test sessions may start the stack at the same time)."""
    state.mkdir(parents=True, exist_ok=True)
    with (state / "stack.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another stack.py up/down to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- processes


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of a process, or '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_from_file(path: Path, marker: str) -> int | None:
    """The live pid recorded in a pid file (first line) whose command line contains marker."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) and marker in cmdline(pid) else None


def find_server(pidfile: Path, marker: str) -> int | None:
    """Pid of a server this stack started: from its pid file, else found in /proc.

    marker is an absolute path of this stack's state on the server's command line, so a lost
    pid file does not orphan a server and a reused pid is not mistaken for one.
    """
    pid = pid_from_file(pidfile, marker)
    if pid is not None:
        return pid
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and marker in cmdline(int(entry.name))
            and pid_alive(pid := int(entry.name))
        ):
            pidfile.parent.mkdir(parents=True, exist_ok=True)
            pidfile.write_text(f"{pid}\n")
            return pid
    return None


def spawn(
    argv: list[str], *, cwd: Path, log: Path, pidfile: Path, env: dict[str, str] | None = None
) -> int:
    """Start a server detached from this process, appending its output to log.

    env None: this process's environment.
    """
    fd = open_log(log, f"starting: {' '.join(argv)}")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        os.close(fd)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pids(targets: list[tuple[str, int, signal.Signals]]) -> None:
    """Send each (name, pid, polite signal), wait up to STOP_GRACE for all, then SIGKILL."""
    for name, pid, sig in targets:
        say(f"{name}: stopping pid {pid} ({sig.name})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(pid_alive(pid) for _, pid, _ in targets):
        time.sleep(0.2)
    for name, pid, _ in targets:
        if pid_alive(pid):
            say(f"{name}: still running after {STOP_GRACE:.0f} s, sending SIGKILL")
            for kill in (os.killpg, os.kill):  # its whole process group, else just itself
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        else:
            say(f"{name}: stopped")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(pid) for _, pid, _ in targets):
        time.sleep(0.1)


def wait_healthy(
    name: str,
    check: Callable[[], str | None],
    pid: Callable[[], int | None],
    log: Path,
    *,
    timeout: float = HEALTH_TIMEOUT,
) -> None:
    """Poll check() (None = healthy, else the reason) until it passes; fail if the process dies.

    Says why it still waits every WAIT_PROGRESS_EVERY seconds (a first start can take minutes).
    """
    began = time.monotonic()
    deadline = began + timeout
    next_progress = began + WAIT_PROGRESS_EVERY
    reason = "not checked yet"
    grace_for_pid = time.monotonic() + 5  # postgres writes its pid file shortly after pg_ctl
    while time.monotonic() < deadline:
        reason = check() or ""
        if not reason:
            return
        if pid() is None and time.monotonic() > grace_for_pid:
            raise StackError(f"{name} exited during start-up\n{log_tail(log)}")
        if time.monotonic() > next_progress:
            say(f"{name}: not healthy yet after {time.monotonic() - began:.0f} s ({reason})")
            next_progress += WAIT_PROGRESS_EVERY
        time.sleep(1)
    raise StackError(f"{name} not healthy after {timeout:.0f} s ({reason})\n{log_tail(log)}")
