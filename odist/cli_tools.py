"""The ``odist`` commands that read and write footage and runs without a student: ``ls``, ``synth`` and ``publish``."""

from __future__ import annotations

import argparse
import sys


def add_ls_command(commands: argparse._SubParsersAction) -> None:
    """Add ``odist ls``."""
    p = commands.add_parser("ls", help="list a run's streams and their status",
                            description="List every stream under a run root with its status: done, partial "
                                        "(at the next frame to process) or failed (with the error).")
    p.add_argument("run", metavar="RUN_URI", help="run root: a folder, file:// or s3:// URI")
    p.set_defaults(handler=_run_ls)


def _run_ls(args: argparse.Namespace) -> int:
    from odist.storage.listing import list_streams

    rows = list_streams(args.run)
    width = max([len(r.stream_id) for r in rows] + [len("STREAM")])
    print(f"{'STREAM':<{width}}  {'STATUS':<8}  DETAIL")
    for row in rows:
        print(f"{row.stream_id:<{width}}  {row.status:<8}  {row.detail}")
    damaged = [row for row in rows if row.status == "damaged"]
    if damaged:
        first = damaged[0]
        print(f"odist: error: {len(damaged)} stream(s) are damaged ({first.stream_id} first: {first.detail}); "
              "restore the objects from a backup, or start those streams over", file=sys.stderr)
        return 2
    return 0


def add_synth_command(commands: argparse._SubParsersAction) -> None:
    """Add ``odist synth``."""
    p = commands.add_parser("synth", help="generate a video archive of synthetic scenes with labels",
                            description="Write mp4 clips of the synthetic scenarios, their exact labels as PNGs "
                                        "(for the replay teacher) and a manifest.jsonl for `odist run`.")
    p.add_argument("out", metavar="DIR", help="folder to write the archive into")
    p.add_argument("--scenarios", nargs="+", default=None,
                   help="scenarios (default: the fixed cameras, static_easy traffic nonstationary; also edited "
                        "footage and the moving cameras ptz_tour handheld_edited); a name may add camera options "
                        "after +: pan zoom shake follow ptz exposure blur jpeg (traffic+pan+shake)")
    p.add_argument("--cameras", type=int, default=1, help="clips per scenario, each with its own seed")
    p.add_argument("--frames", type=int, default=300, help="frames per clip (default 300)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first camera")
    p.set_defaults(handler=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from odist.errors import ConfigError
    from odist.video.archive_maker import make_archive
    from odist.video.synthetic import CAMERA_SCENARIOS, parse_synthetic_spec

    scenarios = [parse_synthetic_spec(f"synthetic:{name}") for name in args.scenarios or CAMERA_SCENARIOS]
    if args.cameras < 1:
        raise ConfigError(f"--cameras {args.cameras} is not positive", "pass 1 or more")
    manifest = make_archive(args.out, scenarios, cameras=args.cameras, frames=args.frames, width=args.width,
                            height=args.height, seed=args.seed, on_clip=lambda sid: print(f"wrote {sid}"))
    print(f"manifest: {manifest}")
    return 0


def add_publish_command(commands: argparse._SubParsersAction) -> None:
    """Add ``odist publish``."""
    p = commands.add_parser(
        "publish", help="serve a video or synthetic scene as a live stream (a stand-in camera)",
        description="Send a video file or synthetic:SCENARIO as MPEG-TS (H.264) at real-time pace to udp://HOST:PORT, "
                    "or serve it on tcp://HOST:PORT or http://HOST:PORT, looping, until interrupted.")
    p.add_argument("input", metavar="INPUT", help="a video file or synthetic:SCENARIO")
    p.add_argument("url", metavar="URL", help="udp://HOST:PORT, tcp://HOST:PORT or http://HOST:PORT")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second sent (default 10)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    p.add_argument("--frames", type=int, default=300, help="frames before looping (default 300)")
    p.add_argument("--seed", type=int, default=0, help="synthetic scene seed")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.set_defaults(handler=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    import time

    from odist import api_types
    from odist.errors import ConfigError
    from odist.video.open import open_source
    from odist.video.publish import publish

    if not args.url.startswith(("udp://", "tcp://", "http://")):
        raise ConfigError(f"cannot publish to {args.url!r}", "use udp://HOST:PORT, tcp://HOST:PORT or http://HOST:PORT")
    api_types.duration("--duration", args.duration)
    source = open_source(args.input, seed=args.seed, width=args.width, height=args.height, frames=args.frames)
    first = next(iter(source), None)
    if first is None:
        raise ConfigError(f"{args.input} has no frames", "pass a video with frames or synthetic:SCENARIO")
    end = None if args.duration is None else time.monotonic() + args.duration
    print(f"publishing {args.input} ({first.width}x{first.height}) to {args.url} at {args.fps:g} fps; "
          "Ctrl-C stops", flush=True)
    sent = publish(lambda: (frame.image for frame in source), args.url, args.fps,
                   stop=lambda: end is not None and time.monotonic() >= end)
    print(f"sent {sent} frames")
    return 0


