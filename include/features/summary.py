"""The ``features`` section of reports/run_summary.json, read from the feature ledger after the chain ran."""

from __future__ import annotations

from datetime import datetime

from include.features.definitions import CURRENT_FEATURE_SET_VERSION
from include.warehouse import db


def summary_section(since: datetime | None = None) -> dict:
    """``rows_built`` and ``intervals_built`` for the current feature-set version (what the
    models use), plus the same per version and the span of days with features; only intervals
    built at or after ``since`` when given (``make run`` passes its start)."""
    rows = db.fetch_all(
        """select feature_set_version, count(*), coalesce(sum(rows_built), 0),
                  min(interval_start)::date, max(interval_start)::date
             from features.feature_ledger
            where %(since)s::timestamptz is null or built_at >= %(since)s
            group by 1 order by 1""",
        {"since": since},
    )
    by_version = {
        v: {"intervals_built": int(n), "rows_built": int(r), "first_day": a.isoformat(), "last_day": b.isoformat()}
        for v, n, r, a, b in rows
    }
    current = by_version.get(CURRENT_FEATURE_SET_VERSION, {"intervals_built": 0, "rows_built": 0})
    return {
        "feature_set_version": CURRENT_FEATURE_SET_VERSION,
        "rows_built": current["rows_built"],
        "intervals_built": current["intervals_built"],
        "by_version": by_version,
    }
