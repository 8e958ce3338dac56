"""``odist report``: what a fleet of distilled streams cost, and what it bought, across one or more runs.

``build_report`` and ``load_prices`` are the library API; they are imported on first use, so registering
the CLI command stays cheap. The package is also the library's report call: ``odist.report(runs)`` is
``odist.report.api.report``.
"""

from __future__ import annotations

from typing import Any

from odist._callable import make_callable

__all__ = ["Prices", "Report", "build_report", "load_prices"]


def __getattr__(name: str) -> Any:
    if name in ("Prices", "load_prices"):
        from odist.report import prices

        return getattr(prices, name)
    if name in ("Report", "build_report"):
        from odist.report import report

        return getattr(report, name)
    raise AttributeError(f"module 'odist.report' has no attribute {name!r}")


def _report(*args: Any, **kwargs: Any) -> Any:
    """A fleet cost report over one or more runs; see ``odist.report.api.report``."""
    from odist.report.api import report

    return report(*args, **kwargs)


make_callable(__name__, _report)
