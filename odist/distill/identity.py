"""What a stream is, so that a resume continues the same stream and nothing else.

A stream's ``stream.json`` is written by the attempt that starts it and never replaced while the stream
has commits: it records what the committed frames are (input, the video file's size and version (an S3
ETag or a local modification time), decoded size, frame sampling, classes and the student's architecture).
A later attempt (``--resume``, a fleet re-submission, a live camera's restart) that would decode other
frames or train another student is refused in one line naming both values and the way out; one that
matches adds its own record under ``attempts/``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from odist.errors import OutputError
from odist.redact import redact
from odist.storage.layout import StreamArea, dumps

STREAM_MANIFEST = "stream.json"
ATTEMPTS = "attempts/"
RESUME_FIX = "pass --overwrite to start it over, or another --stream-id (or --out) for the new input"
# The student's architecture: what its weights mean (a checkpoint's own metadata, odist.storage.checkpoint).
ARCHITECTURE_KEYS = ("width", "units", "input_scale", "batch_stats_at_inference", "fine_skips")


def stream_identity(manifest: dict[str, Any], *, resolved: bool = True) -> dict[str, Any]:
    """The facts of a stream manifest (``stream.json``) that a resume must agree on (``resolved``: the input as
    an absolute path where the manifest has it)."""
    source = manifest.get("source") or {}
    config = manifest.get("config") or {}
    student = config.get("student") or {}
    size = (source.get("width"), source.get("height"))
    file = source.get("file") or {}
    return {
        "input": redact(str((resolved and manifest.get("input_resolved")) or manifest.get("input"))),
        "file": f"{file['bytes']} bytes, {file['version']}" if {"bytes", "version"} <= file.keys() else None,
        "size": None if None in size else f"{size[0]}x{size[1]}",
        "fps": _rate(source.get("fps")),
        "synthetic seed": manifest.get("seed"),
        "classes": None if config.get("classes") is None else ", ".join(config["classes"]),
        "student": None if not student else
        " ".join(f"{key}={student[key]}" for key in ARCHITECTURE_KEYS if key in student),
    }


def identity_fields(uri: str, seed: int) -> dict[str, Any]:
    """What ``stream.json`` adds to name its input independently of the working folder (and a scene's seed)."""
    local = "://" not in uri and not uri.startswith("synthetic:")
    return {"input_resolved": os.path.abspath(os.path.expanduser(uri)) if local else uri,
            "seed": seed if uri.startswith("synthetic:") else None}


def check_resume(area: StreamArea, manifest: dict[str, Any], fix: str = RESUME_FIX) -> None:
    """Refuse (``OutputError``, with ``fix``) to continue ``area``'s committed frames with a stream ``manifest``
    that differs."""
    if area.last_commit() is None:
        return
    data = area.store.get_or_none(area.key(STREAM_MANIFEST))
    committed = None if data is None else json.loads(data)
    if committed is None:
        return  # written before stream.json held these facts: nothing to compare
    resolved = "input_resolved" in committed  # written before it was recorded: compare the inputs as given
    before, now = stream_identity(committed, resolved=resolved), stream_identity(manifest, resolved=resolved)
    for key, value in before.items():
        if value is None or now.get(key) is None or value == now[key]:
            continue
        raise OutputError(f"stream {area.stream_id} in {area.store.uri} was started with {key} {value}, "
                          f"this run gives {key} {now[key]}", fix)


def check_length(area: StreamArea, frames: int | None) -> None:
    """Refuse (``OutputError``) to resume ``area`` from an input that ends before its committed frames do (a
    smaller ``--frames``): the stream would be marked done without the frames it was started for."""
    last = area.last_commit()
    if last is None or frames is None or frames >= last.next_frame_index:
        return
    raise OutputError(f"stream {area.stream_id} in {area.store.uri} has {last.next_frame_index} frames committed, "
                      f"but this run's input ends after {frames}",
                      f"pass --frames {last.next_frame_index} or more to continue it, or --overwrite to start it over")


def record_attempt(area: StreamArea, manifest: dict[str, Any]) -> None:
    """Write this attempt's record; ``stream.json`` too when the stream has no commit (nothing to describe yet)."""
    document = dumps({**manifest, "attempt": area.attempt})
    describe = area.last_commit() is None or not area.store.exists(area.key(STREAM_MANIFEST))
    area.store.put_many([(area.key(f"{ATTEMPTS}{area.attempt}.json"), document),
                         *([(area.key(STREAM_MANIFEST), document)] if describe else [])])


def _rate(fps: Any) -> str | None:
    return None if fps is None else f"{float(fps):g} fps"
