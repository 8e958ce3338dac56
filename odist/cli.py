"""The ``odist`` command. User errors become one line on stderr and a non-zero exit.

Exit codes: 0 all done; 1 some streams failed and the others finished (``odist run``);
2 a usage or input error (a bad flag, config, input or run root: nothing useful was done); 130 interrupted
(Ctrl-C); 143 terminated (SIGTERM: handled as Ctrl-C, with one line on stderr). ``odist live`` stops its
cameras on either, commits them and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from odist._version import __version__
from odist.cli_args import config_flag, config_from_args, error_line, teacher_pool_config
from odist.cli_tools import add_ls_command, add_publish_command, add_synth_command
from odist.errors import OdistError, raise_terminated, was_terminated
from odist.report.command import add_report_command
from odist.run_config import SEGMENT_FRAMES, WARM_STARTS, PoolConfig
from odist.storage.documents import SUMMARY

EXIT_SOME_FAILED = 1
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odist", description="Online model distillation for video.")
    parser.add_argument("--version", action="version", version=f"odist {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_distill(commands)
    _add_run(commands)
    _add_pretrain(commands)
    add_ls_command(commands)
    add_synth_command(commands)
    _add_live(commands)
    add_publish_command(commands)
    add_report_command(commands)
    from odist.render.command import add_render_command
    add_render_command(commands)
    from odist.plan.command import add_plan_command
    add_plan_command(commands)
    from odist.export.command import add_export_command
    add_export_command(commands)
    return parser


def _add_distill(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "distill", help="distill a student online on one video or synthetic stream",
        description="Train a per-camera student online on one stream against a teacher on keyframes; "
                    f"write per-frame records, masks, the student checkpoint and {SUMMARY} into --out.")
    p.add_argument("input", metavar="INPUT", help="a video file (a path, file://PATH, s3://BUCKET/KEY or "
                   "http(s)://URL), or synthetic:SCENARIO (static_easy, traffic, nonstationary, ...)")
    p.add_argument("--out", required=True, help="run root: a folder, file:// or s3://BUCKET/PREFIX URI")
    config_flag(p, "--teacher", default=None,
                help="oracle | maskrcnn | detectron2 | onnx:MODEL.onnx | replay:DIR_OR_URI (default: auto: the "
                     "oracle for synthetic inputs, Mask R-CNN with COCO weights for videos)")
    config_flag(p, "--evaluate", switch=True,
                help="score the student on every frame against the teacher (cost reported apart)")
    config_flag(p, "--max-frames", type=int, default=None, help="stop after N frames")
    _add_config_options(p)
    config_flag(p, "--init", default=None, metavar="CHECKPOINT", help="warm-start the student from a checkpoint")
    _add_source_options(p)
    p.add_argument("--stream-id", default=None, help="the stream's id in the run (default: from INPUT)")
    p.add_argument("--resume", action="store_true", help="continue the stream after its last commit")
    p.add_argument("--overwrite", action="store_true", help="replace the stream's results already in --out")
    config_flag(p, "--segment-frames", type=int, default=SEGMENT_FRAMES, help="frames per committed segment")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_distill)


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--set`` and ``--device``: where a command's config comes from."""
    p.add_argument("--config", default=None, help="YAML/JSON config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set distill.max_updates=4 (repeatable)")
    config_flag(p, "--device", default=None, help="cpu | cuda | cuda:N (default: the config's, cpu)")


def _add_source_options(p: argparse.ArgumentParser) -> None:
    """How frames are read: size, sampling, and the length and seed of synthetic streams."""
    config_flag(p, "--width", type=int, default=None, help="frame width (resize videos; synthetic size)")
    config_flag(p, "--height", type=int, default=None, help="frame height")
    config_flag(p, "--fps", type=float, default=None, help="sample videos at this frame rate")
    config_flag(p, "--frames", type=int, default=None, help="length of synthetic streams (default 900)")
    config_flag(p, "--seed", type=int, default=0, help="synthetic scene seed")


def _run_distill(args: argparse.Namespace) -> int:
    from odist.distill.api import distill

    summary = distill(args.input, args.out, config_from_args(args), stream_id=args.stream_id, resume=args.resume,
                      overwrite=args.overwrite, progress=not args.quiet)
    print(_describe_stream(summary, args.out))
    return 0


def _describe_stream(s: dict[str, Any], out: str) -> str:
    """A few lines telling the user where the results went and the headline numbers."""
    from odist.storage.layout import StreamArea
    from odist.storage.objectstore import open_store

    lines = [f"results: {open_store(out).url(StreamArea.prefix_of(s['stream_id']))}"]
    accuracy = (f"mIoU {s['miou']:.3f} (foreground {s['miou_foreground']:.3f})" if s.get("evaluated")
                else f"keyframe mIoU {s['keyframe_miou']:.3f} (run with --evaluate to score every frame)")
    lines.append(f"frames {s['frames']}, keyframes {s['keyframes']}, updates {s['updates']}, {accuracy}")
    lines.append(f"speed-up vs teacher on every frame: {_fmt(s['speedup_cost_model'])}x (paper's GPU cost model), "
                 f"{_fmt(s['speedup_measured'])}x (measured here), {_fmt(s['speedup_flops'])}x (FLOPs)")
    lines.append(f"measured here: the student's own time and {_teacher_here(s.get('teacher_cost_here'))}")
    return "\n".join(lines)


def _teacher_here(cost: dict[str, Any] | None) -> str:
    """What the measured speed-up charged the teacher per frame, in words."""
    if not cost:
        return "no teacher figure for this device (set teacher.device_ms)"
    charged = cost.get("charged_seconds_per_frame")
    instead = f", not the {charged:.3g} s/frame the teacher charged" if charged is not None else ""
    now = " (measured just now)" if cost.get("origin") == "measured" else ""
    return f"the {cost['description']}{now}{instead}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _add_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run", help="distill every stream of a manifest or prefix on a Ray cluster",
        description="Fan the streams of a manifest (JSONL, CSV, Parquet), a folder, a glob or an s3:// prefix "
                    "out over a pool of student workers on Ray; each stream is distilled as `odist distill` "
                    "would, into --out. Streams already done there are skipped; a failed stream is recorded "
                    "with its error and the job goes on.")
    p.add_argument("source", metavar="MANIFEST_OR_PREFIX",
                   help="a manifest file, a folder, a glob, an s3:// prefix or synthetic:SCENARIO")
    p.add_argument("--out", required=True, help="run root: a folder, file:// or s3://BUCKET/PREFIX URI")
    config_flag(p, "--workers", type=int, default=None,
                help="student workers (default: as many as the cluster's GPUs or CPUs hold)")
    config_flag(p, "--max-streams-in-flight", type=int, default=None,
                help="streams processed at once (default: one per worker)")
    config_flag(p, "--retries", type=int, default=2, help="retries of a stream whose worker died (default 2)")
    config_flag(p, "--teacher", default=None,
                help="oracle | maskrcnn | detectron2 | onnx:MODEL.onnx | replay:DIR_OR_URI for every stream "
                     "without labels in the manifest (default: auto: the oracle for synthetic inputs, Mask R-CNN "
                     "with COCO weights for videos)")
    config_flag(p, "--evaluate", switch=True, help="score every frame against the teacher (cost reported apart)")
    config_flag(p, "--max-frames", type=int, default=None, help="stop each stream after N frames")
    config_flag(p, "--init", default=None, metavar="CHECKPOINT",
                help="warm-start every stream's student from a checkpoint (a manifest init column overrides it)")
    config_flag(p, "--warm-start", choices=WARM_STARTS, default="none",
                help="fleet: a stream starting after others finished begins from the latest finished student "
                     "of its manifest group, else the latest finished one; fleet-average: from the mean weights "
                     "of the group's latest 8 finished students (default none)")
    _add_config_options(p)
    _add_source_options(p)
    config_flag(p, "--segment-frames", type=int, default=SEGMENT_FRAMES, help="frames per committed segment")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    _add_ray_options(p, "worker")
    p.set_defaults(handler=_run_fleet)


def _add_ray_options(p: argparse.ArgumentParser, unit: str) -> None:
    """Where a Ray command runs: the cluster, each student ``unit``'s resources and the teacher pool."""
    config_flag(p, "--address", default=None, help="Ray cluster address (default: a new local Ray)")
    config_flag(p, "--student-gpus", type=float, default=0.0, help=f"GPU share per {unit}, e.g. 0.125 (default 0)")
    config_flag(p, "--student-cpus", type=float, default=None,
                help=f"CPUs per {unit} (default: 1 without a GPU share, 0 with one)")
    p.add_argument("--teacher-replicas", default=None, metavar="MIN:MAX",
                   help="run the teacher as one shared pool of MIN..MAX autoscaled replicas that batch "
                        f"label requests across {unit}s (default: each {unit} builds its own teacher)")
    config_flag(p, "--teacher-gpus", type=float, default=0.0, help="GPU share per teacher replica (default 0)")
    config_flag(p, "--teacher-batch", type=int, default=8, help="largest teacher batch (default 8)")


def _run_fleet(args: argparse.Namespace) -> int:
    from odist.fleet.api import run

    summary = run(args.source, args.out, config_from_args(args), progress=not args.quiet)
    print(summary.describe())
    return EXIT_SOME_FAILED if summary.failed else 0


def _teacher_pool_config(args: argparse.Namespace) -> PoolConfig | None:
    """The pool settings from ``--teacher-replicas MIN:MAX`` (None without the flag)."""
    return teacher_pool_config(args)


def _add_pretrain(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "pretrain", help="distill a generic student offline from many streams' teacher labels",
        description="Train one student offline on labelled frames of SOURCES: earlier runs (RUN or "
                    "RUN/streams/stream_id=ID: the teacher labels their keyframes kept, reused) and anything "
                    "`odist run` takes (a manifest's replay labels, else the teacher on every --every-th frame). "
                    "Epochs of augmented batches (flip, scale and crop, colour jitter); the checkpoint at --out "
                    "is rewritten after every epoch, so --resume continues a killed pretrain. Start streams "
                    "from it with `odist distill --init` or `odist run --init`.")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a run root, a run's stream folder, a manifest, "
                   "a folder, glob or s3:// prefix of videos, or synthetic:SCENARIO")
    p.add_argument("--out", required=True, metavar="CHECKPOINT", help="the checkpoint to write (path or URI)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the frames (default 5)")
    p.add_argument("--batch-size", type=int, default=8, help="frames per update (default 8)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: distill.lr)")
    p.add_argument("--every", type=int, default=10, help="label every N-th frame of non-run sources (default 10)")
    p.add_argument("--max-frames", type=int, default=None, help="read at most the first N frames of each stream")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="train on the frames as they are")
    config_flag(p, "--teacher", default=None, help="labels sources without labels (default: auto: the oracle for "
                "synthetic inputs, Mask R-CNN with COCO weights for videos)")
    _add_config_options(p)
    _add_source_options(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the checkpoint at --out after its last whole epoch, up to --epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    from odist.distill.pipeline import StreamOptions
    from odist.pretrain import PretrainOptions, pretrain

    def show(seen: Any) -> None:
        print(f"read {seen.stream_id}: {seen.frames} frames, labels from {seen.labels_from}", flush=True)

    config = config_from_args(args)
    options = PretrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=args.augment,
                              every=args.every, max_frames=args.max_frames, stream=StreamOptions.of(config))
    meta = pretrain(args.sources, args.out, config, options, resume=args.resume,
                    progress=not args.quiet, on_stream=show)
    t = meta["teacher"]
    print(f"pretrained on {meta['frames']} frames of {len(meta['streams'])} stream(s) at "
          f"{meta['resolution']['width']}x{meta['resolution']['height']}: teacher labelled {t['frames']} "
          f"({t['seconds']:.1f} s charged), {t['reused_frames']} labels reused from earlier runs")
    print(f"checkpoint: {args.out} (epoch {meta['epochs_done']}/{meta['epochs']}, loss {meta['losses'][-1]:.3f}, "
          f"weights {meta['weight_digest']})")
    return 0


def _add_live(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "live", help="run a student per live camera (RTSP/HTTP/UDP/TCP) until stopped",
        description="One long-lived student per camera of CAMERAS.yaml (a YAML list of id + url, optional fps "
                    "and overrides), sharing the teacher; keeps up in real time by dropping frames, commits "
                    "every --commit-every seconds and resumes from there after a restart. Edits to CAMERAS.yaml "
                    "are picked up while running. Ctrl-C / SIGTERM commits every camera and exits 0.")
    p.add_argument("cameras", metavar="CAMERAS.yaml", help="the camera list")
    p.add_argument("--out", required=True, help="run root: a folder, file:// or s3://BUCKET/PREFIX URI")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    config_flag(p, "--fps", type=float, default=10.0, help="target processing fps per camera (default 10)")
    config_flag(p, "--width", type=int, default=None, help="resize frames to this width")
    config_flag(p, "--height", type=int, default=None, help="resize frames to this height")
    config_flag(p, "--commit-every", type=float, default=30.0, metavar="SECONDS",
                help="commit results and checkpoint this often (default 30)")
    config_flag(p, "--read-timeout", type=float, default=10.0, metavar="SECONDS",
                help="reconnect when a camera sends nothing for this long (default 10)")
    config_flag(p, "--give-up-after", type=float, default=None, metavar="SECONDS",
                help="fail a camera that gives no frame for this long (default: keep reconnecting)")
    config_flag(p, "--status-every", type=float, default=5.0, metavar="SECONDS",
                help="print the status table this often (default 5)")
    config_flag(p, "--teacher", default=None,
                help="maskrcnn | detectron2 | onnx:MODEL.onnx (default: the config's; maskrcnn when "
                     "teacher.weights is set)")
    _add_ray_options(p, "camera")
    _add_config_options(p)
    p.set_defaults(handler=_run_live)


def _run_live(args: argparse.Namespace) -> int:
    from odist import api_types
    from odist.live.api import live
    from odist.live.supervisor import status_table
    from odist.live.teacher_choice import live_teacher

    def show(statuses: list[Any]) -> None:
        print(status_table(statuses), flush=True)
        print(flush=True)

    api_types.duration("--duration", args.duration)  # before the teacher and Ray
    config = config_from_args(args)
    live_teacher(config)  # refused in one line before anything starts
    final = live(args.cameras, out=args.out, config=config, duration=args.duration, on_status=show,
                 handle_signals=True)
    print(f"stopped {len(final)} camera(s); results committed in {args.out} (`odist ls {args.out}`)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from odist.redact import install, remember_url

    install(streams=True)  # no password of a URL given to odist is ever printed or logged
    argv = sys.argv[1:] if argv is None else list(argv)
    for arg in argv:
        remember_url(arg)
    parser = build_parser()
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None  # as Ctrl-C
    try:
        return args.handler(args)
    except OdistError as exc:
        print(f"odist: error: {error_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if was_terminated():  # a SIGTERM (Ray's waits turn our ``Terminated`` into a plain KeyboardInterrupt)
            print("odist: terminated (SIGTERM); results so far are in completed segments only: run the same "
                  "command again to continue", file=sys.stderr)
            return EXIT_TERMINATED
        print("odist: interrupted; results so far are in completed segments only", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
