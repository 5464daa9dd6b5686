"""What the local stack is: where its state lives, its ports, pinned versions and credentials.

Versions come only from ``versions.env`` next to this file; ports from ``shared.endpoints``;
credentials and the webhook target from the environment, with development defaults. Standard
library only (``stack.py down`` runs before the venv exists).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from string import Template

from shared import endpoints

STACK_DIR = Path(__file__).resolve().parent
REPO = STACK_DIR.parent.parent
VERSIONS_FILE = STACK_DIR / "versions.env"

# Only to run a second, scratch stack beside the real one (e.g. to test this tooling): another
# state folder and every port shifted by an offset. Nothing else reads these variables.
STATE_DIR_VARIABLE = "CONVEYOR_STACK_DIR"
PORT_OFFSET_VARIABLE = "CONVEYOR_STACK_PORT_OFFSET"


class StackError(Exception):
    """A failure with a message meant for the person running the script."""


def say(message: str) -> None:
    """Print a progress line."""
    print(f"[stack] {message}", flush=True)


def rel(path: Path) -> str:
    """Show a path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Ports:
    """The TCP ports the stack's servers listen on (all on ``endpoints.HOST``)."""

    kafka: int = endpoints.KAFKA_PORT
    kafka_controller: int = endpoints.KAFKA_CONTROLLER_PORT
    s3: int = endpoints.S3_PORT
    filer: int = endpoints.SEAWEEDFS_FILER_PORT
    master: int = endpoints.SEAWEEDFS_MASTER_PORT
    volume: int = endpoints.SEAWEEDFS_VOLUME_PORT
    postgres: int = endpoints.POSTGRES_PORT
    label_studio: int = endpoints.LABEL_STUDIO_PORT
    jaeger_ui: int = endpoints.JAEGER_UI_PORT
    jaeger_query_grpc: int = endpoints.JAEGER_QUERY_GRPC_PORT
    jaeger_otlp_grpc: int = endpoints.JAEGER_OTLP_GRPC_PORT
    jaeger_otlp_http: int = endpoints.JAEGER_OTLP_HTTP_PORT

    def shifted(self, offset: int) -> Ports:
        """Every port plus offset (a scratch stack beside the real one)."""
        return Ports(**{f.name: getattr(self, f.name) + offset for f in fields(self)})


@dataclass(frozen=True)
class Settings:
    """Versions from versions.env plus locations, credentials and endpoints."""

    state: Path  # <repo>/.stack: downloads, data, logs, pid files
    ports: Ports
    kafka_version: str
    seaweedfs_version: str
    postgres_major: str
    s3_access_key: str
    s3_secret_key: str
    webhook_url: str
    webhook_token: str
    label_studio_version: str = ""
    label_studio_admin_email: str = endpoints.LABEL_STUDIO_ADMIN_EMAIL
    label_studio_admin_password: str = endpoints.LABEL_STUDIO_ADMIN_PASSWORD
    label_studio_token: str = endpoints.LABEL_STUDIO_TOKEN
    jaeger_version: str = ""

    @property
    def logs(self) -> Path:
        """Folder of the server logs."""
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """Folder of the pid files of servers started in the background."""
        return self.state / "run"

    def log(self, name: str) -> Path:
        """Where a server (or tool) of the stack logs: .stack/logs/<name>.log."""
        return self.logs / f"{name}.log"

    @property
    def pg_bin(self) -> Path:
        """Directory of the PostgreSQL server binaries (initdb, pg_ctl, psql, ...)."""
        return Path(f"/usr/lib/postgresql/{self.postgres_major}/bin")


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
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


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Build the settings; the environment overrides the development defaults."""
    versions = read_versions()
    missing = {
        "KAFKA_VERSION",
        "SEAWEEDFS_VERSION",
        "POSTGRES_MAJOR",
        "LABEL_STUDIO_VERSION",
        "JAEGER_VERSION",
    } - versions.keys()
    if missing:
        raise StackError(f"versions.env lacks {', '.join(sorted(missing))}")
    env = environ.get
    try:
        offset = int(env(PORT_OFFSET_VARIABLE) or 0)
    except ValueError as exc:
        raise StackError(f"{PORT_OFFSET_VARIABLE} must be an integer: {exc}") from exc
    return Settings(
        state=Path(env(STATE_DIR_VARIABLE) or REPO / ".stack").absolute(),
        ports=Ports().shifted(offset),
        kafka_version=versions["KAFKA_VERSION"],
        seaweedfs_version=versions["SEAWEEDFS_VERSION"],
        postgres_major=versions["POSTGRES_MAJOR"],
        s3_access_key=env("CONVEYOR_S3_ACCESS_KEY") or "conveyor",
        s3_secret_key=env("CONVEYOR_S3_SECRET_KEY") or "conveyor-dev-secret",
        webhook_url=env("CONVEYOR_OBJECTSTORE_WEBHOOK_URL")
        or f"{endpoints.INGEST_URL}/internal/objectstore/events",
        webhook_token=env("CONVEYOR_INGEST_OBJECTSTORE_WEBHOOK_TOKEN") or "dev-objectstore-token",
        label_studio_version=versions["LABEL_STUDIO_VERSION"],
        label_studio_admin_email=env("CONVEYOR_LABEL_STUDIO_ADMIN_EMAIL")
        or endpoints.LABEL_STUDIO_ADMIN_EMAIL,
        label_studio_admin_password=env("CONVEYOR_LABEL_STUDIO_ADMIN_PASSWORD")
        or endpoints.LABEL_STUDIO_ADMIN_PASSWORD,
        label_studio_token=env("CONVEYOR_LABEL_STUDIO_TOKEN") or endpoints.LABEL_STUDIO_TOKEN,
        jaeger_version=versions["JAEGER_VERSION"],
    )


def render(template: Path, target: Path, mode: int = 0o644, **values: str) -> None:
    """Fill ${NAME} placeholders of a template file and write the result."""
    text = Template(template.read_text()).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def quoted(value: str) -> str:
    """Escape a value for a JSON or TOML double-quoted string (without the quotes)."""
    return json.dumps(value)[1:-1]
