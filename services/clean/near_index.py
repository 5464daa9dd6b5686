"""The near-duplicate index: each dataset's perceptual hashes, mirrored in memory from Postgres.

Postgres holds every hash (``quality_reports.phash``, ordered per dataset by ``arrival``) and is
the only source of truth. A clean process keeps a copy of each dataset's hashes in flat NumPy
arrays and brings it up to date at the start of every lookup, while it holds the dataset's
advisory lock: it reads only the rows with an ``arrival`` above the newest one it has. Arrivals
are drawn under that same lock, so within a dataset they increase in commit order and "above the
newest I have" never skips a row another process wrote. A cold copy is read with one binary
``COPY`` (about a second for a million hashes); after that a refresh is one index range scan
that usually returns nothing.

A lookup (:func:`~services.clean.checks.near_match`) then compares the query with every hash of
the dataset: an XOR and a population count over a contiguous ``uint64`` array, about 1-3 ms per
million hashes on one core, plus the crop hashes of the few within the candidate radius. That is
a linear scan, so it has no blind spots. The same scan proposes the candidates that
verification with local features then confirms or refuses (:meth:`DatasetHashes.candidates`;
the features themselves stay in Postgres, read only for candidates); it also scans every
row's crop hashes, both ways, which costs about 2 x 43 full-hash scans. Memory is 376 bytes per
image (full hash, 43 crop hashes, arrival, asset id: 376 MB for a million); the least recently
used datasets are dropped when the total passes a limit and are read again when next needed.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from services.clean.checks import (
    CROP_CANDIDATE_RADIUS,
    CROP_MATCH_RADIUS,
    CROP_REGIONS,
    MAX_CANDIDATES,
    NEAR_DUPLICATE_RADIUS,
    Candidate,
    near_candidates,
    near_match,
)

CROPS = len(CROP_REGIONS)


@dataclass(frozen=True)
class Match:
    """The earlier asset a new one nearly duplicates."""

    asset_id: uuid.UUID
    arrival: int
    distance: int
    via: Literal["full", "crop"]


@dataclass(frozen=True)
class Proposed:
    """An earlier asset the hashes propose for verification (stage 1)."""

    asset_id: uuid.UUID
    arrival: int
    hashes: Candidate  # its full and crop distances


@dataclass(frozen=True)
class Shortlist:
    """Stage 1's answer for one image: its candidates among the copy's first ``scanned`` rows.

    Handed back to :meth:`DatasetHashes.shortlist`, only the rows added since are scanned:
    the service looks up a run's images once, before judging them (to read the candidates'
    features), and the images judged earlier in the same run are added to the copy after that.
    """

    scanned: int
    proposed: tuple[Proposed, ...]


@dataclass
class HashRows:
    """Rows in arrival order: arrivals, asset ids (16 bytes each), full and crop hashes.

    An image stored without crop hashes repeats its full hash in its crop row (never a match).
    """

    arrivals: NDArray[np.int64]
    asset_ids: NDArray[np.uint8]  # shape (n, 16): the UUIDs' bytes
    hashes: NDArray[np.uint64]
    crops: NDArray[np.uint64]  # shape (n, CROPS); an older, shorter grid padded with the full hash

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def one(cls, arrival: int, asset_id: uuid.UUID, phash: int, crops: Sequence[int]) -> HashRows:
        """A single row (crop hashes of an older, shorter grid are padded with the full hash)."""
        row = [*crops, *[phash] * (CROPS - len(crops))] if len(crops) <= CROPS else []
        if len(row) != CROPS:
            raise ValueError(f"{len(crops)} crop hashes: expected {CROPS} or fewer")
        return cls(
            arrivals=np.array([arrival], np.int64),
            asset_ids=np.frombuffer(asset_id.bytes, np.uint8).reshape(1, 16),
            hashes=np.array([phash], np.uint64),
            crops=np.array([row], np.uint64),
        )


class DatasetHashes:
    """One dataset's hashes in growable arrays (capacity doubles, so appends are cheap)."""

    def __init__(self) -> None:
        self._size = 0
        self._arrivals: NDArray[np.int64] = np.empty(0, np.int64)
        self._ids: NDArray[np.uint8] = np.empty((0, 16), np.uint8)
        self._hashes: NDArray[np.uint64] = np.empty(0, np.uint64)
        self._crops: NDArray[np.uint64] = np.empty((0, CROPS), np.uint64)
        self.newest_arrival = 0  # rows up to this arrival are in the copy

    def __len__(self) -> int:
        return self._size

    def extend(self, rows: HashRows) -> None:
        """Append rows that arrived after everything already held."""
        count = len(rows)
        if count == 0:
            return
        needed = self._size + count
        if needed > len(self._hashes):
            capacity = max(needed, 2 * len(self._hashes), 1024)
            self._arrivals = _grown(self._arrivals, capacity)
            self._ids = _grown(self._ids, capacity)
            self._hashes = _grown(self._hashes, capacity)
            self._crops = _grown(self._crops, capacity)
        end = self._size + count
        self._arrivals[self._size : end] = rows.arrivals
        self._ids[self._size : end] = rows.asset_ids
        self._hashes[self._size : end] = rows.hashes
        self._crops[self._size : end] = rows.crops
        self._size = end
        self.newest_arrival = max(self.newest_arrival, int(rows.arrivals[-1]))

    def nearest(
        self,
        phash: int,
        crops: Sequence[int],
        radius: int = NEAR_DUPLICATE_RADIUS,
        crop_radius: int = CROP_MATCH_RADIUS,
        candidate_radius: int = CROP_CANDIDATE_RADIUS,
    ) -> Match | None:
        """The earlier asset a new image nearly duplicates (see :func:`near_match`), or None."""
        size = self._size
        found = near_match(
            phash,
            crops,
            self._hashes[:size],
            self._crops[:size],
            radius=radius,
            crop_radius=crop_radius,
            candidate_radius=candidate_radius,
        )
        if found is None:
            return None
        row = found.row
        asset_id = uuid.UUID(bytes=self._ids[row].tobytes())
        return Match(asset_id, int(self._arrivals[row]), found.distance, found.via)

    def candidates(self, phash: int, crops: Sequence[int]) -> list[Proposed]:
        """The earlier assets worth verifying (see :func:`near_candidates`), closest first."""
        return list(self.shortlist(phash, crops).proposed)

    def shortlist(
        self, phash: int, crops: Sequence[int], earlier: Shortlist | None = None
    ) -> Shortlist:
        """:meth:`candidates`, scanning only the rows added since ``earlier`` (an answer for
        the same hashes) was found: the same candidates as a scan of every row, since those
        rows all arrived later than the ones it scanned."""
        size = self._size
        kept = earlier if earlier is not None and earlier.scanned <= size else None
        start = kept.scanned if kept is not None else 0
        found = near_candidates(
            phash, crops, self._hashes[start:size], self._crops[start:size], limit=MAX_CANDIDATES
        )
        fresh = [self._proposed(c._replace(row=c.row + start)) for c in found]
        merged = sorted(
            (*(kept.proposed if kept is not None else ()), *fresh),
            key=lambda p: (p.hashes.distance, p.arrival),
        )
        return Shortlist(size, tuple(merged[:MAX_CANDIDATES]))

    def _proposed(self, found: Candidate) -> Proposed:
        row = found.row
        return Proposed(uuid.UUID(bytes=self._ids[row].tobytes()), int(self._arrivals[row]), found)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(a.nbytes for a in (self._arrivals, self._ids, self._hashes, self._crops))


class NearIndex:
    """The in-memory copies of many datasets, least recently used dropped past ``max_hashes``."""

    def __init__(self, max_hashes: int = 2_000_000) -> None:
        self.max_hashes = max_hashes
        self._datasets: OrderedDict[uuid.UUID, DatasetHashes] = OrderedDict()

    def dataset(self, ident: uuid.UUID) -> DatasetHashes:
        """A dataset's copy (empty when not held yet); marks it as the most recently used."""
        held = self._datasets.get(ident)
        if held is None:
            held = self._datasets[ident] = DatasetHashes()
        self._datasets.move_to_end(ident)
        return held

    def trim(self) -> None:
        """Drop least recently used copies until the total is within ``max_hashes``."""
        total = sum(len(d) for d in self._datasets.values())
        while total > self.max_hashes and len(self._datasets) > 1:
            _, dropped = self._datasets.popitem(last=False)
            total -= len(dropped)

    def forget(self, ident: uuid.UUID) -> None:
        """Drop a dataset's copy (e.g. after a failed transaction left it unsure)."""
        self._datasets.pop(ident, None)


_Item = TypeVar("_Item", bound=np.generic)


def _grown(array: NDArray[_Item], capacity: int) -> NDArray[_Item]:
    grown = np.empty((capacity, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown
