"""The teacher a stream gets when none is named (``teacher.name=auto``, the default). Torch-free: the fleet
driver chooses a shared pool's teacher with it.

``auto`` is the oracle for ``synthetic:`` inputs, which carry exact ground truth, and the paper's teacher for
everything else: Mask R-CNN R50-FPN with torchvision's COCO weights, unless ``teacher.weights`` names others
(``odist.models.teachers.choice`` fetches and checks them).
"""

from __future__ import annotations

import dataclasses

from odist.config import OdistConfig
from odist.storage.location import SYNTHETIC

AUTO = "auto"
TORCHVISION_WEIGHTS = "torchvision"


def teacher_for_input(config: OdistConfig, uri: str) -> OdistConfig:
    """``config`` with ``teacher.name=auto`` made concrete for the input ``uri`` (see the module doc)."""
    if config.teacher.name.strip() != AUTO:
        return config
    if str(uri).startswith(SYNTHETIC):
        return dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, name="oracle"))
    weights = config.teacher.weights or TORCHVISION_WEIGHTS
    return dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, name="maskrcnn", weights=weights))


def teacher_for_inputs(config: OdistConfig, uris: list[str]) -> OdistConfig:
    """The concrete teacher of a job over ``uris`` sharing one teacher (a pool): the oracle only when every input
    is synthetic."""
    if config.teacher.name.strip() != AUTO:
        return config
    every_synthetic = bool(uris) and all(str(uri).startswith(SYNTHETIC) for uri in uris)
    return teacher_for_input(config, f"{SYNTHETIC}any" if every_synthetic else "video")
