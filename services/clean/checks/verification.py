"""Geometric verification of near-duplicate candidates: local features, a fitted transform and a
comparison of the aligned pictures.

The hashes (``fingerprint``) only propose candidates; they cannot tell a 20 % corner crop from
an unrelated picture with similar coarse layout, nor the same street with other cars from a
copy. Verification answers both:

1. :func:`image_features` keeps, per comparable image, up to ``MAX_KEYPOINTS`` ORB keypoints
   (position as a fraction of the long side, 32-byte descriptor) and a small grayscale
   thumbnail, packed in a few KB (:meth:`Features.packed`), so a candidate is verified from
   what is stored, never from its file.
2. :func:`verify` matches descriptors (nearest two, ratio test), fits a similarity transform
   (rotation, uniform scale, shift) with RANSAC and checks it is one an edit makes: scale and
   rotation within limits, the two frames overlapping over most of each.
3. The transform then maps one thumbnail onto the other, brightness and contrast are fitted,
   and the share of the overlap whose picture differs is measured. A copy differs only where
   a watermark or compression touched it; a sibling photo (other cars, another product, other
   text in the same template) differs where its subject is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

MAX_KEYPOINTS = 256
THUMBNAIL_SIDE = 96  # long side of the stored thumbnail
THUMBNAIL_QUALITY = 90  # stored as a JPEG: 2-3 KB instead of 7, off by a level or two
_FORMAT = 1
_HEADER = struct.Struct(">BHHHH")  # format, width, height, keypoints, thumbnail bytes
_COORD_SCALE = 65535.0

# Matching: Lowe's ratio test on the nearest two descriptors.
RATIO = 0.8
# RANSAC tolerance, as a fraction of the long side (about 5 px at 512).
REPROJECTION = 0.01
MIN_INLIERS = 15
# The transform an edit can make (coordinates are fractions of each image's long side, so a
# resize is scale 1 and a crop keeping 80 % of the long side scale 0.8 or 1.25).
MAX_SCALE_CHANGE = 1.45
MAX_ROTATION_DEGREES = 10.0
MIN_OVERLAP = 0.5  # of each frame's area
# Content: a thumbnail pixel differs when it is more than PIXEL_DIFFERENCE levels from the
# aligned, brightness-fitted other (both lightly blurred); what stays after an opening with an
# OPENING-pixel square is a changed blob (a car, a piece of furniture, a product), while the
# thin strokes of a watermark's text and single pixels on misaligned edges go. A copy may
# differ over MAX_CHANGED of the overlap. On the generated corpus: copies 0-0.018 (p90;
# one large opaque watermark 0.069), siblings with other cars or furniture 0.048 and up.
PIXEL_DIFFERENCE = 20.0
OPENING = 3
MAX_CHANGED = 0.035
# A text watermark is tolerated on top of that (see ``_beyond_watermark``): its changed pixels
# in one band of WATERMARK_BAND of the height, at least WATERMARK_ONE_WAY of them moved the
# same way, at most MAX_WATERMARK of the overlap.
WATERMARK_BAND = 0.25
WATERMARK_ONE_WAY = 0.97
MAX_WATERMARK = 0.16
# Guided matching: of the keypoints inside the overlap, the share with a keypoint of the other
# image within GUIDED_RADIUS of the mapped place (a fraction of the long side, about 6 px at
# 512) and GUIDED_BITS of descriptor distance. Copies (crops, rotations, q40) score 0.31 and
# up on the generated corpus; a template screenshot with other text 0.20 at most.
GUIDED_RADIUS = 0.012
GUIDED_BITS = 80
MIN_COVERAGE = 0.27

_orb = cv2.ORB.create(nfeatures=MAX_KEYPOINTS, fastThreshold=12)
_matcher = cv2.BFMatcher(cv2.NORM_HAMMING)


@dataclass(frozen=True)
class Features:
    """What verification needs of one image: keypoints, descriptors and a thumbnail."""

    width: int  # of the image the keypoints were found on
    height: int
    points: NDArray[np.float32]  # (n, 2), fractions of the long side
    descriptors: NDArray[np.uint8]  # (n, 32)
    thumbnail: NDArray[np.uint8]  # long side THUMBNAIL_SIDE

    def packed(self) -> bytes:
        """The stored form: a header, 16-bit coordinates, descriptors, the thumbnail (JPEG)."""
        quality = [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY]
        thumbnail = cv2.imencode(".jpg", self.thumbnail, quality)[1].tobytes()
        count = len(self.points)
        header = _HEADER.pack(_FORMAT, self.width, self.height, count, len(thumbnail))
        coords = np.rint(np.clip(self.points, 0, 1) * _COORD_SCALE).astype(">u2")
        descriptors = np.ascontiguousarray(self.descriptors).tobytes()
        return bytes(header + coords.tobytes() + descriptors + thumbnail)

    @classmethod
    def unpacked(cls, data: bytes) -> Features:
        """Back from :meth:`packed`; ValueError for anything else."""
        if len(data) < _HEADER.size:
            raise ValueError("stored features are shorter than their header")
        version, width, height, count, thumbnail_bytes = _HEADER.unpack_from(data)
        if version != _FORMAT or len(data) != _HEADER.size + count * 36 + thumbnail_bytes:
            raise ValueError("stored features do not have the expected layout")
        at = _HEADER.size
        coords = np.frombuffer(data, ">u2", count * 2, at).reshape(count, 2)
        at += count * 4
        descriptors = np.frombuffer(data, np.uint8, count * 32, at).reshape(count, 32)
        at += count * 32
        encoded = np.frombuffer(data, np.uint8, thumbnail_bytes, at)
        thumbnail = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if thumbnail_bytes else None
        if thumbnail is None:
            raise ValueError("stored features have an unreadable thumbnail")
        points = (coords.astype(np.float32) / _COORD_SCALE).astype(np.float32)
        return cls(width, height, points, descriptors, np.asarray(thumbnail, np.uint8))

    @property
    def frame(self) -> tuple[float, float]:
        """The frame's width and height as fractions of its long side."""
        long = max(self.width, self.height)
        return self.width / long, self.height / long


def image_features(gray: NDArray[np.uint8]) -> Features:
    """Keypoints and thumbnail of a (normalized, at most 512 px) grayscale image."""
    height, width = gray.shape[:2]
    long = max(width, height)
    keypoints, found = _orb.detectAndCompute(gray, None)
    points = np.empty((0, 2), np.float32)
    descriptors = np.empty((0, 32), np.uint8)
    if found is not None and keypoints:
        points = (np.array([k.pt for k in keypoints], np.float32) / long).astype(np.float32)
        descriptors = np.asarray(found, np.uint8)
    side = THUMBNAIL_SIDE / long
    size = (max(1, round(width * side)), max(1, round(height * side)))
    thumbnail = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), np.uint8)
    return Features(width, height, points, descriptors, thumbnail)


@dataclass(frozen=True)
class Verification:
    """The outcome of comparing two images' features, with the figures behind it."""

    same: bool
    inliers: int
    matches: int
    scale: float = 0.0
    degrees: float = 0.0
    overlap: float = 0.0  # the smaller of the two frames' shares covered by the other
    coverage: float = 0.0  # inliers over the keypoints inside the overlap (the fewer side)
    changed: float = 1.0  # share of the overlap whose picture differs
    reason: str = ""


def verifiable(features: Features) -> bool:
    """Whether an image has keypoints enough to be verified (else the hashes decide alone)."""
    return len(features.points) >= MIN_INLIERS


def verify(new: Features, old: Features) -> Verification:
    """Whether ``new`` is an edited copy of ``old`` (or the other way round)."""
    if not verifiable(new) or not verifiable(old):
        return Verification(False, 0, 0, reason="too few keypoints")
    pairs = _matcher.knnMatch(new.descriptors, old.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return Verification(False, 0, len(good), reason="too few matches")
    source = new.points[[m.queryIdx for m in good]]
    target = old.points[[m.trainIdx for m in good]]
    fitted, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION, maxIters=2000
    )
    inliers = int(mask.sum()) if mask is not None else 0
    if fitted is None or inliers < MIN_INLIERS:
        return Verification(False, inliers, len(good), reason="too few inliers")
    matrix = np.asarray(fitted, np.float64)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    degrees = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
    found = Verification(False, inliers, len(good), scale, degrees)
    if not 1 / MAX_SCALE_CHANGE <= scale <= MAX_SCALE_CHANGE:
        return replace(found, reason="scale out of range")
    if abs(degrees) > MAX_ROTATION_DEGREES:
        return replace(found, reason="rotation out of range")
    overlap, changed, band = _compare(new, old, matrix)
    if overlap < MIN_OVERLAP:
        return replace(found, overlap=overlap, reason="frames overlap too little")
    # keypoints on a tolerated watermark are the watermark's, not the picture's: not counted
    mapped = new.points @ matrix[:, :2].T + matrix[:, 2]
    coverage = min(
        _explained(new, old, matrix, _within(mapped[:, 1], band)),
        _explained(old, new, _inverse(matrix), _within(old.points[:, 1], band)),
    )
    same = changed <= MAX_CHANGED and coverage >= MIN_COVERAGE
    reason = "" if same else "the pictures differ"
    return replace(
        found, same=same, overlap=overlap, coverage=coverage, changed=changed, reason=reason
    )


def _inverse(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(cv2.invertAffineTransform(matrix), np.float64)


def _within(rows: NDArray[np.floating[Any]], band: tuple[float, float] | None) -> NDArray[np.bool_]:
    """Which of the places (rows as fractions of the long side) lie in ``band``."""
    if band is None:
        return np.zeros(len(rows), bool)
    return np.asarray((rows >= band[0]) & (rows <= band[1]), bool)


def _explained(
    source: Features, target: Features, matrix: NDArray[np.float64], skip: NDArray[np.bool_]
) -> float:
    """Share of ``source``'s keypoints inside ``target``'s frame (under ``matrix``), but not
    ``skip``, that have a keypoint of ``target`` at the mapped place with a similar descriptor
    (guided matching: no ratio test, so repeated patterns such as windows or letters count)."""
    mapped = source.points @ matrix[:, :2].T + matrix[:, 2]
    width, height = target.frame
    inside = (
        ~skip
        & (mapped[:, 0] >= 0)
        & (mapped[:, 0] <= width)
        & (mapped[:, 1] >= 0)
        & (mapped[:, 1] <= height)
    )
    if inside.sum() < MIN_INLIERS:
        return 0.0
    points = mapped[inside]
    near = np.linalg.norm(points[:, None, :] - target.points[None, :, :], axis=2) <= GUIDED_RADIUS
    rows, cols = np.nonzero(near)
    ours = source.descriptors[inside][rows].view(np.uint64)
    theirs = target.descriptors[cols].view(np.uint64)
    bits = np.bitwise_count(ours ^ theirs).sum(axis=1)
    explained = np.zeros(len(points), bool)
    explained[rows[bits <= GUIDED_BITS]] = True
    return float(explained.mean())


def _compare(
    new: Features, old: Features, matrix: NDArray[np.float64]
) -> tuple[float, float, tuple[float, float] | None]:
    """Overlap of the frames, share of the overlap that differs, and the rows of ``old`` a
    tolerated watermark covers (fractions of its long side), on the thumbnails."""
    # matrix maps new's long-side fractions to old's; in thumbnail pixels that is
    # T_old * matrix * T_new^-1 with T = scale by the thumbnail's long side.
    new_side, old_side = max(new.thumbnail.shape), max(old.thumbnail.shape)
    to_old = matrix.copy()
    to_old[:, :2] *= old_side / new_side
    to_old[:, 2] *= old_side
    oh, ow = old.thumbnail.shape
    nh, nw = new.thumbnail.shape
    blurred_new = cv2.GaussianBlur(new.thumbnail.astype(np.float32), (0, 0), 1.0)
    blurred_old = cv2.GaussianBlur(old.thumbnail.astype(np.float32), (0, 0), 1.0)
    warped = np.asarray(
        cv2.warpAffine(blurred_new, to_old, (ow, oh), flags=cv2.INTER_LINEAR), np.float32
    )
    inside = cv2.warpAffine(np.ones((nh, nw), np.uint8), to_old, (ow, oh), flags=cv2.INTER_NEAREST)
    covered_old = float(inside.mean())
    # the share of new's frame that lands inside old's: old's frame mapped back
    back = cv2.invertAffineTransform(to_old)
    inside_new = cv2.warpAffine(
        np.ones((oh, ow), np.uint8), back, (nw, nh), flags=cv2.INTER_NEAREST
    )
    covered_new = float(inside_new.mean())
    overlap = min(covered_old, covered_new)
    core = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
    if core.sum() < 16:
        return overlap, 1.0, None
    residual = blurred_old - _fitted(blurred_old[core], warped[core], warped)
    # refitted without the pixels that differ, so a watermark does not bend the fit
    agree = core & (np.abs(residual) <= PIXEL_DIFFERENCE)
    if agree.sum() >= 16:
        residual = blurred_old - _fitted(blurred_old[agree], warped[agree], warped)
    changed = (np.abs(residual) > PIXEL_DIFFERENCE) & core
    # single pixels at strong edges are alignment error; a changed subject is a blob
    kernel = np.ones((OPENING, OPENING), np.uint8)
    opened = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    share, rows = _beyond_watermark(opened, residual, core)
    band = None if rows is None else (rows[0] / old_side, rows[1] / old_side)
    return overlap, share, band


def _fitted(
    target: NDArray[np.float32], source: NDArray[np.float32], image: NDArray[np.float32]
) -> NDArray[np.float32]:
    """``image`` with the least-squares gain and offset that bring ``source`` to ``target``
    (brightness and contrast edits)."""
    if source.std() > 1e-3:
        gain, offset = np.polyfit(source, target, 1)
    else:
        gain, offset = 1.0, float(target.mean() - source.mean())
    return np.asarray(image * gain + offset, np.float32)


def _beyond_watermark(
    opened: NDArray[np.bool_], residual: NDArray[np.float32], core: NDArray[np.bool_]
) -> tuple[float, tuple[int, int] | None]:
    """Share of the overlap that differs, not counting one text watermark.

    A watermark is text laid over the picture in one colour: its changed pixels lie in one
    horizontal band (WATERMARK_BAND of the height) and all move the same way (lighter, or
    darker), since each is the picture blended towards the text's colour. When the band
    holding the most changed pixels is such, and holds no more than MAX_WATERMARK of the
    overlap, it is left out. A changed subject (other cars, furniture moved, another product)
    differs both ways or beyond the band, and still counts in full. Also the band's rows
    when it was left out.
    """
    area = float(core.sum())
    share = float(opened.sum() / area)
    if share <= MAX_CHANGED:
        return share, None
    height = opened.shape[0]
    band = max(1, int(np.ceil(WATERMARK_BAND * height)))
    rows = np.concatenate(([0], np.cumsum(opened.sum(axis=1))))
    top = int(np.argmax(rows[band:] - rows[:-band])) if height > band else 0
    inside = np.zeros_like(opened)
    inside[top : top + band] = opened[top : top + band]
    signs = residual[inside] > 0
    one_way = max(float(signs.mean()), 1.0 - float(signs.mean())) >= WATERMARK_ONE_WAY
    if not one_way or inside.sum() / area > MAX_WATERMARK:
        return share, None
    return float((opened & ~inside).sum() / area), (top, top + band)
