"""``odist.report(...)``: a fleet cost report over one or more runs, the library form of ``odist report``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from odist import api_types
from odist.report.prices import Prices, load_prices
from odist.report.report import Report, build_report


def report(runs: str | os.PathLike[str] | Sequence[str], *, prices: str | Prices | None = None,
           bucket: str = "auto") -> Report:
    """Read every run root in ``runs`` (merged into one fleet) and compute the report's figures.

    ``prices`` is a ``Prices``, a prices YAML/JSON file or None (the default price list); ``bucket`` the
    timeline's unit (``auto``, ``minute``, ``hour``, ``day``).
    """
    what = "a run root or a list of them"
    run_uris = [api_types.location("runs", runs, what)] if isinstance(runs, str | os.PathLike) else \
        [api_types.location("runs", run, what) for run in _sequence(runs, what)]
    if not isinstance(prices, Prices) and prices is not None:
        prices = api_types.location("prices", prices, "a Prices, a prices YAML/JSON file or None")
    api_types.text("bucket", bucket)
    return build_report(run_uris, prices if isinstance(prices, Prices) else load_prices(prices), bucket)


def _sequence(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, Sequence) or not value:
        raise api_types.refuse("runs", value, what)
    return value
