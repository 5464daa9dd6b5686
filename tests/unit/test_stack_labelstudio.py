"""deploy/stack/labelstudio.py without Label Studio: install marker, environment, port check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.stack import labelstudio
from deploy.stack.config import StackError, load_settings
from deploy.stack.labelstudio import LabelStudio, listening_ports


def scratch(tmp_path: Path) -> LabelStudio:
    return LabelStudio(
        load_settings(
            {"CONVEYOR_STACK_DIR": str(tmp_path / "state"), "CONVEYOR_STACK_PORT_OFFSET": "300"}
        )
    )


def test_an_install_with_the_pinned_version_marked_is_not_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scratch(tmp_path)
    server.marker.parent.mkdir(parents=True)
    server.marker.write_text(f"label-studio=={server.settings.label_studio_version}\n")

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may run when the marker names the pinned version")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    server.install()
    assert server.installed()
    server.marker.write_text("label-studio==0.0.1\n")
    assert not server.installed()  # another version: the next `up` makes the venv afresh


def test_a_long_install_says_how_far_it_got_and_a_failure_shows_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(labelstudio, "INSTALL_PROGRESS_EVERY", 0.2)
    server = scratch(tmp_path)
    log = tmp_path / "pip.log"
    step = "import time; print('Collecting django', flush=True); time.sleep(0.7)"
    server.run_with_progress(log, [sys.executable, "-c", step], "pip install")
    progress = capsys.readouterr().out.splitlines()
    assert len(progress) >= 2
    assert all(
        line.startswith("[stack] labelstudio: pip install running for ")
        and line.endswith(": Collecting django")
        for line in progress
    )
    with pytest.raises(StackError, match=r"pip install failed \(exit 3\)") as failure:
        server.run_with_progress(
            log, [sys.executable, "-c", "print('no such version'); exit(3)"], "pip install"
        )
    assert "no such version" in str(failure.value)


def test_label_studio_runs_with_its_own_venv_data_and_nothing_sent_out(tmp_path: Path) -> None:
    server = scratch(tmp_path)
    env = server.environment()
    assert env["PATH"].startswith(f"{server.venv / 'bin'}:")
    assert env["VIRTUAL_ENV"] == str(server.venv)
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(server.data)
    assert env["SENTRY_DSN"] == env["FRONTEND_SENTRY_DSN"] == ""
    assert env["LABEL_STUDIO_COLLECT_ANALYTICS"] == env["LATEST_VERSION_CHECK"] == "false"
    assert env["LABEL_STUDIO_SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_USER_TOKEN"] == server.settings.label_studio_token
    assert server.venv.is_relative_to(server.settings.state)
    assert server.port == server.settings.ports.label_studio == 8380


def test_listening_ports_are_found_in_child_processes_too() -> None:
    child_listens = (
        "import socket, subprocess, sys, time\n"
        "code = ('import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); '\n"
        "        's.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)')\n"
        "child = subprocess.Popen([sys.executable, '-c', code], stdout=sys.stdout)\n"
        "child.wait()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", child_listens],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, ended below by the group's id
    )
    try:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        assert listening_ports(parent.pid) == {port}
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
