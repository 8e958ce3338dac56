"""Student checkpoints that carry their own metadata, so a loader can check they fit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from odist.errors import CheckpointError
from odist.storage.atomic import write_bytes_atomic

FORMAT = "odist-student-checkpoint"
FORMAT_VERSION = 1


def student_metadata(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The facts a checkpoint must agree on to be loaded into a student."""
    student = config_dict["student"]
    return {
        "classes": list(config_dict["classes"]),
        "width": student["width"],
        "units": student["units"],
        "batch_stats_at_inference": student["batch_stats_at_inference"],
    }


def save_checkpoint(path: Path, state: dict[str, Any], config_dict: dict[str, Any], **extra: Any) -> None:
    """Atomically write the distiller ``state`` plus metadata and the full config."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": student_metadata(config_dict),
        "config": config_dict,
        "state": state,
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, config_dict: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint and check that its student matches ``config_dict``; returns the payload."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist", "pass the checkpoint.pt a previous run wrote")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}", "pass an odist student checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an odist student checkpoint", "pass the checkpoint.pt a run wrote")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload['format_version']}",
                              f"this odist reads up to version {FORMAT_VERSION}; upgrade odist")
    expected = student_metadata(config_dict)
    found = payload["metadata"]
    for key, value in expected.items():
        if found.get(key) != value:
            raise CheckpointError(
                f"checkpoint {path} has {key}={found.get(key)!r} but this run uses {value!r}",
                f"run with the checkpoint's settings (--set student.{key}=...) or start without --init")
    return payload
