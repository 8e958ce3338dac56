"""``odist.report(...)``: a fleet cost report over one or more runs, the library form of ``odist report``."""

from __future__ import annotations

from collections.abc import Sequence

from odist.report.prices import Prices, load_prices
from odist.report.report import Report, build_report


def report(runs: str | Sequence[str], *, prices: str | Prices | None = None, bucket: str = "auto") -> Report:
    """Read every run root in ``runs`` (merged into one fleet) and compute the report's figures.

    ``prices`` is a ``Prices``, a prices YAML/JSON file or None (the default price list); ``bucket`` the
    timeline's unit (``auto``, ``minute``, ``hour``, ``day``).
    """
    run_uris = [runs] if isinstance(runs, str) else list(runs)
    return build_report(run_uris, prices if isinstance(prices, Prices) else load_prices(prices), bucket)
