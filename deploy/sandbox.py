"""Give a test or benchmark run a clean slate on the shared local stack.

A fresh database, freshly created ``conveyor.*`` topics and an empty landing bucket, so the
run's services start from nothing. Only for the local development stack.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from minio import Minio

from shared import endpoints
from shared.settings import DEV_S3_SECRET

PG_SUPERUSER_DSN = endpoints.postgres_url(
    "postgres", user=endpoints.SUPERUSER, password=endpoints.SUPERUSER_PASSWORD
)
KAFKA = endpoints.KAFKA_BOOTSTRAP_SERVERS
S3 = (endpoints.S3_ENDPOINT, "conveyor", DEV_S3_SECRET)


def minio_client() -> Minio:
    """A client of the local object store."""
    endpoint, access, secret = S3
    return Minio(endpoint, access_key=access, secret_key=secret, secure=False, region="us-east-1")


async def recreate_database(name: str) -> None:
    """Drop (disconnecting its users) and create a database owned by ``conveyor``."""
    conn = await asyncpg.connect(PG_SUPERUSER_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}" OWNER conveyor')
    finally:
        await conn.close()


async def delete_topics() -> None:
    """Delete every ``conveyor.*`` topic (services recreate them at start-up)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        for _ in range(100):
            ours = [t for t in await admin.list_topics() if t.startswith("conveyor.")]
            if not ours:
                return
            with contextlib.suppress(Exception):  # already being deleted
                await admin.delete_topics(ours)
            await asyncio.sleep(0.3)
        raise RuntimeError("Kafka did not delete the conveyor.* topics")
    finally:
        await admin.close()


def empty_bucket(bucket: str) -> None:
    """Remove every object of a bucket."""
    client = minio_client()
    if not client.bucket_exists(bucket):
        return
    for obj in client.list_objects(bucket, recursive=True):
        if obj.object_name and not obj.is_dir:
            client.remove_object(bucket, obj.object_name)


def reset(database: str) -> None:
    """Fresh database, topics and landing bucket."""
    asyncio.run(recreate_database(database))
    asyncio.run(delete_topics())
    empty_bucket("conveyor-landing")
