"""``--warm-start fleet-average``: a checkpoint whose student weights are the mean of finished students'.

Every stream's student begins from the same initial weights (``distill.seed``), so the students of one
site are fine-tuned copies of one network, and their element-wise mean is a network too (a "model soup").
The averaged checkpoint is written once per set of students, under a name derived from their checkpoints,
so a re-submitted job finds the same file.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from odist.errors import CheckpointError
from odist.storage.checkpoint import checkpoint_bytes, load_checkpoint, parse_checkpoint
from odist.storage.objectstore import ObjectStore

FOLDER = "fleet_average"


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; other tensors (BatchNorm's step count) from the last."""
    if not states:
        raise ValueError("no weights to average")
    mean = {}
    for name, last in states[-1].items():
        if last.is_floating_point():
            mean[name] = torch.stack([state[name].to(torch.float32) for state in states]).mean(0).to(last.dtype)
        else:
            mean[name] = last.clone()
    return mean


def average_key(checkpoints: list[str]) -> str:
    """The store key of the average of ``checkpoints`` (in their order)."""
    digest = hashlib.sha256("\n".join(checkpoints).encode()).hexdigest()[:16]
    return f"{FOLDER}/{digest}.pt"


def write_average(store: ObjectStore, checkpoints: list[str],
                  config_dict: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(URI, checkpoints used) of the average of those of ``checkpoints`` that fit ``config_dict``, written
    unless already there; None when none fits. A checkpoint that cannot be read or does not fit is left out
    (the average records which were used, ``averaged_from``)."""
    key = average_key(checkpoints)
    data = store.get_or_none(key)
    if data is not None:
        return store.url(key), list(parse_checkpoint(data, store.url(key), config_dict)["averaged_from"])
    payloads, used = [], []
    for uri in checkpoints:
        try:
            payloads.append(load_checkpoint(uri, config_dict))
        except CheckpointError:
            continue
        used.append(uri)
    if not payloads:
        return None
    weights = average_weights([p["state"]["distiller"]["student"] for p in payloads])
    store.put(key, checkpoint_bytes({"distiller": {"student": weights}}, payloads[-1]["config"],
                                    next_frame_index=0, averaged_from=used))
    return store.url(key), used
