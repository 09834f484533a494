"""Bench section ``features``: feature build time on 1,000,000 warehouse rows and its growth.

``run(workdir)`` (called by scripts/bench.py with the bench environment) builds the current
feature set (``v2``: same-hour lags, windows up to 28 days, per-station aggregates) with the
DAG's own function (``include.features.build.build_pending``: batches of contiguous days, one
set-based statement and one transaction each) on warehouses seeded from the simulator (one COPY
and one day partition per day, ``include/features/seed.py``):

- growth, at a fixed 10 days so that the lookback work per row is the same at both sizes:
  ``build_250k_s`` on 10 days x 25,000 rows (1,042 stations) and ``build_1m_s`` on
  10 days x 100,000 rows (4,167 stations); ``growth_per_row_ratio`` = (seconds per row at 1M) /
  (seconds per row at 250k): 1.0 is linear, below 1.0 better than linear. Best of two runs each
  (``rebuild``: every row replaced, the same work as a first build);
- ``incremental_day_s``: the daily path on that warehouse: one newly loaded day (100,000 rows)
  built on top of its history, as a run triggered by one ETL event does;
- ``backfill_40d_1m_s``: a history-shaped 1,000,000 rows, 40 days x 25,000 rows, built from
  scratch in batches of ``MLOPS_FEATURE_BATCH_DAYS`` (each batch also reads its 28-day lookback),
  and ``backfill_rows_per_s``;
- ``explain_analyze_1m``: PostgreSQL's ``EXPLAIN ANALYZE`` of the version's SELECT on the 1M-row
  warehouse (one batch of 10 days), partition scans folded: where the time goes, node by node.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

START = date(2026, 1, 1)


def _best_of(n: int, fn) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _reset_warehouse() -> None:
    from include.warehouse import db

    with db.transaction() as conn:
        for schema in ("warehouse", "features", "ml"):
            conn.execute(f"drop schema if exists {schema} cascade")
    db.ensure_schema()


def _seed(n_days: int, rows_per_day: int, start: date = START) -> int:
    from include.features.seed import day_list, seed_days
    from include.source.simulator import SourceConfig
    from include.warehouse import db

    rows = seed_days(day_list(start, n_days), SourceConfig(rows_per_day=rows_per_day, malformed_share=0.0, seed=1))
    with db.transaction() as conn:
        conn.execute("analyze warehouse.demand_hourly")
    return rows


def explain_analyze(version: str, start: date, end: date) -> list[str]:
    """The plan of one batch's SELECT with actual times (executed, output discarded)."""
    from include.features.definitions import feature_set
    from include.intervals import utc_midnight
    from include.settings import get_settings
    from include.warehouse import db

    params = {"start": utc_midnight(start), "end": utc_midnight(end)}
    with db.transaction() as conn:
        conn.execute("set local timezone = 'UTC'")
        conn.execute("select set_config('work_mem', %s, true)", (get_settings().features.work_mem,))
        rows = conn.execute("explain (analyze, costs off) " + feature_set(version).sql, params).fetchall()
    lines = [r[0] for r in rows]
    # one line per day partition scanned says nothing new: keep the first, count the others
    scans = [i for i, line in enumerate(lines) if "Seq Scan on demand_hourly_" in line]
    folded = [
        line for i, line in enumerate(lines) if i not in scans[1:] and not (i - 1 in scans[1:] and "Filter" in line)
    ]
    if len(scans) > 1:
        at = scans[0] + 1 + (scans[0] + 1 < len(folded) and "Filter" in folded[scans[0] + 1])
        folded.insert(at, f"      ... and {len(scans) - 1} more partition scans")
    return folded


def run(workdir: Path) -> dict:
    from include.features.build import build_pending
    from include.features.definitions import CURRENT_FEATURE_SET_VERSION as version
    from include.settings import get_settings

    # growth at fixed days: 250k -> 1M rows
    _reset_warehouse()
    _seed(10, 25_000)
    t250, out250 = _best_of(2, lambda: build_pending(version, rebuild=True))
    _reset_warehouse()
    _seed(10, 100_000)
    t1m, out1m = _best_of(2, lambda: build_pending(version, rebuild=True))
    assert (out250["rows_built"], out1m["rows_built"]) == (250_000, 1_000_000), (out250, out1m)
    plan = explain_analyze(version, START, START + timedelta(days=10))
    _seed(1, 100_000, START + timedelta(days=10))
    t = time.perf_counter()
    inc = build_pending(version)
    t_inc = time.perf_counter() - t
    assert inc["intervals_built"] == [(START + timedelta(days=10)).isoformat()], inc

    # a history-shaped million rows, built from scratch as a backfill does
    _reset_warehouse()
    _seed(40, 25_000)
    t = time.perf_counter()
    backfill = build_pending(version)
    t_backfill = time.perf_counter() - t
    assert backfill["rows_built"] == 1_000_000, backfill
    _reset_warehouse()

    return {
        "feature_set_version": version,
        "batch_days": get_settings().features.batch_days,
        "build_250k_s": round(t250, 2),
        "build_1m_s": round(t1m, 2),
        "rows_per_s_1m": round(1_000_000 / t1m),
        "growth_per_row_ratio": round((t1m / 1_000_000) / (t250 / 250_000), 3),
        "incremental_day_s": round(t_inc, 2),
        "backfill_40d_1m_s": round(t_backfill, 2),
        "backfill_rows_per_s": round(1_000_000 / t_backfill),
        "explain_analyze_1m": plan,
    }
