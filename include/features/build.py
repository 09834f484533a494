"""Build features inside PostgreSQL, one set-based statement per batch of contiguous intervals.

What to build comes from the data, not from asset events (Airflow 3.3.2 can leave queued
events unconsumed): every interval of ``warehouse.ready_intervals`` (the ETL's ledger rows whose
quality gate passed) that

* has no row in ``features.feature_ledger`` for the feature-set version, or
* whose newest change, over the interval *and its lookback window*, is newer than the features
  built for it. A change is a load or a quality verdict (``greatest(loaded_at,
  quality_checked_at)`` of ``warehouse.load_ledger``), of any day, passed or not: the feature SQL
  reads only days that passed (a failed day counts as missing), so a day that fails after a
  reload, or passes once fixed, also invalidates the days whose lags and windows read it.

A batch of contiguous intervals is replaced in one transaction: delete the version's rows of
the time range, insert the new ones with ``insert ... select`` from the version's SQL, upsert one
ledger row per interval. The transaction is ``repeatable read`` so the rows and the ledger
describe the same snapshot of the warehouse. Re-runs replace, never duplicate.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from include.features.definitions import feature_set
from include.intervals import Interval, as_utc
from include.settings import get_settings
from include.warehouse import db

log = logging.getLogger(__name__)


_SOURCE_CTE = """
changes as (
    -- every loaded interval, passed or not, with its last change (load or quality verdict) and
    -- whether downstream may consume it (loaded and passed the ETL's gate: warehouse.ready_intervals)
    select l.interval_start, l.interval_end, greatest(l.loaded_at, l.quality_checked_at) as changed_at,
           r.interval_start is not null as ready
    from warehouse.load_ledger l
    left join warehouse.ready_intervals r on r.interval_start = l.interval_start
),
src as (
    -- source_loaded_at: the newest change among the interval and the days its lookback reads
    select interval_start, interval_end, ready,
           max(changed_at) over (
               order by interval_start
               range between %(lookback)s::interval preceding and current row
           ) as source_loaded_at
    from changes
)"""


def find_pending(
    version: str | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    rebuild: bool = False,
) -> list[Interval]:
    """Loaded intervals that need (re)building for ``version``, oldest first.

    ``start``/``end`` restrict to intervals starting in [start, end); ``rebuild`` rebuilds them
    even when up to date (a new definition under the same version, or a repair).
    """
    fs = feature_set(version)
    conn = db.connect(autocommit=True)
    try:
        sql = (
            "with "
            + _SOURCE_CTE
            + """
select s.interval_start, s.interval_end
from src s
left join features.feature_ledger f
  on f.interval_start = s.interval_start and f.feature_set_version = %(version)s
where s.ready
  and (%(rebuild)s or f.interval_start is null or f.source_loaded_at < s.source_loaded_at)
  and (%(start)s::timestamptz is null or s.interval_start >= %(start)s::timestamptz)
  and (%(end)s::timestamptz is null or s.interval_start < %(end)s::timestamptz)
order by s.interval_start"""
        )
        rows = conn.execute(
            sql,
            {
                "lookback": f"{fs.lookback_days} days",
                "version": fs.version,
                "rebuild": bool(rebuild),
                "start": as_utc(start) if start is not None else None,
                "end": as_utc(end) if end is not None else None,
            },
        ).fetchall()
    finally:
        conn.close()
    return [Interval(a, b) for a, b in rows]


def plan_batches(intervals: list[Interval], batch_days: int) -> list[list[Interval]]:
    """Group sorted intervals into runs of contiguous intervals, at most ``batch_days`` each."""
    batches: list[list[Interval]] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        last = batches[-1] if batches else None
        if last and last[-1].end == iv.start and len(last) < max(1, batch_days):
            last.append(iv)
        else:
            batches.append([iv])
    return batches


def build_batch(intervals: list[Interval], version: str | None = None, run_id: str | None = None) -> dict:
    """Replace the features of contiguous ``intervals`` in one transaction. Returns counts."""
    from psycopg import sql as pgsql

    if not intervals:
        return {"rows_built": 0, "intervals": []}
    intervals = sorted(intervals, key=lambda i: i.start)
    for a, b in zip(intervals, intervals[1:], strict=False):
        if a.end != b.start:
            raise ValueError(f"intervals of a batch must be contiguous: {a} then {b}")
    fs = feature_set(version)
    t0, t1 = intervals[0].start, intervals[-1].end
    cols = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in fs.columns)
    insert = pgsql.SQL(
        "insert into features.demand_features (station_id, ts, feature_set_version, {cols}, demand) "
        "select station_id, ts, %(version)s, {cols}, demand from ({body}) f"
    ).format(cols=cols, body=pgsql.SQL(fs.sql))
    params = {"start": t0, "end": t1, "version": fs.version}
    with db.transaction() as conn:
        conn.execute("set transaction isolation level repeatable read")
        conn.execute("set local timezone = 'UTC'")
        conn.execute("select set_config('work_mem', %s, true)", (get_settings().features.work_mem,))
        conn.execute(
            "delete from features.demand_features where feature_set_version = %s and ts >= %s and ts < %s",
            (fs.version, t0, t1),
        )
        rows = conn.execute(insert, params).rowcount
        ledger = (
            "with "
            + _SOURCE_CTE
            + """,
iv as (
    select * from unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) as i(s, e)
),
counts as (
    select iv.s, iv.e, count(f.ts) as n
    from iv
    left join features.demand_features f
      on f.feature_set_version = %(version)s and f.ts >= iv.s and f.ts < iv.e
    group by iv.s, iv.e
)
insert into features.feature_ledger
    (interval_start, feature_set_version, interval_end, rows_built, source_loaded_at, built_at, run_id)
select c.s, %(version)s, c.e, c.n, coalesce(src.source_loaded_at, clock_timestamp()), clock_timestamp(), %(run_id)s
from counts c
left join src on src.interval_start = c.s
on conflict (interval_start, feature_set_version) do update
   set interval_end = excluded.interval_end,
       rows_built = excluded.rows_built,
       source_loaded_at = excluded.source_loaded_at,
       built_at = excluded.built_at,
       run_id = excluded.run_id"""
        )
        conn.execute(
            ledger,
            {
                "lookback": f"{fs.lookback_days} days",
                "starts": [i.start for i in intervals],
                "ends": [i.end for i in intervals],
                "version": fs.version,
                "run_id": run_id,
            },
        )
    log.info("built %s feature rows (%s) for %s intervals [%s, %s)", rows, fs.version, len(intervals), t0, t1)
    return {
        "rows_built": int(rows),
        "intervals": [i.start.date().isoformat() for i in intervals],
        "feature_set_version": fs.version,
    }


def build_pending(
    version: str | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    rebuild: bool = False,
    batch_days: int | None = None,
    run_id: str | None = None,
) -> dict:
    """Find and build every pending interval (outside Airflow: scripts, bench, tests)."""
    batch_days = batch_days or get_settings().features.batch_days
    batches = plan_batches(find_pending(version, start, end, rebuild), batch_days)
    rows, built = 0, []
    for batch in batches:
        out = build_batch(batch, version, run_id)
        rows += out["rows_built"]
        built += out["intervals"]
    return {"rows_built": rows, "intervals_built": built, "feature_set_version": feature_set(version).version}


def day_range(start: date, end: date) -> list[Interval]:
    """Daily intervals covering [start, end)."""
    out, day = [], start
    while day < end:
        out.append(Interval.of_day(day))
        day += timedelta(days=1)
    return out
