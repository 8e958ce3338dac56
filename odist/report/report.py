"""A fleet cost report: what ``collect`` read, turned into per-stream figures, fleet totals and a timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from odist.report.collect import collect
from odist.report.counts import named
from odist.report.figures import fleet_totals, stream_figures
from odist.report.metadata import CLASS_SEPARATOR
from odist.report.pretrain import pretrain_work
from odist.report.prices import Prices
from odist.report.timeline import choose_unit, timeline


@dataclass(frozen=True)
class Report:
    """Everything the renderers show."""

    runs: list[str]
    prices: Prices
    streams: pa.Table
    totals: dict[str, Any]
    timeline: pa.Table
    unit: str
    counts: pa.Table  # objects per stream, minute and class (odist.report.counts)


def build_report(run_uris: Sequence[str], prices: Prices | None = None, unit: str = "auto") -> Report:
    """Read every run in ``run_uris`` (merged into one fleet) and compute the report's figures."""
    prices = prices or Prices()
    collected = collect(list(run_uris))
    streams = stream_figures(collected.streams, prices)
    unit = choose_unit(collected.seconds, unit)
    classes = {(row["run"], row["stream_id"]): (row["classes"] or "").split(CLASS_SEPARATOR)
               for row in collected.streams.select(["run", "stream_id", "classes"]).to_pylist()}
    return Report(runs=collected.runs, prices=prices, streams=streams,
                  totals=fleet_totals(streams, prices, collected.runs, pretrain_work(collected.streams)),
                  timeline=timeline(collected.seconds, streams, prices, unit), unit=unit,
                  counts=named(collected.counts, classes))
