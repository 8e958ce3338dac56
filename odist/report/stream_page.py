"""The stream pages of the HTML report: per stream, sample frames with their masks, accuracy and stride over time.

Each page shows a strip of sample frames (keyframes spread over the stream, then the worst-scored frames)
with the teacher's labels beside the student's masks where the teacher's labels exist (synthetic truth,
replay labels), accuracy per frame with the keyframes marked, and the stride ladder over time. Images are
inline PNGs (``data:`` URIs) and plots inline SVG, so the page stays self-contained.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
import pyarrow as pa

from odist.errors import OdistError
from odist.render.samples import sample_frames
from odist.report.render_table import num, times
from odist.report.report import Report
from odist.report.svg import series_plot
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

SAMPLE_KEYFRAMES = 3
SAMPLE_WORST = 3
CSS = """
.stream { border-top: 2px solid #ccc; margin-top: 28px; }
.strip { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.strip figure { margin: 0; font-size: 12px; }
.strip img { display: block; border: 1px solid #ddd; }
.stream svg.plot { width: calc(50% - 10px); max-width: 540px; height: auto; }
"""


def chosen_streams(report: Report, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` streams with committed frames, the least accurate first (unscored ones after)."""
    rows = [r for r in report.streams.to_pylist() if (r.get("frames") or 0) > 0]
    rows.sort(key=lambda r: (not _finite(r.get("miou")), r.get("miou") if _finite(r.get("miou")) else 0.0,
                             r["stream_id"], r["run"]))
    return rows[:limit]


def sample_indices(records: pa.Table, keyframes: int = SAMPLE_KEYFRAMES, worst: int = SAMPLE_WORST) -> list[int]:
    """Frame indices to draw: ``keyframes`` keyframes spread over the stream, then the ``worst`` lowest-mIoU
    other frames (or, unscored, frames spread between the keyframes)."""
    index = records.column("frame_index").to_numpy()
    is_key = records.column("keyframe").to_numpy(zero_copy_only=False).astype(bool)
    miou = records.column("miou").to_numpy(zero_copy_only=False).astype(float)
    keys = index[is_key]
    picked = [int(keys[i]) for i in _spread(len(keys), keyframes)]
    others = np.flatnonzero(~np.isin(index, picked))
    scored = others[np.isfinite(miou[others])]
    if scored.size:
        picked += [int(index[i]) for i in scored[np.argsort(miou[scored], kind="stable")[:worst]]]
    else:
        picked += [int(index[others[i]]) for i in _spread(len(others), worst)]
    return picked


def stream_sections(report: Report, limit: int) -> list[str]:
    """The HTML of the stream pages (empty with ``limit`` 0)."""
    rows = chosen_streams(report, limit)
    if not rows:
        return []
    head = (f"<h2>Stream pages ({len(rows)} of {report.streams.num_rows:,} streams, the least accurate first)</h2>"
            "<p>Sample frames: keyframes spread over the stream, then the worst-scored frames; teacher labels "
            "left of the student's masks where the teacher's labels are stored. Accuracy per frame with the "
            "keyframes marked, and the stride (frames between keyframes) over time.</p>")
    return [head, *(_section(row, n) for n, row in enumerate(rows))]


def _section(row: dict[str, Any], n: int) -> str:
    run, sid = row["run"], row["stream_id"]
    records = read_stream_table(StreamArea(open_store(run), sid))
    facts = (f"{row['status']}, {num(records.num_rows)} frames committed, {num(row.get('keyframes'))} keyframes, "
             f"mIoU {num(row.get('miou'))}, foreground {num(row.get('miou_foreground'))}; speed-up "
             f"{times(row.get('speedup_measured'))} measured ({row.get('teacher_cost_here') or 'no teacher figure'})"
             f", {times(row.get('speedup_cost_model'))} paper's GPU cost model; run {run}")
    parts = [f'<section class="stream" id="stream-{n}"><h3>Stream {escape(sid)}</h3><p>{escape(facts)}</p>']
    indices = sample_indices(records)
    try:
        samples = sample_frames(run, sid, indices)
    except OdistError as exc:  # e.g. a source video that has moved: the plots still show
        parts.append(f"<p>No sample frames: {escape(str(exc))}</p>")
        samples = []
    by_index = {s.index: s for s in samples}
    figures = []
    for index in indices:
        sample = by_index.pop(index, None)
        if sample is None:
            continue
        kind = "keyframe" if sample.record.get("keyframe") else "low mIoU"
        figures.append(f'<figure><img alt="{escape(sid)} frame {index}" width="{sample.picture.shape[1]}" '
                       f'height="{sample.picture.shape[0]}" src="data:image/png;base64,'
                       f'{base64.b64encode(sample.png()).decode()}"><figcaption>frame {index} ({kind})'
                       "</figcaption></figure>")
    if figures:
        parts.append('<div class="strip">' + "".join(figures) + "</div>")
    parts.append('<div class="plots">' + _accuracy_plot(records, n) + _stride_plot(records, n) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _accuracy_plot(records: pa.Table, n: int) -> str:
    index = records.column("frame_index").to_numpy()
    is_key = records.column("keyframe").to_numpy(zero_copy_only=False).astype(bool)
    miou = records.column("miou").to_numpy(zero_copy_only=False).astype(float)
    if np.isfinite(miou).any():
        ys, label = miou, "frame mIoU vs teacher"
    else:  # not evaluated: the student's accuracy on each keyframe after its updates
        ys, label = records.column("keyframe_accuracy").to_numpy(zero_copy_only=False).astype(float), \
            "keyframe accuracy"
    return series_plot(f"plot-stream-{n}-accuracy", "Accuracy over time", index, ys, "frame", label,
                       marks=index[is_key].tolist(), mark_label="keyframe", y_range=(0.0, 1.05))


def _stride_plot(records: pa.Table, n: int) -> str:
    index = records.column("frame_index").to_numpy()
    stride = records.column("stride").to_numpy(zero_copy_only=False).astype(float)
    return series_plot(f"plot-stream-{n}-stride", "Stride over time", index, stride, "frame",
                       "stride (frames between keyframes)", step=True, color="#59a14f")


def _spread(count: int, wanted: int) -> Sequence[int]:
    """``wanted`` positions spread evenly over ``range(count)`` (all of them when there are fewer)."""
    if count <= wanted:
        return range(count)
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)}) if wanted > 1 else [0]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
