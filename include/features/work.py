"""The feature DAG's work list and asset extra (dags/feature_engineering.py wires them).

What to build comes from the data (include/features/build.py): the asset events that triggered a
run are only counted in the log.
"""

from __future__ import annotations

import logging

from include.features.build import find_pending, plan_batches
from include.intervals import Interval
from include.settings import get_settings
from include.warehouse import db

log = logging.getLogger(__name__)


def find_work(params: dict | None = None, triggering_asset_events=None) -> list[list[list[str]]]:
    """Batches of contiguous pending intervals, each interval as [start, end] ISO strings.

    ``params``: the DAG's params (``feature_set_version``, ``start_date``, ``end_date``, ``rebuild``).
    """
    db.ensure_schema()
    params = params or {}
    n_events = sum(len(v) for v in triggering_asset_events.values()) if triggering_asset_events else 0
    pending = find_pending(
        params.get("feature_set_version"),
        start=params.get("start_date"),
        end=params.get("end_date"),
        rebuild=bool(params.get("rebuild")),
    )
    batches = plan_batches(pending, get_settings().features.batch_days)
    log.info(
        "%s triggering asset event(s); %s pending interval(s) in %s batch(es)", n_events, len(pending), len(batches)
    )
    return [[iv.to_json() for iv in batch] for batch in batches]


def batch_label(batch: list[list[str]]) -> str:
    """A mapped build's label in the UI: its first and last day."""
    return f"{batch[0][0][:10]}..{batch[-1][0][:10]}"


def batch_intervals(batch: list[list[str]]) -> list[Interval]:
    return [Interval.from_json(iv) for iv in batch]


def asset_extra(results: list[dict]) -> dict | None:
    """The ``features_demand`` asset event's extra, or None when nothing was built."""
    results = [r for r in results if r]
    intervals = sorted(i for r in results for i in r["intervals"])
    if not intervals:
        return None
    return {
        "intervals_built": intervals,
        "feature_set_version": results[0]["feature_set_version"],
        "rows_built": sum(r["rows_built"] for r in results),
    }
