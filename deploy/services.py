"""Start, stop and inspect Conveyor's service processes on this machine (no Docker).

Used by ``make run`` / ``make stop`` and by the test suite, which also kills them with
SIGKILL to prove nothing is lost.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared import endpoints

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / ".stack"

# name -> (module, port setting, default port)
SERVICES: dict[str, tuple[str, str, int]] = {
    "ingest": ("services.ingest", "CONVEYOR_INGEST_PORT", endpoints.INGEST_PORT),
    "clean": ("services.clean", "CONVEYOR_CLEAN_PORT", endpoints.CLEAN_PORT),
    "labeling": ("services.labeling_dispatch", "CONVEYOR_LABELING_PORT", endpoints.LABELING_PORT),
    "qc": ("services.qc", "CONVEYOR_QC_PORT", endpoints.QC_PORT),
    "audit": ("services.audit", "CONVEYOR_AUDIT_PORT", endpoints.AUDIT_PORT),
    "dashboard": ("services.dashboard", "CONVEYOR_DASHBOARD_PORT", endpoints.DASHBOARD_PORT),
}


@dataclass
class ServiceProcess:
    """One service process with its own environment, log file and pid file."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = STACK / "logs"
    run_dir: Path = STACK / "run"
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The HTTP port the service listens on."""
        _, variable, default = SERVICES[self.name]
        return int(self.env.get(variable) or os.environ.get(variable) or default)

    @property
    def url(self) -> str:
        """Base URL of the service's API."""
        return endpoints.service_url(self.port)

    @property
    def pid_file(self) -> Path:
        """Where the pid of a detached process is kept."""
        return self.run_dir / f"{self.name}.pid"

    def start(self, wait: float = 90.0) -> None:
        """Start the process and wait until /readyz says ready."""
        module = SERVICES[self.name][0]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(str(self.process.pid))
        self.wait_ready(wait)

    def wait_ready(self, wait: float) -> None:
        """Poll /readyz until it answers 200, or raise with the log's tail."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {wait:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the service's log."""
        path = self.log_dir / f"{self.name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        """Whether the process is alive."""
        pid = self._pid()
        if pid is None:
            return False
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the crash the tests simulate)."""
        self._signal(signal.SIGKILL, wait=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if not self._signal(signal.SIGTERM, wait=15):
            self._signal(signal.SIGKILL, wait=5)
        self.pid_file.unlink(missing_ok=True)

    def _signal(self, sig: signal.Signals, wait: float) -> bool:
        pid = self._pid()
        if pid is None or not self.running():
            return True
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    return True
            elif not self.running():
                return True
            time.sleep(0.1)
        return False


def stop_running(names: tuple[str, ...], *, say: bool = False) -> None:
    """Stop the `make run` copies of these services (a test or benchmark needs their ports)."""
    for name in names:
        existing = ServiceProcess(name)
        if existing.running():
            if say:
                print(f"  stopping the running {name} (make run)", flush=True)
            existing.stop()


def export_traces_to_jaeger() -> None:
    """Send the services' traces to the stack's Jaeger (OTLP/HTTP) when it is up.

    Only for the services `make run` starts: tests build their own environments and keep to
    span files. While Jaeger is down (still building on the first `make run`) the exporter
    would log a failed export every few seconds, so the services then go without it.
    An OTEL_EXPORTER_OTLP_ENDPOINT already set is kept as it is.
    """
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print(f"traces   -> {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']} (as set)")
        return
    try:
        socket.create_connection((endpoints.HOST, endpoints.JAEGER_OTLP_HTTP_PORT), 1).close()
    except OSError:
        print(
            "traces   not exported: Jaeger is not up yet (`make status` shows it); "
            "once it is, `make stop run` restarts the services sending to it"
        )
        return
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoints.OTLP_HTTP_ENDPOINT
    print(f"traces   -> Jaeger, OTLP {endpoints.OTLP_HTTP_ENDPOINT}")


def main() -> None:
    """``python deploy/services.py start|stop|status``"""
    parser = argparse.ArgumentParser(description="Run Conveyor's services as local processes.")
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args()
    procs = [ServiceProcess(name) for name in SERVICES]
    if args.command == "start":
        export_traces_to_jaeger()
        for proc in procs:
            if proc.running():
                print(f"{proc.name:8} already running (pid {proc._pid()}) at {proc.url}")
                continue
            print(f"{proc.name:8} starting...", flush=True)
            proc.start()
            print(f"{proc.name:8} ready at {proc.url}  (API docs {proc.url}/docs)")
    elif args.command == "stop":
        for proc in reversed(procs):
            was = proc.running()
            proc.stop()
            print(f"{proc.name:8} {'stopped' if was else 'not running'}")
    else:
        ok = True
        for proc in procs:
            alive = proc.running()
            ok &= alive
            print(f"{proc.name:8} {'running' if alive else 'stopped'}  {proc.url}")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
