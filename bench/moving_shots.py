"""Which cheap signal predicts the student's accuracy fall between keyframes (inside moving shots)?

Each source is distilled under a policy (default: the config's defaults) and every frame the student
infers (no keyframe) is scored against its labels: the frame's foreground IoU (prediction vs labels,
every non-background class as one) and its *fall*, the foreground IoU of the first frame inferred after
the last keyframe minus this frame's. Alongside, per inferred frame, the candidate signals a policy could
read without the teacher:

* ``confidence_fall``: the confidence trigger's reading (its value on the first frame after the keyframe
  minus this frame's; 0 when the student calls too few pixels foreground to read);
* ``drift``: the scene signature's distance from the last keyframe's (the drift trigger's reading);
* ``jump``: the signature's shift-compensated distance from the previous frame's (the cut rule's);
* ``flip_previous``: 1 - foreground IoU of the student's class map against its map on the previous frame;
* ``flip_keyframe``: 1 - foreground IoU of the student's class map against its map on the first frame
  inferred after the last keyframe (how far its own answer has moved since it was taught);
* ``area_change``: the relative change of the student's foreground area since that first frame;
* ``frames_since``: frames since the last keyframe (what the ladder reads).

Per source and signal: Spearman's rank correlation with the fall, and the ROC AUC of telling a *fallen*
frame (fall > ``--fallen``) from the others (0.5: no better than chance). Frames where neither labels nor
prediction hold foreground are left out. Sources: ``real`` (the shared trailer, its replayed person
labels, as ``bench/real_clip.py``) and synthetic scenarios, ``NAME-pan`` seen by a panning camera
(``bench/_pan.py``). Results: ``bench/results/moving_shots.json``.

Run::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/moving_shots.py

Tiny check::

    python bench/moving_shots.py --sources traffic-pan --seeds 0 --frames 40 --out /tmp/moving_shots.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, markdown_table, set_threads, write_results
from _pan import SUFFIX, PannedSource
from keyframe_policy import POLICIES
from real_clip import FOOTAGE, resized_labels

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.scene import jump_distance, scene_distance, scene_signature
from odist.models.teachers import build_teacher
from odist.video.open import open_source
from odist.video.synthetic import SyntheticSource

SIGNALS = ("confidence_fall", "drift", "jump", "flip_previous", "flip_keyframe", "area_change", "frames_since")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", nargs="+", default=["real", "traffic-pan", "nonstationary-pan", "edited-pan"],
                   help="real (the shared trailer) or synthetic scenarios (NAME-pan: a panning camera)")
    p.add_argument("--policy", choices=list(POLICIES), default="default")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="student (and scene) seeds")
    p.add_argument("--width", type=int, default=360, help="real clip decoded width (default 360)")
    p.add_argument("--synthetic-size", nargs=2, type=int, default=[160, 90], metavar=("W", "H"))
    p.add_argument("--frames", type=int, default=600, help="synthetic frames (default 600)")
    p.add_argument("--fallen", type=float, default=0.1, help="a fall above this is a fallen frame (AUC)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "moving_shots.json")
    return p.parse_args(argv)


def foreground_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the foreground (class > 0) of two class maps; NaN when neither has any."""
    fa, fb = a > 0, b > 0
    union = int((fa | fb).sum())
    return float("nan") if union == 0 else int((fa & fb).sum()) / union


def frames_of(source: str, seed: int, args: argparse.Namespace, work: Path) -> tuple[Any, str]:
    """The source's frames and the teacher spec that labels them."""
    if source == "real":
        clip = open_source(str(FOOTAGE / "Megamind.avi"), width=args.width)
        first = next(iter(clip))
        folder = work / "labels"
        if not folder.exists():
            folder.mkdir()
            resized_labels(FOOTAGE / "labels", (first.width, first.height), folder)
        return open_source(str(FOOTAGE / "Megamind.avi"), width=args.width), f"replay:{folder}"
    w, h = args.synthetic_size
    if source.endswith(SUFFIX):
        return PannedSource(source[:-len(SUFFIX)], seed=seed, width=w, height=h, frames=args.frames), "oracle"
    return SyntheticSource(source, seed=seed, width=w, height=h, frames=args.frames), "oracle"


def trace(source: str, seed: int, args: argparse.Namespace, work: Path) -> list[dict[str, float]]:
    """Distil ``source`` and return one row per inferred frame: its IoU, fall and signals."""
    config = load_config(overrides=[*args.overrides, *POLICIES[args.policy], f"distill.seed={seed}"], environ={})
    frames, spec = frames_of(source, seed, args, work)
    teacher = build_teacher(spec, config.teacher, config.classes, config.device)
    distiller = OnlineDistiller(config, teacher)
    rows: list[dict[str, float]] = []
    previous_signature = previous_map = key_signature = key_map = None
    key_iou = key_confidence = float("nan")
    since = 0
    for frame in frames:
        result = distiller.step(frame)
        signature = scene_signature(frame.image)
        if result.keyframe:
            key_signature, key_map, since = signature, None, 0
            key_iou = key_confidence = float("nan")
        else:
            since += 1
            truth = teacher.label([frame]).labels[0].classes
            iou = foreground_iou(result.prediction, truth)
            if key_map is None:
                key_map, key_iou = result.prediction, iou
                key_confidence = np.nan if result.confidence is None else result.confidence
            if not np.isnan(iou) and not np.isnan(key_iou):
                key_area = max(int((key_map > 0).sum()), 1)
                rows.append({
                    "frame": frame.index, "iou": iou, "fall": key_iou - iou,
                    "confidence_fall": 0.0 if result.confidence is None or np.isnan(key_confidence)
                    else key_confidence - result.confidence,
                    "drift": scene_distance(signature, key_signature) if key_signature is not None else 0.0,
                    "jump": jump_distance(signature, previous_signature) if previous_signature is not None else 0.0,
                    "flip_previous": _flip(result.prediction, previous_map),
                    "flip_keyframe": _flip(result.prediction, key_map),
                    "area_change": abs(int((result.prediction > 0).sum()) - key_area) / key_area,
                    "frames_since": float(since)})
        previous_signature, previous_map = signature, result.prediction
    return rows


def _flip(current: np.ndarray, reference: np.ndarray | None) -> float:
    if reference is None:
        return 0.0
    iou = foreground_iou(current, reference)
    return 0.0 if np.isnan(iou) else 1.0 - iou


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``score`` telling ``positive`` rows from the others (Mann-Whitney); NaN with one class."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse] if len(values) < len(x) else ranks


def score(rows: list[dict[str, float]], fallen: float) -> dict[str, Any]:
    fall = np.asarray([r["fall"] for r in rows])
    positive = fall > fallen
    out: dict[str, Any] = {"frames": len(rows), "fallen_frames": int(positive.sum()),
                           "mean_iou": float(np.mean([r["iou"] for r in rows])) if rows else float("nan")}
    for s in SIGNALS:
        x = np.asarray([r[s] for r in rows])
        out[s] = {"spearman": spearman(x, fall), "auc": auc(x, positive)}
    return out


def columns(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Rows as one list per key, values rounded to 4 digits (a compact JSON)."""
    return {key: [round(r[key], 4) for r in rows] for key in (rows[0] if rows else {})}


def table(summary: dict[str, dict[str, Any]]) -> str:
    headers = ["source", "inferred frames (fallen)", *SIGNALS]
    body = [[source, f"{s['frames']} ({s['fallen_frames']})",
             *(f"{s[k]['spearman']:.2f} / {s[k]['auc']:.2f}" for k in SIGNALS)] for source, s in summary.items()]
    return markdown_table(headers, body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "moving_shots", "environment": env,
                               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "traces": {}, "summary": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.sources:
            pooled: list[dict[str, float]] = []
            for seed in args.seeds:
                rows = trace(source, seed, args, Path(tmp))
                payload["traces"][f"{source}:{seed}"] = columns(rows)
                pooled += rows
                print(f"{source} seed {seed}: {len(rows)} inferred frames", file=sys.stderr)
            payload["summary"][source] = score(pooled, args.fallen)
            write_results(args.out, payload)
    print("# Signals of the student's accuracy fall between keyframes\n")
    print(f"{describe_environment(env)}. Policy `{args.policy}`, seeds {args.seeds} pooled; per signal: Spearman "
          f"with the fall / ROC AUC for a fall > {args.fallen}.\n")
    print(table(payload["summary"]))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
