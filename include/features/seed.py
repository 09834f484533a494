"""Seed the warehouse straight from the simulator's clean rows, without the ETL.

For tests and benchmarks of the feature and training layers: each day's rows go in with one
``COPY`` (CSV serialised by pyarrow) and a ``warehouse.load_ledger`` row, in one transaction
per day, replacing that day like the ETL does.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date, timedelta

from include.etl.loading import partition_name
from include.intervals import Interval
from include.source.rules import RAW_COLUMNS
from include.source.simulator import SourceConfig, clean_day, file_name
from include.warehouse import db

WAREHOUSE_COLUMNS = (*RAW_COLUMNS, "source_file")


def _csv_bytes(frame) -> bytes:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buf, pacsv.WriteOptions(include_header=False))
    return buf.getvalue()


def load_frame(day: date, frame, conn, source_file: str | None = None) -> int:
    """Replace ``day`` in the warehouse with ``frame`` (simulator ``clean_day`` columns) on ``conn``:
    the day's rows go into the day's partition (created like the ETL names it), and the ledger
    row is marked as having passed the quality gate."""
    from psycopg import sql as pgsql

    source_file = source_file or file_name(day)
    start, end = Interval.of_day(day)
    frame = frame.assign(source_file=source_file)[list(WAREHOUSE_COLUMNS)]
    conn.execute("delete from warehouse.demand_hourly where ts >= %s and ts < %s", (start, end))
    conn.execute(
        pgsql.SQL(
            "create table if not exists {part} partition of warehouse.demand_hourly for values from ({s}) to ({e})"
        ).format(part=pgsql.Identifier("warehouse", partition_name(day)), s=pgsql.Literal(start), e=pgsql.Literal(end))
    )
    cols = ", ".join(WAREHOUSE_COLUMNS)
    with conn.cursor() as cur, cur.copy(f"copy warehouse.demand_hourly ({cols}) from stdin (format csv)") as copy:
        copy.write(_csv_bytes(frame))
    conn.execute(
        """insert into warehouse.load_ledger
              (interval_start, interval_end, rows_loaded, rows_quarantined, source_file, source_checksum,
               loaded_at, quality_passed, quality_checked_at)
            values (%s, %s, %s, 0, %s, 'seed', clock_timestamp(), true, clock_timestamp())
            on conflict (interval_start) do update
               set rows_loaded = excluded.rows_loaded, loaded_at = excluded.loaded_at,
                   quality_passed = true, quality_checked_at = excluded.quality_checked_at""",
        (start, end, len(frame), source_file),
    )
    return len(frame)


def seed_days(days: Iterable[date], cfg=None) -> int:
    """Load the simulator's clean rows of ``days``, one transaction per day. Returns rows loaded."""
    cfg = cfg or SourceConfig()
    total = 0
    for day in days:
        frame = clean_day(day, cfg)
        with db.transaction() as conn:
            total += load_frame(day, frame, conn)
    return total


def day_list(start: date, n_days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n_days)]
