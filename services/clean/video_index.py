"""The duplicate-video index: each dataset's video fingerprints, mirrored in memory from Postgres.

Postgres holds every fingerprint (``clean.video_signatures``, ordered per dataset by the
asset's ``arrival``) and is the only source of truth. As for image hashes
(:mod:`services.clean.near_index`), a clean process keeps a copy per dataset and brings it up
to date under the dataset's advisory lock by reading only the rows with a newer arrival.

A lookup takes up to ``MAX_PROBES`` samples of the new clip and compares their hashes with
every indexed sample hash of the dataset (an XOR and a population count over one ``uint64``
array); the videos that at least ``MIN_PROBE_HITS`` probes come within ``CANDIDATE_RADIUS``
bits of are candidates, and :func:`~services.clean.checks.video.fingerprint.align` decides on
the few with most hits. Consecutive samples of a video whose hashes are within
``INDEX_STEP_BITS`` of the last indexed one are not indexed again (a still stretch adds one
hash, not one per sample), though the alignment still sees every sample.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.clean.checks.video.fingerprint import (
    Overlap,
    VideoSignature,
    align,
    informative,
)

CANDIDATE_RADIUS = 10  # bits between a probe and an indexed sample hash
MAX_PROBES = 32
MIN_PROBE_HITS = 2
MAX_CANDIDATES = 8  # videos aligned per lookup, most probe hits first
INDEX_STEP_BITS = 2


@dataclass(frozen=True)
class VideoMatch:
    """The earlier video a new one duplicates, and where."""

    asset_id: uuid.UUID
    arrival: int
    overlap: Overlap


@dataclass(frozen=True)
class StoredSignature:
    """One video of a dataset, as the index holds it."""

    arrival: int
    asset_id: uuid.UUID
    signature: VideoSignature


def distinct_samples(signature: VideoSignature) -> NDArray[np.intp]:
    """Indexes of the informative samples whose hash moved more than INDEX_STEP_BITS from the
    last one kept."""
    kept: list[int] = []
    last: int | None = None
    for index in np.flatnonzero(informative(signature.blocks)):
        value = int(signature.hashes[index])
        if last is None or (value ^ last).bit_count() > INDEX_STEP_BITS:
            kept.append(int(index))
            last = value
    return np.array(kept, dtype=np.intp)


class DatasetVideos:
    """One dataset's video fingerprints: the signatures, and their sample hashes in one flat
    growable array with the video each came from."""

    def __init__(self) -> None:
        self.videos: list[StoredSignature] = []
        self._size = 0
        self._hashes: NDArray[np.uint64] = np.empty(0, np.uint64)
        self._owners: NDArray[np.int32] = np.empty(0, np.int32)
        self.newest_arrival = 0  # rows up to this arrival are in the copy

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def indexed_hashes(self) -> int:
        """Sample hashes held for candidate search."""
        return self._size

    def add(self, stored: StoredSignature) -> None:
        """Append a video that arrived after everything already held."""
        owner = len(self.videos)
        self.videos.append(stored)
        chosen = stored.signature.hashes[distinct_samples(stored.signature)]
        needed = self._size + len(chosen)
        if needed > len(self._hashes):
            capacity = max(needed, 2 * len(self._hashes), 4096)
            self._hashes = np.concatenate(
                [self._hashes[: self._size], np.empty(capacity - self._size, np.uint64)]
            )
            self._owners = np.concatenate(
                [self._owners[: self._size], np.empty(capacity - self._size, np.int32)]
            )
        self._hashes[self._size : needed] = chosen
        self._owners[self._size : needed] = owner
        self._size = needed
        self.newest_arrival = max(self.newest_arrival, stored.arrival)

    def candidates(self, signature: VideoSignature) -> list[int]:
        """Videos (positions) that enough probes of ``signature`` hash-match, most hits first."""
        probes = distinct_samples(signature)
        if len(probes) == 0 or self._size == 0:
            return []
        if len(probes) > MAX_PROBES:
            probes = probes[np.linspace(0, len(probes) - 1, MAX_PROBES).round().astype(np.intp)]
        hashes, owners = self._hashes[: self._size], self._owners[: self._size]
        found: list[NDArray[np.int64]] = []
        for position, probe in enumerate(signature.hashes[probes]):
            rows = np.flatnonzero(np.bitwise_count(hashes ^ probe) <= CANDIDATE_RADIUS)
            # (video, probe) keys: a video counts each probe once
            found.append(np.unique(owners[rows]).astype(np.int64) * MAX_PROBES + position)
        keys = np.concatenate(found)
        if len(keys) == 0:
            return []
        videos, hits = np.unique(keys // MAX_PROBES, return_counts=True)
        needed = min(MIN_PROBE_HITS, len(probes))
        order = np.lexsort((videos, -hits))
        return [int(videos[i]) for i in order if hits[i] >= needed][:MAX_CANDIDATES]

    def find(self, signature: VideoSignature) -> VideoMatch | None:
        """The earlier video the new one duplicates: the longest shared footage, the first
        arrived among equals."""
        best: VideoMatch | None = None
        for position in self.candidates(signature):
            stored = self.videos[position]
            overlap = align(signature, stored.signature)
            if overlap is None:
                continue
            if best is None or (overlap.seconds, -stored.arrival) > (
                best.overlap.seconds,
                -best.arrival,
            ):
                best = VideoMatch(stored.asset_id, stored.arrival, overlap)
        return best

    @property
    def nbytes(self) -> int:
        """Memory held by the signatures and the flat arrays (about)."""
        held = sum(
            v.signature.times.nbytes
            + v.signature.hashes.nbytes
            + v.signature.blocks.nbytes
            + (0 if v.signature.fine is None else v.signature.fine.nbytes)
            for v in self.videos
        )
        return self._hashes.nbytes + self._owners.nbytes + held


class VideoIndex:
    """The in-memory copies of many datasets, least recently used dropped past ``max_bytes``
    in all (counted in bytes: a sample's size depends on what was stored with it)."""

    def __init__(self, max_bytes: int = 256 * 1024**2) -> None:
        self.max_bytes = max_bytes
        self._datasets: OrderedDict[uuid.UUID, DatasetVideos] = OrderedDict()

    def dataset(self, ident: uuid.UUID) -> DatasetVideos:
        """A dataset's copy (empty when not held yet); marks it as the most recently used."""
        held = self._datasets.get(ident)
        if held is None:
            held = self._datasets[ident] = DatasetVideos()
        self._datasets.move_to_end(ident)
        return held

    def trim(self) -> None:
        """Drop least recently used copies until the memory held is within ``max_bytes``; the
        copy in use last is kept whatever its size."""
        total = sum(d.nbytes for d in self._datasets.values())
        while total > self.max_bytes and len(self._datasets) > 1:
            _, dropped = self._datasets.popitem(last=False)
            total -= dropped.nbytes

    def forget(self, ident: uuid.UUID) -> None:
        """Drop a dataset's copy (e.g. after a failed transaction left it unsure)."""
        self._datasets.pop(ident, None)
