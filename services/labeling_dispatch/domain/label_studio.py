"""Label Studio's formats and Conveyor's: the labeling config, results and predictions.

Pure. A Label Studio project is made from an ontology version: :func:`labeling_config` writes
its XML; annotations come back as LS *results* (coordinates in percent of the image as the
labeler's browser loaded it, ``original_width`` x ``original_height``) and
:func:`shapes_from_results` turns them into canonical shapes in pixels, which the ontology's
own validator then judges (an unknown class or a box off the image is passed through for it
to refuse, not dropped here). :func:`prediction_results` goes the other way for pre-labels.

Control names in the XML are positional (``keypoints_2``, ``attribute_0_1``: class 2, class 0's
attribute 1), so any class or attribute name works in them; the names people see (label values,
choices, headers) are the ontology's own, XML-escaped. A config is therefore tied to one
ontology version, as a job is.

What Label Studio cannot say, and how it is handled:
- keypoints are separate regions, one per point, with no instance grouping in the open-source
  server: points of one keypoints class are grouped in result order, a repeated keypoint name
  starting the next instance (label one instance completely before the next);
- no visibility flag on a point: points read back are visible; invisible predicted points are
  not sent;
- rotated rectangles and rotated images have no canonical form: reported as problems;
- per-region attributes are not marked required in LS (a required one would block every other
  region); Conveyor's validator refuses a missing required attribute instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from services.labeling_dispatch.domain.ontology import (
    AttributeSpec,
    ClassSpec,
    OntologySpec,
    Problem,
    ProblemCode,
)

IMAGE = "image"
"""The Image tag's name and the key of the image URL in a task's ``data``."""
BBOX_CONTROL = "bbox"
POLYGON_CONTROL = "polygon"
CLASSIFICATION_CONTROL = "classification"
KEYPOINT_SIZE = 0.6  # a predicted point's drawn size, in percent of the image width
DECIMALS = 6  # pixel coordinates are rounded to this many decimals (float noise, not precision)

_BOOL_CHOICES = {"true": True, "false": False}
_LABELS_TYPE = {
    "bbox": "rectanglelabels",
    "polygon": "polygonlabels",
    "keypoints": "keypointlabels",
}


def keypoints_control(class_index: int) -> str:
    """The KeyPointLabels control of the keypoints class at ``class_index``."""
    return f"keypoints_{class_index}"


def attribute_control(class_index: int, attribute_index: int) -> str:
    """The Choices/TextArea control of one attribute of one class."""
    return f"attribute_{class_index}_{attribute_index}"


# --------------------------------------------------------------------------- labeling config


def labeling_config(spec: OntologySpec) -> str:
    """The XML labeling config of a Label Studio project for one ontology version."""
    view = ElementTree.Element("View")
    ElementTree.SubElement(view, "Image", name=IMAGE, value=f"${IMAGE}", zoom="true")
    for kind, control, tag in (
        ("bbox", BBOX_CONTROL, "RectangleLabels"),
        ("polygon", POLYGON_CONTROL, "PolygonLabels"),
    ):
        names = [c.name for c in spec.classes if c.shape == kind]
        if names:
            labels = ElementTree.SubElement(view, tag, name=control, toName=IMAGE)
            for name in names:
                ElementTree.SubElement(labels, "Label", value=name)
    for index, cls in enumerate(spec.classes):
        if cls.shape == "keypoints":
            ElementTree.SubElement(view, "Header", value=f"{cls.name} (keypoints)")
            points = ElementTree.SubElement(
                view, "KeyPointLabels", name=keypoints_control(index), toName=IMAGE
            )
            for keypoint in cls.keypoints or ():
                ElementTree.SubElement(points, "Label", value=keypoint)
    classifications = [c.name for c in spec.classes if c.shape == "classification"]
    if classifications:
        choices = ElementTree.SubElement(
            view, "Choices", name=CLASSIFICATION_CONTROL, toName=IMAGE, choice="multiple"
        )
        for name in classifications:
            ElementTree.SubElement(choices, "Choice", value=name)
    for index, cls in enumerate(spec.classes):
        if cls.attributes:
            _attribute_controls(view, index, cls)
    ElementTree.indent(view)
    return ElementTree.tostring(view, encoding="unicode")


def _attribute_controls(view: ElementTree.Element, class_index: int, cls: ClassSpec) -> None:
    """A block shown only for this class: per region for shapes, per image for choices."""
    if cls.shape == "classification":
        shown = {
            "visibleWhen": "choice-selected",
            "whenTagName": CLASSIFICATION_CONTROL,
            "whenChoiceValue": cls.name,
        }
        per_region: dict[str, str] = {}
    else:
        # For keypoints the selected region's label is a keypoint name, not the class name.
        label = (cls.keypoints or [cls.name])[0] if cls.shape == "keypoints" else cls.name
        shown = {"visibleWhen": "region-selected", "whenLabelValue": label}
        per_region = {"perRegion": "true"}
    block = ElementTree.SubElement(view, "View", shown)
    for attribute_index, attribute in enumerate(cls.attributes):
        name = attribute_control(class_index, attribute_index)
        ElementTree.SubElement(block, "Header", value=f"{cls.name}: {attribute.name}")
        if attribute.type == "text":
            ElementTree.SubElement(
                block,
                "TextArea",
                {"name": name, "toName": IMAGE, "maxSubmissions": "1", **per_region},
            )
            continue
        values = attribute.values if attribute.type == "enum" else list(_BOOL_CHOICES)
        choices = ElementTree.SubElement(
            block,
            "Choices",
            {"name": name, "toName": IMAGE, "choice": "single-radio", **per_region},
        )
        for value in values or ():
            ElementTree.SubElement(choices, "Choice", value=value)


# --------------------------------------------------------------------------- results -> shapes


@dataclass(frozen=True)
class ConvertedAnnotation:
    """Canonical shapes read from LS results, and what could not be read.

    ``problems`` name the LS result (``field`` = ``result[i]...``, ``index`` None); the shapes
    still need :func:`~services.labeling_dispatch.domain.ontology.validate_shapes`.
    """

    shapes: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)


@dataclass
class _Reading:
    """State while reading one annotation's results."""

    spec: OntologySpec
    width: int | None
    height: int | None
    problems: list[Problem] = field(default_factory=list)
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)  # LS region id -> shape
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # region id -> values
    image_attributes: dict[int, dict[str, Any]] = field(default_factory=dict)  # class index ->

    def problem(self, result_index: int, where: str, message: str) -> None:
        suffix = f".{where}" if where else ""
        self.problems.append(
            Problem(
                index=None,
                field=f"result[{result_index}]{suffix}",
                code=ProblemCode.malformed,
                message=message,
            )
        )


def shapes_from_results(
    spec: OntologySpec, results: object, *, width: int | None, height: int | None
) -> ConvertedAnnotation:
    """Canonical shapes (pixels) from the ``result`` list of an LS annotation or prediction.

    ``width``/``height`` (the asset's size) are used only for a result without its own
    ``original_width``/``original_height``.
    """
    reading = _Reading(spec, width, height)
    if not isinstance(results, list):
        reading.problems.append(
            Problem(index=None, field="result", code=ProblemCode.malformed, message="not a list")
        )
        return ConvertedAnnotation([], reading.problems)
    shapes: list[dict[str, Any]] = []
    keypoint_instances: dict[int, list[dict[str, Any]]] = {}
    attribute_controls = _attribute_controls_by_name(spec)
    for index, result in enumerate(results):
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            reading.problem(index, "", "a result is an object with a `value` object")
            continue
        control = result.get("from_name")
        if control in attribute_controls:
            _read_attribute(reading, index, result, *attribute_controls[control])
        elif control == CLASSIFICATION_CONTROL:
            shapes.extend(_read_classification(reading, index, result))
        elif control in (BBOX_CONTROL, POLYGON_CONTROL):
            if (shape := _read_region(reading, index, result)) is not None:
                shapes.append(shape)
        elif (class_index := _keypoints_class(spec, control)) is not None:
            _read_keypoint(reading, index, result, class_index, keypoint_instances, shapes)
        else:
            reading.problem(index, "from_name", f"no control {control!r} in the labeling config")
    _attach_attributes(reading, shapes)
    return ConvertedAnnotation(shapes, reading.problems)


def _attribute_controls_by_name(spec: OntologySpec) -> dict[str, tuple[int, AttributeSpec]]:
    return {
        attribute_control(c, a): (c, attribute)
        for c, cls in enumerate(spec.classes)
        for a, attribute in enumerate(cls.attributes)
    }


def _keypoints_class(spec: OntologySpec, control: object) -> int | None:
    if not isinstance(control, str) or not control.startswith("keypoints_"):
        return None
    suffix = control.removeprefix("keypoints_")
    if not suffix.isdigit() or int(suffix) >= len(spec.classes):
        return None
    index = int(suffix)
    return index if spec.classes[index].shape == "keypoints" else None


def _image_size(reading: _Reading, index: int, result: Mapping[str, Any]) -> tuple[float, float]:
    """The size the percentages refer to; (0, 0) after recording a problem."""
    width = result.get("original_width", reading.width)
    height = result.get("original_height", reading.height)
    if isinstance(width, bool) or isinstance(height, bool):
        width = height = None
    if not isinstance(width, int | float) or not isinstance(height, int | float):
        reading.problem(index, "original_width", "the image size is unknown")
        return 0.0, 0.0
    if width <= 0 or height <= 0:
        reading.problem(index, "original_width", "the image size must be positive")
        return 0.0, 0.0
    if result.get("image_rotation") not in (None, 0, 0.0):
        reading.problem(index, "image_rotation", "drawn on a rotated image: no canonical form")
        return 0.0, 0.0
    return float(width), float(height)


def _percent(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _pixels(percent: float, size: float) -> float:
    return round(percent * size / 100.0, DECIMALS)


def _single_label(reading: _Reading, index: int, value: Mapping[str, Any], key: str) -> str | None:
    labels = value.get(key)
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        reading.problem(index, f"value.{key}", "must hold exactly one label")
        return None
    return labels[0]


def _read_region(reading: _Reading, index: int, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """A rectangle or polygon region as a canonical bbox or polygon shape."""
    value: Mapping[str, Any] = result["value"]
    kind = "bbox" if result["from_name"] == BBOX_CONTROL else "polygon"
    label = _single_label(reading, index, value, _LABELS_TYPE[kind])
    width, height = _image_size(reading, index, result)
    if label is None or not width:
        return None
    shape: dict[str, Any] = {"class": label, "type": kind}
    if kind == "bbox":
        box = {key: _percent(value.get(key)) for key in ("x", "y", "width", "height")}
        missing = [key for key, number in box.items() if number is None]
        if missing:
            reading.problem(index, f"value.{missing[0]}", "must be a number (percent)")
            return None
        if _percent(value.get("rotation")) not in (None, 0.0):
            reading.problem(index, "value.rotation", "a rotated rectangle is not a bbox")
            return None
        shape["bbox"] = {
            "x": _pixels(box["x"] or 0.0, width),
            "y": _pixels(box["y"] or 0.0, height),
            "width": _pixels(box["width"] or 0.0, width),
            "height": _pixels(box["height"] or 0.0, height),
        }
    else:
        points = value.get("points")
        pairs = [p for p in points if _is_pair(p)] if isinstance(points, list) else []
        if not isinstance(points, list) or len(pairs) != len(points):
            reading.problem(index, "value.points", "must be a list of [x, y] percent pairs")
            return None
        shape["points"] = [[_pixels(x, width), _pixels(y, height)] for x, y in pairs]
    _remember_region(reading, result, shape)
    return shape


def _is_pair(point: object) -> bool:
    return (
        isinstance(point, list)
        and len(point) == 2
        and all(_percent(coordinate) is not None for coordinate in point)
    )


def _remember_region(reading: _Reading, result: Mapping[str, Any], shape: dict[str, Any]) -> None:
    region = result.get("id")
    if isinstance(region, str):
        reading.regions[region] = shape


def _read_keypoint(
    reading: _Reading,
    index: int,
    result: Mapping[str, Any],
    class_index: int,
    instances: dict[int, list[dict[str, Any]]],
    shapes: list[dict[str, Any]],
) -> None:
    """Add one LS point to the current instance of its class (a repeated name starts another)."""
    value: Mapping[str, Any] = result["value"]
    name = _single_label(reading, index, value, "keypointlabels")
    width, height = _image_size(reading, index, result)
    x, y = _percent(value.get("x")), _percent(value.get("y"))
    if x is None or y is None:
        reading.problem(index, "value.x", "a point needs x and y (percent)")
        return
    if name is None or not width:
        return
    point = {"name": name, "x": _pixels(x, width), "y": _pixels(y, height), "visible": True}
    current = instances.get(class_index)
    shape: dict[str, Any]
    if current is None or any(p["name"] == name for p in current[-1]["keypoints"]):
        shape = {
            "class": reading.spec.classes[class_index].name,
            "type": "keypoints",
            "keypoints": [point],
        }
        instances.setdefault(class_index, []).append(shape)
        shapes.append(shape)
    else:
        shape = current[-1]
        shape["keypoints"].append(point)
    _remember_region(reading, result, shape)


def _read_classification(
    reading: _Reading, index: int, result: Mapping[str, Any]
) -> list[dict[str, Any]]:
    chosen = result["value"].get("choices")
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        reading.problem(index, "value.choices", "must be a list of class names")
        return []
    shapes = [{"class": name, "type": "classification"} for name in chosen]
    for shape in shapes:
        index_of = next(
            (i for i, c in enumerate(reading.spec.classes) if c.name == shape["class"]), None
        )
        if index_of is not None:
            reading.regions[f"classification:{index_of}"] = shape
    return shapes


def _read_attribute(
    reading: _Reading,
    index: int,
    result: Mapping[str, Any],
    class_index: int,
    attribute: AttributeSpec,
) -> None:
    """Keep one attribute's value, keyed by the region it belongs to (or the image's class)."""
    value: Mapping[str, Any] = result["value"]
    found: object
    if attribute.type == "text":
        texts = value.get("text")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            reading.problem(index, "value.text", "must be a list of strings")
            return
        found = "\n".join(texts)
    else:
        chosen = value.get("choices")
        if not isinstance(chosen, list) or len(chosen) != 1 or not isinstance(chosen[0], str):
            reading.problem(index, "value.choices", "must hold exactly one choice")
            return
        found = _BOOL_CHOICES.get(chosen[0], chosen[0]) if attribute.type == "bool" else chosen[0]
    if reading.spec.classes[class_index].shape == "classification":
        reading.image_attributes.setdefault(class_index, {})[attribute.name] = found
        return
    region = result.get("id")
    if not isinstance(region, str):
        reading.problem(index, "id", "a per-region attribute needs its region's id")
        return
    reading.attributes.setdefault(region, {})[attribute.name] = found


def _attach_attributes(reading: _Reading, shapes: list[dict[str, Any]]) -> None:
    for region, values in reading.attributes.items():
        owner = reading.regions.get(region)
        if owner is not None:
            owner.setdefault("attributes", {}).update(values)
    for class_index, values in reading.image_attributes.items():
        owner = reading.regions.get(f"classification:{class_index}")
        if owner is not None:
            owner.setdefault("attributes", {}).update(values)
    for shape in shapes:
        shape.setdefault("attributes", {})


# --------------------------------------------------------------------------- shapes -> predictions


def prediction_results(
    spec: OntologySpec, shapes: Sequence[Mapping[str, Any]], *, width: int, height: int
) -> list[dict[str, Any]]:
    """LS ``result`` entries for canonical shapes (valid against ``spec``) on a w x h image.

    Region ids are ``cv<shape index>`` (``cv<i>k<j>`` for point j of a keypoints shape); a
    shape's attributes are results of their own that share its region id (the first visible
    point's, for keypoints).
    """
    classes = {cls.name: (index, cls) for index, cls in enumerate(spec.classes)}
    size = {"original_width": width, "original_height": height, "image_rotation": 0}
    results: list[dict[str, Any]] = []
    chosen: list[str] = []
    for shape_index, shape in enumerate(shapes):
        class_index, cls = classes[str(shape["class"])]
        extra = size | ({"score": shape["score"]} if shape.get("score") is not None else {})
        regions = _geometry_results(f"cv{shape_index}", class_index, shape, width, height)
        if cls.shape == "classification":
            chosen.append(cls.name)
            region = f"cvc{class_index}"
        elif regions:
            region = regions[0][0]
        else:
            continue  # keypoints with no visible point: nothing to draw
        results.extend(
            _result(id_, control, kind, value, extra) for id_, control, kind, value in regions
        )
        results.extend(_attribute_results(region, class_index, cls, shape, size))
    if chosen:
        results.append(_result("cvc", CLASSIFICATION_CONTROL, "choices", {"choices": chosen}, {}))
    return results


_Region = tuple[str, str, str, dict[str, Any]]  # id, control, result type, value


def _geometry_results(
    region: str, class_index: int, shape: Mapping[str, Any], width: int, height: int
) -> list[_Region]:
    name = str(shape["class"])
    if shape["type"] == "bbox":
        box = shape["bbox"]
        value: dict[str, Any] = {
            "x": 100.0 * box["x"] / width,
            "y": 100.0 * box["y"] / height,
            "width": 100.0 * box["width"] / width,
            "height": 100.0 * box["height"] / height,
            "rotation": 0,
            "rectanglelabels": [name],
        }
        return [(region, BBOX_CONTROL, "rectanglelabels", value)]
    if shape["type"] == "polygon":
        value = {
            "points": [[100.0 * x / width, 100.0 * y / height] for x, y in shape["points"]],
            "closed": True,
            "polygonlabels": [name],
        }
        return [(region, POLYGON_CONTROL, "polygonlabels", value)]
    if shape["type"] == "keypoints":
        return [
            (
                f"{region}k{point_index}",
                keypoints_control(class_index),
                "keypointlabels",
                {
                    "x": 100.0 * point["x"] / width,
                    "y": 100.0 * point["y"] / height,
                    "width": KEYPOINT_SIZE,
                    "keypointlabels": [point["name"]],
                },
            )
            for point_index, point in enumerate(shape["keypoints"])
            if point.get("visible", True)
        ]
    return []


def _attribute_results(
    region: str,
    class_index: int,
    cls: ClassSpec,
    shape: Mapping[str, Any],
    size: Mapping[str, Any],
) -> list[dict[str, Any]]:
    given = shape.get("attributes") or {}
    results = []
    for attribute_index, attribute in enumerate(cls.attributes):
        if attribute.name not in given:
            continue
        raw = given[attribute.name]
        if attribute.type == "text":
            kind, value = "textarea", {"text": [str(raw)]}
        else:
            choice = ("true" if raw else "false") if attribute.type == "bool" else str(raw)
            kind, value = "choices", {"choices": [choice]}
        results.append(
            _result(region, attribute_control(class_index, attribute_index), kind, value, size)
        )
    return results


def _result(
    region: str, control: str, kind: str, value: dict[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "id": region,
        "from_name": control,
        "to_name": IMAGE,
        "type": kind,
        "value": value,
        **extra,
    }


def prediction(
    spec: OntologySpec,
    shapes: Sequence[Mapping[str, Any]],
    *,
    width: int,
    height: int,
    model_version: str,
) -> dict[str, Any]:
    """One LS prediction (pre-label) for a task: the results, the model, the mean score."""
    scores = [float(s["score"]) for s in shapes if s.get("score") is not None]
    return {
        "model_version": model_version,
        "score": sum(scores) / len(scores) if scores else None,
        "result": prediction_results(spec, shapes, width=width, height=height),
    }
