"""How an archive stream's frames reach its session: every frame of the source in order, with progress.

A live camera's frames (the newest one each time) come from ``odist.live.realtime``; both are frame
iterators that ``StreamSession.run`` processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from odist.distill.runner import Progress
from odist.video.frame import Frame


def total_frames(source: Any, max_frames: int | None) -> int | None:
    """How many frames the source will give (``max_frames`` at most); None when unknown."""
    total = getattr(source, "num_frames", None)
    if max_frames is not None:
        return min(total, max_frames) if total else max_frames
    return total


def source_frames(source: Any, start: int, max_frames: int | None) -> Iterator[Frame]:
    """Frames ``start`` .. ``max_frames - 1`` of the source (random access where the source has it)."""
    stop = max_frames if max_frames is not None else None
    if start > 0 and hasattr(source, "frame"):
        end = len(source) if stop is None else min(stop, len(source))
        yield from (source.frame(i) for i in range(start, end))
        return
    for frame in source:
        if stop is not None and frame.index >= stop:
            break
        if frame.index >= start:
            yield frame


class ProgressBar:
    """A tqdm bar with frames/s, stride and running mIoU (when ``enabled``), plus an optional callback."""

    def __init__(self, total: int | None, enabled: bool, label: str,
                 callback: Callable[[Progress], None] | None = None) -> None:
        self.total, self.enabled, self.label, self.callback = total, enabled, label, callback
        self.bar = None

    def __enter__(self) -> Callable[[Progress], None] | None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.label, unit="frame", dynamic_ncols=True)
        return self._show if self.bar is not None or self.callback is not None else None

    def _show(self, p: Progress) -> None:
        if self.bar is not None:
            self.bar.update(p.frames - self.bar.n)
            self.bar.set_postfix(stride=p.stride, keyframes=p.keyframes, mIoU=f"{p.miou:.3f}", refresh=False)
        if self.callback is not None:
            self.callback(p)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            if exc[0] is None and self.bar.total != self.bar.n:  # a container's frame count is an estimate
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()
