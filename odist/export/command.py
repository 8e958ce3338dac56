"""The ``odist export`` command."""

from __future__ import annotations

import argparse

from odist.export.api import CHECK_FRAMES, FORMATS


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """Register ``odist export`` on the CLI's subcommands."""
    p = commands.add_parser(
        "export", help="export a stream's student to ONNX or a torch.export program",
        description="Write the student a stream earned (its last committed weights) as an ONNX model or a "
                    "torch.export program (.pt2) that takes float32 RGB frames in 0..255 at the stream's size and "
                    "returns logits and a uint8 class map; classes, input size and normalisation are in the "
                    "file's metadata. Before it reports success, the export runs the file on the stream's first "
                    "frames and checks its class maps equal PyTorch's.")
    p.add_argument("run", metavar="RUN_URI", help="run root: a folder, file:// or s3:// URI")
    p.add_argument("--stream", required=True, metavar="ID", help="the stream whose student to export (odist ls)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write: FILE.onnx or FILE.pt2")
    p.add_argument("--format", choices=tuple(FORMATS), default=None,
                   help="onnx or pt2 (default: from the --out suffix)")
    p.add_argument("--check-frames", type=int, default=CHECK_FRAMES, metavar="N",
                   help=f"check the export on the stream's first N frames (default {CHECK_FRAMES})")
    p.add_argument("--input", default=None, metavar="PATH_OR_URI",
                   help="read the stream's source video from here when it has moved since the run")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads (default: torch's)")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from odist.export.api import export_stream

    done = export_stream(args.run, args.stream, args.out, format=args.format, check_frames=args.check_frames,
                         source_uri=args.input, threads=args.threads)
    kind = {"onnx": "ONNX", "pt2": "torch.export program"}[done.format]
    state = "" if done.stream_done else ", stream not finished"
    print(f"wrote {done.path} ({kind}, {done.bytes / 1e6:.1f} MB): the student of stream {done.stream_id}, weights "
          f"after frame {done.weights_after_frame}{state}")
    print(f"classes {', '.join(done.classes)}; input frames float32 (N, 3, {done.height}, {done.width}) RGB 0..255, "
          "normalised inside; outputs logits and classes (uint8)")
    first, last = done.checked_frames[0], done.checked_frames[-1]
    frames = f"frame {first}" if first == last else f"frames {first}..{last}"
    ties = f", {done.tie_pixels} differ at numerical ties" if done.tie_pixels else ""
    print(f"checked: class maps equal PyTorch's on {frames} ({done.pixels} pixels{ties})")
    return 0
