#!/usr/bin/env python3
"""Local infrastructure stack for Conveyor, without Docker.

Runs Apache Kafka (KRaft, single node), SeaweedFS (S3 API), PostgreSQL and Label Studio as plain
local processes bound to 127.0.0.1, and for ``make run`` the trace viewer (Jaeger). Everything
they need or write lives under ``<repo>/.stack/``.

    .venv/bin/python deploy/stack/stack.py up       # install what is missing, start, wait healthy
    .venv/bin/python deploy/stack/stack.py traces   # start Jaeger; first build it in the background
    .venv/bin/python deploy/stack/stack.py status   # one line per server; exit 0 if all healthy
    .venv/bin/python deploy/stack/stack.py down     # stop them all (Jaeger and its build too)

Versions are pinned in deploy/stack/versions.env, ports in shared/endpoints.py. One module per
server (kafka.py, seaweedfs.py, postgres.py, labelstudio.py, jaeger.py); `down` needs only the
standard library, `up` and the health checks of `status` the project venv (aiokafka, minio).
Label Studio lives in a virtualenv of its own under .stack/. See deploy/stack/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

if not __package__:  # run as a script: import from the repository, not from deploy/stack/
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from deploy.stack.config import Settings, StackError, load_settings, rel, say
from deploy.stack.jaeger import Jaeger
from deploy.stack.kafka import Kafka
from deploy.stack.labelstudio import LabelStudio
from deploy.stack.postgres import Postgres
from deploy.stack.process import Server, exclusive_lock, stop_pids, wait_healthy
from deploy.stack.seaweedfs import BUCKETS, SeaweedFS
from shared import endpoints


def servers(settings: Settings) -> list[Server]:
    """The servers `up` starts and waits for (the tests need them), in start order.

    Jaeger is not among them: only `make run` wants it (`traces`), and its first build takes
    minutes; `down` and `status` cover it too.
    """
    return [Kafka(settings), SeaweedFS(settings), Postgres(settings), LabelStudio(settings)]


def cmd_traces(settings: Settings) -> int:
    """Start the trace viewer, or its build in the background (then it starts by itself)."""
    for folder in (settings.logs, settings.run):
        folder.mkdir(parents=True, exist_ok=True)
    Jaeger(settings).up()
    return 0


def cmd_up(settings: Settings) -> int:
    """Install what is missing, start the stopped servers, wait until all are healthy."""
    stack = servers(settings)
    problems = [problem for server in stack for problem in server.prerequisites()]
    if problems:
        raise StackError("missing prerequisites:\n  - " + "\n  - ".join(problems))
    for folder in (settings.state, settings.logs, settings.run):
        folder.mkdir(parents=True, exist_ok=True)
    settings.state.chmod(0o755)  # the PostgreSQL owner must be able to pass through

    began = time.monotonic()
    started: set[str] = set()
    stopped = [server for server in stack if server.pid() is None]
    # A slow install (Label Studio's venv: minutes) runs in a thread while the other servers
    # start and become healthy; its server starts when its turn in the health loop comes.
    with ThreadPoolExecutor(max_workers=max(1, len(stopped))) as pool:
        installs: dict[str, Future[None]] = {
            server.name: pool.submit(server.install) for server in stopped if server.slow_install
        }
        for server in stopped:
            if server.name not in installs:
                server.start()
                started.add(server.name)
        for server in stack:
            try:
                if server.name in installs:
                    installs[server.name].result()
                    server.start()
                    started.add(server.name)
                wait_healthy(
                    server.name, server.health, server.pid, server.log, timeout=server.start_timeout
                )
            except StackError:
                if server.name in started and (running := server.pid()) is not None:
                    stop_pids([(server.name, running, server.stop_signal)])
                raise
            state = "started" if server.name in started else "already running"
            say(
                f"{server.name}: {state}, healthy after {time.monotonic() - began:.1f} s "
                f"(pid {server.pid()})"
            )
    for server in stack:
        server.provision()
    print_summary(settings)
    return 0


def print_summary(settings: Settings) -> None:
    """Addresses, credentials and log files of the running stack."""
    ports, host = settings.ports, endpoints.HOST
    print(
        f"""
Conveyor local stack is up (state in {rel(settings.state)}/):
  Kafka       {host}:{ports.kafka}  (KRaft controller {host}:{ports.kafka_controller}, \
Kafka {settings.kafka_version})
              log {rel(settings.log("kafka"))}
  S3          http://{host}:{ports.s3}  access key {settings.s3_access_key} / secret \
{settings.s3_secret_key}
              buckets {", ".join(BUCKETS)}
              filer http://{host}:{ports.filer}, master {host}:{ports.master}, volume \
{host}:{ports.volume} (SeaweedFS {settings.seaweedfs_version})
              webhook -> {settings.webhook_url}
              log {rel(settings.log("seaweedfs"))}
  PostgreSQL  {endpoints.postgres_url(port=ports.postgres)}
              superuser {endpoints.SUPERUSER} / {endpoints.SUPERUSER_PASSWORD} (PostgreSQL \
{settings.postgres_major})
              log {rel(settings.log("postgres"))}
  Label Studio http://{host}:{ports.label_studio}  login {settings.label_studio_admin_email} / \
{settings.label_studio_admin_password}, API token {settings.label_studio_token} \
(label-studio {settings.label_studio_version})
              log {rel(settings.log("labelstudio"))}
Stop with: .venv/bin/python deploy/stack/stack.py down""",
        flush=True,
    )


def cmd_down(settings: Settings) -> int:
    """Stop every server (polite signal, then SIGKILL after STOP_GRACE); idempotent."""
    jaeger = Jaeger(settings)
    jaeger.stop_build()
    targets = []
    for server in [*servers(settings), jaeger]:
        pid = server.pid()
        if pid is None:
            say(f"{server.name}: not running")
        else:
            targets.append((server.name, pid, server.stop_signal))
    if targets:
        stop_pids(targets)
    return 0


def cmd_status(settings: Settings) -> int:
    """Print one line per server; exit 0 only if all run and are healthy."""
    all_ok = True
    for server in servers(settings):
        pid = server.pid()
        if pid is None:
            all_ok = False
            print(f"{server.name:<12} stopped  {'-':<8} {server.address()}")
            continue
        problem = server.health()
        all_ok = all_ok and problem is None
        health = "healthy" if problem is None else f"UNHEALTHY: {problem}"
        print(f"{server.name:<12} running  {pid:<8} {server.address()}  {health}")
    # Optional (make run only): shown, but never part of the exit code.
    state, pid, detail = Jaeger(settings).state()
    print(f"{Jaeger.name:<12} {state:<8} {pid or '-':<8} {detail}")
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=("up", "traces", "down", "status"))
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "traces": cmd_traces, "down": cmd_down, "status": cmd_status}
    try:
        settings = load_settings()
        if args.command == "status":
            return cmd_status(settings)
        with exclusive_lock(settings.state):
            return commands[args.command](settings)
    except StackError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
