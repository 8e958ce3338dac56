"""Student checkpoints that carry their own metadata, so a loader can check they fit."""

from __future__ import annotations

import io
from typing import Any

import torch

from odist.errors import CheckpointError, StorageError
from odist.storage.documents import SUMMARY

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
        "fine_skips": student["fine_skips"],
    }


# What a checkpoint written before a metadata key existed had: the paper's JITNet head.
METADATA_BEFORE_KEYS = {"fine_skips": False}


def checkpoint_bytes(state: dict[str, Any], config_dict: dict[str, Any], **extra: Any) -> bytes:
    """Serialise the stream ``state`` plus metadata and the full config."""
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
    return buffer.getvalue()


def weights_checkpoint_bytes(weights: dict[str, torch.Tensor], config_dict: dict[str, Any], contents: str,
                             **extra: Any) -> bytes:
    """A checkpoint of the student's ``weights`` alone (``contents`` ``weights``, or ``weights-fp16``: floating
    tensors in half precision), which warm starts and export read but nothing can continue a stream from."""
    half = contents == "weights-fp16"
    student = {name: (t.detach().to("cpu", torch.float16) if half and t.is_floating_point() else t.detach().cpu())
               for name, t in weights.items()}
    return checkpoint_bytes({"distiller": {"student": student}}, config_dict, contents=contents, **extra)


def check_continuable(payload: dict[str, Any], where: str, stream_id: str) -> None:
    """A one-line ``CheckpointError`` when ``payload`` holds less than a stream's whole state (``contents``)."""
    contents = payload.get("contents", "full")
    if contents != "full":
        raise CheckpointError(
            f"stream {stream_id} cannot continue: its last checkpoint {where} holds the student's weights only "
            f"(storage.final_checkpoint={contents}), not the state to resume it exactly",
            "start it over (--overwrite), or warm-start a new stream from it (--init); keep "
            "storage.final_checkpoint=full for streams that must continue")


def parse_checkpoint(data: bytes, where: str, config_dict: dict[str, Any]) -> dict[str, Any]:
    """Read checkpoint bytes and check that its student matches ``config_dict``; returns the payload."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {where} cannot be read ({type(exc).__name__})",
                              "pass an odist student checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an odist student checkpoint", "pass a checkpoint a run wrote")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {where} has format version {payload['format_version']}",
                              f"this odist reads up to version {FORMAT_VERSION}; upgrade odist")
    check_fits(payload["metadata"], config_dict, where)
    return payload


def check_fits(metadata: dict[str, Any], config_dict: dict[str, Any], where: str) -> None:
    """A one-line ``CheckpointError`` naming both sides when a checkpoint's classes or student architecture
    (``metadata``) differ from the stream's (``config_dict``)."""
    expected = student_metadata(config_dict)
    found = {**METADATA_BEFORE_KEYS, **metadata}
    if list(found.get("classes") or []) != expected["classes"]:
        raise CheckpointError(
            f"checkpoint {where} was trained for classes {_names(found.get('classes'))} but this stream has "
            f"classes {_names(expected['classes'])}",
            "start from a checkpoint of the stream's classes, or without that checkpoint")
    keys = [key for key in expected if key != "classes"]
    if any(found.get(key) != expected[key] for key in keys):
        raise CheckpointError(
            f"checkpoint {where} holds a student {architecture(found, keys)} but this stream's student is "
            f"{architecture(expected, keys)}",
            "run with the checkpoint's student settings (--set student.KEY=VALUE), or start without that checkpoint")


def architecture(metadata: dict[str, Any], keys: list[str] | None = None) -> str:
    """``width=0.25 units=... fine_skips=True``: a student's architecture as a checkpoint records it."""
    return " ".join(f"{key}={metadata.get(key)!r}" for key in keys or [k for k in metadata if k != "classes"])


def _names(classes: Any) -> str:
    return "[" + ", ".join(str(c) for c in classes or []) + "]"


def load_checkpoint(uri: str, config_dict: dict[str, Any]) -> dict[str, Any]:
    """Read and check a checkpoint from a local path, ``file://`` or ``s3://`` URI."""
    from odist.storage.objectstore import open_store

    parent, _, name = str(uri).rstrip("/").rpartition("/")
    try:
        data = open_store(parent or ".").get(name)
    except StorageError as exc:
        raise CheckpointError(f"checkpoint {uri} cannot be read: {exc.what}",
                              f"pass the checkpoint URI a run's {SUMMARY} names") from None
    return parse_checkpoint(data, str(uri), config_dict)


def weight_digest(weights: dict[str, Any]) -> str:
    """``sha256:...`` of a student's ``state_dict`` (names, dtypes, shapes and values), to tell which weights
    a student began from."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().to("cpu")
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        # Values in row-major order whatever the memory format (a channels_last weight digests as a contiguous one).
        flat = tensor.contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return "sha256:" + digest.hexdigest()[:32]
