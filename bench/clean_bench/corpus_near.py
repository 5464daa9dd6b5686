"""Near copies under harder edits, and hard negatives, for the near-duplicate benchmark.

Five scene types, each drawn from two random streams: a *background* stream (the street, the
room, the backdrop, the screenshot template) and a *foreground* stream (the cars, the furniture
arrangement, the product, the text). Every scene is an original with one copy per edit; hard
negatives are siblings that share the background stream but not the foreground one (same
street, different cars; same room, furniture moved; same backdrop, another product; same
template, other text), each an original of its own group, so a sibling or a sibling's copy
matched counts as a false match. Sizes, encoders (JPEG at several qualities, PNG, WebP) and
the edits' parameters vary per item; everything comes from one seed.

``near_items`` gives the files (``clean_corpus.Item``, in arrival order with each original
before its copies); bench/clean_corpus.py adds them to the accuracy corpus, and
``bench/clean_bench/near_accuracy.py`` scores them in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench import clean_corpus
from bench.clean_corpus import NEAR_EDITS, Item, Pixels, jpeg, normal_exposure, photo, png

# Edits: the old ones (must not regress) and the harder ones this corpus adds.
OLD_EDITS = ("resize50", "jpeg40", "bright+20", "bright-20", "crop5", "crop10")
# crop20 keeps 80-90 % of each side, centred, off-centre or in a corner; rotate5 turns 1-5
# degrees either way, borders reflected, black or cropped away; watermark is cv2.putText of
# several sizes, opacities, colours and places; crop+jpeg crops keeping 80-95 % and saves at
# quality 40-70; crop+resize crops so and scales to 40-75 %; rotate+crop turns, then keeps
# 85-95 %.
EDITS = (*OLD_EDITS, *NEAR_EDITS)
SCENES = ("photo", "street", "room", "product", "screenshot")
SIZES = ((640, 480), (1024, 768), (1280, 720), (1920, 1080), (480, 640), (800, 800))
WORDS = tuple(
    [
        "total",
        "order",
        "status",
        "shipped",
        "invoice",
        "account",
        "settings",
        "profile",
        "search",
        "report",
        "export",
        "dashboard",
        "revenue",
        "users",
        "active",
        "pending",
        "review",
        "approved",
        "draft",
        "customer",
        "region",
        "monday",
        "quarter",
        "growth",
        "alpha",
        "beta",
        "delta",
        "label",
        "camera",
        "frame",
        "dataset",
        "upload",
    ]
)

Rng = np.random.Generator


# ---- scenes: a background and a foreground, each from its own stream --------------------------


def street(back: Rng, fore: Rng, width: int, height: int) -> Pixels:
    """A street: sky, a row of buildings with windows, a road with lanes; cars in front."""
    image = np.empty((height, width, 3), np.float32)
    horizon = int(height * back.uniform(0.35, 0.5))
    sky_top, sky_low = back.uniform(150, 250, 3), back.uniform(120, 230, 3)
    rows = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    image[:horizon] = sky_top * (1 - rows) + sky_low * rows
    image[horizon:] = back.uniform(60, 110)  # asphalt
    x = 0
    while x < width:  # buildings
        w = int(width * back.uniform(0.08, 0.22))
        top = int(horizon * back.uniform(0.1, 0.7))
        colour = back.uniform(60, 200, 3)
        image[top : horizon + height // 12, x : x + w] = colour
        for wy in range(top + 8, horizon, max(6, height // 30)):  # windows
            for wx in range(x + 5, x + w - 8, max(6, width // 60)):
                shade = back.uniform(20, 240)
                cv2.rectangle(image, (wx, wy), (wx + 4, wy + 5), (shade,) * 3, -1)
        x += w + int(back.integers(0, width // 40 + 1))
    lane_y = horizon + (height - horizon) // 2
    for lx in range(0, width, width // 8):
        cv2.rectangle(image, (lx, lane_y), (lx + width // 16, lane_y + 4), (230, 230, 230), -1)
    texture = cv2.GaussianBlur(back.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 1)
    image[horizon:] += texture[horizon:, :, None]
    for _ in range(int(fore.integers(2, 6))):  # cars
        w = int(width * fore.uniform(0.12, 0.25))
        h = int(w * fore.uniform(0.35, 0.5))
        cx = int(fore.integers(0, width - w))
        cy = int(fore.integers(horizon + h // 2, height - h))
        body = tuple(float(c) for c in fore.uniform(0, 255, 3))
        cv2.rectangle(image, (cx, cy), (cx + w, cy + h), body, -1)
        roof = (cx + w // 5, cy - h // 2)
        cv2.rectangle(image, roof, (cx + 4 * w // 5, cy), body, -1)
        cv2.rectangle(
            image, (roof[0] + 4, roof[1] + 4), (cx + w // 2 - 2, cy - 2), (40, 50, 60), -1
        )
        cv2.rectangle(
            image,
            (cx + w // 2 + 2, roof[1] + 4),
            (roof[0] + 3 * w // 5 - 4, cy - 2),
            (40, 50, 60),
            -1,
        )
        for wheel in (cx + w // 5, cx + 4 * w // 5):
            cv2.circle(image, (wheel, cy + h), max(3, h // 3), (20, 20, 20), -1, cv2.LINE_AA)
    return _finish(back, image)


def room(back: Rng, fore: Rng, width: int, height: int) -> Pixels:
    """A room: two wall tones, a planked floor, a window and frames; furniture placed freely."""
    image = np.empty((height, width, 3), np.float32)
    floor = int(height * back.uniform(0.55, 0.7))
    corner = int(width * back.uniform(0.3, 0.7))
    image[:floor, :corner] = back.uniform(120, 230, 3)
    image[:floor, corner:] = back.uniform(110, 220, 3)
    image[floor:] = back.uniform(70, 160, 3)
    for py in range(floor, height, max(8, height // 25)):  # planks
        cv2.line(image, (0, py), (width, py), tuple(float(c) for c in back.uniform(40, 90, 3)), 1)
    grain = cv2.GaussianBlur(back.normal(0, 14, (height, width)).astype(np.float32), (0, 0), 1.5)
    image[floor:] += grain[floor:, :, None]
    wx, wy = int(back.integers(width // 10, width // 2)), int(floor * back.uniform(0.1, 0.3))
    ww, wh = width // 5, floor // 3
    image[wy : wy + wh, wx : wx + ww] = photo(back, ww, wh)  # the view outside
    cv2.rectangle(image, (wx, wy), (wx + ww, wy + wh), (240, 240, 240), max(2, width // 150))
    for _ in range(int(back.integers(1, 4))):  # frames on the walls
        fw, fh = int(width * back.uniform(0.05, 0.12)), int(floor * back.uniform(0.08, 0.2))
        fx, fy = int(back.integers(0, width - fw)), int(back.integers(0, max(1, floor - fh)))
        image[fy : fy + fh, fx : fx + fw] = photo(back, fw, fh)
    pieces = [(back.uniform(0.15, 0.35), back.uniform(0.15, 0.3)) for _ in range(3)]
    for share_w, share_h in pieces:  # the same furniture, arranged by the foreground stream
        w, h = int(width * share_w), int(height * share_h)
        x = int(fore.integers(0, width - w))
        y = int(np.clip(floor - h * fore.uniform(0.5, 0.9), 0, height - h))
        image[y : y + h, x : x + w] = photo(np.random.default_rng(int(w * 7919 + h)), w, h)
        cv2.rectangle(image, (x, y), (x + w, y + h), (30, 30, 30), 2)
    return _finish(back, image)


def product(back: Rng, fore: Rng, width: int, height: int) -> Pixels:
    """A product shot: a studio backdrop (plain, graded or textured) and one product on it."""
    image = np.empty((height, width, 3), np.float32)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image[:] = back.uniform(150, 240, 3) * (1 - rows * back.uniform(0, 0.3))
    if back.random() < 0.5:  # fabric or paper texture
        weave = back.normal(0, 10, (height, width)).astype(np.float32)
        image += cv2.GaussianBlur(weave, (0, 0), float(back.uniform(0.8, 2.0)))[:, :, None]
    w = int(width * fore.uniform(0.25, 0.5))
    h = int(height * fore.uniform(0.3, 0.6))
    x = int((width - w) * fore.uniform(0.3, 0.7))
    y = int((height - h) * fore.uniform(0.4, 0.8))
    item = photo(fore, w, h).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    if fore.random() < 0.5:
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1.0, -1)
    else:
        cv2.rectangle(mask, (w // 8, 0), (7 * w // 8, h - 1), 1.0, -1)
    patch = image[y : y + h, x : x + w]
    image[y : y + h, x : x + w] = patch * (1 - mask[:, :, None]) + item * mask[:, :, None]
    return _finish(back, image)


def screenshot(back: Rng, fore: Rng, width: int, height: int) -> Pixels:
    """An app screenshot: header, sidebar and panels of a template; the text in them varies."""
    image = np.empty((height, width, 3), np.uint8)  # putText draws on 8 bits only
    image[:] = back.uniform(225, 255, 3).astype(np.uint8)
    bar = int(height * back.uniform(0.07, 0.12))
    side = int(width * back.uniform(0.15, 0.25))
    image[:bar] = back.uniform(30, 120, 3).astype(np.uint8)
    image[bar:, :side] = back.uniform(200, 240, 3).astype(np.uint8)
    scale = width / 640
    panels = []
    for _ in range(int(back.integers(2, 5))):
        pw = int((width - side) * back.uniform(0.35, 0.9))
        ph = int(height * back.uniform(0.18, 0.35))
        px = side + int(back.integers(8, max(9, width - side - pw)))
        py = bar + int(back.integers(8, max(9, height - bar - ph)))
        cv2.rectangle(image, (px, py), (px + pw, py + ph), (235, 235, 235), -1)
        cv2.rectangle(image, (px, py), (px + pw, py + ph), (180, 180, 180), 1)
        panels.append((px, py, pw, ph))
    font = cv2.FONT_HERSHEY_SIMPLEX
    ink = (40.0, 40.0, 40.0)
    for sy in range(bar + int(20 * scale), height, int(30 * scale)):  # the menu: template text
        word = WORDS[int(back.integers(len(WORDS)))]
        cv2.putText(image, word, (int(10 * scale), sy), font, 0.5 * scale, ink, 1, cv2.LINE_AA)
    cv2.putText(image, "Conveyor", (side, int(bar * 0.7)), font, 0.8 * scale, (250,) * 3, 2)
    for px, py, _, ph in panels:  # the content: what differs between siblings
        for ly in range(py + int(22 * scale), py + ph - 6, int(20 * scale)):
            words = " ".join(WORDS[int(i)] for i in fore.integers(0, len(WORDS), 6))
            number = f"{fore.integers(0, 99999):,}"
            line = f"{words} {number}"
            cv2.putText(image, line, (px + 8, ly), font, 0.45 * scale, ink, 1, cv2.LINE_AA)
    return image


def photo_scene(back: Rng, fore: Rng, width: int, height: int) -> Pixels:
    """A photo-like picture of the main corpus (no siblings: its negatives are other photos)."""
    return normal_exposure(back, photo(back, width, height))


def _finish(rng: Rng, image: NDArray[np.float32]) -> Pixels:
    """Sensor noise, clipped to 8 bits."""
    image += rng.normal(0, float(rng.uniform(1.5, 4)), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


SCENE_MAKERS: dict[str, Callable[[Rng, Rng, int, int], Pixels]] = {
    "photo": photo_scene,
    "street": street,
    "room": room,
    "product": product,
    "screenshot": screenshot,
}


# ---- edits ------------------------------------------------------------------------------------


def crop(rng: Rng, image: Pixels, low: float, high: float) -> tuple[Pixels, dict[str, Any]]:
    """A crop keeping ``low``-``high`` of each side (drawn per axis), anywhere in the frame."""
    h, w = image.shape[:2]
    keep_x, keep_y = rng.uniform(low, high), rng.uniform(low, high)
    cw, ch = round(w * keep_x), round(h * keep_y)
    place = rng.random()
    if place < 0.3:  # centred
        x, y = (w - cw) // 2, (h - ch) // 2
    elif place < 0.6:  # a corner
        x, y = int(rng.choice((0, w - cw))), int(rng.choice((0, h - ch)))
    else:
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    detail = {
        "keep": round(keep_x, 3),  # of the width; keep_y of the height
        "keep_y": round(keep_y, 3),
        "offset_x": round(x / w, 3),
        "offset_y": round(y / h, 3),
    }
    return image[y : y + ch, x : x + cw], detail


def rotate(rng: Rng, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    """1-5 degrees either way about the centre; borders reflected, black or cropped away."""
    h, w = image.shape[:2]
    degrees = float(rng.uniform(1, 5) * rng.choice((-1, 1)))
    border = str(rng.choice(("reflect", "black", "cropped")))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    mode = cv2.BORDER_REFLECT_101 if border == "reflect" else cv2.BORDER_CONSTANT
    turned = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=mode)
    if border == "cropped":  # the largest centred rectangle of the frame's aspect inside
        angle = np.radians(abs(degrees))
        factor = 1 / (np.cos(angle) + np.sin(angle) * max(w / h, h / w))
        cw, ch = int(w * factor), int(h * factor)
        turned = turned[(h - ch) // 2 : (h + ch) // 2, (w - cw) // 2 : (w + cw) // 2]
    return np.asarray(turned, np.uint8), {"degrees": round(degrees, 2), "border": border}


def watermark(rng: Rng, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    """A text watermark: a size, an opacity, a colour and a place drawn at random."""
    h, w = image.shape[:2]
    text = str(rng.choice(("(c) 2026 Studio North", "SAMPLE", "stock photo", "@conveyor_cv")))
    scale = float(rng.uniform(0.6, 2.2)) * w / 640
    thickness = max(1, round(scale * float(rng.uniform(1.0, 2.0))))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    tw, th = min(tw, w - 4), min(th, h - 4)
    where = str(rng.choice(("bottom-right", "bottom-left", "top-left", "centre")))
    x = {"bottom-right": w - tw - 8, "bottom-left": 8, "top-left": 8}.get(where, (w - tw) // 2)
    y = {"top-left": th + 8, "centre": (h + th) // 2}.get(where, h - 10)
    opacity = float(rng.uniform(0.3, 1.0))
    colour = (255.0,) * 3 if rng.random() < 0.7 else (0.0,) * 3
    layer = image.copy()
    cv2.putText(layer, text, (max(0, x), y), font, scale, colour, thickness, cv2.LINE_AA)
    blended = cv2.addWeighted(layer, opacity, image, 1 - opacity, 0)
    detail = {"text": text, "scale": round(scale, 2), "opacity": round(opacity, 2), "at": where}
    return np.asarray(blended, np.uint8), detail


def resized(image: Pixels, factor: float) -> Pixels:
    """The image scaled by ``factor`` (area averaging)."""
    h, w = image.shape[:2]
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def edited(rng: Rng, image: Pixels, edit: str) -> tuple[bytes, dict[str, Any]]:
    """One copy of ``image`` under ``edit``, encoded (JPEG unless the edit says otherwise)."""
    detail: dict[str, Any] = {}
    quality = 90
    if edit == "resize50":
        out = resized(image, 0.5)
    elif edit == "jpeg40":
        out, quality = image, 40
    elif edit in ("bright+20", "bright-20"):
        gain = 1.2 if edit == "bright+20" else 0.8
        out = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    elif edit in ("crop5", "crop10"):
        keep = 0.95 if edit == "crop5" else 0.90
        out, detail = crop(rng, image, keep, keep)
    elif edit == "crop20":
        out, detail = crop(rng, image, 0.8, 0.9)
    elif edit == "rotate5":
        out, detail = rotate(rng, image)
    elif edit == "watermark":
        out, detail = watermark(rng, image)
    elif edit == "crop+jpeg":
        out, detail = crop(rng, image, 0.8, 0.95)
        quality = int(rng.integers(40, 71))
    elif edit == "crop+resize":
        out, detail = crop(rng, image, 0.8, 0.95)
        factor = float(rng.uniform(0.4, 0.75))
        out, detail["factor"] = resized(out, factor), round(factor, 2)
    elif edit == "rotate+crop":
        out, detail = rotate(rng, image)
        out, cropped = crop(rng, out, 0.85, 0.95)
        detail.update(cropped)
    else:
        raise ValueError(f"unknown edit {edit!r}")
    detail["quality"] = quality
    return jpeg(np.ascontiguousarray(out), quality), detail


# ---- the items --------------------------------------------------------------------------------


def encoded(rng: Rng, image: Pixels) -> tuple[bytes, str]:
    """An original as JPEG (quality 80-95, most of them), PNG or WebP."""
    kind = rng.random()
    if kind < 0.7:
        return jpeg(image, int(rng.integers(80, 96))), ".jpg"
    if kind < 0.85:
        return png(image), ".png"
    return clean_corpus.encode(image, ".webp", cv2.IMWRITE_WEBP_QUALITY, 90), ".webp"


def near_items(
    stream: Callable[[str, int], Rng], scenes_per_type: int, siblings: int = 2
) -> list[Item]:
    """Originals and their edited copies, per scene type; hard-negative siblings share a
    background. Originals are labeled ``clean`` and copies ``near_duplicate`` with their edit
    as ``transform``; not shuffled (the caller decides the arrival order)."""
    items: list[Item] = []
    for scene in SCENES:
        maker = SCENE_MAKERS[scene]
        for i in range(scenes_per_type):
            setting = stream(f"near-{scene}", i)
            width, height = SIZES[int(setting.integers(len(SIZES)))]
            background = int(setting.integers(2**32))
            for sibling in range(1 if scene == "photo" else siblings):
                fore = stream(f"near-{scene}-{i}", sibling)
                image = maker(np.random.default_rng(background), fore, width, height)
                group = f"hard-{scene}-{i:03d}-{sibling}"
                data, ext = encoded(fore, image)
                detail = {"scene": scene, "width": width, "height": height, "sibling": sibling}
                items.append(Item("clean", data, ext, detail, group))
                for edit in EDITS:
                    copy, about = edited(fore, image, edit)
                    items.append(
                        Item("near_duplicate", copy, ".jpg", {**about, "scene": scene}, group, edit)
                    )
    return items


# ---- tiny and keypoint-poor pictures ----------------------------------------------------------

# Pictures with too few ORB keypoints to be verified (under 15), most of them: thumbnails of
# 64-128 pixels, random colour-cell mosaics (the dashboard test's pictures), flat graphics with
# a few soft shapes (64-320 pixels). Copies: re-encoded (JPEG q40-80), resized (50-80 % or
# 125-200 %, JPEG q85-95), lightly blurred (sigma 0.4-0.8, JPEG q90), cropped (85-95 % of each
# side, JPEG q90). Hard negatives: unrelated pictures of the same generator that the hashes
# alone would match (full hash within 10 bits, or a crop hash within 4 and the full within 22),
# mined from a pool drawn from the generator's own stream.
TINY_EDITS = ("tiny-jpeg", "tiny-resize", "tiny-blur", "tiny-crop")
TINY_SCENES = ("mosaic", "flat", "thumbnail")
TINY_SIDES = (64, 72, 80, 96, 112, 128)
TINY_ASPECTS = (4 / 3, 1.0, 3 / 4, 16 / 9)
FLAT_SIDES = (*TINY_SIDES, 160, 240, 320)  # a flat graphic has few corners at any size


def _tiny_size(rng: Rng, sides: tuple[int, ...] = TINY_SIDES) -> tuple[int, int]:
    long = int(rng.choice(sides))
    aspect = float(rng.choice(TINY_ASPECTS))
    short = max(16, round(long / max(aspect, 1 / aspect)))
    return (long, short) if aspect >= 1 else (short, long)


def mosaic(rng: Rng) -> Pixels:
    """Random colour cells (4-8 per side) with sensor-like noise, 64-128 pixels."""
    width, height = _tiny_size(rng)
    cells = rng.integers(50, 210, (int(rng.integers(4, 9)), int(rng.integers(4, 9)), 3))
    image = np.asarray(
        cv2.resize(cells.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST),
        np.float32,
    )
    noisy = image + rng.normal(0, 10, image.shape).astype(np.float32)
    return np.asarray(np.clip(noisy, 0, 255), np.uint8)


def flat(rng: Rng) -> Pixels:
    """A flat graphic: a plain or graded background and 1-3 soft shapes, 64-320 pixels."""
    width, height = _tiny_size(rng, FLAT_SIDES)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = rng.uniform(60, 220, 3) * (1 - rows * rng.uniform(0, 0.4))
    image = np.ascontiguousarray(np.broadcast_to(image, (height, width, 3)), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(width * rng.uniform(0.1, 0.4)), int(height * rng.uniform(0.1, 0.4)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(image, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), max(width, height) / 150), np.float32)
    image += rng.normal(0, 2, image.shape).astype(np.float32)
    return np.asarray(np.clip(image, 0, 255), np.uint8)


def thumbnail(rng: Rng) -> Pixels:
    """A photo-like picture drawn at twice the size and shrunk to 64-128 (a stored thumbnail)."""
    width, height = _tiny_size(rng)
    factor = 2
    large = normal_exposure(rng, photo(rng, round(width * factor), round(height * factor)))
    return np.asarray(cv2.resize(large, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


TINY_MAKERS: dict[str, Callable[[Rng], Pixels]] = {
    "mosaic": mosaic,
    "flat": flat,
    "thumbnail": thumbnail,
}


def tiny_edited(rng: Rng, image: Pixels, edit: str) -> tuple[bytes, dict[str, Any]]:
    """One copy of a tiny ``image`` under a ``TINY_EDITS`` edit, as a JPEG."""
    if edit == "tiny-jpeg":
        quality = int(rng.integers(40, 81))
        return jpeg(image, quality), {"quality": quality}
    quality = int(rng.integers(85, 96))
    if edit == "tiny-resize":
        factor = float(rng.choice((rng.uniform(0.5, 0.8), rng.uniform(1.25, 2.0))))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        h, w = image.shape[:2]
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        out = np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)
        return jpeg(out, quality), {"factor": round(factor, 2), "quality": quality}
    if edit == "tiny-blur":
        sigma = float(rng.uniform(0.4, 0.8))
        out = np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), np.uint8)
        return jpeg(out, 90), {"sigma": round(sigma, 2), "quality": 90}
    if edit == "tiny-crop":
        out, detail = crop(rng, image, 0.85, 0.95)
        return jpeg(np.ascontiguousarray(out), 90), {**detail, "quality": 90}
    raise ValueError(f"unknown edit {edit!r}")


def hash_close_pairs(
    pictures: list[Pixels], wanted: int, rule: str = "proposed"
) -> list[tuple[int, int]]:
    """Up to ``wanted`` disjoint pairs of unrelated ``pictures``, closest first, that reach the
    comparison of their pictures: with ``rule`` "proposed", every pair stage 1 proposes
    (``near_candidates``: full hashes within 14 bits, or a crop hash within 14 and full hashes
    within 22, or a crop hash within 10), which is what a keypoint-poor pair is compared on
    since the crop placement search; with "hash", only those the hash rule alone would match
    (full hashes within 10 bits, or a crop hash within 4 and full hashes within 22), as the
    negatives were mined before it."""
    from services.clean.checks import crop_hashes, near_candidates, perceptual_hash
    from services.clean.checks.quality import luminance, normalized

    grays = [normalized(luminance(p)) for p in pictures]
    full = np.array([perceptual_hash(g) for g in grays], np.uint64)
    crops = np.array([crop_hashes(g) for g in grays], np.uint64)
    found: list[tuple[int, int, int]] = []
    for a in range(len(pictures) - 1):
        later = slice(a + 1, len(pictures))
        crop_list = [int(c) for c in crops[a]]
        for found_row in near_candidates(
            int(full[a]), crop_list, full[later], crops[later], limit=len(pictures)
        ):
            if rule == "proposed" or found_row.hash_match():
                found.append((found_row.distance, a, a + 1 + found_row.row))
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, a, b in sorted(found):
        if a not in used and b not in used and len(pairs) < wanted:
            pairs.append((a, b))
            used |= {a, b}
    return pairs


def tiny_items(
    stream: Callable[[str, int], Rng], per_type: int, pool: int = 0, negatives: str = "proposed"
) -> list[Item]:
    """Tiny and keypoint-poor originals, ``per_type`` per generator, each with one copy per
    ``TINY_EDITS`` edit; and from a ``pool`` of pictures per generator, up to ``per_type``
    pairs of unrelated ones the hashes alone would match, each member an original with its
    copies. Labeled as :func:`near_items`; not shuffled."""
    items: list[Item] = []
    for scene in TINY_SCENES:
        maker = TINY_MAKERS[scene]
        chosen = [maker(stream(f"tiny-{scene}", i)) for i in range(per_type)]
        drawn = [maker(stream(f"tiny-{scene}-pool", i)) for i in range(pool)]
        pairs = hash_close_pairs(drawn, per_type, negatives) if pool else []
        mined = [
            (f"pair{n:02d}{side}", drawn[i])
            for n, p in enumerate(pairs)
            for side, i in zip("ab", p, strict=True)
        ]
        named = [(f"{i:03d}", image) for i, image in enumerate(chosen)] + mined
        for name, image in named:
            edits = stream(f"tiny-{scene}-{name}", 0)
            group = f"tiny-{scene}-{name}"
            height, width = image.shape[:2]
            data, ext = encoded(edits, image)
            detail = {"scene": f"tiny-{scene}", "width": width, "height": height, "name": name}
            items.append(Item("clean", data, ext, detail, group))
            for edit in TINY_EDITS:
                copy, about = tiny_edited(edits, image, edit)
                about = {**about, "scene": f"tiny-{scene}"}
                items.append(Item("near_duplicate", copy, ".jpg", about, group, edit))
    return items
