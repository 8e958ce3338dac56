"""The weights of the default teacher for videos, checked before anything is written.

The default teacher of a video (``odist.teacher_default``) is Mask R-CNN R50-FPN with torchvision's COCO
weights. They come through torchvision's own weights API, so they live in torch's cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``): a cache seeded on another
machine works offline. ``prepare_weights`` makes sure they are there before a run root is touched.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from odist.config import OdistConfig
from odist.errors import TeacherError
from odist.teacher_default import TORCHVISION_WEIGHTS

DOWNLOAD_TIMEOUT_S = 60.0
_ANNOUNCED: set[str] = set()  # cache files whose place was already told in this process


def prepare_weights(config: OdistConfig) -> None:
    """For Mask R-CNN with torchvision's COCO weights: have them in torch's cache, downloading them once (and
    saying where they are kept, once per process); offline with no cached copy, a ``TeacherError`` naming the file
    and how to provide it. Other teachers and weights are checked where they are built."""
    teacher = config.teacher
    if teacher.name.partition(":")[0].strip() != "maskrcnn" or teacher.weights != TORCHVISION_WEIGHTS:
        return
    from odist.models.teachers.maskrcnn import pretrained_url

    url = pretrained_url(teacher.arch)
    cached = weights_cache_dir() / os.path.basename(url)
    fetched = not cached.is_file()
    if fetched:
        _download(url, cached)
    if str(cached) not in _ANNOUNCED:
        _ANNOUNCED.add(str(cached))
        how = "downloaded to" if fetched else "from"
        print(f"teacher: Mask R-CNN {teacher.arch} with torchvision's COCO weights ({how} {cached})", file=sys.stderr)


def weights_cache_dir() -> Path:
    """Where torchvision's weights API keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _download(url: str, cached: Path) -> None:
    import torch

    cached.parent.mkdir(parents=True, exist_ok=True)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a network that drops packets fails, rather than hangs
    try:
        torch.hub.download_url_to_file(url, str(cached), progress=False)
    except (OSError, RuntimeError, ValueError) as exc:
        raise TeacherError(
            f"Mask R-CNN's COCO weights ({cached.name}) are not in torch's cache {cached.parent} and cannot be "
            f"downloaded ({exc})",
            f"copy {cached.name} from a machine that has it into {cached.parent} (or set TORCH_HOME to a seeded "
            "cache), pass --set teacher.weights=PATH, or choose another --teacher") from None
    finally:
        socket.setdefaulttimeout(before)
