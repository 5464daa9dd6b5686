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
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from services.clean.checks.fingerprint import (
    CROP_REGIONS,
    Region,
    crop_hashes,
    hamming_distance,
    perceptual_hash,
)

MAX_KEYPOINTS = 256
THUMBNAIL_SIDE = 96  # long side of the stored thumbnail
THUMBNAIL_QUALITY = 90  # stored as a JPEG: 2-3 KB instead of 7, off by a level or two
# The detail picture (format 2): the normalized luma at DETAIL_SIDE on its long side (never
# enlarged), stored as a JPEG in place of the thumbnail, which is derived from it. Small text
# (6-pixel letters at 640) is 2-3 pixels high there, a blur on the 96-pixel thumbnail.
DETAIL_SIDE = 256
DETAIL_QUALITY = 85
_THUMBNAIL_ONLY = 1  # stored before the detail check: verified without it
_FORMAT = 2
_HEADER = struct.Struct(">BHHHH")  # format, width, height, keypoints, picture bytes
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
# The detail check (both sides of format 2, after every check above passed): the two detail
# pictures compared at the finer scale both share, once the transform is refined on them
# (ECC, at most DETAIL_ITERATIONS steps: the keypoints' fit is off by a pixel or two there,
# which on text is all of it). A pixel differs when more than DETAIL_DIFFERENCE levels off;
# after an opening with a 2-pixel square, what remains is where letters or small objects are
# not the same. A copy may have at most MAX_DETAIL_CHANGED of the overlap so, a watermark's
# band left out as above.
DETAIL_ITERATIONS = 30
DETAIL_DIFFERENCE = 30.0
MAX_DETAIL_CHANGED = 0.003
# Pictures alone (``compare_pictures``, a pair with too few keypoints on either side): without
# keypoints to agree, the frames are aligned as the hash match says, and two more limits stand
# in for what the keypoints would have refused. The alignment may stretch one axis against the
# other by at most MAX_ASPECT_CHANGE (a crop keeping 80 % of one side and all of the other);
# and the brightness fit may move the picture's tones (2-98 %) by at most MAX_TONE_SHIFT
# levels: on a grayscale thumbnail two flat graphics of a blob on a background, unrelated in
# colour, differ only in their tones. On the tiny corpus (seed 20261202): copies re-encoded,
# resized or blurred moved them 0-10.6 levels, unrelated flat graphics the hashes matched 26
# and more. So a brightness edit of a keypoint-poor picture is not found (see docs).
MAX_ASPECT_CHANGE = 1.25
MAX_TONE_SHIFT = 16.0
MAX_REFINEMENT = 0.08
# A crop is searched for (``_placement``), not read off the crop region's box: one picture's
# thumbnail over every whole-pixel shift of the other's, at PLACEMENT_SCALES steps of
# PLACEMENT_STEP either way of 1 and of the scale the closest crop region implies, keeping at
# least MIN_KEPT of each side. A pair the hash rule does not match is compared only when both
# pictures are ``structured``: at least MIN_EDGES of the thumbnail's pixels change by more than
# EDGE_STEP levels per pixel (a flat graphic fits inside another at some shift and scale; on
# the tuning seeds every unrelated pair so accepted had 0.02-0.05, mosaics 0.22 and up).
PLACEMENT_STEP = 1.02
PLACEMENT_SCALES = 4
MIN_KEPT = 0.8
EDGE_STEP = 2.0
MIN_EDGES = 0.1
# A placement of a flat picture (either side not ``structured``) must also explain the other
# closely: correlate at MIN_FLAT_CORRELATION or more, or leave at most FLAT_NOISE levels (rms,
# on the blurred thumbnails) unexplained, as a nearly plain picture's copy does. A soft disc of
# one graded ground fits one of another at some shift and scale, within every limit above.
# On the tuning seeds' flat pools (4 000 pictures each, every pair the hash rule matches, and
# the four tiny edits of 600 each), of the pairs accepted on a placement before this check:
# copies 0.949-1.000, 45 of 1 101 under 0.99 (faint pictures: 41 of them leave 0.24-0.70
# levels unexplained); unrelated ones 0.39-0.9986, median 0.958, 12 of 110 at 0.99 or more,
# none leaving under 0.82 levels unexplained. A close grayscale look-alike still passes.
MIN_FLAT_CORRELATION = 0.99
FLAT_NOISE = 0.7

_orb = cv2.ORB.create(nfeatures=MAX_KEYPOINTS, fastThreshold=12)
_matcher = cv2.BFMatcher(cv2.NORM_HAMMING)


@dataclass(frozen=True)
class Features:
    """What verification needs of one image: keypoints, descriptors, a thumbnail and (stored
    since format 2) the detail picture."""

    width: int  # of the image the keypoints were found on
    height: int
    points: NDArray[np.float32]  # (n, 2), fractions of the long side
    descriptors: NDArray[np.uint8]  # (n, 32)
    thumbnail: NDArray[np.uint8]  # long side THUMBNAIL_SIDE
    detail: NDArray[np.uint8] | None = None  # long side DETAIL_SIDE at most; None: format 1

    def packed(self) -> bytes:
        """The stored form: a header, 16-bit coordinates, descriptors, then the detail picture
        as a JPEG (format 2), or the thumbnail when there is none (format 1)."""
        if self.detail is None:
            picture, version, quality = self.thumbnail, _THUMBNAIL_ONLY, THUMBNAIL_QUALITY
        else:
            picture, version, quality = self.detail, _FORMAT, DETAIL_QUALITY
        encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        count = len(self.points)
        header = _HEADER.pack(version, self.width, self.height, count, len(encoded))
        coords = np.rint(np.clip(self.points, 0, 1) * _COORD_SCALE).astype(">u2")
        descriptors = np.ascontiguousarray(self.descriptors).tobytes()
        return bytes(header + coords.tobytes() + descriptors + encoded)

    @classmethod
    def unpacked(cls, data: bytes) -> Features:
        """Back from :meth:`packed`, either format; ValueError for anything else."""
        if len(data) < _HEADER.size:
            raise ValueError("stored features are shorter than their header")
        version, width, height, count, picture_bytes = _HEADER.unpack_from(data)
        expected = _HEADER.size + count * 36 + picture_bytes
        if version not in (_THUMBNAIL_ONLY, _FORMAT) or len(data) != expected:
            raise ValueError("stored features do not have the expected layout")
        at = _HEADER.size
        coords = np.frombuffer(data, ">u2", count * 2, at).reshape(count, 2)
        at += count * 4
        descriptors = np.frombuffer(data, np.uint8, count * 32, at).reshape(count, 32)
        at += count * 32
        encoded = np.frombuffer(data, np.uint8, picture_bytes, at)
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if picture_bytes else None
        if decoded is None:
            raise ValueError("stored features have an unreadable picture")
        points = (coords.astype(np.float32) / _COORD_SCALE).astype(np.float32)
        picture = np.asarray(decoded, np.uint8)
        if version == _THUMBNAIL_ONLY:
            return cls(width, height, points, descriptors, picture)
        return cls(width, height, points, descriptors, _shrunk(picture, THUMBNAIL_SIDE), picture)

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
    detail = _shrunk(gray, DETAIL_SIDE)
    return Features(width, height, points, descriptors, _shrunk(detail, THUMBNAIL_SIDE), detail)


def _shrunk(gray: NDArray[np.uint8], side: int) -> NDArray[np.uint8]:
    """``gray`` area-averaged to ``side`` pixels on its long side (never enlarged)."""
    height, width = gray.shape[:2]
    factor = min(1.0, side / max(width, height))
    if factor == 1.0:
        return gray
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), np.uint8)


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
    detail_changed: float = 0.0  # the same on the detail pictures (0 when not compared)
    reason: str = ""


def verifiable(features: Features) -> bool:
    """Whether an image has keypoints enough to be verified (else the hashes decide alone)."""
    return len(features.points) >= MIN_INLIERS


def structured(features: Features) -> bool:
    """Whether a picture has edges enough for :func:`compare_pictures` to place it beyond
    what the hash rule matches: at least MIN_EDGES of its thumbnail's pixels change by more
    than EDGE_STEP levels per pixel (lightly blurred). A flat graphic (a plain or graded
    ground, a soft disc) fits inside another flat graphic at some shift and scale."""
    blurred = cv2.GaussianBlur(features.thumbnail.astype(np.float32), (0, 0), 1.0)
    across = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3) / 8
    down = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3) / 8
    return float((cv2.magnitude(across, down) > EDGE_STEP).mean()) >= MIN_EDGES


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
    overlap, changed, band, _ = _compare(new, old, matrix)
    if overlap < MIN_OVERLAP:
        return replace(found, overlap=overlap, reason="frames overlap too little")
    # keypoints on a tolerated watermark are the watermark's, not the picture's: not counted
    mapped = new.points @ matrix[:, :2].T + matrix[:, 2]
    coverage = min(
        _explained(new, old, matrix, _within(mapped[:, 1], band)),
        _explained(old, new, _inverse(matrix), _within(old.points[:, 1], band)),
    )
    found = replace(found, overlap=overlap, coverage=coverage, changed=changed)
    if changed > MAX_CHANGED or coverage < MIN_COVERAGE:
        return replace(found, reason="the pictures differ")
    return _details_agree(found, new, old, matrix, band)


def compare_pictures(new: Features, old: Features, via: Literal["full", "crop"]) -> Verification:
    """Whether ``new`` is an edited copy of ``old``, from the pictures alone: for a pair the
    hashes propose (``via`` the full hashes or a crop hash) but :func:`verify` cannot fit, with
    too few keypoints on either side (tiny or flat pictures).

    A full-hash match is tried first as whole frame onto whole frame (refined on the
    thumbnails). Failing that, or for a crop match, one picture is searched for inside the
    other (:func:`_placement`: every shift, at scales around the one the hashes imply) and the
    best placement, refined, stands for the fitted transform; where either picture is flat
    (not :func:`structured`) that placement must correlate at MIN_FLAT_CORRELATION or leave
    no more than FLAT_NOISE unexplained. The aligned pictures must then
    agree as in :func:`verify`: the thumbnails brightness-fitted and compared, then the detail
    pictures (with the transform refined on them) where both have one.
    """
    found = Verification(False, 0, 0, reason="the crop does not align")
    if via == "full":
        whole = _whole_frames(new, old)
        refined = _refined(new.thumbnail, old.thumbnail, whole)
        found = _pictures_agree(new, old, whole if refined is None else refined)
        if found.same:
            return found
    placed = _placement(new, old)
    if placed is None:
        return found
    flat = not (structured(new) and structured(old))
    if flat and placed.score < MIN_FLAT_CORRELATION and placed.unexplained > FLAT_NOISE:
        return replace(found, reason="the flat pictures do not fit closely")
    refined = _refined(new.thumbnail, old.thumbnail, placed.matrix)
    return _pictures_agree(new, old, placed.matrix if refined is None else refined)


def _pictures_agree(new: Features, old: Features, matrix: NDArray[np.float64]) -> Verification:
    """The checks of :func:`compare_pictures` on one alignment ``matrix``."""
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    found = Verification(False, 0, 0, scale)
    if max(matrix[0, 0], matrix[1, 1]) > MAX_ASPECT_CHANGE * min(matrix[0, 0], matrix[1, 1]):
        return replace(found, reason="the frames have other shapes")
    overlap, changed, band, shift = _compare(new, old, matrix)
    found = replace(found, overlap=overlap, changed=changed)
    if overlap < MIN_OVERLAP:
        return replace(found, reason="frames overlap too little")
    if changed > MAX_CHANGED or shift > MAX_TONE_SHIFT:
        return replace(found, reason="the pictures differ")
    return _details_agree(found, new, old, matrix, band)


@dataclass(frozen=True)
class _Placement:
    """One picture placed inside the other: how well the thumbnails correlate there, the
    rms (levels) of what the best gain and offset of one leave unexplained of the other, and
    the transform from the first picture's long-side fractions to the second's."""

    score: float
    unexplained: float
    matrix: NDArray[np.float64]


def _placement(new: Features, old: Features) -> _Placement | None:
    """Where one picture lies inside the other, the transform taking ``new``'s long-side
    fractions to ``old``'s: of ``new`` within ``old`` and of ``old`` within ``new``, the
    placement whose thumbnails correlate best (normalized, over every whole-pixel shift) at
    the scales of :func:`_scales`. None when neither fits inside the other."""
    best: _Placement | None = None
    for part, whole, inverted in ((new, old, False), (old, new, True)):
        placed = _placed(part, whole)
        if placed is not None and (best is None or placed.score > best.score):
            best = replace(placed, matrix=_inverse(placed.matrix)) if inverted else placed
    return best


def _placed(part: Features, whole: Features) -> _Placement | None:
    """The best placement of ``part``'s thumbnail inside ``whole``'s (the transform from
    ``part``'s long-side fractions to ``whole``'s), over the scales of :func:`_scales` at
    which it fits and keeps at least MIN_KEPT of each of ``whole``'s sides."""
    target = np.asarray(cv2.GaussianBlur(whole.thumbnail.astype(np.float32), (0, 0), 1.0))
    source = part.thumbnail.astype(np.float32)
    part_side, whole_side = max(part.thumbnail.shape), max(whole.thumbnail.shape)
    # thumbnail pixels per pixel of the image the features were taken from
    per_part = part_side / max(part.width, part.height)
    per_whole = whole_side / max(whole.width, whole.height)
    height, width = source.shape
    best: _Placement | None = None
    for scale in _scales(part, whole):
        size = (
            round(width * scale * per_whole / per_part),
            round(height * scale * per_whole / per_part),
        )
        if size[0] > target.shape[1] or size[1] > target.shape[0]:
            continue
        # a crop keeps at least MIN_KEPT of each side (the hashes' smallest crop region)
        if min(size[0] / target.shape[1], size[1] / target.shape[0]) < MIN_KEPT - 0.02:
            continue
        shrinking = size[0] < width
        template = cv2.resize(
            source, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
        template = np.asarray(cv2.GaussianBlur(template, (0, 0), 1.0), np.float32)
        if float(template.std()) < 1e-3:
            continue
        scores = cv2.matchTemplate(target, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (left, top) = cv2.minMaxLoc(scores)
        if best is None or score > best.score:
            sx, sy = size[0] / width, size[1] / height
            matrix = np.array(
                [
                    [sx * part_side / whole_side, 0.0, left / whole_side],
                    [0.0, sy * part_side / whole_side, top / whole_side],
                ],
                np.float64,
            )
            # the least-squares fit of the window from the template leaves this much
            window = target[top : top + size[1], left : left + size[0]]
            unexplained = float(window.std()) * float(np.sqrt(max(0.0, 1.0 - score * score)))
            best = _Placement(float(score), unexplained, matrix)
    return best


def _scales(part: Features, whole: Features) -> list[float]:
    """The scales (``whole``'s pixels per ``part``'s, on the images the features were taken
    from) at which ``part`` is looked for: 1 (a crop, not resized) and every scale at which
    the crop region of ``whole`` whose hash is closest to ``part``'s full hash (the whole
    frame among them) holds ``part``, each within PLACEMENT_SCALES steps of PLACEMENT_STEP."""
    part_picture = part.detail if part.detail is not None else part.thumbnail
    whole_picture = whole.detail if whole.detail is not None else whole.thumbnail
    wanted = perceptual_hash(part_picture)
    regions = ((0.0, 0.0, 1.0, 1.0), *CROP_REGIONS)
    hashes = (perceptual_hash(whole_picture), *crop_hashes(whole_picture))
    closest = min(hamming_distance(wanted, h) for h in hashes)
    centres = {1.0}
    for (_, _, width, height), found in zip(regions, hashes, strict=True):
        if hamming_distance(wanted, found) == closest:
            across = width * whole.width / part.width
            down = height * whole.height / part.height
            centres.add(float(np.sqrt(across * down)))
    steps = PLACEMENT_STEP ** np.arange(-PLACEMENT_SCALES, PLACEMENT_SCALES + 1)
    return sorted({round(c * s, 4) for c in centres for s in steps})


def _details_agree(
    found: Verification,
    new: Features,
    old: Features,
    matrix: NDArray[np.float64],
    band: tuple[float, float] | None,
) -> Verification:
    """``found`` (every other check passed) judged on the detail pictures, where both have one."""
    if new.detail is None or old.detail is None:
        return replace(found, same=True)  # stored before the detail pictures: as before
    detail = _detail_changed(new.detail, old.detail, matrix, band)
    if detail > MAX_DETAIL_CHANGED:
        return replace(found, detail_changed=detail, reason="the details differ")
    return replace(found, same=True, detail_changed=detail)


def _refined(
    new: NDArray[np.uint8], old: NDArray[np.uint8], matrix: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """``matrix`` (``new``'s long-side fractions to ``old``'s) refined on the two thumbnails
    (ECC, affine, at most DETAIL_ITERATIONS steps): the hashes align frames to a few per cent
    of a side (a crop region's grid), which on a picture of 64 pixels is a cell's edge."""
    new_side, old_side = max(new.shape), max(old.shape)
    to_old = matrix.copy()
    to_old[:, :2] *= old_side / new_side
    to_old[:, 2] *= old_side
    back = np.asarray(cv2.invertAffineTransform(to_old), np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, DETAIL_ITERATIONS, 1e-4)
    source, target = new.astype(np.float32), old.astype(np.float32)
    try:  # no mask: OpenCV 5 asserted on a mask of ones here (copyTo, mask.empty())
        fitted = cv2.findTransformECC(  # type: ignore[call-overload]
            target, source, back, cv2.MOTION_AFFINE, criteria, None, 3
        )
        back = np.asarray(fitted[1], np.float32)
    except cv2.error:
        return None  # no convergence (flat pictures)
    refined = _inverse(np.asarray(back, np.float64))
    refined[:, :2] *= new_side / old_side
    refined[:, 2] /= old_side
    width, height = new.shape[1] / new_side, new.shape[0] / new_side
    corners = np.array([(0, 0), (width, 0), (0, height), (width, height)], np.float64)
    moved = corners @ (refined - matrix)[:, :2].T + (refined - matrix)[:, 2]
    if np.abs(moved).max() > MAX_REFINEMENT:
        return None  # not the small correction a hash alignment needs
    return refined


def _whole_frames(new: Features, old: Features) -> NDArray[np.float64]:
    """The transform taking ``new``'s frame onto all of ``old``'s (long-side fractions), as a
    full-hash match says: per axis, so a frame squeezed to another aspect lands on it too."""
    return _region_onto((0.0, 0.0, 1.0, 1.0), new.frame, old.frame)


def _region_onto(
    region: Region, frame: tuple[float, float], onto: tuple[float, float]
) -> NDArray[np.float64]:
    """The transform taking the whole of the frame ``frame`` onto ``region`` of the frame
    ``onto`` (frames as :attr:`Features.frame`, the region as fractions of ``onto``)."""
    left, top, width, height = region
    return np.array(
        [
            [width * onto[0] / frame[0], 0.0, left * onto[0]],
            [0.0, height * onto[1] / frame[1], top * onto[1]],
        ],
        np.float64,
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
) -> tuple[float, float, tuple[float, float] | None, float]:
    """Overlap of the frames, share of the overlap that differs, the rows of ``old`` a
    tolerated watermark covers (fractions of its long side), and the most the brightness
    fit moves a tone of ``new``'s (2-98 % of those in the overlap), on the thumbnails."""
    # matrix maps new's long-side fractions to old's; in thumbnail pixels that is
    # T_old * matrix * T_new^-1 with T = scale by the thumbnail's long side.
    new_side, old_side = max(new.thumbnail.shape), max(old.thumbnail.shape)
    to_old = matrix.copy()
    to_old[:, :2] *= old_side / new_side
    to_old[:, 2] *= old_side
    oh, ow = old.thumbnail.shape
    nh, nw = new.thumbnail.shape
    blurred_new = cv2.GaussianBlur(new.thumbnail.astype(np.float32), (0, 0), 1.0)
    blurred_old = np.asarray(
        cv2.GaussianBlur(old.thumbnail.astype(np.float32), (0, 0), 1.0), np.float32
    )
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
        return overlap, 1.0, None, 0.0
    residual, (gain, offset) = _residual(blurred_old, warped, core)
    tones = np.percentile(warped[core], (2, 98))
    shift = float(np.abs(tones * gain + offset - tones).max())
    changed = (np.abs(residual) > PIXEL_DIFFERENCE) & core
    # single pixels at strong edges are alignment error; a changed subject is a blob
    kernel = np.ones((OPENING, OPENING), np.uint8)
    opened = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    share, rows = _beyond_watermark(opened, residual, core)
    band = None if rows is None else (rows[0] / old_side, rows[1] / old_side)
    return overlap, share, band, shift


def _residual(
    target: NDArray[np.float32], warped: NDArray[np.float32], core: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """``target`` minus ``warped`` brightness-fitted to it over ``core``; refitted without the
    pixels more than PIXEL_DIFFERENCE off, so a watermark does not bend the fit. Also the
    fit (gain, offset)."""
    fit = _fit(target[core], warped[core])
    residual = target - np.asarray(warped * fit[0] + fit[1], np.float32)
    agree = core & (np.abs(residual) <= PIXEL_DIFFERENCE)
    if agree.sum() >= 16:
        fit = _fit(target[agree], warped[agree])
        residual = target - np.asarray(warped * fit[0] + fit[1], np.float32)
    return residual, fit


def _fit(target: NDArray[np.float32], source: NDArray[np.float32]) -> tuple[float, float]:
    """The least-squares gain and offset that bring ``source`` to ``target`` (brightness and
    contrast edits)."""
    if source.std() > 1e-3:
        gain, offset = np.polyfit(source, target, 1)
        return float(gain), float(offset)
    return 1.0, float(target.mean() - source.mean())


def _beyond_watermark(
    opened: NDArray[np.bool_],
    residual: NDArray[np.float32],
    core: NDArray[np.bool_],
    limit: float = MAX_CHANGED,
) -> tuple[float, tuple[int, int] | None]:
    """Share of the overlap that differs, not counting one text watermark.

    A watermark is text laid over the picture in one colour: its changed pixels lie in one
    horizontal band (WATERMARK_BAND of the height) and all move the same way (lighter, or
    darker), since each is the picture blended towards the text's colour. When the band
    holding the most changed pixels is such, and holds no more than MAX_WATERMARK of the
    overlap, it is left out. A changed subject (other cars, furniture moved, another product)
    differs both ways or beyond the band, and still counts in full. Also the band's rows
    when it was left out. Nothing is left out of a share within ``limit``.
    """
    area = float(core.sum())
    share = float(opened.sum() / area)
    if share <= limit:
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


def _detail_changed(
    new: NDArray[np.uint8],
    old: NDArray[np.uint8],
    matrix: NDArray[np.float64],
    band: tuple[float, float] | None,
) -> float:
    """Share of the overlap whose detail differs, compared on ``old``'s frame at the finer
    scale both pictures share (a 50 % resize is not asked for letters it lost), with the
    transform refined on the pictures themselves, ``band`` (a watermark's rows in ``old``, as
    fractions of its long side) left out."""
    new_side, old_side = max(new.shape), max(old.shape)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    target = old.astype(np.float32)
    side = min(float(old_side), new_side / scale)
    if side < old_side - 0.5:
        target = np.asarray(_shrunk(old, round(side)), np.float32)
    side = max(target.shape)
    source = new.astype(np.float32)
    shrink = new_side / (side * scale)  # new's pixels per target pixel
    if shrink > 1.05:  # a low-pass before the warp, as an area-averaged resize would
        sigma = 0.5 * float(np.sqrt(shrink**2 - 1))
        source = np.asarray(cv2.GaussianBlur(source, (0, 0), sigma), np.float32)
    to_target = matrix.copy()
    to_target[:, :2] *= side / new_side
    to_target[:, 2] *= side
    back = np.asarray(cv2.invertAffineTransform(to_target), np.float32)
    height, width = target.shape
    # a watermark's rows (a pixel or two wider at this scale) neither steer nor count
    kept = np.ones((height, width), np.uint8)
    if band is not None:
        kept[max(0, int(band[0] * side) - 2) : int(np.ceil(band[1] * side)) + 2] = 0
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, DETAIL_ITERATIONS, 1e-4)
    try:  # ECC smooths both with a 5-pixel Gaussian first
        refined = cv2.findTransformECC(target, source, back, cv2.MOTION_AFFINE, criteria, kept, 5)
        back = np.asarray(refined[1], np.float32)
    except cv2.error:
        pass  # no convergence (flat pictures): the keypoints' transform stands
    inverse = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = np.asarray(
        cv2.warpAffine(
            source, back, (width, height), flags=inverse, borderMode=cv2.BORDER_REPLICATE
        ),
        np.float32,
    )
    ones = np.ones(new.shape, np.uint8)
    nearest = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    inside = np.asarray(cv2.warpAffine(ones, back, (width, height), flags=nearest), np.uint8)
    # 3 pixels in from the frame's edge: the light blur below reaches that far
    core = cv2.erode(inside & kept, np.ones((7, 7), np.uint8)).astype(bool)
    if core.sum() < 64:
        return 0.0
    light = 0.7  # JPEG's ringing and the resampling, not the letters
    residual, _ = _residual(
        np.asarray(cv2.GaussianBlur(target, (0, 0), light), np.float32),
        np.asarray(cv2.GaussianBlur(warped, (0, 0), light), np.float32),
        core,
    )
    changed = ((np.abs(residual) > DETAIL_DIFFERENCE) & core).astype(np.uint8)
    opened = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
    # a watermark too light for the thumbnail to notice is text here: left out as there
    return _beyond_watermark(opened, residual, core, MAX_DETAIL_CHANGED)[0]
