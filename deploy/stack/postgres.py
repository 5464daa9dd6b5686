"""A private PostgreSQL cluster made with the machine's ``initdb`` and run with ``pg_ctl``.

The cluster lives in ``.stack/postgres`` (or, as root when its unprivileged owner cannot reach
that folder, in ``/var/tmp`` with ``.stack/postgres`` a symlink to it). Health: ``pg_isready``
then ``SELECT 1`` over TCP with the superuser's password; ``up`` creates the application role
and database. Only the PostgreSQL client binaries are used, no Python driver.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.config import REPO, StackError, rel, say
from deploy.stack.process import (
    Server,
    open_log,
    pid_from_file,
    require_ports_free,
    run_logged,
    stop_pids,
)
from shared.endpoints import (
    DATABASE,
    DATABASE_PASSWORD,
    DATABASE_USER,
    HOST,
    SUPERUSER,
    SUPERUSER_PASSWORD,
)

OS_USER = "conveyor-pg"  # unprivileged OS user that owns the cluster when run as root
UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


def is_root() -> bool:
    """Whether the script runs as root (PostgreSQL then runs as OS_USER)."""
    return os.geteuid() == 0


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


def as_owner(argv: list[str]) -> list[str]:
    """Prefix a command so it runs as the cluster's OS owner (OS_USER when root)."""
    return ["runuser", "-u", OS_USER, "--", *argv] if is_root() else argv


def ensure_os_user() -> None:
    """As root, create the unprivileged system user that owns the cluster (idempotent)."""
    if not is_root():
        return
    exists = subprocess.run(["id", "-u", OS_USER], capture_output=True, check=False)
    if exists.returncode != 0:
        say(f"postgres: creating system user {OS_USER}")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
            check=True,
        )


def owner_can_use(path: Path) -> bool:
    """Whether the cluster's OS owner can enter and write a directory we own and chown."""
    return (
        subprocess.run(
            as_owner(["test", "-w", str(path), "-a", "-x", str(path)]),
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def private_dir(path: Path) -> None:
    """Create a 0700 directory owned by the cluster's OS owner."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    own(path)


def own(path: Path) -> None:
    """Hand a file or folder made here to the cluster's OS owner (when running as root)."""
    if is_root():
        shutil.chown(path, user=OS_USER, group=OS_USER)


class Postgres(Server):
    """The cluster, its settings file and the application role and database."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for every client to leave

    @property
    def link(self) -> Path:
        """.stack/postgres: the cluster home, or a symlink to the fallback home."""
        return self.settings.state / "postgres"

    @property
    def port(self) -> int:
        return self.settings.ports.postgres

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def bin(self, tool: str) -> str:
        """Path of a PostgreSQL binary of the pinned major version."""
        return str(self.settings.pg_bin / tool)

    def prerequisites(self) -> list[str]:
        problems = [
            f"{self.settings.pg_bin / tool} is missing (PostgreSQL "
            f"{self.settings.postgres_major} server binaries)"
            for tool in ("initdb", "pg_ctl", "pg_isready", "psql")
            if not (self.settings.pg_bin / tool).is_file()
        ]
        if is_root():
            problems += [
                f"{tool} is not on PATH (needed to run PostgreSQL as root)"
                for tool in ("useradd", "runuser")
                if not shutil.which(tool)
            ]
        return problems

    def fallback_home(self) -> Path:
        """A home outside the repo, keyed by the stack's location (when the repo is unreachable).

        The key is the repository path for the usual .stack/, as it always was, so a cluster
        made before keeps its home.
        """
        state = self.settings.state
        key = REPO if state == REPO / ".stack" else state
        digest = hashlib.sha256(str(key).encode()).hexdigest()[:10]
        return Path("/var/tmp") / f"conveyor-pg-{digest}"  # noqa: S108 - private, 0700 directory

    def paths(self, create: bool = False) -> PgPaths | None:
        """Locate (or with create=True, choose and create) the cluster home.

        Normally .stack/postgres. When running as root and the unprivileged owner cannot reach
        it (a parent folder of the repo is not world-traversable), or the unix socket path would
        be too long, the home is a private folder under /var/tmp and .stack/postgres is a
        symlink to it.
        """
        link = self.link
        if link.is_symlink():
            home = link.resolve()
            if create and not home.is_dir():  # the fallback folder was cleaned away
                private_dir(home)
            return PgPaths(home)
        if link.is_dir():
            return PgPaths(link)
        if not create:
            return None
        private_dir(link)
        socket_path = link / "run" / f".s.PGSQL.{self.port}"
        if owner_can_use(link) and len(str(socket_path)) <= UNIX_SOCKET_MAX:
            return PgPaths(link)
        home = self.fallback_home()
        say(
            f"postgres: {rel(link)} is not usable by {OS_USER} (or its socket path is too "
            f"long); keeping the cluster in {home} (symlinked)"
        )
        link.rmdir()
        if home.exists():  # left over from an earlier .stack/ that was deleted: start afresh
            if (pid := self.pid(PgPaths(home))) is not None:
                stop_pids([(self.name, pid, self.stop_signal)])
            shutil.rmtree(home)
        private_dir(home)
        link.symlink_to(home)
        return PgPaths(home)

    def pid(self, paths: PgPaths | None = None) -> int | None:
        """Pid of the running postmaster of this stack's cluster, if any."""
        paths = paths or self.paths()
        if paths is None:
            return None
        return pid_from_file(paths.data / "postmaster.pid", "postgres")

    def config_text(self, paths: PgPaths) -> str:
        """The settings this stack layers over initdb's postgresql.conf."""
        return "\n".join(
            [
                "# Written by deploy/stack/stack.py on every `up`; included from postgresql.conf.",
                f"listen_addresses = '{HOST}'",
                f"port = {self.port}",
                f"unix_socket_directories = '{paths.run}'",
                "max_connections = 200",
                "shared_buffers = 128MB",
                "logging_collector = off",
                "",
            ]
        )

    def prepare(self) -> PgPaths:
        """Create the OS user, the cluster (initdb, first time only) and the stack's settings."""
        ensure_os_user()
        paths = self.paths(create=True)
        assert paths is not None  # create=True always returns paths
        private_dir(paths.run)
        if not (paths.data / "PG_VERSION").exists():
            shutil.rmtree(
                paths.data, ignore_errors=True
            )  # a half-made cluster from a failed initdb
            say("postgres: creating the cluster (initdb, first start)")
            pwfile = paths.home / "pwfile"
            pwfile.write_text(SUPERUSER_PASSWORD + "\n")
            pwfile.chmod(0o600)
            own(pwfile)
            try:
                run_logged(
                    self.log,
                    as_owner(
                        [
                            self.bin("initdb"),
                            "-D",
                            str(paths.data),
                            "-U",
                            SUPERUSER,
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
        conf_file.write_text(self.config_text(paths))
        own(conf_file)
        return paths

    def start(self) -> None:
        """Prepare the cluster and start it with pg_ctl; the server's output goes to its log.

        pg_ctl without -l hands its own stdout to the server, so the log file is opened here
        (as the invoking user) and works even where the cluster's OS owner could not open it.
        """
        paths = self.prepare()
        require_ports_free(self.name, (self.port,))
        fd = open_log(self.log, "starting with pg_ctl")
        try:
            subprocess.Popen(
                as_owner([self.bin("pg_ctl"), "start", "-D", str(paths.data), "-W"]),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ).wait(timeout=30)
        finally:
            os.close(fd)

    def psql(
        self,
        sql: str,
        *,
        tcp: bool,
        variables: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run SQL (with psql :'variables') as the superuser, over TCP or the unix socket.

        TCP uses the superuser's password (scram-sha-256); the unix socket is trusted.
        """
        host = HOST if tcp else str((self.paths() or PgPaths(self.link)).run)
        env = {**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD, "PGCONNECT_TIMEOUT": "3"}
        options = [f"--set={key}={value}" for key, value in (variables or {}).items()]
        return subprocess.run(
            [
                self.bin("psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                *options,
                "-h",
                host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
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

    def health(self) -> str | None:
        """None when pg_isready passes and a query over TCP with the password works."""
        ready = subprocess.run(
            [self.bin("pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-t", "3"],
            capture_output=True,
            check=False,
        )
        if ready.returncode != 0:
            return f"pg_isready exit {ready.returncode}"
        try:
            result = self.psql("SELECT 1", tcp=True)
        except subprocess.TimeoutExpired:
            return "query timed out"
        if result.returncode != 0 or result.stdout.strip() != "1":
            return f"query failed: {result.stderr.strip()}"
        return None

    def provision(self) -> None:
        """Create the application role and database if missing (idempotent)."""
        sql = """
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
"""
        variables = {"role": DATABASE_USER, "password": DATABASE_PASSWORD, "db": DATABASE}
        result = self.psql(sql, tcp=False, variables=variables)
        if result.returncode != 0:
            raise StackError(f"creating role/database {DATABASE} failed: {result.stderr.strip()}")
