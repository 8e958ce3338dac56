"""``odist report``: what a fleet of distilled streams cost, and what it bought, across one or more runs.

``build_report`` and ``load_prices`` are the library API; they are imported on first use, so registering
the CLI command stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Prices", "Report", "build_report", "load_prices"]


def __getattr__(name: str) -> Any:
    if name in ("Prices", "load_prices"):
        from odist.report import prices

        return getattr(prices, name)
    if name in ("Report", "build_report"):
        from odist.report import report

        return getattr(report, name)
    raise AttributeError(f"module 'odist.report' has no attribute {name!r}")
