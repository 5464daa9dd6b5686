"""Ontologies (label schemas) and the check of annotations against one of their versions.

Pure and fast: the inbound webhook checks every annotation it receives with
:func:`validate_shapes`, so it must cost microseconds per shape, and it reports every problem
it finds (with the shape's index and a field path inside the shape), never only the first, so a
vendor can fix a whole batch from one answer.

Coordinates are canonical: absolute pixels on the asset as ingested, origin top-left, x right,
y down, continuous in [0, width] x [0, height]. A point up to :data:`BOUNDS_TOLERANCE` pixels
outside is accepted (rounding at the vendor edge) and clamped onto the image.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

# How far outside the image a coordinate may be (in pixels) before it is out of bounds.
BOUNDS_TOLERANCE = 0.5
# A polygon whose area is below this (square pixels) is a line or a point, not a region.
MIN_POLYGON_AREA = 1e-6
MAX_TEXT_LENGTH = 1000
MAX_POLYGON_POINTS = 10_000
MAX_NAME_LENGTH = 128

ShapeKind = Literal["bbox", "polygon", "keypoints", "classification"]
SHAPE_KINDS: frozenset[str] = frozenset(("bbox", "polygon", "keypoints", "classification"))
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^\S(.*\S)?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in names:
        (repeated if name in seen else seen).add(name)
    return sorted(repeated)


class AttributeSpec(_Strict):
    """An attribute a shape of a class may (or must) carry: an enum, a bool or free text."""

    name: Name
    type: Literal["enum", "bool", "text"]
    values: list[Name] | None = Field(
        default=None, max_length=1000, description="the allowed values (enum only)"
    )
    required: bool = False

    @model_validator(mode="after")
    def _values_fit_type(self) -> AttributeSpec:
        if self.type == "enum":
            if not self.values:
                raise ValueError(f"enum attribute {self.name!r} needs a non-empty list of values")
            if dups := _duplicates(self.values):
                raise ValueError(f"enum attribute {self.name!r} repeats values {dups}")
        elif self.values is not None:
            raise ValueError(f"only enum attributes have values ({self.name!r} is {self.type})")
        return self


class ClassSpec(_Strict):
    """A class: its name, the one kind of shape it is drawn as, its keypoints and attributes."""

    name: Name
    shape: ShapeKind
    keypoints: list[Name] | None = Field(
        default=None, max_length=1000, description="the keypoint names (keypoints classes only)"
    )
    attributes: list[AttributeSpec] = Field(default_factory=list, max_length=100)

    _attributes: dict[str, AttributeSpec] = PrivateAttr(default_factory=dict)
    _required: tuple[str, ...] = PrivateAttr(default=())
    _keypoint_names: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _consistent(self) -> ClassSpec:
        if self.shape == "keypoints":
            if not self.keypoints:
                raise ValueError(f"keypoints class {self.name!r} needs a non-empty keypoint list")
            if dups := _duplicates(self.keypoints):
                raise ValueError(f"class {self.name!r} repeats keypoints {dups}")
        elif self.keypoints is not None:
            raise ValueError(
                f"only keypoints classes list keypoints ({self.name!r} is {self.shape})"
            )
        if dups := _duplicates([a.name for a in self.attributes]):
            raise ValueError(f"class {self.name!r} repeats attributes {dups}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Lookups the validator uses on every shape, built once."""
        self._attributes = {a.name: a for a in self.attributes}
        self._required = tuple(a.name for a in self.attributes if a.required)
        self._keypoint_names = frozenset(self.keypoints or ())


class OntologySpec(_Strict):
    """The content of one ontology version: its classes (names unique)."""

    classes: list[ClassSpec] = Field(min_length=1, max_length=1000)

    _by_name: dict[str, ClassSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_classes(self) -> OntologySpec:
        if dups := _duplicates([c.name for c in self.classes]):
            raise ValueError(f"class names repeat: {dups}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        """The class lookup the validator uses on every shape, built once."""
        self._by_name = {c.name: c for c in self.classes}

    def class_named(self, name: str) -> ClassSpec | None:
        """The class called ``name``, if the ontology has one."""
        return self._by_name.get(name)


class ProblemCode(enum.StrEnum):
    """Why a shape was refused (machine-readable)."""

    malformed = "malformed"
    unknown_class = "unknown_class"
    wrong_shape = "wrong_shape"
    missing_attribute = "missing_attribute"
    unknown_attribute = "unknown_attribute"
    bad_attribute_value = "bad_attribute_value"
    not_finite = "not_finite"
    out_of_bounds = "out_of_bounds"
    degenerate = "degenerate"
    self_intersecting = "self_intersecting"
    unknown_keypoint = "unknown_keypoint"
    duplicate_keypoint = "duplicate_keypoint"


class Problem(BaseModel):
    """One thing wrong with one shape: which shape (``index``; None for the whole list), where in
    it (``field``, a path such as ``bbox.width``, ``points[3]``, ``attributes.color``), why."""

    index: int | None
    field: str
    code: str
    message: str


_COMMON_FIELDS = frozenset(("class", "type", "attributes", "score"))
_GEOMETRY_FIELD: dict[str, str | None] = {
    "bbox": "bbox",
    "polygon": "points",
    "keypoints": "keypoints",
    "classification": None,
}
_BBOX_FIELDS = ("x", "y", "width", "height")
_KEYPOINT_FIELDS = frozenset(("name", "x", "y", "visible"))


class _Check:
    """Collects the problems of one shape while its normalised form is built."""

    __slots__ = ("height", "index", "problems", "start", "width")

    def __init__(
        self, index: int, problems: list[Problem], width: float | None, height: float | None
    ) -> None:
        self.index = index
        self.problems = problems
        self.start = len(problems)
        self.width = width
        self.height = height

    def add(self, field: str, code: ProblemCode, message: str) -> None:
        self.problems.append(Problem(index=self.index, field=field, code=code, message=message))

    @property
    def clean(self) -> bool:
        return len(self.problems) == self.start

    def number(self, value: object, field: str) -> float | None:
        """``value`` as a finite float, or None after recording why it is not one."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(field, ProblemCode.malformed, "must be a number")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.add(field, ProblemCode.not_finite, "must be a finite number")
            return None
        return number

    def point(self, x: float, y: float, field: str) -> tuple[float, float]:
        """The point clamped onto the image; out of bounds recorded when beyond the tolerance."""
        if self.width is None or self.height is None:
            return x, y
        if not (
            -BOUNDS_TOLERANCE <= x <= self.width + BOUNDS_TOLERANCE
            and -BOUNDS_TOLERANCE <= y <= self.height + BOUNDS_TOLERANCE
        ):
            self.add(
                field,
                ProblemCode.out_of_bounds,
                f"({x:g}, {y:g}) is outside the {self.width:g}x{self.height:g} image",
            )
        return min(max(x, 0.0), self.width), min(max(y, 0.0), self.height)


def validate_shapes(
    spec: OntologySpec, shapes: object, *, width: int | None, height: int | None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Check ``shapes`` (decoded JSON) against ``spec`` on a ``width`` x ``height`` image.

    Returns the normalised shapes (numbers as floats, points clamped onto the image, repeated
    polygon points dropped, ``attributes`` always present) and every problem found. The shapes
    are valid when the problem list is empty; a shape with a problem is left out of the
    normalised list. ``width``/``height`` None (size unknown) skips the bounds check.
    """
    problems: list[Problem] = []
    if not isinstance(shapes, list):
        problems.append(
            Problem(
                index=None, field="shapes", code=ProblemCode.malformed, message="must be a list"
            )
        )
        return [], problems
    w = None if width is None or height is None else float(width)
    h = None if w is None or height is None else float(height)
    normalised: list[dict[str, Any]] = []
    for index, shape in enumerate(shapes):
        check = _Check(index, problems, w, h)
        result = _shape(spec, shape, check)
        if result is not None and check.clean:
            normalised.append(result)
    return normalised, problems


def _shape(spec: OntologySpec, shape: object, check: _Check) -> dict[str, Any] | None:
    if not isinstance(shape, dict):
        check.add("", ProblemCode.malformed, "a shape must be an object")
        return None
    kind = shape.get("type")
    if kind not in SHAPE_KINDS:
        check.add("type", ProblemCode.malformed, f"must be one of {sorted(SHAPE_KINDS)}")
        kind = None
    geometry = _GEOMETRY_FIELD.get(kind) if isinstance(kind, str) else None
    for key in shape if kind is not None else ():  # without a type, no field is known wrong
        if key not in _COMMON_FIELDS and key != geometry:
            allowed = sorted(_COMMON_FIELDS | ({geometry} if geometry else set()))
            check.add(str(key), ProblemCode.malformed, f"unknown field (allowed: {allowed})")

    name = shape.get("class")
    cls: ClassSpec | None = None
    if not isinstance(name, str):
        check.add("class", ProblemCode.malformed, "must be a class name (a string)")
    else:
        cls = spec.class_named(name)
        if cls is None:
            check.add("class", ProblemCode.unknown_class, f"no class {name!r} in the ontology")
        elif kind is not None and cls.shape != kind:
            check.add(
                "type",
                ProblemCode.wrong_shape,
                f"class {name!r} is drawn as {cls.shape}, not {kind}",
            )

    out: dict[str, Any] = {"class": name, "type": kind}
    if "score" in shape:
        score = check.number(shape["score"], "score")
        if score is not None and not 0.0 <= score <= 1.0:
            check.add("score", ProblemCode.malformed, "must be between 0 and 1")
        out["score"] = score
    out["attributes"] = _attributes(cls, shape.get("attributes", {}), check)
    if geometry is not None:
        if geometry not in shape:
            check.add(geometry, ProblemCode.malformed, f"a {kind} shape needs {geometry!r}")
        elif kind == "bbox":
            out["bbox"] = _bbox(shape["bbox"], check)
        elif kind == "polygon":
            out["points"] = _polygon(shape["points"], check)
        else:
            out["keypoints"] = _keypoints(cls, shape["keypoints"], check)
    return out


def _attributes(cls: ClassSpec | None, given: object, check: _Check) -> dict[str, Any]:
    if not isinstance(given, dict):
        check.add("attributes", ProblemCode.malformed, "must be an object")
        return {}
    if cls is None:  # unknown class: already reported, its attributes cannot be judged
        return dict(given)
    known = cls._attributes
    for key, value in given.items():
        field = f"attributes.{key}"
        attribute = known.get(key)
        if attribute is None:
            check.add(field, ProblemCode.unknown_attribute, f"class {cls.name!r} has no {key!r}")
        elif attribute.type == "bool":
            if not isinstance(value, bool):
                check.add(field, ProblemCode.bad_attribute_value, "must be true or false")
        elif attribute.type == "text":
            if not isinstance(value, str):
                check.add(field, ProblemCode.bad_attribute_value, "must be a string")
            elif len(value) > MAX_TEXT_LENGTH:
                check.add(
                    field, ProblemCode.bad_attribute_value, f"longer than {MAX_TEXT_LENGTH} chars"
                )
        elif not isinstance(value, str) or value not in (attribute.values or ()):
            check.add(field, ProblemCode.bad_attribute_value, f"must be one of {attribute.values}")
    for required in cls._required:
        if required not in given:
            check.add(f"attributes.{required}", ProblemCode.missing_attribute, "required attribute")
    return dict(given)


def _bbox(box: object, check: _Check) -> dict[str, float] | None:
    if not isinstance(box, dict):
        check.add("bbox", ProblemCode.malformed, "must be an object {x, y, width, height}")
        return None
    for key in box:
        if key not in _BBOX_FIELDS:
            check.add(f"bbox.{key}", ProblemCode.malformed, "unknown field")
    values: list[float] = []
    for key in _BBOX_FIELDS:
        if key not in box:
            check.add(f"bbox.{key}", ProblemCode.malformed, "missing")
            continue
        number = check.number(box[key], f"bbox.{key}")
        if number is not None:
            values.append(number)
    if len(values) != 4:
        return None
    x, y, w, h = values
    if w <= 0 or h <= 0:
        check.add("bbox", ProblemCode.degenerate, "width and height must be greater than 0")
        return None
    before = len(check.problems)
    x0, y0 = check.point(x, y, "bbox")
    x1, y1 = check.point(x + w, y + h, "bbox")
    if len(check.problems) == before and (x1 <= x0 or y1 <= y0):  # squashed by clamping
        check.add("bbox", ProblemCode.degenerate, "no area left inside the image")
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def _polygon(points: object, check: _Check) -> list[list[float]] | None:
    if not isinstance(points, list):
        check.add("points", ProblemCode.malformed, "must be a list of [x, y] points")
        return None
    if len(points) > MAX_POLYGON_POINTS:
        check.add("points", ProblemCode.malformed, f"more than {MAX_POLYGON_POINTS} points")
        return None
    parsed: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        field = f"points[{i}]"
        if not isinstance(point, list) or len(point) != 2:
            check.add(field, ProblemCode.malformed, "a point is a list [x, y]")
            continue
        x = check.number(point[0], f"{field}[0]")
        y = check.number(point[1], f"{field}[1]")
        if x is not None and y is not None:
            parsed.append(check.point(x, y, field))
    if len(parsed) != len(points):
        return None
    ring = _without_repeats(parsed)
    if len(ring) < 3:
        check.add("points", ProblemCode.degenerate, "needs at least 3 distinct points")
        return None
    if all(_orientation(ring[0], ring[1], p) == 0 for p in ring[2:]):
        check.add("points", ProblemCode.degenerate, "all points lie on one line")
        return None
    crossing = _first_crossing(ring)
    if crossing is not None:
        i, j = crossing
        check.add(
            "points",
            ProblemCode.self_intersecting,
            f"edge {i}->{(i + 1) % len(ring)} meets edge {j}->{(j + 1) % len(ring)}",
        )
        return None
    if abs(_signed_area(ring)) < MIN_POLYGON_AREA:
        check.add("points", ProblemCode.degenerate, "encloses no area")
        return None
    return [[x, y] for x, y in ring]


def _keypoints(cls: ClassSpec | None, keypoints: object, check: _Check) -> list[dict[str, Any]]:
    if not isinstance(keypoints, list) or not keypoints:
        check.add("keypoints", ProblemCode.malformed, "must be a non-empty list of keypoints")
        return []
    names = cls._keypoint_names if cls is not None and cls.shape == "keypoints" else None
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for i, keypoint in enumerate(keypoints):
        field = f"keypoints[{i}]"
        if not isinstance(keypoint, dict):
            check.add(field, ProblemCode.malformed, "a keypoint is an object {name, x, y}")
            continue
        for key in keypoint:
            if key not in _KEYPOINT_FIELDS:
                check.add(f"{field}.{key}", ProblemCode.malformed, "unknown field")
        name = keypoint.get("name")
        if not isinstance(name, str):
            check.add(f"{field}.name", ProblemCode.malformed, "must be a keypoint name")
        elif name in seen:
            check.add(f"{field}.name", ProblemCode.duplicate_keypoint, f"{name!r} given twice")
        else:
            seen.add(name)
            if names is not None and name not in names:
                check.add(f"{field}.name", ProblemCode.unknown_keypoint, f"no keypoint {name!r}")
        visible = keypoint.get("visible", True)
        if not isinstance(visible, bool):
            check.add(f"{field}.visible", ProblemCode.malformed, "must be true or false")
        coordinates: list[float] = []
        for axis in ("x", "y"):
            if axis not in keypoint:
                check.add(f"{field}.{axis}", ProblemCode.malformed, "missing")
            elif (number := check.number(keypoint[axis], f"{field}.{axis}")) is not None:
                coordinates.append(number)
        if len(coordinates) == 2:
            x, y = check.point(coordinates[0], coordinates[1], field)
            out.append({"name": name, "x": x, "y": y, "visible": visible})
    return out


# --- plane geometry -------------------------------------------------------------------------

Point = tuple[float, float]


def _without_repeats(points: list[Point]) -> list[Point]:
    """Consecutive equal points dropped, and the last one when it closes the ring explicitly."""
    ring: list[Point] = []
    for point in points:
        if not ring or ring[-1] != point:
            ring.append(point)
    while len(ring) > 1 and ring[-1] == ring[0]:
        ring.pop()
    return ring


def _signed_area(ring: list[Point]) -> float:
    """The shoelace formula: positive counter-clockwise (in x-right, y-up terms)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        total += x0 * y1 - x1 * y0
    return total / 2.0


def _orientation(a: Point, b: Point, c: Point) -> int:
    """Which side of the line a->b the point c is on: 1, -1, or 0 (on the line)."""
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (cross > 0) - (cross < 0)


def _within_box(a: Point, b: Point, c: Point) -> bool:
    """Whether c (collinear with a, b) lies on the segment a-b."""
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def segments_meet(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether the closed segments p1-p2 and q1-q2 share a point: a proper crossing, an end
    touching the other segment, or a collinear overlap."""
    d1 = _orientation(q1, q2, p1)
    d2 = _orientation(q1, q2, p2)
    d3 = _orientation(p1, p2, q1)
    d4 = _orientation(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return (
        (d1 == 0 and _within_box(q1, q2, p1))
        or (d2 == 0 and _within_box(q1, q2, p2))
        or (d3 == 0 and _within_box(p1, p2, q1))
        or (d4 == 0 and _within_box(p1, p2, q2))
    )


def _first_crossing(ring: list[Point]) -> tuple[int, int] | None:
    """Two non-adjacent edges of the ring that meet (touching counts: the ring is then not a
    simple polygon), or None.

    Edges are swept in order of their left end, and only edges whose x ranges overlap are
    compared, so an ordinary outline costs about n log n instead of n^2. Adjacent edges share a
    vertex by construction; one folding back along the other makes its far end touch a
    non-adjacent edge (or leaves a zero-area triangle), so it is caught all the same.
    """
    n = len(ring)
    edges = [(ring[i], ring[(i + 1) % n], i) for i in range(n)]
    edges.sort(key=lambda e: min(e[0][0], e[1][0]))
    active: list[tuple[Point, Point, int]] = []
    for a, b, i in edges:
        left = min(a[0], b[0])
        active = [e for e in active if max(e[0][0], e[1][0]) >= left]
        low, high = min(a[1], b[1]), max(a[1], b[1])
        for c, d, j in active:
            if abs(i - j) in (1, n - 1):
                continue
            if max(c[1], d[1]) < low or min(c[1], d[1]) > high:
                continue
            if segments_meet(a, b, c, d):
                return (min(i, j), max(i, j))
        active.append((a, b, i))
    return None
