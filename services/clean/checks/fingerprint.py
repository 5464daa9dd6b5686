"""Fingerprints for duplicate detection: exact pixel digests and 64-bit perceptual hashes.

Near-duplicate lookup uses multi-index hashing. The 64-bit hash is split into ``BAND_COUNT``
bands of ``BAND_BITS`` bits. If two hashes differ in at most ``r`` bits, then by the pigeonhole
principle at least one band differs in at most ``r // BAND_COUNT`` bits: were every band to differ
in ``r // BAND_COUNT + 1`` bits or more, the total would exceed ``r``. So an index of
``(band, band value)`` rows answers "every hash within r" exactly by probing, in each band, the
values within ``r // BAND_COUNT`` bits of the query's, then checking the full distance of the
candidates.

The trade-off: with 4 bands of 16 bits, r <= 3 needs one probe per band (4 keys); r <= 7 needs
1 + 16 = 17 probes per band (68 keys); r <= 11 needs 1 + 16 + 120 = 137 per band (548 keys);
r <= 15 needs 697 per band (2,788 keys). Each probe of a uniformly spread index of N hashes
returns about N / 2^16 candidates (15 at N = 1 M), so radius buys recall at a cost linear in the
number of probes. More, narrower bands make each probe less selective (8-bit bands return N / 256
rows per probe); bands of about log2(N) bits are the usual sweet spot (Norouzi et al., multi-index
hashing), so 16-bit bands suit datasets from tens of thousands to a few million images.

Because the hash sets a bit where a coefficient is above the median of the 64, a hash (of an
image without exactly tied coefficients) has 32 bits set, and so distances come out even.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from itertools import combinations
from typing import Any, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

HASH_BITS = 64
BAND_COUNT = 4
BAND_BITS = HASH_BITS // BAND_COUNT
# First cut, from generated images: resize 50 %, JPEG q40 and +-20 % brightness land within 8 bits,
# a centred 5 % crop within 10 bits for 98 % of images (12 at most); of 19,900 unrelated pairs the
# closest was 12 bits apart and all but 3 were 18 or more. 10 is also the radius imagededup uses
# for pHash, and costs 548 probe keys per lookup (see above).
NEAR_DUPLICATE_RADIUS = 10

_Key = TypeVar("_Key")

_BAND_MASK = (1 << BAND_BITS) - 1
_HASH_SIDE = 32  # the DCT input is 32x32 and its lowest 8x8 frequencies make the hash
_LOW_FREQUENCIES = 8


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


def band_keys(phash: int) -> tuple[tuple[int, int], ...]:
    """The ``(band, value)`` keys under which a hash is stored in a multi-index."""
    return tuple((band, (phash >> (band * BAND_BITS)) & _BAND_MASK) for band in range(BAND_COUNT))


def probe_keys(phash: int, radius: int = NEAR_DUPLICATE_RADIUS) -> tuple[tuple[int, int], ...]:
    """The ``(band, value)`` keys to look up to find every stored hash within ``radius`` bits.

    Complete by the pigeonhole argument in the module docstring; the candidates it returns still
    need their full :func:`hamming_distance` checked.
    """
    flips = _band_flips(radius // BAND_COUNT)
    return tuple((band, value ^ flip) for band, value in band_keys(phash) for flip in flips)


def nearest_within(
    phash: int, candidates: Iterable[tuple[_Key, int]], radius: int = NEAR_DUPLICATE_RADIUS
) -> tuple[_Key, int] | None:
    """The closest candidate within ``radius`` bits, as ``(key, distance)``, or None.

    ``candidates`` are ``(key, hash)`` pairs in arrival order; of equally close matches the
    first-arrived one wins, because the first copy is the one that is kept.
    """
    best: tuple[_Key, int] | None = None
    for key, other in candidates:
        distance = hamming_distance(phash, other)
        if distance <= radius and (best is None or distance < best[1]):
            best = (key, distance)
    return best


@cache
def _band_flips(bits: int) -> tuple[int, ...]:
    """Every band-wide mask with at most ``bits`` bits set, the empty mask first."""
    return tuple(
        sum(1 << position for position in positions)
        for weight in range(bits + 1)
        for positions in combinations(range(BAND_BITS), weight)
    )
