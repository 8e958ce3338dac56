"""``export_stream``: the student a stream earned, as an ONNX model or a ``torch.export`` program, checked.

The weights are those of the stream's last commit (its final checkpoint: the student after its last
committed frame). The model takes float32 RGB frames in 0..255 at the stream's decoded size and does odist's
normalisation inside (``odist.export.model``); the file's metadata (ONNX ``metadata_props["odist"]``, or the
``odist.json`` extra file of a ``.pt2``) says so, with the classes, the input size and how odist resized the
source. Before the file is moved into place it is loaded back (ONNX Runtime, ``torch.export.load``) and run
on frames of the stream, reopened from its ``stream.json``; its class maps must equal those PyTorch
computes with the same weights the way the distiller infers a frame, pixel for pixel except at numerical
ties (two classes' logits within ``TIE`` of each other).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odist._version import __version__
from odist.config import config_from_dict
from odist.distill.learning import IMAGE_MEAN, IMAGE_STD, new_student
from odist.errors import ConfigError, InputError, OutputError
from odist.export.model import DeployedStudent, as_input, odist_class_map, odist_logits, top_two_gap
from odist.storage.checkpoint import architecture, parse_checkpoint, weight_digest
from odist.storage.documents import STREAM_MANIFEST
from odist.storage.integrity import require_complete
from odist.storage.layout import StreamArea
from odist.storage.listing import stream_of_run
from odist.video.open import open_source

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}
METADATA_KEY = "odist"  # ONNX metadata_props key; a .pt2 holds the same JSON as the extra file odist.json
PT2_EXTRA_FILE = "odist.json"
INPUT_NAME, OUTPUT_NAMES = "frames", ("logits", "classes")
TIE = 1e-3  # logits this close to each other are a tie that float rounding may break either way
CHECK_FRAMES = 8
ONNX_NEEDS = "pip install 'odist[export]' (onnx, onnxscript and onnxruntime)"


@dataclass(frozen=True)
class Exported:
    """What ``export_stream`` wrote and how it checked it."""

    path: Path
    format: str
    stream_id: str
    classes: tuple[str, ...]
    width: int
    height: int
    weights_after_frame: int
    stream_done: bool
    checked_frames: list[int]
    pixels: int
    tie_pixels: int  # pixels whose class differs from PyTorch's at a numerical tie
    bytes: int
    metadata: dict[str, Any] = field(repr=False)


def export_stream(run: str, stream_id: str, out: str | Path, *, format: str | None = None,
                  check_frames: int = CHECK_FRAMES, source_uri: str | None = None,
                  threads: int | None = None) -> Exported:
    """Export the student of ``stream_id`` in the run root ``run`` to ``out`` (``format`` onnx or pt2; default:
    from the suffix of ``out``), after checking it on the stream's first ``check_frames`` frames (read from
    ``source_uri`` when the source has moved)."""
    fmt, path = output_format(out, format)
    if not isinstance(check_frames, int) or check_frames < 1:
        raise ConfigError(f"check_frames {check_frames!r} is not a positive frame count",
                          "pass 1 or more frames to check the export on (--check-frames N)")
    if threads:
        torch.set_num_threads(threads)
    _require_exporter(fmt)
    area, manifest = _stream(run, stream_id)
    config_dict = manifest["config"]
    commit = area.last_commit()
    payload = parse_checkpoint(area.store.get(commit.checkpoint), area.store.url(commit.checkpoint), config_dict)
    config = config_from_dict(config_dict)
    student = new_student(config)
    student.load_state_dict(payload["state"]["distiller"]["student"])
    student.eval()
    height, width = _size(manifest, stream_id)
    scale = config.student.input_scale
    metadata = _metadata(area, manifest, commit, student, config, width, height, fmt)
    frames = _check_frames(manifest, source_uri, stream_id, check_frames, (height, width))
    deployed = DeployedStudent(student, scale).eval()
    temporary = _temporary(path)
    try:
        program = _program(deployed, torch.from_numpy(as_input([frames[0][1]] * 2)))
        (_write_onnx if fmt == "onnx" else _write_pt2)(program, temporary, metadata)
        run_exported = (_onnx_runner if fmt == "onnx" else _pt2_runner)(temporary, threads)
        pixels, ties = _compare(run_exported, student, scale, frames, stream_id, fmt)
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})", "choose a writable --out path") from None
    finally:
        temporary.unlink(missing_ok=True)
    return Exported(path, fmt, stream_id, tuple(config.classes), width, height, commit.last_frame,
                    area.summary() is not None, [index for index, _ in frames], pixels, ties, path.stat().st_size,
                    metadata)


def output_format(out: str | Path, format: str | None) -> tuple[str, Path]:
    """(format, path) of an export to ``out``; one-line errors for a bad format, suffix or folder."""
    path = Path(out)
    if format is not None and format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}", f"pass one of: {', '.join(FORMATS)}")
    by_suffix = {suffix: name for name, suffix in FORMATS.items()}.get(path.suffix.lower())
    fmt = format or by_suffix
    if fmt is None:
        raise OutputError(f"cannot tell which format to write to {path}",
                          "name a file ending in .onnx or .pt2, or pass --format onnx|pt2")
    if path.suffix.lower() != FORMATS[fmt]:
        raise OutputError(f"cannot write {fmt} to {path}: the file name does not end in {FORMATS[fmt]}",
                          f"name a file ending in {FORMATS[fmt]}")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder", f"name a file ending in {FORMATS[fmt]}")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the folder {path.parent} does not exist",
                          "create it first, or choose another --out path")
    return fmt, path


def _require_exporter(fmt: str) -> None:
    if fmt != "onnx":
        return
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(f"exporting to ONNX needs {module}, which cannot be imported", ONNX_NEEDS) from None


def _stream(run: str, stream_id: str) -> tuple[StreamArea, dict[str, Any]]:
    area = stream_of_run(run, stream_id)
    store = area.store
    if not area.commits():
        raise InputError(f"stream {stream_id} in {store.uri} has no committed student yet",
                         "run or resume the stream first (odist ls shows its status)")
    require_complete(area, checkpoint=True)
    manifest = area.manifest()
    if manifest is None:
        raise InputError(f"stream {stream_id} in {store.uri} has no {STREAM_MANIFEST}",
                         "export reads the stream's classes and input from it; the run is incomplete")
    if "config" not in manifest:
        raise InputError(f"the {STREAM_MANIFEST} of stream {stream_id} in {store.uri} holds no config",
                         "restore it from a backup")
    return area, manifest


def _size(manifest: dict[str, Any], stream_id: str) -> tuple[int, int]:
    source = manifest.get("source") or {}
    width, height = source.get("width"), source.get("height")
    if not width or not height:
        raise InputError(f"the {STREAM_MANIFEST} of stream {stream_id} records no frame size",
                         "export fixes the model's input size to the stream's; the run is incomplete")
    return int(height), int(width)


def _metadata(area: StreamArea, manifest: dict[str, Any], commit: Any, student: torch.nn.Module, config: Any,
              width: int, height: int, fmt: str) -> dict[str, Any]:
    """Everything a consumer needs to feed raw RGB frames to the exported student and read its output."""
    classes = list(config.classes)
    per_frame = bool(config.student.batch_stats_at_inference)
    shrink = "AREA when shrinking, else BILINEAR"
    return {
        "format": "odist-exported-student", "format_version": 1, "odist_version": __version__, "export_format": fmt,
        "run": area.store.uri, "stream_id": area.stream_id, "input": manifest.get("input"),
        "checkpoint": area.store.url(commit.checkpoint), "weights_after_frame": commit.last_frame,
        "weight_digest": weight_digest(student.state_dict()),
        "classes": classes, "num_classes": len(classes),
        "student": {"architecture": architecture({"width": config.student.width, "units": config.student.units,
                                                  "fine_skips": config.student.fine_skips}),
                    "input_scale": config.student.input_scale, "batch_stats_at_inference": per_frame},
        "inputs": {INPUT_NAME: {
            "shape": ["N", 3, height, width], "dtype": "float32", "layout": "NCHW", "channels": "RGB",
            "range": [0, 255], "height": height, "width": width,
            "resize": f"frames of another size are resized to {width}x{height} first, as odist decoded the "
                      f"stream's video (FFmpeg swscale to rgb24, {shrink})"}},
        "normalisation": {
            "in_model": True, "formula": "(frames / 255 - mean) / std, per channel, inside the model",
            "mean": list(IMAGE_MEAN), "std": list(IMAGE_STD),
            "deepstream": "net-scale-factor=1, offsets=0;0;0, model-color-format=0 (RGB)"},
        "outputs": {
            "logits": {"shape": ["N", len(classes), height, width], "dtype": "float32"},
            "classes": {"shape": ["N", height, width], "dtype": "uint8",
                        "meaning": "class id of each pixel (arg-max of logits), an index into classes"}},
        "batch_norm": ("per frame: every frame of a batch is normalised with its own statistics, as odist "
                       "infers one frame at a time" if per_frame else "running statistics"),
    }


def _check_frames(manifest: dict[str, Any], source_uri: str | None, stream_id: str, count: int,
                  size: tuple[int, int]) -> list[tuple[int, np.ndarray]]:
    """(index, RGB image) of the stream's first ``count`` frames, reopened as odist read them."""
    uri = source_uri or manifest.get("input_resolved") or manifest.get("input")  # resolved: from any folder
    if not uri:
        raise InputError(f"the {STREAM_MANIFEST} of stream {stream_id} names no input",
                         "pass --input PATH: export checks the model on the stream's frames")
    src, options = manifest.get("source", {}), manifest.get("options", {})
    source = None
    try:
        source = open_source(uri, seed=int(options.get("seed") or 0), width=src.get("width"),
                             height=src.get("height"), frames=options.get("frames"), fps=options.get("fps"))
        frames = []
        for frame in source:
            frames.append((frame.index, frame.image))
            if len(frames) == count:
                break
    except InputError as exc:
        raise InputError(f"the source of stream {stream_id} cannot be read: {exc.what}",
                         "export checks the model on the stream's frames; if the video has moved, pass "
                         "--input PATH to read it from where it is now") from None
    finally:
        if source is not None and hasattr(source, "close"):
            source.close()
    if not frames:
        raise InputError(f"the source of stream {stream_id} ({uri}) gives no frames",
                         "pass --input PATH with the video the stream was made from")
    shape = frames[0][1].shape[:2]
    if shape != size:
        raise InputError(f"the source of stream {stream_id} gives {shape[1]}x{shape[0]} frames but the stream was "
                         f"{size[1]}x{size[0]}", "pass --input PATH with the video the stream was made from")
    return frames


def _temporary(path: Path) -> Path:
    """A name beside ``path`` to write to before the check (the writer creates it with the usual permissions)."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")


def _program(model: DeployedStudent, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``model`` through ``torch.export``, with a dynamic batch size (``example`` is a batch of two: one would
    fix it)."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def _write_onnx(program: torch.export.ExportedProgram, target: Path, metadata: dict[str, Any]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports its progress on stdout
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=[INPUT_NAME],
                                         output_names=list(OUTPUT_NAMES), verbose=False)
    model = onnx_program.model
    import onnx_ir

    for value in [*model.graph.inputs, *model.graph.outputs]:  # name the dynamic batch dimension as the metadata does
        if value.shape is not None and not isinstance(value.shape[0], int):
            value.shape = onnx_ir.Shape(["N", *value.shape[1:]])
    model.producer_name, model.producer_version = "odist", __version__
    size = metadata["inputs"][INPUT_NAME]
    model.doc_string = (f"odist student of stream {metadata['stream_id']}: {INPUT_NAME} float32 RGB 0..255 "
                        f"(N, 3, {size['height']}, {size['width']}) -> logits, classes; classes "
                        f"{', '.join(metadata['classes'])}")
    model.metadata_props[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    onnx_program.save(str(target))


def _write_pt2(program: torch.export.ExportedProgram, target: Path, metadata: dict[str, Any]) -> None:
    torch.export.save(program, str(target), extra_files={PT2_EXTRA_FILE: json.dumps(metadata, sort_keys=True)})


def _onnx_runner(path: Path, threads: int | None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})


def _pt2_runner(path: Path, threads: int | None) -> Any:
    module = torch.export.load(str(path)).module()

    def run(batch: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            logits, classes = module(torch.from_numpy(batch))
        return [logits.numpy(), classes.numpy()]

    return run


def _compare(run_exported: Any, student: torch.nn.Module, scale: float, frames: list[tuple[int, np.ndarray]],
             stream_id: str, fmt: str) -> tuple[int, int]:
    """Run the exported model on ``frames`` as one batch; (pixels compared, pixels differing at ties).

    A pixel whose class differs from PyTorch's where the two best logits are not a tie fails the export."""
    _, exported = run_exported(as_input([image for _, image in frames]))
    pixels = ties = 0
    for (index, image), classes in zip(frames, exported, strict=True):
        logits = odist_logits(student, image, scale)
        expected = odist_class_map(logits)
        differ = classes != expected
        real = differ & (top_two_gap(logits) >= TIE)
        if real.any():
            raise OutputError(f"the exported {fmt} student of stream {stream_id} disagrees with PyTorch on "
                              f"{int(real.sum())} of {differ.size} pixels of frame {index}",
                              f"nothing was written; report this with the run's {STREAM_MANIFEST}")
        pixels += differ.size
        ties += int(differ.sum())
    return pixels, ties
