"""The command line of every service process: ``serve`` (default), ``migrate``, and any
commands of the service's own."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import uvicorn
from fastapi import FastAPI

from shared.db import migrate
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


# Idle keep-alive connections are kept longer than clients keep them (httpx and most pools let
# go after 5 s): with uvicorn's own 5 s, a client could reuse a connection at the very moment
# the server closed it and get "server disconnected" instead of an answer.
KEEP_ALIVE_SECONDS = 75


class Command(NamedTuple, Generic[S]):
    """A command of a service's own: what ``--help`` says about it, and what it runs."""

    help: str
    run: Callable[[S], None]


def run_service(
    settings: S,
    build_app: Callable[[S], FastAPI],
    factory_path: str,
    migrations_dir: Path,
    schema: str,
    commands: Mapping[str, Command[S]] | None = None,
) -> None:
    """Parse argv and run the service (blocking); ``commands`` adds the service's own."""
    commands = commands or {}
    own = "".join(f"; {name}: {command.help}" for name, command in commands.items())
    parser = argparse.ArgumentParser(
        prog=f"python -m {factory_path.split('.app:')[0]}",
        description=f"Conveyor {settings.service_name} service. Configured by environment "
        "variables (see README, 'Configuration').",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", *commands],
        help="serve: run the API and consumers (migrates first); migrate: only migrate" + own,
    )
    args = parser.parse_args()
    if args.command in commands:
        commands[args.command].run(settings)
        return
    if args.command == "migrate":
        asyncio.run(migrate(migrations_dir, settings.database_url, schema))
        return
    if settings.workers > 1:
        # Worker processes build their own app (and read settings from the environment).
        uvicorn.run(
            factory_path,
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        return
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
