"""The online distillation loop for one stream: schedule, loss, metrics, cost accounting, the stream session.

The package is also the library's one-stream call: ``odist.distill(input, out=...)`` is
``odist.distill.api.distill``.
"""

from typing import Any

from odist._callable import make_callable


def _distill(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Distill one stream into a run root; see ``odist.distill.api.distill``."""
    from odist.distill.api import distill

    return distill(*args, **kwargs)


make_callable(__name__, _distill)
