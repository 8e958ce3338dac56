"""Live cameras: long-running students on URLs FFmpeg opens, real-time policy, periodic commits.

The package is also the library's live call: ``odist.live(cameras, out=...)`` is ``odist.live.api.live``.
"""

from typing import Any

from odist._callable import make_callable


def _live(*args: Any, **kwargs: Any) -> Any:
    """Run the cameras of a CAMERAS.yaml until stopped; see ``odist.live.api.live``."""
    from odist.live.api import live

    return live(*args, **kwargs)


make_callable(__name__, _live)
