"""The results ``odist run`` ends with: accuracy and speed-up over the fleet, the worst streams, what to run next.

Figures come from the ``summary.json`` of each stream the job finished (``FleetSummary.outcomes``); streams
skipped as already done are left to ``odist report``, which reads the whole run root.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SCORES = ("miou", "miou_foreground", "speedup_cost_model", "speedup_measured")


def stream_scores(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The figures of one finished stream's ``summary.json`` that the results show (empty without one)."""
    if summary is None:
        return {}
    here = summary.get("teacher_cost_here")
    return {"evaluated": bool(summary.get("evaluated")), **{key: summary.get(key) for key in SCORES},
            "teacher_cost_here": here.get("description") if isinstance(here, dict) else None}


def results_lines(outcomes: Sequence[dict[str, Any]], out: str, worst: int = 3) -> list[str]:
    """Fleet mean and spread of mIoU, foreground mIoU and speed-up; the ``worst`` streams; the next commands."""
    finished = [row for row in outcomes if row.get("speedup_cost_model") is not None]
    if not finished:
        return []
    scored = [row for row in finished if row.get("evaluated") and _finite(row.get("miou"))]
    lines = [f"results of the {len(finished)} stream(s) finished by this job (mean and spread over streams):"]
    if scored:
        lines.append(f"  mIoU: {_spread([r['miou'] for r in scored])}")
        lines.append(f"  foreground mIoU: {_spread([r['miou_foreground'] for r in scored])}")
    else:
        lines.append("  mIoU: not scored on every frame (run with --evaluate)")
    lines.append(f"  speed-up vs teacher on every frame (paper's GPU cost model): "
                 f"{_spread([r['speedup_cost_model'] for r in finished], 1, 'x')}")
    lines.append(f"  speed-up vs teacher on every frame (measured on the students' devices): "
                 f"{_spread([r['speedup_measured'] for r in finished], 1, 'x')}")
    lines.append(f"    teacher charged at: {teacher_costs(finished)}")
    if scored:
        ranked = sorted(scored, key=lambda r: r["miou"])[:worst]
        lines.append(f"  least accurate (bottom {len(ranked)} by mIoU):")
        lines.extend(_table(ranked))
    first = (sorted(scored, key=lambda r: r["miou"]) or finished)[0]["stream_id"]
    lines.append(f"next: odist report {out} (per-camera accuracy and cost; --format html --out report.html for a page)")
    lines.append(f"      odist render {out} --stream {first} --out {first}.mp4 (its masks over the video)")
    return lines


def teacher_costs(rows: Sequence[dict[str, Any]]) -> str:
    """The teacher figures the measured speed-ups charged, with how many streams each: ``A (3 streams); B``."""
    counts: dict[str, int] = {}
    for row in rows:
        key = row.get("teacher_cost_here") or "n/a (no figure for the device; set teacher.device_ms)"
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{key} ({n} stream{'s' if n > 1 else ''})" for key, n in counts.items())


def _table(rows: Sequence[dict[str, Any]]) -> list[str]:
    headers = ("STREAM", "mIoU", "FOREGROUND", "SPEED-UP (COST MODEL)", "SPEED-UP (MEASURED)")
    cells = [(r["stream_id"], _num(r["miou"]), _num(r["miou_foreground"]), _num(r["speedup_cost_model"], 1, "x"),
              _num(r["speedup_measured"], 1, "x")) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    return ["    " + "  ".join(f"{c:<{w}}" for c, w in zip(line, widths, strict=True)).rstrip()
            for line in (headers, *cells)]


def _spread(values: Sequence[float | None], digits: int = 3, unit: str = "") -> str:
    """``mean M, std S, p10 A, p90 B`` of the finite ``values``; ``n/a`` without any."""
    finite = np.array([v for v in values if _finite(v)], dtype=float)
    if finite.size == 0:
        return "n/a"
    p10, p90 = np.percentile(finite, [10, 90])
    return (f"mean {_num(finite.mean(), digits, unit)}, std {finite.std():.{digits}f}, "
            f"p10 {_num(p10, digits, unit)}, p90 {_num(p90, digits, unit)}")


def _num(value: float | None, digits: int = 3, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if _finite(value) else "n/a"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
