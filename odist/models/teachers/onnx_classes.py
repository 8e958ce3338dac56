"""Which stream class each class of an ONNX model becomes: names from the model or the config, then groups.

An ONNX teacher's classes are named by the model's ``classes`` (or ``names``) metadata, or by
``teacher.onnx_classes`` (``coco`` for torchvision's 91 COCO slots). A model class whose name is a stream
class becomes that class; ``teacher.class_groups`` maps the others (e.g. ``vehicle: [car, bus, truck]``);
the rest are background. A semantic model named by neither, whose channel count equals the stream's
class count, maps channel ``i`` to stream class ``i``.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from odist.errors import TeacherError
from odist.models.teachers.coco import TORCHVISION_CATEGORIES

logger = logging.getLogger("odist.teachers.onnx")
METADATA_KEYS = ("classes", "names")
MAX_CLASS_ID = 65_535  # far above any detector's or segmenter's class count (LVIS: 1,203)
_NAME_TYPES = (str, int, float)
NAMES_FIX = ("add a 'classes' metadata entry to the model (a JSON list of names by class id), or pass "
             "--set teacher.onnx_classes=NAME,NAME,... (or teacher.onnx_classes=coco for torchvision's COCO ids)")


def model_class_names(metadata: Mapping[str, str], configured: Sequence[str], source: str) -> list[str] | None:
    """The model's class names by id: ``teacher.onnx_classes`` first, else the model's metadata, else None."""
    if list(configured) == ["coco"]:
        return list(TORCHVISION_CATEGORIES)
    if configured:
        return [str(name) for name in configured]
    for key in METADATA_KEYS:
        if key in metadata:
            return _parse_names(metadata[key], f"{source} metadata {key!r}")
    return None


def class_lookup(names: Sequence[str] | None, channels: int | None, class_groups: Mapping[str, Sequence[str]],
                 class_names: Sequence[str], source: str) -> np.ndarray:
    """A uint8 lookup from model class id to stream class id (0 = background).

    ``channels`` is a semantic model's channel count (None for an instance model): without ``names`` it must
    equal the stream's class count, and channel ``i`` becomes class ``i`` (logged once).
    """
    if names is None:
        if channels is not None and channels == len(class_names):
            logger.warning("%s names no classes; its %d channels are taken as the stream's classes %s in order",
                           source, channels, ", ".join(class_names))
            return np.arange(channels, dtype=np.uint8)
        if channels is None:
            raise TeacherError(f"{source} names no classes for the class ids it outputs", NAMES_FIX)
        raise TeacherError(f"{source} names no classes and its {channels} channels are not the stream's "
                           f"{len(class_names)} classes", NAMES_FIX)
    if channels is not None and channels != len(names):
        raise TeacherError(f"{source} has {channels} output channels but {len(names)} class names",
                           "give one name per output channel")
    stream_ids = {name: i for i, name in enumerate(class_names) if i > 0}
    lookup = np.array([stream_ids.get(name, 0) for name in names], dtype=np.uint8)
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_name.setdefault(name, []).append(i)
    for group, members in class_groups.items():
        for member in members:
            lookup[by_name.get(member, [])] = stream_ids.get(group, 0)
    if not lookup.any():
        raise TeacherError(f"no class of {source} ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}) maps "
                           f"to the stream's classes {', '.join(class_names[1:])}",
                           "name model classes after stream classes, or map them with teacher.class_groups")
    return lookup


def _parse_names(text: str, where: str) -> list[str]:
    """Names from a JSON list, a JSON or Python ``{id: name}`` mapping, or comma-separated text.

    Class ids are bounded (``MAX_CLASS_ID``) before a list is built from them, and names must be plain
    values: a hostile model cannot exhaust memory or the stack here.
    """
    value: Any = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, TypeError):
            continue
        except (RecursionError, MemoryError):
            raise TeacherError(f"{where} is nested too deeply to read", NAMES_FIX) from None
    if value is None and text.lstrip().startswith(("[", "{")):
        raise TeacherError(f"{where} is neither a JSON list nor an {{id: name}} mapping", NAMES_FIX)
    if value is None or isinstance(value, str):
        value = [name.strip() for name in text.split(",")]
    if isinstance(value, Mapping):
        value = _names_by_id(value, where)
    if not isinstance(value, list | tuple) or not value:
        raise TeacherError(f"{where} holds no class names", NAMES_FIX)
    if len(value) > MAX_CLASS_ID + 1:
        raise TeacherError(f"{where} names {len(value)} classes, more than odist reads ({MAX_CLASS_ID + 1})",
                           NAMES_FIX)
    if not all(isinstance(name, _NAME_TYPES) for name in value):
        raise TeacherError(f"{where} holds a class name that is not text", NAMES_FIX)
    return [str(name) for name in value]


def _names_by_id(value: Mapping[Any, Any], where: str) -> list[str]:
    """A ``{id: name}`` mapping as a list by id (missing ids named ""), its ids checked first."""
    try:
        ids = {int(k): v for k, v in value.items() if not isinstance(k, bool)}
    except (TypeError, ValueError, OverflowError):
        raise TeacherError(f"{where} maps non-integer ids to names", NAMES_FIX) from None
    if len(ids) != len(value):
        raise TeacherError(f"{where} maps non-integer ids to names", NAMES_FIX)
    bad = [i for i in ids if not 0 <= i <= MAX_CLASS_ID]
    if bad:
        raise TeacherError(f"{where} has class id {min(bad, key=abs)}, outside 0..{MAX_CLASS_ID}", NAMES_FIX)
    if not all(isinstance(name, _NAME_TYPES) for name in ids.values()):
        raise TeacherError(f"{where} holds a class name that is not text", NAMES_FIX)
    return [str(ids.get(i, "")) for i in range(max(ids) + 1)] if ids else []
