"""Write a synthetic stream to disk as an H.264 video plus per-frame label PNGs."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from PIL import Image

from odist.errors import InputError, OutputError
from odist.video.synthetic import SyntheticSource

VIDEO_NAME = "video.mp4"
LABELS_DIR = "labels"
_FIX_FOLDER = "choose a writable output folder"


@dataclass(frozen=True)
class ExportedClip:
    """What ``write_synthetic`` wrote: ``labels/{index:06d}.png`` holds frame ``index``'s class ids."""

    video: Path
    labels: Path
    frames: int
    fps: float
    width: int
    height: int
    class_names: tuple[str, ...]

    def label_path(self, index: int) -> Path:
        return self.labels / label_name(index)


def label_name(index: int) -> str:
    return f"{index:06d}.png"


def write_synthetic(source: SyntheticSource, out_dir: str | Path, *, codec: str = "libx264",
                    crf: int = 18) -> ExportedClip:
    """Encode every frame of ``source`` into ``out_dir/video.mp4`` (yuv420p, the source's fps) and
    write its truth map as an 8-bit grayscale PNG of class ids into ``out_dir/labels``."""
    if source.width % 2 or source.height % 2:
        raise InputError(f"synthetic size {source.width}x{source.height} cannot be stored as yuv420p video",
                         "use an even width and height")
    out = Path(out_dir)
    labels = out / LABELS_DIR
    try:
        labels.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {labels} ({exc.strerror or exc})", _FIX_FOLDER) from None
    video = out / VIDEO_NAME
    try:
        count = _encode(source, video, labels, codec, crf)
    except av.error.FFmpegError as exc:
        raise OutputError(f"cannot encode {video} with codec {codec!r} ({exc})",
                          "choose a codec this FFmpeg build can encode, e.g. libx264 or mpeg4") from None
    except OSError as exc:
        raise OutputError(f"cannot write into {out} ({exc.strerror or exc})", _FIX_FOLDER) from None
    return ExportedClip(video, labels, count, source.fps, source.width, source.height, tuple(source.class_names))


def _encode(source: SyntheticSource, video: Path, labels: Path, codec: str, crf: int) -> int:
    count = 0
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(source.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in source:
            picture = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
            container.mux(stream.encode(picture))
            Image.fromarray(frame.truth).save(labels / label_name(frame.index), compress_level=1)
            count += 1
        container.mux(stream.encode(None))
    return count
