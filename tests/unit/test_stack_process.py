"""deploy/stack/process.py on dummy processes: find, stop, wait for health, ports, the lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploy.stack import process
from deploy.stack.config import StackError
from deploy.stack.process import (
    exclusive_lock,
    find_server,
    pid_alive,
    require_ports_free,
    spawn,
    stop_pids,
    wait_healthy,
)

REPO = Path(__file__).resolve().parents[2]


def dummy_server(marker: Path, *, ignore_sigterm: bool = False) -> list[str]:
    """A python process that sleeps, with marker (a path) on its command line."""
    code = "import signal, time\n"
    if ignore_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(120)\n"
    return [sys.executable, "-c", code, str(marker)]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[int]]:
    """Pids started by a test; any still alive at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_until_ready(log: Path) -> None:
    """Until the dummy printed its line (the log's header line shows only its code)."""
    text, deadline = "\nready\n", time.monotonic() + 10
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.05)


def test_a_spawned_server_is_found_by_pid_file_and_again_when_the_file_is_lost(
    tmp_path: Path, started: list[int]
) -> None:
    marker, log, pidfile = tmp_path / "server.conf", tmp_path / "dummy.log", tmp_path / "d.pid"
    pid = spawn(dummy_server(marker), cwd=tmp_path, log=log, pidfile=pidfile)
    started.append(pid)
    wait_until_ready(log)
    assert "===== stack.py" in log.read_text()  # the header line before the server's output
    assert pidfile.read_text() == f"{pid}\n"
    assert find_server(pidfile, str(marker)) == pid
    pidfile.unlink()
    assert find_server(pidfile, str(marker)) == pid
    assert pidfile.read_text() == f"{pid}\n"  # rewritten from /proc
    # A live process that does not carry the marker is not taken for the server.
    pidfile.write_text(f"{os.getpid()}\n")
    assert find_server(pidfile, str(marker)) == pid
    assert find_server(pidfile, str(tmp_path / "no-such-server.conf")) is None


def test_stop_sends_the_polite_signal_then_sigkill_after_the_grace(
    tmp_path: Path,
    started: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(process, "STOP_GRACE", 1.0)
    polite = spawn(
        dummy_server(tmp_path / "a"), cwd=tmp_path, log=tmp_path / "a.log", pidfile=tmp_path / "a"
    )
    stubborn = spawn(
        dummy_server(tmp_path / "b", ignore_sigterm=True),
        cwd=tmp_path,
        log=tmp_path / "b.log",
        pidfile=tmp_path / "b",
    )
    started += [polite, stubborn]
    wait_until_ready(tmp_path / "a.log")
    wait_until_ready(tmp_path / "b.log")
    stop_pids([("polite", polite, signal.SIGTERM), ("stubborn", stubborn, signal.SIGTERM)])
    assert not pid_alive(polite) and not pid_alive(stubborn)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"[stack] polite: stopping pid {polite} (SIGTERM)",
        f"[stack] stubborn: stopping pid {stubborn} (SIGTERM)",
        "[stack] polite: stopped",
        "[stack] stubborn: still running after 1 s, sending SIGKILL",
    ]


class FakeClock:
    """time.monotonic and time.sleep without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(
        process, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    )
    return fake


def test_wait_healthy_returns_once_the_check_passes(clock: FakeClock, tmp_path: Path) -> None:
    answers = iter(["refused", "starting", None])
    wait_healthy("dummy", lambda: next(answers), lambda: 42, tmp_path / "dummy.log")
    assert clock.now == 2.0


def test_wait_healthy_fails_with_the_log_when_the_server_exits(
    clock: FakeClock, tmp_path: Path
) -> None:
    log = tmp_path / "dummy.log"
    log.write_text("line 1\nFATAL: no such thing\n")
    with pytest.raises(StackError, match="dummy exited during start-up") as failure:
        wait_healthy("dummy", lambda: "refused", lambda: None, log)
    assert "FATAL: no such thing" in str(failure.value)
    assert clock.now > 5  # a missing pid is tolerated for the first seconds


def test_wait_healthy_gives_up_after_the_timeout_with_the_last_reason(
    clock: FakeClock, tmp_path: Path
) -> None:
    with pytest.raises(StackError, match=r"dummy not healthy after 90 s \(still starting\)"):
        wait_healthy("dummy", lambda: "still starting", lambda: 42, tmp_path / "none.log")
    assert clock.now == pytest.approx(process.HEALTH_TIMEOUT, abs=1)


def test_a_port_in_use_by_another_process_is_refused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(StackError, match=rf"kafka: port\(s\) {port} on 127.0.0.1 are used"):
            require_ports_free("kafka", (port,))
    require_ports_free("kafka", (port,))


def test_a_second_up_or_down_waits_for_the_lock(tmp_path: Path) -> None:
    waiter = [
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from deploy.stack.process import exclusive_lock\n"
        "with exclusive_lock(Path(sys.argv[1])):\n    print('got the lock', flush=True)\n",
        str(tmp_path),
    ]
    with exclusive_lock(tmp_path):
        second = subprocess.Popen(waiter, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert second.stdout is not None
        assert (
            second.stdout.readline() == "[stack] waiting for another stack.py up/down to finish\n"
        )
        time.sleep(0.2)
        assert second.poll() is None
    assert second.stdout.readline() == "got the lock\n"
    assert second.wait(timeout=10) == 0
