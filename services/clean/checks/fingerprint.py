"""Fingerprints for duplicate detection: exact pixel digests and 64-bit perceptual hashes.

Near duplicates are found by comparing a new image's hash with the hashes of every earlier
image of its dataset (:func:`near_match`, vectorized over NumPy arrays; the service keeps those
arrays in memory, see ``services/clean/near_index.py``). A full scan has no blind spots, so the
crop check below can look at candidates well beyond the near-duplicate radius at no extra cost
in the lookup itself.

Because the hash sets a bit where a coefficient is above the median of the 64, a hash (of an
image without exactly tied coefficients) has 32 bits set, and so distances come out even.

Crops. pHash sees the whole frame, so a crop that moves the frame's edges by more than about
2.5 % of a side moves the hash beyond the radius (a 10 % crop lands up to 30 bits away). Each image
therefore also gets :func:`crop_hashes`, the pHashes of 43 sub-regions (see ``CROP_REGIONS``),
and a pair whose full hashes are merely close (within ``CROP_CANDIDATE_RADIUS``) is a near
duplicate when one image's full hash is within ``CROP_MATCH_RADIUS`` of one of the other's crop
hashes (:func:`crop_distance`). :func:`near_match` holds that decision for every caller;
:func:`near_candidates` proposes the images a geometric check then confirms, scanning every
row's crop hashes so that 20 % crops, far from their original by full hash, are found too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

HASH_BITS = 64
# First cut, from generated images: resize 50 %, JPEG q40 and +-20 % brightness land within 8 bits,
# a centred 5 % crop within 10 bits for 98 % of images (12 at most); of 19,900 unrelated pairs the
# closest was 12 bits apart and all but 3 were 18 or more. 10 is also the radius imagededup uses
# for pHash.
NEAR_DUPLICATE_RADIUS = 10


Region = tuple[float, float, float, float]  # left, top, width, height, as fractions of the image


def _square_grid(keep: float, offsets: tuple[float, ...]) -> tuple[Region, ...]:
    """Regions keeping ``keep`` of each side, at every (left, top) pair of ``offsets``."""
    return tuple((left, top, keep, keep) for top in offsets for left in offsets)


# The sub-regions crop_hashes hashes. A crop keeping k of each side (0.90 <= k <= 1) at offset o
# (0 <= o <= 1 - k) has, on each axis, one of these regions or the full frame (k = 1) whose
# two edges both lie within 2.5 % of a side of the crop's edges: the 0.90 regions at offsets 0,
# 0.05, 0.10 leave an offset error of at most 0.025 for k = 0.90, the 0.95 regions at 0, 0.025,
# 0.05 one of at most 0.0125 for k = 0.95, and every k in between is at most 0.025 from 0.90,
# 0.95 or 1 (the worst case, 2.5 %, is a 2.5 % crop at a corner). 2.5 % is what a full hash
# already tolerates: a centred 5 % crop (2.5 % off each side) stays within 10 bits for 98 % of
# images. Measured on the clean corpus, the closest crop hash is within 6 bits of the copy's
# full hash for all 40 crops of 5 % and within 8 for all 40 of 10 %. A crop of one side only
# (say 10 % of the width, none of the height) is up to 5 % off on the uncut axis; 99 % of such
# random crops of the corpus's clean photos still match.
CROP_REGIONS: tuple[Region, ...] = (
    *_square_grid(0.90, (0.0, 0.05, 0.10)),
    *_square_grid(0.95, (0.0, 0.025, 0.05)),
    # Crops keeping 80-90 % of a side (a 20 % crop, often in a corner) are 5-10 % from every
    # region above on some edge, which moves a hash 16-40 bits. These keep 85 % at offsets 0, 5,
    # 10 and 15 %, and 80 % at the corners and the centre (offsets 0, 10 and 20 %). On the
    # near-copy corpus (two seeds), 98-100 % of 20 % crops and 96-100 % of 80-95 % crops
    # re-encoded or resized come within 10 bits of one of the 43 (67-87 % with the first 18
    # alone), while unrelated pairs within 10 bits go from 0.14-0.25 % to 0.28-0.37 %. The 85 %
    # regions alone (34 in all) found 0-4 % fewer, and leave an exact 80 % corner crop of a busy
    # picture 10-16 bits away; 80 % at 5 % steps as well (59 in all) found no more.
    *_square_grid(0.85, (0.0, 0.05, 0.10, 0.15)),
    *_square_grid(0.80, (0.0, 0.10, 0.20)),
)
# Reports stored before the 85 % and 80 % regions carry only the first 18 (the rest is then their
# full hash repeated, which never brings them closer than the full hash does).
OLD_CROP_REGIONS = 18
# A crop hash within 4 bits of the other image's full hash is a match. The limit trades crop
# recall against false matches, which matter more: a near duplicate is rejected by default, so a
# false match drops a good file. Measured on the clean corpus and on 1,500 unrelated throughput
# photos (1.1 M pairs, 20,879 of them within the candidate radius): at 4, no false match, and
# 36 of 40 10 % crops matched pair-wise (37 of 40 in arrival order, where a sibling copy can
# match too); at 6, 39 of 40, but one unrelated throughput pair matched; at 8, two pairs of
# sharp subjects on plain backdrops in the corpus matched as well.
CROP_MATCH_RADIUS = 4
# Full hashes this close are checked by crop distance. It only bounds the cost (the crop limit
# above keeps unrelated images apart on its own: even with no bound, no unrelated pair of the
# corpus matches) and it is what limits recall: a 10 % crop of a corpus photo moves the full
# hash p50 11, p90 18, max 22 bits, and one from a corner of a busy generated scene p50 20,
# p90 26, max 30. Within 22 bits lie 1.8 % of the corpus's unrelated pairs (0.5 % within 20,
# 5.3 % within 24, 13 % within 26): that is how many crop hash sets a lookup has to check.
CROP_CANDIDATE_RADIUS = 22

_HASH_SIDE = 32  # the DCT input is 32x32 and its lowest 8x8 frequencies make the hash
_LOW_FREQUENCIES = 8
_BLOCK_EDGES = np.linspace(0.0, 1.0, _HASH_SIDE + 1)  # block edges as fractions of a region
# The rows of the orthonormal 32-point DCT-II (as cv2.dct computes it) for the 8 lowest frequencies
_LOW_DCT = np.sqrt(np.where(np.arange(_LOW_FREQUENCIES)[:, None] == 0, 1.0, 2.0) / _HASH_SIDE) * (
    np.cos(
        np.pi
        * (2 * np.arange(_HASH_SIDE) + 1)
        * np.arange(_LOW_FREQUENCIES)[:, None]
        / (2 * _HASH_SIDE)
    )
)


def pixel_digest(pixels: NDArray[Any]) -> str:
    """SHA-256 over an image's decoded pixels, equal for equal pixels in any encoding.

    The pixels are first put in a canonical form so that storage choices that do not change
    the picture do not change the digest: a fully opaque alpha channel is dropped, and three
    identical colour channels count as one grayscale channel. The dtype and shape are hashed
    with the samples, so a reshaped buffer never collides with the original.
    """
    canonical = pixels
    if canonical.ndim == 3 and canonical.shape[2] == 4:
        alpha = canonical[:, :, 3]
        if np.all(alpha == np.iinfo(canonical.dtype).max):
            canonical = canonical[:, :, :3]
    if (
        canonical.ndim == 3
        and canonical.shape[2] == 3
        and np.array_equal(canonical[:, :, 0], canonical[:, :, 1])
        and np.array_equal(canonical[:, :, 0], canonical[:, :, 2])
    ):
        canonical = canonical[:, :, 0]
    canonical = np.ascontiguousarray(canonical)
    digest = hashlib.sha256(f"{canonical.dtype.str}:{canonical.shape}:".encode())
    digest.update(canonical.data)
    return digest.hexdigest()


def perceptual_hash(gray: NDArray[np.uint8]) -> int:
    """The 64-bit pHash of a grayscale image, as an unsigned int.

    The image is shrunk to 32x32, transformed with a 2-D DCT, and each of the 8x8 lowest
    frequencies becomes one bit: 1 where the coefficient is above their median. Low frequencies
    survive resizing, re-encoding and brightness changes, so near copies differ in few bits.
    Bit 63 is the DC coefficient; bits follow in row-major order.
    """
    small = cv2.resize(gray, (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    spectrum = cv2.dct(small.astype(np.float32))[:_LOW_FREQUENCIES, :_LOW_FREQUENCIES]
    bits = (spectrum > np.median(spectrum)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming_distance(first: int, second: int) -> int:
    """The number of bits in which two hashes differ."""
    return (first ^ second).bit_count()


def crop_hashes(gray: NDArray[np.uint8]) -> tuple[int, ...]:
    """The pHashes of the ``CROP_REGIONS`` of a grayscale image, unsigned like the full hash.

    Each is computed as :func:`perceptual_hash` of that region would be (32x32 area means,
    DCT, the 8x8 lowest frequencies against their median), so it compares directly with
    another image's full hash. The 32x32 means of all regions come from one integral image
    with block edges rounded to whole pixels, which costs about 0.25 ms for 18 regions of a
    512 px image (resizing each region with OpenCV costs 0.4 ms apiece); the rounding moves a
    hash by 0-2 bits from ``perceptual_hash`` of the same region. An image too small for every
    block to hold a pixel (a side under 36 px) is hashed region by region instead.
    """
    regions = np.asarray(CROP_REGIONS, dtype=np.float64)
    height, width = gray.shape[:2]
    xs = np.rint((regions[:, 0:1] + regions[:, 2:3] * _BLOCK_EDGES) * width).astype(np.intp)
    ys = np.rint((regions[:, 1:2] + regions[:, 3:4] * _BLOCK_EDGES) * height).astype(np.intp)
    block_widths, block_heights = np.diff(xs, axis=1), np.diff(ys, axis=1)
    if block_widths.min() < 1 or block_heights.min() < 1:
        return tuple(
            perceptual_hash(gray[top:bottom, left:right])
            for left, top, right, bottom in zip(
                xs[:, 0], ys[:, 0], xs[:, -1], ys[:, -1], strict=True
            )
        )
    table = cv2.integral(gray)  # (height + 1) x (width + 1) running sums
    corners = table[ys[:, :, None], xs[:, None, :]]
    sums = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]
    # rounded like the uint8 image cv2.resize hands perceptual_hash
    means = np.rint(sums / (block_heights[:, :, None] * block_widths[:, None, :]))
    spectrum = (_LOW_DCT @ means @ _LOW_DCT.T).reshape(len(regions), -1)
    bits = spectrum > np.median(spectrum, axis=1, keepdims=True)
    return tuple(int.from_bytes(row.tobytes(), "big") for row in np.packbits(bits, axis=1))


def crop_distance(
    full_a: int, crops_a: Iterable[int], full_b: int, crops_b: Iterable[int]
) -> int | None:
    """The smallest distance between one image's full hash and the other's crop hashes.

    Both directions count, since either image may be the crop of the other (and the copy may
    arrive before or after its original). None when neither image has crop hashes.
    """
    distances = [hamming_distance(full_a, crop) for crop in crops_b]
    distances += [hamming_distance(full_b, crop) for crop in crops_a]
    return min(distances, default=None)


class NearMatch(NamedTuple):
    """An earlier image found to be a near copy: its row, the distance, and which test matched.

    ``via`` is ``"full"`` when the full hashes are within the radius and ``"crop"`` when the
    match took the crop distance (``distance`` is then that crop distance).
    """

    row: int
    distance: int
    via: Literal["full", "crop"]


def near_match(
    phash: int,
    crops: Sequence[int],
    hashes: NDArray[np.uint64],
    crop_table: NDArray[np.uint64],
    radius: int = NEAR_DUPLICATE_RADIUS,
    crop_radius: int = CROP_MATCH_RADIUS,
    candidate_radius: int = CROP_CANDIDATE_RADIUS,
) -> NearMatch | None:
    """Which earlier image a new one (``phash``, ``crops``) is a near copy of, or None.

    ``hashes`` are the earlier images' full hashes in arrival order and ``crop_table`` their
    crop hashes, one row of ``len(CROP_REGIONS)`` per image (an image without crop hashes
    repeats its full hash there, which can never match: that distance is the full distance).
    The closest full hash within ``radius`` wins. Only when there is none, the images whose
    full hash is within ``candidate_radius`` are compared by :func:`crop_distance`, vectorized,
    and the closest within ``crop_radius`` (never looser than ``radius``) wins. Among equally
    close matches the first-arrived one wins, because the first copy is the one that is kept.
    Every comparison is an XOR and a population count over whole arrays: about 1-3 ms for a
    million earlier images on one core.
    """
    query = np.uint64(phash)
    full = np.bitwise_count(hashes ^ query)
    within = np.flatnonzero(full <= radius)
    if within.size:
        best = int(within[np.argmin(full[within])])  # argmin takes the first of equals
        return NearMatch(best, int(full[best]), "full")
    wide = np.flatnonzero(full <= candidate_radius)
    if not wide.size:
        return None
    closest = _closest_crops(query, crops, hashes[wide], crop_table[wide])
    pick = int(np.argmin(closest))
    if closest[pick] > min(crop_radius, radius):
        return None
    return NearMatch(int(wide[pick]), int(closest[pick]), "crop")


def _closest_crops(
    query: np.uint64,
    crops: Sequence[int],
    hashes: NDArray[np.uint64],
    crop_table: NDArray[np.uint64],
) -> NDArray[np.uint64]:
    """Per earlier image, the closest crop distance either way (see :func:`crop_distance`)."""
    closest: NDArray[np.uint64] = np.bitwise_count(crop_table ^ query).min(axis=1)
    if crops:
        own = np.asarray(crops, np.uint64)
        theirs = np.bitwise_count(hashes[:, None] ^ own[None, :]).min(axis=1)
        closest = np.minimum(closest, theirs)
    return closest


# Stage 1 of the verified search (see ``verification``): candidates are the earlier images whose
# full hash, or closest crop distance, is within VERIFY_RADIUS of the new one, looking at crop
# distances only for full hashes within VERIFY_CANDIDATE_RADIUS; at most MAX_CANDIDATES, the
# closest first. On the generated near-copy corpus, 14 bits kept 89-100 % of 20 % crops,
# rotations of 5 degrees and their combinations with JPEG q40-70 or a resize as candidates of
# their original (12 bits: 81-96 %); 16 bits found no more of them on that corpus, and drew
# 8 candidates per lookup (the bound) from 100 k random hashes instead of about 1.
# Verification, not the hash, keeps unrelated images apart; the bound of 8 keeps its cost
# (several ms per candidate) in check, at the price of recall where more than 8 other images
# come closer than the copy (siblings of one scene do).
# A 20 % corner crop lands 24-40 bits from its original's full hash, beyond any radius that
# keeps the full scan cheap, so every row's crop distances are also scanned, both ways, and a
# row whatever its full distance is a candidate within FAR_CROP_RADIUS of them: 10 bits (the
# near-duplicate radius) where the 85 % regions bring 94-98 % of those crops; 14 would let
# 1.7-2.0 % of unrelated pairs of the corpus in, the bound of 8 filled on every lookup.
VERIFY_RADIUS = 14
VERIFY_CANDIDATE_RADIUS = CROP_CANDIDATE_RADIUS
MAX_CANDIDATES = 8
FAR_CROP_RADIUS = NEAR_DUPLICATE_RADIUS


class Candidate(NamedTuple):
    """An earlier image worth verifying: its row and both of its hash distances."""

    row: int
    full: int  # full-hash distance
    crop: int  # closest crop distance, either way (the full distance when there are none)

    @property
    def distance(self) -> int:
        """The closer of the two."""
        return min(self.full, self.crop)

    @property
    def via(self) -> Literal["full", "crop"]:
        """Which hash brought it closer."""
        return "full" if self.full <= self.crop else "crop"

    def hash_match(self, radius: int = NEAR_DUPLICATE_RADIUS) -> bool:
        """Whether the hashes alone make it a near duplicate (the rule of :func:`near_match`)."""
        if self.full <= radius:
            return True
        return self.full <= CROP_CANDIDATE_RADIUS and self.crop <= min(CROP_MATCH_RADIUS, radius)


def near_candidates(
    phash: int,
    crops: Sequence[int],
    hashes: NDArray[np.uint64],
    crop_table: NDArray[np.uint64],
    limit: int = MAX_CANDIDATES,
    radius: int = VERIFY_RADIUS,
    candidate_radius: int = VERIFY_CANDIDATE_RADIUS,
    far_radius: int = FAR_CROP_RADIUS,
) -> list[Candidate]:
    """The earlier images (arrays as for :func:`near_match`) worth verifying, closest first.

    A row is a candidate when its full distance is within ``radius``, or its closest crop
    distance (either way) is within ``radius`` and its full distance within
    ``candidate_radius``, or its closest crop distance is within ``far_radius`` whatever its
    full distance. Ordered by the closer of full and crop distance, then by arrival; the rows
    the hashes alone would match (:meth:`Candidate.hash_match`) are always among them when
    there are no more than ``limit``.
    """
    query = np.uint64(phash)
    full = np.bitwise_count(hashes ^ query)
    far = _far_rows(query, crops, hashes, crop_table, min(far_radius, radius))
    rows = np.union1d(np.flatnonzero(full <= candidate_radius), far)
    if not rows.size:
        return []
    closest = _closest_crops(query, crops, hashes[rows], crop_table[rows])
    near = np.minimum(full[rows], closest)
    keep = np.flatnonzero(near <= radius)
    order = keep[np.lexsort((rows[keep], near[keep]))][:limit]
    return [Candidate(int(rows[i]), int(full[rows[i]]), int(closest[i])) for i in order]


_SCAN_ROWS = 8192  # rows per block of the crop scan: its temporaries stay within a few MB


def _far_rows(
    query: np.uint64,
    crops: Sequence[int],
    hashes: NDArray[np.uint64],
    crop_table: NDArray[np.uint64],
    far_radius: int,
) -> NDArray[np.intp]:
    """The rows with a crop distance within ``far_radius`` either way: the new image's full
    hash against their crop hashes, and its crop hashes against their full hash.

    Blocks of rows, each an XOR, a population count and a comparison over the block's
    (rows x crops) values, and only the hits' row numbers kept; about 2 x ``len(crops)``
    times the cost of the full-hash scan.
    """
    own = np.asarray(crops, np.uint64)
    found: list[NDArray[np.intp]] = []
    for start in range(0, len(hashes), _SCAN_ROWS):
        block = crop_table[start : start + _SCAN_ROWS]
        hits = np.flatnonzero(np.bitwise_count(block ^ query) <= far_radius) // block.shape[1]
        if own.size:
            theirs = hashes[start : start + _SCAN_ROWS, None] ^ own[None, :]
            hits = np.concatenate(
                (hits, np.flatnonzero(np.bitwise_count(theirs) <= far_radius) // own.size)
            )
        if hits.size:
            found.append(np.unique(hits) + start)
    return np.concatenate(found) if found else np.empty(0, np.intp)
