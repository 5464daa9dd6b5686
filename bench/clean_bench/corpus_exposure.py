"""Exposure and sharpness cases for the clean corpus: hard negatives and hard positives.

Pictures that global statistics misjudge, each drawn from its own random stream:

- dark-themed but well exposed (night street with lit windows, dark-mode UI with text, stage with
  a spotlit performer) and bright but well exposed (snow, beach, white product on white with its
  shadow, light-mode UI): labeled ``clean``;
- sharp banners and panoramas of 8:1 to 12:1 (text, skyline, foliage, stripes): labeled
  ``odd_aspect_ratio`` (their one true finding);
- sharp photos resampled by 1.2-2x (bilinear, bicubic, area) or turned by 1-5 degrees with
  interpolation: ``clean``;
- the hard positives: the same scene types really under-exposed (5-15 % of the light, with or
  without noise) or over-exposed (pushed up, clipped, shadows lifted), blurred banners (also
  ``odd_aspect_ratio``), motion and defocus blur, and blurred pictures saved again as poor JPEGs.

Sizes and encoders vary (JPEG 50-95, PNG, WebP). A file whose picture has a second true finding
names it in ``detail["also"]``; the accuracy scoring counts it as a positive of that code too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench import clean_corpus
from bench.clean_corpus import Item, Pixels, photo

VERSION = 1
Stream = Callable[[str, int], np.random.Generator]
Scene = Callable[[np.random.Generator, int, int], Pixels]

SCREEN_SIZES = ((1280, 800), (1920, 1080), (1440, 900), (800, 600), (1024, 768), (390, 844))
PHOTO_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (480, 640), (1600, 1200))
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN)
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "def",
    "return",
    "import",
    "class",
    "self",
    "value",
    "none",
]


# ---- scenes ------------------------------------------------------------------------------------


def _soft(plane: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    """A wide Gaussian blur, done at a quarter of the size (wide blurs are slow at full size)."""
    height, width = plane.shape
    small = cv2.resize(
        plane, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, sigma / 4))
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


def _noise(rng: np.random.Generator, image: NDArray[np.float32], sigma: float) -> Pixels:
    noisy = image + rng.normal(0, sigma, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float]:
    level = rng.uniform(low, high)
    tint = rng.uniform(-0.15, 0.15, 3) * level
    b, g, r = (float(np.clip(level + t, 0, 255)) for t in tint)
    return b, g, r


def night_street(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """Dark sky and buildings, a few lit windows and street lamps with a glow."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = _colour(rng, 4, 22)
    image += np.linspace(8, 0, height, dtype=np.float32)[:, None, None]  # sky glow at the top
    x = 0
    while x < width:
        w = int(rng.uniform(0.08, 0.25) * width)
        top = int(rng.uniform(0.15, 0.55) * height)
        bottom = int(rng.uniform(0.75, 0.92) * height)
        image[top:bottom, x : x + w] = _colour(rng, 10, 38)
        cell = max(4, int(rng.uniform(0.012, 0.03) * width))
        for wy in range(top + cell, bottom - cell, cell * 2):
            for wx in range(x + cell // 2, x + w - cell, int(cell * 1.6)):
                if rng.random() < float(rng.uniform(0.1, 0.4)):
                    warm = (rng.uniform(60, 150), rng.uniform(150, 230), rng.uniform(200, 255))
                    image[wy : wy + cell, wx : wx + cell] = warm
        x += w + int(rng.uniform(0, 0.05) * width)
    image[int(0.92 * height) :] = _colour(rng, 8, 25)  # street
    for _ in range(int(rng.integers(2, 6))):  # lamps and their glow
        cx, cy = int(rng.uniform(0, width)), int(rng.uniform(0.5, 0.8) * height)
        glow = np.zeros((height, width), np.float32)
        cv2.circle(glow, (cx, cy), max(3, width // 60), 1.0, -1, cv2.LINE_AA)
        glow = _soft(glow, width / 60) * 2.0 + glow
        image += glow[:, :, None] * np.array((120, 200, 255), np.float32)
    return _noise(rng, image, float(rng.uniform(1, 4)))


def _text_lines(
    rng: np.random.Generator,
    image: Pixels,
    box: tuple[int, int, int, int],
    ink: tuple[float, float, float],
) -> None:
    """Lines of words in ``box`` (x, y, w, h), in the ``ink`` colour."""
    x0, y0, w, h = box
    scale = float(rng.uniform(0.4, 0.8)) * max(1.0, image.shape[1] / 1280)
    font = FONTS[int(rng.integers(len(FONTS)))]
    step = int(30 * scale) + 4
    for y in range(y0 + step, y0 + h, step):
        x = x0 + int(rng.integers(0, 4)) * int(20 * scale)
        while x < x0 + w - 40:
            word = WORDS[int(rng.integers(len(WORDS)))]
            colour = ink if rng.random() < 0.8 else _colour(rng, 100, 230)
            cv2.putText(image, word, (x, y), font, scale, colour, 1, cv2.LINE_AA)
            x += int((len(word) + 1) * 18 * scale)
            if rng.random() < 0.08:
                break


def ui_screen(rng: np.random.Generator, width: int, height: int, dark: bool) -> Pixels:
    """A flat-coloured application window: side bar, tabs, panes of text, buttons."""
    image = np.empty((height, width, 3), np.uint8)  # putText draws on 8-bit images only
    base = _colour(rng, 18, 40) if dark else _colour(rng, 238, 255)
    image[:] = base
    panel = _colour(rng, 30, 55) if dark else _colour(rng, 220, 240)
    ink = _colour(rng, 170, 235) if dark else _colour(rng, 20, 80)
    side = int(rng.uniform(0.12, 0.25) * width)
    image[:, :side] = panel
    image[: max(12, height // 20)] = panel
    _text_lines(rng, image, (6, height // 20, side - 10, height - height // 20), ink)
    accent = tuple(float(c) for c in rng.integers(60, 255, 3))
    for _ in range(int(rng.integers(1, 5))):  # buttons
        bw, bh = int(rng.uniform(0.06, 0.14) * width), max(10, int(0.04 * height))
        bx, by = int(rng.uniform(side, width - bw)), int(rng.uniform(0, height - bh))
        cv2.rectangle(image, (bx, by), (bx + bw, by + bh), accent, -1)
    panes = int(rng.integers(1, 3))
    pane_w = (width - side) // panes
    for p in range(panes):
        _text_lines(rng, image, (side + p * pane_w + 8, height // 20, pane_w - 16, height), ink)
    return image


def dark_ui(rng: np.random.Generator, width: int, height: int) -> Pixels:
    return ui_screen(rng, width, height, dark=True)


def light_ui(rng: np.random.Generator, width: int, height: int) -> Pixels:
    return ui_screen(rng, width, height, dark=False)


def stage(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """A black stage, a soft spotlight pool and a lit performer inside it."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = _colour(rng, 2, 14)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.25, 0.75) * width, rng.uniform(0.45, 0.7) * height
    radius = rng.uniform(0.12, 0.28) * min(width, height) * 1.4
    pool = np.exp(-(((cols - cx) / radius) ** 2 + ((rows - cy) / (radius * 0.8)) ** 2))
    image += pool[:, :, None] * np.array(_colour(rng, 60, 140), np.float32)
    pw, ph = int(radius * 0.5), int(radius * 1.2)
    px, py = int(cx - pw / 2), int(cy - ph * 0.8)
    figure = photo(rng, max(8, pw), max(8, ph)).astype(np.float32) * rng.uniform(0.9, 1.2)
    mask = np.zeros((max(8, ph), max(8, pw)), np.float32)
    cv2.ellipse(mask, (pw // 2, ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    y0, x0 = max(0, py), max(0, px)
    y1, x1 = min(height, py + mask.shape[0]), min(width, px + mask.shape[1])
    sub = mask[y0 - py : y1 - py, x0 - px : x1 - px, None]
    region = figure[y0 - py : y1 - py, x0 - px : x1 - px]
    image[y0:y1, x0:x1] = image[y0:y1, x0:x1] * (1 - sub) + region * sub
    return _noise(rng, image, float(rng.uniform(1.5, 5)))


def _texture(rng: np.random.Generator, height: int, width: int, grain: float) -> NDArray[Any]:
    return np.asarray(
        cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), grain)
    )


def snow(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """Snow field and pale sky, dark trees and blue-grey shadows."""
    horizon = int(rng.uniform(0.3, 0.55) * height)
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = _colour(rng, 190, 240)
    image[horizon:] = (235, 238, 240)
    image[horizon:] += _texture(rng, height - horizon, width, 1.5)[:, :, None] * 30
    for _ in range(int(rng.integers(3, 12))):  # trees with their shadows
        tx = int(rng.uniform(0, width))
        th = int(rng.uniform(0.15, 0.5) * height)
        tw = max(3, th // 4)
        base = horizon + int(rng.uniform(0, 0.4) * (height - horizon))
        tri = np.array([[tx, base - th], [tx - tw, base], [tx + tw, base]], np.int32)
        shade = np.array((160, 150, 135), np.float32) * rng.uniform(0.9, 1.05)
        shadow = np.array([[tx, base], [tx + 2 * th, base + th // 5], [tx + tw, base]], np.int32)
        cv2.fillPoly(image, [shadow], tuple(float(v) for v in shade), cv2.LINE_AA)
        cv2.fillPoly(image, [tri], _colour(rng, 20, 60), cv2.LINE_AA)
    if rng.random() < 0.5:  # a skier
        sx, sy = int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.6, 0.85) * height)
        s = max(4, height // 30)
        cv2.rectangle(image, (sx, sy), (sx + s, sy + 3 * s), _colour(rng, 30, 120), -1)
    return _noise(rng, np.clip(image, 0, 255), float(rng.uniform(1, 3)))


def beach(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """Bright sky, sea, bright sand; umbrellas, people and their shadows."""
    sky, sea = int(rng.uniform(0.25, 0.4) * height), int(rng.uniform(0.45, 0.6) * height)
    image = np.empty((height, width, 3), np.float32)
    image[:sky] = (rng.uniform(220, 250), rng.uniform(200, 235), rng.uniform(170, 215))
    image[sky:sea] = (rng.uniform(140, 190), rng.uniform(110, 150), rng.uniform(40, 80))
    image[sky:sea] += _texture(rng, sea - sky, width, 1.2)[:, :, None] * 25
    image[sea:] = (rng.uniform(170, 200), rng.uniform(215, 235), rng.uniform(225, 245))
    image[sea:] += _texture(rng, height - sea, width, 0.8)[:, :, None] * 12
    for _ in range(int(rng.integers(3, 10))):
        x, y = int(rng.uniform(0, width)), int(rng.uniform(sea, height))
        r = max(4, int(rng.uniform(0.02, 0.06) * width))
        cv2.ellipse(image, (x + r // 2, y + r), (r, r // 3), 0, 0, 360, (120, 140, 150), -1)
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        cv2.ellipse(image, (x, y), (r, r // 2), 0, 180, 360, colour, -1, cv2.LINE_AA)
        cv2.line(image, (x, y), (x, y + r), (40, 40, 40), max(1, r // 10))
        px = x + int(rng.uniform(-3, 3) * r)
        cv2.rectangle(image, (px, y), (px + r // 3, y + r), _colour(rng, 40, 130), -1)
    return _noise(rng, np.clip(image, 0, 255), float(rng.uniform(1, 3)))


def white_product(rng: np.random.Generator, width: int, height: int) -> Pixels:
    """A white object on a white sweep, with soft shading and a soft drop shadow."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = _colour(rng, 243, 255)
    shadow = np.zeros((height, width), np.float32)
    cx, cy = width // 2 + int(rng.uniform(-0.1, 0.1) * width), int(rng.uniform(0.45, 0.6) * height)
    ow, oh = int(rng.uniform(0.15, 0.3) * width), int(rng.uniform(0.2, 0.45) * height)
    cv2.ellipse(shadow, (cx + ow // 4, cy + oh // 2), (ow, oh // 6), 0, 0, 360, 1.0, -1)
    shadow = _soft(shadow, max(2.0, ow / 8))
    image *= 1 - shadow[:, :, None] * rng.uniform(0.25, 0.5)
    rows = np.linspace(0, 1, oh, dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, ow, dtype=np.float32)[None, :]
    body = 250 - 45 * cols**2 - 15 * rows  # shading across a white cylinder or box
    x0, y0 = cx - ow // 2, cy - oh // 2
    image[y0 : y0 + oh, x0 : x0 + ow] = body[:, :, None] * rng.uniform(0.97, 1.0, 3)
    cv2.rectangle(image, (x0, y0), (x0 + ow, y0 + oh), (200, 200, 200), 1, cv2.LINE_AA)
    if rng.random() < 0.6:  # a small label or logo
        lx, ly = x0 + ow // 3, y0 + oh // 3
        cv2.rectangle(image, (lx, ly), (lx + ow // 3, ly + oh // 8), _colour(rng, 40, 160), -1)
    return _noise(rng, np.clip(image, 0, 255), float(rng.uniform(0.5, 2)))


def day_photo(rng: np.random.Generator, width: int, height: int) -> Pixels:
    return clean_corpus.normal_exposure(rng, photo(rng, width, height))


DARK_THEMED: dict[str, Scene] = {"night_street": night_street, "dark_ui": dark_ui, "stage": stage}
BRIGHT_THEMED: dict[str, Scene] = {
    "snow": snow,
    "beach": beach,
    "white_product": white_product,
    "light_ui": light_ui,
}
NORMAL: dict[str, Scene] = {"photo": day_photo, "snow": snow, "beach": beach, "street": day_photo}


# ---- banners -----------------------------------------------------------------------------------


def banner(rng: np.random.Generator, width: int, height: int, kind: str) -> Pixels:
    """A sharp strip: a text banner, a skyline panorama, foliage or stripes."""
    if kind == "text":
        text = np.empty((height, width, 3), np.uint8)
        text[:] = _colour(rng, 20, 240)
        ink = _colour(rng, 0, 60) if text[0, 0].mean() > 128 else _colour(rng, 200, 255)
        font = FONTS[int(rng.integers(len(FONTS)))]
        scale = height / 60 * float(rng.uniform(0.5, 1.0))
        x = int(rng.uniform(0.02, 0.1) * width)
        while x < width * 0.9:
            word = WORDS[int(rng.integers(len(WORDS)))]
            y = int(height * rng.uniform(0.55, 0.8))
            cv2.putText(text, word, (x, y), font, scale, ink, max(1, int(scale)), cv2.LINE_AA)
            x += int((len(word) + 2) * 22 * scale)
        return _noise(rng, text.astype(np.float32), 1.5)
    if kind == "skyline":
        image = photo(rng, width // 3, height).astype(np.float32)
        image = np.concatenate([image, image[:, ::-1], image], axis=1)[:, :width]
        x = 0
        while x < width:
            w, top = int(rng.uniform(0.5, 2) * height), int(rng.uniform(0.1, 0.6) * height)
            cv2.rectangle(image, (x, top), (x + w, height), _colour(rng, 30, 200), -1)
            x += w + int(rng.uniform(0, 0.5) * height)
        return _noise(rng, image, 2.0)
    if kind == "foliage":
        image = np.empty((height, width, 3), np.float32)
        image[:] = (rng.uniform(30, 80), rng.uniform(90, 160), rng.uniform(40, 90))
        leaves = _texture(rng, height, width, float(rng.uniform(0.7, 1.5)))
        image += leaves[:, :, None] * rng.uniform(80, 140)
        return _noise(rng, image, 2.0)
    image = np.empty((height, width, 3), np.float32)  # stripes and blocks (a fabric, a fence)
    period = int(rng.integers(4, max(5, height // 4)))
    on = (np.arange(width) // period) % 2 == 0
    image[:] = _colour(rng, 30, 110)
    image[:, on] = _colour(rng, 150, 240)
    return _noise(rng, image, 2.0)


BANNER_KINDS = ("text", "skyline", "foliage", "stripes")


def banner_size(rng: np.random.Generator) -> tuple[int, int]:
    ratio = float(rng.uniform(8.0, 12.0))
    short = int(rng.choice((90, 120, 160, 240, 300, 400)))
    long = int(short * ratio)
    return (long, short) if rng.random() < 0.8 else (short, long)


# ---- blur, resampling, rotation, exposure ------------------------------------------------------


def motion_blur(image: Pixels, length: int, angle: float) -> Pixels:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, turn, (length, length)), np.float32)
    return np.asarray(cv2.filter2D(image, -1, kernel / kernel.sum()), dtype=np.uint8)


def defocus(image: Pixels, radius: int) -> Pixels:
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
    cv2.circle(kernel, (radius, radius), radius, 1.0, -1, cv2.LINE_AA)
    return np.asarray(cv2.filter2D(image, -1, kernel / kernel.sum()), dtype=np.uint8)


def blurred(rng: np.random.Generator, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    """Gaussian (sigma 2-5 per 640 pixels of the short side scaled), motion or defocus blur."""
    unit = min(image.shape[:2]) / 480
    kind = ("gaussian", "motion", "defocus")[int(rng.integers(3))]
    if kind == "gaussian":
        sigma = float(rng.uniform(2.0, 5.0)) * max(unit, 0.5)
        return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma)), {"blur": kind, "size": sigma}
    if kind == "motion":
        length = max(7, int(rng.uniform(9, 25) * unit))
        angle = float(rng.uniform(0, 180))
        return motion_blur(image, length, angle), {"blur": kind, "size": length}
    radius = max(3, int(rng.uniform(4, 9) * unit))
    return defocus(image, radius), {"blur": kind, "size": radius}


INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}


def resampled(rng: np.random.Generator, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    factor = float(rng.uniform(1.2, 2.0))
    if rng.random() < 0.5:
        factor = 1 / factor
    name = ("bilinear", "bicubic", "area")[int(rng.integers(3))]
    if factor > 1 and name == "area":
        name = "bicubic"  # area upscaling is nearest neighbour in OpenCV: no softening
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    out = cv2.resize(image, size, interpolation=INTERPOLATIONS[name])
    return np.asarray(out, dtype=np.uint8), {"factor": round(factor, 3), "interpolation": name}


def rotated(rng: np.random.Generator, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    degrees = float(rng.uniform(1, 5)) * (1 if rng.random() < 0.5 else -1)
    h, w = image.shape[:2]
    flag = cv2.INTER_LINEAR if rng.random() < 0.6 else cv2.INTER_CUBIC
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(image, turn, (w, h), flags=flag, borderMode=cv2.BORDER_REFLECT_101)
    cut = int(abs(np.sin(np.radians(degrees))) * max(w, h)) + 1  # crop the reflected corners
    out = out[cut : h - cut, cut : w - cut]
    detail = {
        "degrees": round(degrees, 2),
        "interpolation": "bicubic" if flag == cv2.INTER_CUBIC else "bilinear",
    }
    return np.asarray(out, dtype=np.uint8), detail


def under_exposed(rng: np.random.Generator, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    gain = float(rng.uniform(0.05, 0.15))
    noise = float(rng.choice((0.0, 1.0, 2.5, 4.0)))
    out = image.astype(np.float32) * gain + rng.normal(0, noise, image.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8), {"gain": round(gain, 3), "noise": noise}


def over_exposed(rng: np.random.Generator, image: Pixels) -> tuple[Pixels, dict[str, Any]]:
    """Pushed up: a gain that clips the highlights and an offset that lifts the shadows."""
    gain, offset = float(rng.uniform(1.4, 2.5)), float(rng.uniform(50, 120))
    out = np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return out, {"gain": round(gain, 2), "offset": round(offset)}


# ---- files -------------------------------------------------------------------------------------


def encoded(
    rng: np.random.Generator, image: Pixels, lossless_first: bool = False
) -> tuple[bytes, str]:
    """JPEG (quality 50-95), PNG or lossy WebP; screenshots are mostly PNG."""
    pick = rng.random()
    if pick < (0.6 if lossless_first else 0.15):
        return clean_corpus.png(image), ".png"
    if pick < (0.75 if lossless_first else 0.35):
        quality = int(rng.integers(75, 96))
        return clean_corpus.encode(image, ".webp", cv2.IMWRITE_WEBP_QUALITY, quality), ".webp"
    return clean_corpus.jpeg(image, int(rng.integers(50, 96))), ".jpg"


def _size(rng: np.random.Generator, name: str) -> tuple[int, int]:
    sizes = SCREEN_SIZES if name.endswith("_ui") else PHOTO_SIZES
    return sizes[int(rng.integers(len(sizes)))]


def _item(
    rng: np.random.Generator, label: str, image: Pixels, detail: dict[str, Any], screen: bool
) -> Item:
    data, ext = encoded(rng, image, lossless_first=screen)
    detail = {**detail, "width": image.shape[1], "height": image.shape[0], "encoding": ext[1:]}
    return Item(label, data, ext, detail)


def themed(rng: np.random.Generator, index: int, scenes: dict[str, Scene]) -> Item:
    name = list(scenes)[index % len(scenes)]
    image = scenes[name](rng, *_size(rng, name))
    return _item(rng, "clean", image, {"case": "themed", "scene": name}, name.endswith("_ui"))


def make_dark_themed(rng: np.random.Generator, index: int) -> Item:
    return themed(rng, index, DARK_THEMED)


def make_bright_themed(rng: np.random.Generator, index: int) -> Item:
    return themed(rng, index, BRIGHT_THEMED)


def make_banner(rng: np.random.Generator, index: int) -> Item:
    kind = BANNER_KINDS[index % len(BANNER_KINDS)]
    image = banner(rng, *banner_size(rng), kind)
    return _item(rng, "odd_aspect_ratio", image, {"case": "banner", "scene": kind}, False)


def make_blurred_banner(rng: np.random.Generator, index: int) -> Item:
    kind = BANNER_KINDS[index % len(BANNER_KINDS)]
    image, how = blurred(rng, banner(rng, *banner_size(rng), kind))
    detail = {"case": "blurred_banner", "scene": kind, "also": ["odd_aspect_ratio"], **how}
    return _item(rng, "blurry", image, detail, False)


def _sharp_scene(rng: np.random.Generator, index: int) -> tuple[str, Pixels]:
    scenes = {**NORMAL, **DARK_THEMED, **BRIGHT_THEMED}
    name = list(scenes)[index % len(scenes)]
    return name, scenes[name](rng, *_size(rng, name))


def make_resampled(rng: np.random.Generator, index: int) -> Item:
    name, image = _sharp_scene(rng, index)
    image, how = resampled(rng, image)
    return _item(rng, "clean", image, {"case": "resampled", "scene": name, **how}, False)


def make_rotated(rng: np.random.Generator, index: int) -> Item:
    name, image = _sharp_scene(rng, index)
    image, how = rotated(rng, image)
    return _item(rng, "clean", image, {"case": "rotated", "scene": name, **how}, False)


def make_blurred(rng: np.random.Generator, index: int) -> Item:
    """Motion, defocus or Gaussian blur of varied scenes; a third saved again as a poor JPEG."""
    name, image = _sharp_scene(rng, index)
    image, how = blurred(rng, image)
    detail = {"case": "blurred", "scene": name, **how}
    if index % 3 == 0:
        quality = int(rng.integers(10, 40))
        data = clean_corpus.jpeg(image, quality)
        detail.update(width=image.shape[1], height=image.shape[0], encoding=f"jpeg{quality}")
        return Item("blurry", data, ".jpg", detail)
    return _item(rng, "blurry", image, detail, False)


def make_under_exposed(rng: np.random.Generator, index: int) -> Item:
    scenes = {**NORMAL, "white_product": white_product, "light_ui": light_ui, "stage": stage}
    name = list(scenes)[index % len(scenes)]
    image, how = under_exposed(rng, scenes[name](rng, *_size(rng, name)))
    return _item(rng, "dark", image, {"case": "under_exposed", "scene": name, **how}, False)


def make_over_exposed(rng: np.random.Generator, index: int) -> Item:
    scenes = {**NORMAL, "night_street": night_street, "stage": stage, "dark_ui": dark_ui}
    name = list(scenes)[index % len(scenes)]
    image, how = over_exposed(rng, scenes[name](rng, *_size(rng, name)))
    return _item(rng, "overexposed", image, {"case": "over_exposed", "scene": name, **how}, False)


# How many of each case the corpus holds, and who makes them.
MAKERS: dict[str, tuple[int, Callable[[np.random.Generator, int], Item]]] = {
    "dark_themed": (30, make_dark_themed),
    "bright_themed": (32, make_bright_themed),
    "banner": (24, make_banner),
    "resampled": (30, make_resampled),
    "rotated": (30, make_rotated),
    "blurred_banner": (16, make_blurred_banner),
    "blurred": (24, make_blurred),
    "under_exposed": (28, make_under_exposed),
    "over_exposed": (28, make_over_exposed),
}


def exposure_items(stream: Stream) -> list[Item]:
    """Every item of these cases (unnamed; the corpus shuffles and names them)."""
    return [
        maker(stream(f"exposure/{case}", i), i)
        for case, (count, maker) in MAKERS.items()
        for i in range(count)
    ]
