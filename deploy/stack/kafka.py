"""Apache Kafka in KRaft combined mode (one node, broker + controller), jars from Maven Central.

Jars are fetched once with ``mvn`` into ``.stack/kafka/libs`` (Maven's local repository is
``.stack/m2``); the storage is formatted on the first start; the broker runs on the machine's
Java 17+. Health: a Metadata request through aiokafka's admin client, which must name this
stack's cluster id and a live broker and controller. aiokafka is imported only there, so
``down`` and ``status`` run without the venv.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib.util
import logging
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploy.stack.config import STACK_DIR, StackError, rel, render, say
from deploy.stack.process import Server, find_server, require_ports_free, run_logged, spawn
from shared.endpoints import HOST

POM = STACK_DIR / "kafka" / "pom.xml"
PROPERTIES_TEMPLATE = STACK_DIR / "kafka" / "server.properties"
LOG4J_CONFIG = STACK_DIR / "kafka" / "log4j2.xml"
MAIN_CLASS = "kafka.Kafka"
PROBE_TIMEOUT = 3.0  # seconds for one health probe


class Kafka(Server):
    """The broker+controller, its jars and storage under .stack/kafka/."""

    name = "kafka"

    @property
    def home(self) -> Path:
        return self.settings.state / "kafka"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def properties(self) -> Path:
        """The rendered server.properties; its path on the command line identifies the broker."""
        return self.home / "server.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.home / "cluster.id"

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.settings.ports.kafka}"

    def address(self) -> str:
        return (
            f"{self.bootstrap_servers} (controller {HOST}:{self.settings.ports.kafka_controller})"
        )

    def prerequisites(self) -> list[str]:
        problems: list[str] = []
        java = shutil.which("java")
        if not java:
            problems.append("java (a JDK/JRE 17 or newer) is not on PATH")
        else:
            out = subprocess.run(
                [java, "-version"], capture_output=True, text=True, check=False
            ).stderr
            found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
            major = int(found.group(1)) if found else 0
            if major == 1 and found and found.group(2):  # "1.8.0" style
                major = int(found.group(2))
            if major < 17:
                problems.append(f"java 17 or newer is needed, found: {out.splitlines()[:1]}")
        if not shutil.which("mvn"):
            problems.append("mvn (Apache Maven) is not on PATH; it fetches the Kafka jars")
        if importlib.util.find_spec("aiokafka") is None:
            problems.append(
                "the `aiokafka` package is not installed in this venv (it checks Kafka's "
                "health); install the project first (pip install -e '.[dev]')"
            )
        return problems

    def pid(self) -> int | None:
        return find_server(self.settings.run / "kafka.pid", str(self.properties))

    def provision(self) -> None:
        """Nothing to create: each service creates the topics it uses."""

    def start(self) -> None:
        """Fetch jars, render server.properties, format the storage once, start the broker."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.fetch_jars()
        ports = self.settings.ports
        render(
            PROPERTIES_TEMPLATE,
            self.properties,
            BROKER_PORT=str(ports.kafka),
            CONTROLLER_PORT=str(ports.kafka_controller),
            LOG_DIRS=str(self.data),
        )
        if not (self.data / "meta.properties").exists():
            say("kafka: formatting storage (first start)")
            run_logged(
                self.log,
                self.java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--config",
                    str(self.properties),
                    "--cluster-id",
                    self.cluster_id(),
                    "--standalone",
                ),
                "formatting the Kafka storage",
            )
        require_ports_free(self.name, (ports.kafka, ports.kafka_controller))
        spawn(
            self.java(MAIN_CLASS, str(self.properties)),
            cwd=self.home,
            log=self.log,
            pidfile=self.settings.run / "kafka.pid",
        )

    def fetch_jars(self) -> None:
        """Fetch the broker's jars with Maven into .stack/kafka/libs unless already there.

        A marker file records the Kafka version and the pom's hash, so a change of either makes
        the next `up` fetch again; otherwise nothing is downloaded. Maven's local repository is
        .stack/m2, so nothing outside the project is used or changed.
        """
        version = self.settings.kafka_version
        pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
        wanted = f"kafka_2.13 {version} pom {pom_hash}\n"
        marker = self.libs / ".fetched"
        if marker.exists() and marker.read_text() == wanted:
            return
        say(f"kafka: fetching kafka_2.13 {version} jars with Maven (once)")
        staging = self.home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        run_logged(
            self.settings.log("maven"),
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                f"-Dkafka.version={version}",
                f"-Dmaven.repo.local={self.settings.state / 'm2'}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
            ],
            "fetching the Kafka jars",
        )
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise StackError(f"Maven ran but no kafka_2.13 jar is in {rel(staging)}")
        (staging / ".fetched").write_text(wanted)
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)

    def cluster_id(self) -> str:
        """The cluster id of this stack, generated once (a base64url UUID, as Kafka's own)."""
        if self.cluster_id_file.exists():
            return self.cluster_id_file.read_text().strip()
        while True:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cluster_id.startswith("-"):  # kafka-storage refuses ids that look like options
                break
        self.home.mkdir(parents=True, exist_ok=True)
        self.cluster_id_file.write_text(cluster_id + "\n")
        return cluster_id

    def java(self, main: str, *args: str) -> list[str]:
        """The java command line running a Kafka main class with the fetched jars."""
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            str(self.libs / "*"),
            main,
            *args,
        ]

    def health(self) -> str | None:
        """None when the broker answers a metadata request for our cluster, else why not."""
        try:
            from aiokafka.errors import KafkaError
        except ImportError:
            return "cannot check: aiokafka is not installed (run with .venv/bin/python)"
        try:
            with _quiet("aiokafka"):
                cluster = asyncio.run(describe_cluster(self.bootstrap_servers))
        except TimeoutError:
            return f"metadata request failed: no answer within {PROBE_TIMEOUT:.0f} s"
        except (OSError, KafkaError) as exc:
            return f"metadata request failed: {exc}"
        answered = cluster["cluster_id"]
        expected = (
            self.cluster_id_file.read_text().strip() if self.cluster_id_file.exists() else answered
        )
        if answered != expected:
            return f"answered for cluster {answered!r}, expected {expected!r}"
        if not cluster["brokers"] or cluster["controller_id"] < 0:
            return "no live broker or controller in the metadata yet"
        return None


async def describe_cluster(bootstrap_servers: str) -> dict[str, Any]:
    """Cluster id, controller id and brokers as one Metadata request reports them.

    Gives up after PROBE_TIMEOUT (TimeoutError).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="conveyor-stack",
        request_timeout_ms=int(PROBE_TIMEOUT * 1000),
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await admin.start()
            cluster: dict[str, Any] = await admin.describe_cluster()
            return cluster
    finally:
        await admin.close()


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's log while probing: a refused connection during start-up is expected."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
