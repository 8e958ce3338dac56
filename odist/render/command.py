"""The ``odist render`` command."""

from __future__ import annotations

import argparse


def add_render_command(commands: argparse._SubParsersAction) -> None:
    """Register ``odist render`` on the CLI's subcommands."""
    p = commands.add_parser(
        "render", help="an H.264 video of a stream with its student's masks drawn in",
        description="Draw a stream's committed student masks over its source frames (one colour per class, a "
                    "legend, and a line with the frame index, keyframes and their trigger, the stride and the "
                    "running mIoU when evaluated) and write an H.264 video.")
    p.add_argument("run", metavar="RUN_URI", help="run root: a folder, file:// or s3:// URI")
    p.add_argument("--stream", required=True, metavar="ID", help="the stream to render (odist ls lists them)")
    p.add_argument("--out", default=None, metavar="PATH", help="output video (default: ID-overlay.mp4)")
    p.add_argument("--from", dest="first", type=int, default=None, metavar="N", help="first frame (default: 0)")
    p.add_argument("--to", dest="last", type=int, default=None, metavar="M",
                   help="last frame, included (default: the last committed)")
    p.add_argument("--side-by-side", action="store_true",
                   help="teacher labels on the left (synthetic streams and replay labels)")
    p.add_argument("--input", default=None, metavar="PATH_OR_URI",
                   help="read the source video from here (a path, file://, s3:// or http(s):// location) when it "
                        "has moved since the run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_render)


def _run_render(args: argparse.Namespace) -> int:
    from odist.render.video import render_stream

    done = render_stream(args.run, args.stream, args.out or f"{args.stream}-overlay.mp4", first=args.first,
                         last=args.last, side_by_side=args.side_by_side, source_uri=args.input,
                         progress=not args.quiet)
    view = ", teacher | student" if done.side_by_side else ""
    print(f"wrote {done.path}: frames {done.first}..{done.last} ({done.frames} frames, {done.width}x{done.height}"
          f"{view})")
    return 0
