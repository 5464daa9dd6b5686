"""Clean settings (env prefix ``CONVEYOR_CLEAN_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings


class CleanSettings(ServiceSettings):
    """Settings of the clean service."""

    service_name: ClassVar[str] = "clean"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_CLEAN_", extra="ignore")

    port: int = endpoints.CLEAN_PORT
    ingest_url: str = endpoints.INGEST_URL
    consumer_group: str = "conveyor-clean"
    # Images are read whole into memory for decoding; larger ones are rejected unread.
    max_image_bytes: int = 256 * 1024 * 1024
    # Frames of accepted videos sampled into conveyor-derived as child image assets.
    frame_every_seconds: float = 1.0
    frame_scene_change: float | None = 30.0
    max_frames_per_video: int = 300
    # Assets judged per transaction, and files read and analysed at the same time.
    batch_size: int = Field(default=32, ge=1, le=500)
    analysis_threads: int = Field(default=2, ge=1, le=32)
    # Memory the image decodes of all analysis threads may hold at once (estimated from each
    # header before decoding); a larger image is decoded alone. See bench/clean_memory.py.
    decode_memory_mb: int = Field(default=768, ge=64)
    # Perceptual hashes kept in memory for near-duplicate lookups (176 bytes each), all datasets.
    near_index_max_hashes: int = Field(default=2_000_000, ge=1)
    # Re-analysis jobs (admin): files measured at once, beside the consumer's analysis_threads
    # (kept low so the live stream is not starved), reports per checkpoint, and how often a
    # process looks for jobs (queued by another copy, or left running by one that died).
    reanalysis_concurrency: int = Field(default=1, ge=1, le=16)
    reanalysis_page: int = Field(default=16, ge=1, le=500)
    reanalysis_poll_seconds: float = Field(default=5.0, gt=0)
