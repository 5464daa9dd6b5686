"""Request and response bodies of the ingest API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.ingest.domain import SLUG_PATTERN
from shared.auth import Role

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Names are shown and stored as text: no NUL (Postgres text cannot hold one) nor other
# control characters.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class DatasetCreate(BaseModel):
    """A new dataset."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, StringConstraints(pattern=SLUG_PATTERN)] = Field(
        description="URL-safe id: lowercase letters, digits, dashes (used as the landing folder)",
        examples=["cars"],
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE)] = (
        Field(examples=["Cars, front camera"])
    )


class DatasetOut(BaseModel):
    """A dataset."""

    id: uuid.UUID
    slug: str
    name: str
    created_by: str
    created_at: datetime


class DatasetPage(BaseModel):
    """One page of datasets; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[DatasetOut]
    next_cursor: str | None


class AssetOut(BaseModel):
    """An asset's metadata."""

    id: uuid.UUID
    dataset_slug: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    source: str
    uploaded_by: str
    tags: list[str]
    created_at: datetime
    parent_asset_id: uuid.UUID | None = Field(
        default=None, description="for a frame sampled from a video: the video asset"
    )
    frame_time_seconds: float | None = Field(
        default=None, description="for a frame: when it is shown in the video"
    )
    duplicate: bool = Field(
        default=False,
        description="True when these bytes were already an asset of the dataset (nothing stored)",
    )


class AssetDetail(AssetOut):
    """An asset with a time-limited download URL."""

    download_url: str
    download_url_expires_at: datetime


class AssetPage(BaseModel):
    """One page of assets; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[AssetOut]
    next_cursor: str | None


class UploadResult(BaseModel):
    """The assets an upload request produced or matched, in the order of the files sent."""

    items: list[AssetOut]


class HashLookup(BaseModel):
    """Which of these SHA-256 hashes are already assets of the dataset?"""

    model_config = ConfigDict(extra="forbid")

    sha256: list[Sha256Hex] = Field(max_length=1000)


class HashLookupResult(BaseModel):
    """Known hashes mapped to their asset ids (unknown hashes are absent)."""

    known: dict[str, uuid.UUID]


DatasetScope = Annotated[
    list[Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]] | None,
    Field(
        max_length=1000,
        description="slugs of the datasets the key may touch; null (the default): every dataset",
    ),
]


class ApiKeyCreate(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=PRINTABLE)]
    role: Role
    datasets: DatasetScope = None


class ApiKeyScope(BaseModel):
    """The datasets a key may touch."""

    model_config = ConfigDict(extra="forbid")

    datasets: DatasetScope


class ApiKeyOut(BaseModel):
    """An API key's metadata (never the key)."""

    id: uuid.UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    datasets: list[str] | None = Field(
        default=None, description="slugs of the datasets the key is limited to; null: all"
    )


class ApiKeyCreated(ApiKeyOut):
    """A new key: ``key`` is shown this once and cannot be retrieved later."""

    key: str


class ApiKeyList(BaseModel):
    """All API keys."""

    items: list[ApiKeyOut]


class Me(BaseModel):
    """Who the calling key belongs to."""

    key_id: str
    name: str
    role: Role
    datasets: list[uuid.UUID] | None = Field(
        default=None, description="ids of the datasets the key is limited to; null: all"
    )
