"""A video's fingerprint and the pure alignment of two fingerprints (no I/O).

The decode pass already reduces every frame to a 64 x 64 luma thumbnail. :class:`FrameHasher`
keeps a few of them as *samples*: the first frame at or after every ``SAMPLE_PERIOD`` seconds of
stream time (8 a second, whatever the frame rate, so a re-encode at another rate samples the
same moments), skipping the black and blank frames the scan already recognizes. Each sample
holds its timestamp, a 64-bit perceptual hash (DCT of the thumbnail, as the image pHash) and the
8 x 8 means of the thumbnail's 8 x 8-pixel blocks (64 bytes).

The hash finds candidates and votes for a time offset; the block means decide. A global hash
barely sees a person-sized subject on a still backdrop, so two static-camera clips of one place
hash alike frame by frame; block means see the subject (a tenth of the width moves several
blocks by tens of levels) while re-encoding and resizing move them by a level or two. A moment
of one clip falls between two samples of the other, so a block is compared with the range it
spans between them (see BLOCK_LEVEL) and ranked by the blend of the two, which finds the offset
to a fraction of the sampling period.

:func:`align` is the decision: the best offset by votes of hash-matching sample pairs, refined
and verified on block means, then the longest run of matching samples around it; a run shorter
than ``MIN_OVERLAP_SECONDS`` or than ``MIN_OVERLAP_SHARE`` of the shorter clip is no duplicate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

SAMPLE_PERIOD = 0.125  # seconds of stream time between samples
MAX_SAMPLES = 4800  # ten minutes at 8 a second; a longer video is fingerprinted by its start
BLOCKS = 8  # block means per side
FINE = 16  # block means per side of the finer grid, compared only for motion (see below)
# Pairs of samples whose hashes are within this many bits vote for their time offset, when
# they are also within VOTE_SLACK bits of the closest hash the query sample has in the other
# clip (its nearest moments, not every moment of a scene that hashes alike throughout).
VOTE_RADIUS = 12
VOTE_SLACK = 1
# A sample shows the same picture as the other clip at that moment when, after removing an
# overall level shift, at most MAX_CHANGED_BLOCKS of its 64 block means lie more than
# BLOCK_LEVEL levels outside the range the other clip's block spans between its two samples
# around that moment. A block of a still picture then has to match within BLOCK_LEVEL, while a
# block that the other clip's motion changes between its samples may take any value in
# between: the moment falls between two samples, and a pan of more than a block per sampling
# period is no linear blend of them.
# Each block also gets SHIFT_PIXELS of spatial slack: the change a shift of that many thumbnail
# pixels makes to it (its steepest step to a neighbouring block, over the block's width), since
# a resize or a moment between frames moves edges by a pixel or so.
BLOCK_LEVEL = 6.0
MAX_CHANGED_BLOCKS = 0
MOVING_BLOCKS = 2  # more blocks allowed to miss where this clip's own picture moves
SHIFT_PIXELS = 2.0
# A sample whose block means spread less than this says nothing (a near-flat picture): it
# neither votes nor counts as a match or a miss.
MIN_BLOCK_SPREAD = 4.0
# Motion: the finer grid (16 x 16 means of 4 x 4-pixel blocks) sees a subject a few thumbnail
# pixels wide that the 8 x 8 means average away. At the offset found, each sample's change over
# each of MOTION_WINDOWS before it (per fine block) is compared with the other clip's over the
# same moments: one clip frozen (no block changing by more than FROZEN_LEVEL) while the other
# surely moves (more than MAX_MOTION_BLOCKS blocks changing by more than MOTION_LEVEL beyond
# what its samples around those moments allow) is a miss that no run spans: a still of a
# slideshow held where the footage moves, or footage moving where a slideshow holds. Differences
# of one clip's own samples cancel what a re-encode or resize does to a block for good (blur, a
# level shift); a copy's picture is never frozen where its original moves, at any frame rate of
# 2 a second or more. The longer window sees a slow zoom, the shorter one a short hold.
MOTION_WINDOWS = (0.5, 1.0)
FROZEN_LEVEL = 3.0
MOTION_LEVEL = 5.0
MAX_MOTION_BLOCKS = 2
# Misses tolerated inside a run of matching samples (codec damage, a flash), in seconds.
MAX_GAP_SECONDS = 0.75
# Share of the samples inside a run that must match.
MIN_RUN_DENSITY = 0.8
# A duplicate shares at least this much footage: two seconds, and half the shorter clip.
MIN_OVERLAP_SECONDS = 2.0
MIN_OVERLAP_SHARE = 0.5
# Offsets tried around a voted one (its bin is a sampling period wide), then around the best.
_COARSE_STEPS = (-SAMPLE_PERIOD / 2, 0.0, SAMPLE_PERIOD / 2)
_REFINE_STEPS = tuple(float(s) for s in np.linspace(-SAMPLE_PERIOD / 4, SAMPLE_PERIOD / 4, 9))
_PEAKS = 3  # voted offsets verified per pair of clips


@dataclass(frozen=True, eq=False)
class VideoSignature:
    """A video's samples: ``times`` in seconds (stream time, or from the clip's start once
    :meth:`from_start` is applied), ``hashes`` (64-bit) and ``blocks`` (n x 64 block means),
    plus ``duration``, the seconds the clip lasts from its first frame (0 while unknown), and
    ``fine`` (n x 256 block means of the finer grid; None for signatures stored without it,
    which are then aligned without the motion check)."""

    times: NDArray[np.float64]
    hashes: NDArray[np.uint64]
    blocks: NDArray[np.uint8]
    duration: float = 0.0
    fine: NDArray[np.uint8] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoSignature):
            return NotImplemented
        return (
            self.duration == other.duration
            and np.array_equal(self.times, other.times)
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.blocks, other.blocks)
            and (
                self.fine is other.fine
                or (
                    self.fine is not None
                    and other.fine is not None
                    and np.array_equal(self.fine, other.fine)
                )
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def from_start(self, first_timestamp: float, duration: float) -> VideoSignature:
        """The same samples timed from the clip's first frame, with its duration."""
        return VideoSignature(
            self.times - first_timestamp, self.hashes, self.blocks, duration, self.fine
        )

    def pack(self) -> bytes:
        """The stored form: per sample, time in milliseconds (uint32), hash, 64 block means."""
        rows = np.empty(len(self), _PACKED)
        rows["ms"] = np.round(np.clip(self.times, 0, None) * 1000)
        rows["hash"] = self.hashes
        rows["blocks"] = self.blocks
        return rows.tobytes()

    def pack_fine(self) -> bytes | None:
        """The finer grid's stored form (256 bytes a sample, stored beside :meth:`pack`), or
        None when the signature has none."""
        return None if self.fine is None else np.ascontiguousarray(self.fine).tobytes()

    @classmethod
    def unpack(cls, data: bytes, duration: float, fine: bytes | None = None) -> VideoSignature:
        """Back from :meth:`pack` (and :meth:`pack_fine`, None for rows stored without it)."""
        if len(data) % _PACKED.itemsize:
            raise ValueError(f"a video signature of {len(data)} bytes is not whole samples")
        rows = np.frombuffer(data, _PACKED)
        grid: NDArray[np.uint8] | None = None
        if fine is not None:
            if len(fine) != len(rows) * FINE * FINE:
                raise ValueError(
                    f"{len(fine)} bytes of fine block means do not fit {len(rows)} samples"
                )
            grid = np.frombuffer(fine, np.uint8).reshape(len(rows), FINE * FINE).copy()
        return cls(
            rows["ms"].astype(np.float64) / 1000,
            rows["hash"].astype(np.uint64),
            np.ascontiguousarray(rows["blocks"]),
            duration,
            grid,
        )


_PACKED = np.dtype([("ms", "<u4"), ("hash", "<u8"), ("blocks", "u1", BLOCKS * BLOCKS)])


def frame_hash(thumbnail: NDArray[np.uint8]) -> int:
    """The 64-bit perceptual hash of a thumbnail: a 2-D DCT of it at 32 x 32, one bit per
    coefficient of the 8 x 8 lowest frequencies, set where it is above their median."""
    small = cv2.resize(thumbnail, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low)
    return int(np.packbits(bits).view(">u8")[0])


def block_means(thumbnail: NDArray[np.uint8], per_side: int = BLOCKS) -> NDArray[np.uint8]:
    """The thumbnail's ``per_side`` x ``per_side`` block means, rounded to whole levels, as one
    row (64 values for BLOCKS, 256 for FINE)."""
    side = thumbnail.shape[0] // per_side
    cut = thumbnail[: side * per_side, : side * per_side].astype(np.float32)
    means = cut.reshape(per_side, side, per_side, side).mean(axis=(1, 3))
    return np.asarray(np.round(means).ravel(), dtype=np.uint8)


class FrameHasher:
    """Collects a :class:`VideoSignature` from the decode pass, one frame at a time.

    Fed only frames with content (the scan leaves black and blank ones out), in decode order;
    a frame is sampled when it is the first at or after the next sampling time.
    """

    def __init__(self) -> None:
        self._next: float | None = None
        self._times: list[float] = []
        self._hashes: list[int] = []
        self._blocks: list[NDArray[np.uint8]] = []
        self._fine: list[NDArray[np.uint8]] = []

    def add(self, timestamp: float | None, thumbnail: NDArray[np.uint8]) -> None:
        """Consider one frame for a sample."""
        if timestamp is None or len(self._times) >= MAX_SAMPLES:
            return
        if self._next is not None and timestamp < self._next:
            return
        self._times.append(timestamp)
        self._hashes.append(frame_hash(thumbnail))
        self._blocks.append(block_means(thumbnail))
        self._fine.append(block_means(thumbnail, FINE))
        # the grid continues from the first sample, so a gap (black frames) skips grid points
        first = self._times[0]
        self._next = first + (math.floor((timestamp - first) / SAMPLE_PERIOD + 1e-9) + 1) * (
            SAMPLE_PERIOD
        )

    def signature(self) -> VideoSignature:
        """The samples collected so far (stream times)."""

        def rows(kept: list[NDArray[np.uint8]], per_side: int) -> NDArray[np.uint8]:
            if kept:
                return np.stack(kept)
            return np.empty((0, per_side * per_side), dtype=np.uint8)

        return VideoSignature(
            np.array(self._times, dtype=np.float64),
            np.array(self._hashes, dtype=np.uint64),
            rows(self._blocks, BLOCKS),
            fine=rows(self._fine, FINE),
        )


@dataclass(frozen=True)
class Overlap:
    """Where two clips show the same footage: ``start``-``end`` seconds of the new clip are
    ``other_start``-``other_end`` of the earlier one (``offset`` = other time - this time).
    ``matched`` samples matched out of ``compared`` inside the run."""

    start: float
    end: float
    other_start: float
    other_end: float
    offset: float
    matched: int
    compared: int

    @property
    def seconds(self) -> float:
        """The length of the shared footage."""
        return self.end - self.start


def hash_distances(first: NDArray[np.uint64], second: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Hamming distances of every hash of ``first`` to every hash of ``second`` (a matrix)."""
    return np.asarray(np.bitwise_count(first[:, None] ^ second[None, :]), dtype=np.uint8)


def informative(blocks: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Which samples show enough structure to be compared (see MIN_BLOCK_SPREAD)."""
    return np.asarray(blocks.astype(np.float32).std(axis=1) >= MIN_BLOCK_SPREAD)


def voted_offsets(query: VideoSignature, other: VideoSignature) -> list[float]:
    """Up to ``_PEAKS`` time offsets (other - query, seconds) that most hash-matching sample
    pairs agree on, best first; each sample votes once per offset bin, for the other clip's
    samples closest to it (VOTE_SLACK)."""
    useful_q, useful_o = informative(query.blocks), informative(other.blocks)
    if not useful_q.any() or not useful_o.any():
        return []
    distances = hash_distances(query.hashes[useful_q], other.hashes[useful_o])
    within = distances <= VOTE_RADIUS
    # a sample votes only for the offsets of its closest hashes: over a still backdrop every
    # sample is within VOTE_RADIUS of every other, and would vote for every offset alike
    closest = np.where(within, distances, np.uint8(255)).min(axis=1, keepdims=True)
    rows, cols = np.nonzero(within & (distances <= closest.astype(np.int16) + VOTE_SLACK))
    if len(rows) == 0:
        return []
    offsets = other.times[useful_o][cols] - query.times[useful_q][rows]
    bins = np.round(offsets / SAMPLE_PERIOD).astype(np.int64)
    # one vote per (query sample, bin): a still stretch of the other clip cannot stuff a bin
    pairs = np.unique(np.stack([bins, rows]), axis=1)
    values, counts = np.unique(pairs[0], return_counts=True)
    # neighbouring bins share a peak: a true offset between two bins splits its votes
    padded = np.zeros(len(values), dtype=np.int64)
    for shift in (-1, 0, 1):
        where = np.searchsorted(values, values + shift)
        present = (where < len(values)) & (
            values[np.minimum(where, len(values) - 1)] == values + shift
        )
        padded[present] += counts[where[present]]
    order = np.argsort(-padded, kind="stable")
    peaks: list[float] = []
    for index in order:
        offset = float(values[index]) * SAMPLE_PERIOD
        if all(abs(offset - p) > SAMPLE_PERIOD * 1.5 for p in peaks):
            peaks.append(offset)
        if len(peaks) == _PEAKS:
            break
    return peaks


def blocks_at(
    signature: VideoSignature, times: NDArray[np.float64], grid: NDArray[np.uint8] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """The clip's block means (or ``grid``, per-sample rows of another grid) at ``times``,
    interpolated between the samples around each; the lowest and highest of those two samples'
    values per block; and whether each time could be read (inside the clip, with samples close
    enough around it)."""
    sample_times = signature.times
    count = len(sample_times)
    after = np.searchsorted(sample_times, times)
    before = np.clip(after - 1, 0, count - 1)
    after = np.clip(after, 0, count - 1)
    t0, t1 = sample_times[before], sample_times[after]
    span = t1 - t0
    weight = np.clip(np.where(span > 0, (times - t0) / np.where(span > 0, span, 1.0), 0.0), 0, 1)
    blocks = (signature.blocks if grid is None else grid).astype(np.float32)
    first, second = blocks[before], blocks[after]
    values = first + (second - first) * weight[:, None].astype(np.float32)
    inside = (times >= sample_times[0] - SAMPLE_PERIOD / 2) & (
        times <= sample_times[-1] + SAMPLE_PERIOD / 2
    )
    near = np.minimum(np.abs(times - t0), np.abs(times - t1))
    # only across one sampling period; a gap (skipped black frames) reads nothing
    readable = inside & ((span <= SAMPLE_PERIOD * 1.6) | (near <= SAMPLE_PERIOD / 4))
    return values, np.minimum(first, second), np.maximum(first, second), readable


def shift_slack(blocks: NDArray[np.float32], per_side: int = BLOCKS) -> NDArray[np.float32]:
    """Per block (rows of block means, ``per_side`` a side), how much a shift of SHIFT_PIXELS
    changes it."""
    grid = blocks.reshape(-1, per_side, per_side)
    steepest = np.zeros_like(grid)
    across = np.abs(np.diff(grid, axis=2))
    down = np.abs(np.diff(grid, axis=1))
    steepest[:, :, 1:] = np.maximum(steepest[:, :, 1:], across)
    steepest[:, :, :-1] = np.maximum(steepest[:, :, :-1], across)
    steepest[:, 1:, :] = np.maximum(steepest[:, 1:, :], down)
    steepest[:, :-1, :] = np.maximum(steepest[:, :-1, :], down)
    side = 64 / per_side  # thumbnail pixels per block
    flat = steepest.reshape(-1, per_side * per_side)
    return np.asarray(flat * (SHIFT_PIXELS / side), np.float32)


def own_motion(blocks: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Per sample and block, how far the block moves to the sample before or after it."""
    values = blocks.astype(np.float32)
    step = np.abs(np.diff(values, axis=0))
    motion = np.zeros_like(values)
    motion[1:] = step
    motion[:-1] = np.maximum(motion[:-1], step)
    return motion


def sample_matches(
    query: VideoSignature, other: VideoSignature, offset: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], float]:
    """For each query sample at ``offset``: whether it could be compared and whether it shows
    the same picture (BLOCK_LEVEL, MAX_CHANGED_BLOCKS); and the mean distance of the compared
    ones to the interpolated blocks (to rank offsets with equal matches)."""
    values, low, high, readable = blocks_at(other, query.times + offset)
    compared = readable & informative(query.blocks)
    mine = query.blocks.astype(np.float32)
    shift = np.median(mine - values, axis=1, keepdims=True)  # an overall level shift
    mine = mine - shift
    outside = np.maximum(low - mine, mine - high) > BLOCK_LEVEL + shift_slack(values)
    changed = np.count_nonzero(outside, axis=1)
    # a block may miss where this clip's own picture moves (a subject crossing it between
    # the other clip's samples), never where it stands still (a still of a slideshow)
    moving = own_motion(query.blocks) > BLOCK_LEVEL
    excused = np.count_nonzero(outside & moving, axis=1)
    same = compared & (
        (changed <= MAX_CHANGED_BLOCKS)
        | (
            (changed <= MAX_CHANGED_BLOCKS + MOVING_BLOCKS)
            & (changed - excused <= MAX_CHANGED_BLOCKS)
        )
    )
    distance = np.abs(mine - values)
    mean = float(distance[compared].mean()) if compared.any() else math.inf
    return compared, same, mean


def motion_agrees(query: VideoSignature, other: VideoSignature, offset: float) -> NDArray[np.bool_]:
    """For each query sample at ``offset``: False where one clip is frozen over a motion window
    before it while the other surely moves (see MOTION_WINDOWS); True where they agree or it
    cannot be checked (no finer grid on either side, no sample a window earlier, a moment the
    other clip cannot read)."""
    agrees = np.ones(len(query), dtype=np.bool_)
    if query.fine is None or other.fine is None:
        return agrees
    mine = query.fine.astype(np.float32)
    for window in MOTION_WINDOWS:
        back = round(window / SAMPLE_PERIOD)
        if len(query) <= back:
            continue
        now, then = np.arange(back, len(query)), np.arange(len(query) - back)
        times = query.times
        # a window across a gap (skipped black frames) is no window
        whole = np.abs(times[now] - times[then] - window) <= SAMPLE_PERIOD / 2
        _, low, high, read_now = blocks_at(other, times[now] + offset, other.fine)
        _, low_then, high_then, read_then = blocks_at(other, times[then] + offset, other.fine)
        change = mine[now] - mine[then]
        least, most = low - high_then, high - low_then  # the changes the other clip allows
        # a flicker or exposure drift moves every block alike
        change = change - np.median(change - (least + most) / 2, axis=1, keepdims=True)
        beyond = np.maximum(least - change, change - most) > MOTION_LEVEL
        moves = np.count_nonzero(beyond, axis=1) > MAX_MOTION_BLOCKS
        frozen = np.abs(change).max(axis=1) <= FROZEN_LEVEL
        other_frozen = np.maximum(np.abs(least), np.abs(most)).max(axis=1) <= FROZEN_LEVEL
        contradicted = (frozen | other_frozen) & moves
        agrees[now] &= ~(whole & read_now & read_then & contradicted)
    return agrees


def best_run(
    times: NDArray[np.float64],
    compared: NDArray[np.bool_],
    same: NDArray[np.bool_],
    breaks: NDArray[np.bool_] | None = None,
) -> tuple[int, int, int, int] | None:
    """The longest stretch (first and last sample index, matches, compared samples) whose
    samples match with misses of at most MAX_GAP_SECONDS between matches and no ``breaks``
    (samples whose motion contradicts the other clip's: no codec damage, but other footage),
    trimmed to start and end on a match, and dense enough (MIN_RUN_DENSITY)."""
    matched = np.flatnonzero(same)
    if len(matched) == 0:
        return None
    broken = np.cumsum(breaks if breaks is not None else np.zeros(len(same), np.bool_))
    best: tuple[int, int, int, int] | None = None
    start = matched[0]
    for position, index in enumerate(matched):
        closing = position + 1 == len(matched) or (
            times[matched[position + 1]] - times[index] > MAX_GAP_SECONDS + SAMPLE_PERIOD
            or broken[matched[position + 1]] > broken[index]
        )
        if not closing:
            continue
        hits = int(np.count_nonzero(same[start : index + 1]))
        looked = int(np.count_nonzero(compared[start : index + 1]))
        if hits >= MIN_RUN_DENSITY * looked and (
            best is None or times[index] - times[start] > times[best[1]] - times[best[0]]
        ):
            best = (int(start), int(index), hits, looked)
        if position + 1 < len(matched):
            start = matched[position + 1]
    return best


def align(query: VideoSignature, other: VideoSignature) -> Overlap | None:
    """Where ``query`` (the new clip) shows footage of ``other`` (an earlier one), if they share
    enough of it to be duplicates; both signatures timed from their clip's start."""
    if len(query) == 0 or len(other) == 0:
        return None
    best: tuple[tuple[int, int, float], Overlap] | None = None
    enough = MIN_OVERLAP_SECONDS / SAMPLE_PERIOD * MIN_RUN_DENSITY  # matches a duplicate needs
    for voted in voted_offsets(query, other):
        # three offsets across the vote's bin first: most unrelated pairs stop here
        ranked = [_tried(query, other, voted + step) for step in _COARSE_STEPS]
        ranked.sort(key=lambda r: (r[0], r[1]))
        if -ranked[0][0] < enough:
            continue
        coarse = ranked[0][2]
        ranked += [_tried(query, other, coarse + step) for step in _REFINE_STEPS]
        ranked.sort(key=lambda r: (r[0], r[1]))
        _, mean, offset, compared, same = ranked[0]
        agrees = motion_agrees(query, other, offset)
        run = best_run(query.times, compared, same & agrees, ~agrees)
        if run is None:
            continue
        first, last, hits, looked = run
        overlap = _overlap(query, other, offset, first, last, hits, looked)
        # the longest footage (to a sampling period: the ends are no finer); among equals the
        # offset more samples match, then the closest blocks
        rank = (round(overlap.seconds / SAMPLE_PERIOD), hits, -mean)
        if best is None or rank > best[0]:
            best = (rank, overlap)
    if best is None:
        return None
    overlap = best[1]
    shorter = min(_length(query), _length(other))
    if overlap.seconds < MIN_OVERLAP_SECONDS or overlap.seconds < MIN_OVERLAP_SHARE * shorter:
        return None
    return overlap


def _tried(
    query: VideoSignature, other: VideoSignature, offset: float
) -> tuple[int, float, float, NDArray[np.bool_], NDArray[np.bool_]]:
    """An offset's rank key (fewest misses first, then closest blocks) and its matches."""
    compared, same, mean = sample_matches(query, other, offset)
    return -int(np.count_nonzero(same)), mean, offset, compared, same


def _length(signature: VideoSignature) -> float:
    """The clip's duration, or its samples' span when it is unknown."""
    return signature.duration or float(signature.times[-1]) + SAMPLE_PERIOD


def _overlap(
    query: VideoSignature,
    other: VideoSignature,
    offset: float,
    first: int,
    last: int,
    hits: int,
    looked: int,
) -> Overlap:
    """The time ranges of a run: a run that reaches a clip's first or last sample reaches its
    start or end; elsewhere it starts and ends half a period beyond its outer matches."""
    start = float(query.times[first])
    if first == 0 and start < SAMPLE_PERIOD:
        start = 0.0
    elif first > 0:  # the footage begins somewhere between this sample and the one before
        start -= SAMPLE_PERIOD / 2
    end = float(query.times[last]) + SAMPLE_PERIOD / 2
    if last == len(query) - 1 and query.duration:
        end = query.duration
    other_start = max(0.0, start + offset)
    other_end = min(_length(other), end + offset)
    # the shared footage is what both clips hold
    start, end = other_start - offset, other_end - offset
    return Overlap(
        round(start, 3),
        round(end, 3),
        round(other_start, 3),
        round(other_end, 3),
        round(offset, 3),
        hits,
        looked,
    )
