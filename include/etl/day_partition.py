"""The day's partition of ``warehouse.demand_hourly``: the SQL steps of a load, in one transaction.

A load fills a new table (``create_load_table``), then swaps it in as the day's partition
(``swap_partition``), with the quarantine rows and the ledger row written in the same transaction.
Nothing locks ``demand_hourly`` before the swap, and the swap takes its strongest lock first, so
concurrent loads of different days cannot deadlock; it waits at most ``LOCK_TIMEOUT`` for readers,
then fails and the task retries.
"""

from __future__ import annotations

from datetime import date

from psycopg import sql

from include.intervals import Interval
from include.source import rules

TABLE = "warehouse.demand_hourly"
DEFAULT_PARTITION = "warehouse.demand_hourly_default"
LOCK_TIMEOUT = "60s"  # the swap waits at most this long for readers of demand_hourly, then the task retries
#: demand_hourly's columns (include/warehouse/sql/001_warehouse.sql) but source_file; ATTACH checks they match
_LOAD_TABLE_COLUMNS = (
    "station_id integer not null, ts timestamptz not null, temperature_c double precision not null, "
    "precipitation_mm double precision not null, humidity_pct double precision not null, "
    "is_holiday boolean not null, demand integer not null"
)


def partition_name(day: date) -> str:
    return f"demand_hourly_p{day:%Y%m%d}"


def load_table_name(day: date) -> str:
    return f"demand_hourly_load_{day:%Y%m%d}"


def _ident(table: str) -> sql.Identifier:
    return sql.Identifier("warehouse", table)


def lock_day(conn, day: date) -> None:
    """Advisory lock of the day until the transaction ends: two loads of a day never interleave."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"etl:demand_hourly:{day}",))


def create_load_table(conn, day: date, interval: Interval, source_file: str) -> sql.Identifier:
    """A new table shaped like ``demand_hourly`` with a CHECK that every ts lies in the day."""
    # Columns spelled out rather than LIKE demand_hourly: LIKE would lock the parent table
    # for the whole load, and two loads upgrading that lock at the swap could deadlock.
    # Every row of a file has the same source_file: a column default, not bytes on the wire.
    table = _ident(load_table_name(day))
    conn.execute(
        sql.SQL(
            "create table {t} ({columns}, source_file text not null default {name}, "
            "constraint {chk} check (ts >= {start} and ts < {end}))"
        ).format(
            t=table,
            columns=sql.SQL(_LOAD_TABLE_COLUMNS),
            name=sql.Literal(source_file),
            chk=sql.Identifier(f"{partition_name(day)}_ts_in_day"),
            start=sql.Literal(interval.start),
            end=sql.Literal(interval.end),
        )
    )
    return table


def stage_quarantine(conn, spool, has_rows: bool) -> None:
    """COPY the spooled bad rows (CSV) into the transaction's temporary table ``_etl_quarantine``."""
    conn.execute(
        "create temp table _etl_quarantine (row_number bigint, reason text, "
        + ", ".join(f"{c} text" for c in rules.RAW_COLUMNS)
        + ") on commit drop"
    )
    if has_rows:
        with conn.cursor() as cur, cur.copy("copy _etl_quarantine from stdin (format csv)") as copy:
            with spool.open("rb") as fh:
                while block := fh.read(1 << 20):
                    copy.write(block)


def add_primary_key(conn, day: date) -> None:
    """The key, built once on the full table; the source_file default is dropped (ATTACH compares)."""
    table, part = _ident(load_table_name(day)), partition_name(day)
    conn.execute(
        sql.SQL("alter table {t} add constraint {pk} primary key (station_id, ts)").format(
            t=table, pk=sql.Identifier(f"{part}_pkey_new")
        )
    )
    conn.execute(sql.SQL("alter table {t} alter column source_file drop default").format(t=table))


def swap_partition(conn, day: date, interval: Interval) -> None:
    """Make the load table the partition of the day, replacing the previous one."""
    load_table, part_table = load_table_name(day), partition_name(day)
    start, end = interval.start, interval.end
    conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    existing = conn.execute("select to_regclass(%s)", (f"warehouse.{part_table}",)).fetchone()[0]
    # Strongest lock first, parent before default partition: concurrent loads cannot deadlock.
    mode = "access exclusive" if existing else "share update exclusive"
    conn.execute(sql.SQL("lock table {} in {} mode").format(sql.SQL(TABLE), sql.SQL(mode)))
    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.SQL(DEFAULT_PARTITION)))
    if existing:
        conn.execute(sql.SQL("drop table {}").format(_ident(part_table)))
    conn.execute(f"delete from {DEFAULT_PARTITION} where ts >= %s and ts < %s", (start, end))
    conn.execute(
        sql.SQL("alter table {parent} attach partition {t} for values from ({start}) to ({end})").format(
            parent=sql.SQL(TABLE), t=_ident(load_table), start=sql.Literal(start), end=sql.Literal(end)
        )
    )
    conn.execute(sql.SQL("alter table {} rename to {}").format(_ident(load_table), sql.Identifier(part_table)))
    conn.execute(
        sql.SQL("alter index {} rename to {}").format(
            _ident(f"{part_table}_pkey_new"), sql.Identifier(f"{part_table}_pkey")
        )
    )


def write_quarantine(conn, interval: Interval, source_file: str) -> dict[str, int]:
    """Replace the interval's rows of ``warehouse.quarantine`` with the staged bad rows (raw values
    as jsonb, built by SQL); returns the count per reason."""
    conn.execute("delete from warehouse.quarantine where interval_start = %s", (interval.start,))
    raw_json = ", ".join(f"'{c}', {c}" for c in rules.RAW_COLUMNS)
    conn.execute(
        "insert into warehouse.quarantine (interval_start, source_file, row_number, reason, raw) "
        f"select %s, %s, row_number, reason, jsonb_build_object({raw_json}) from _etl_quarantine",
        (interval.start, source_file),
    )
    reasons = conn.execute(
        "select reason, count(*) from _etl_quarantine group by reason order by count(*) desc, reason"
    ).fetchall()
    return {str(k): int(v) for k, v in reasons}


def write_ledger(conn, interval: Interval, rows_loaded: int, rows_quarantined: int, source, checksum: str) -> None:
    """Upsert the interval's ``warehouse.load_ledger`` row, ``quality_passed`` null until the gate ran."""
    conn.execute(
        """
        insert into warehouse.load_ledger as l (interval_start, interval_end, rows_loaded, rows_quarantined,
            source_file, source_checksum, loaded_at, quality_passed, quality_checked_at, quality_report)
        values (%s, %s, %s, %s, %s, %s, clock_timestamp(), null, null, null)
        on conflict (interval_start) do update set
            interval_end = excluded.interval_end, rows_loaded = excluded.rows_loaded,
            rows_quarantined = excluded.rows_quarantined, source_file = excluded.source_file,
            source_checksum = excluded.source_checksum, loaded_at = excluded.loaded_at,
            quality_passed = null, quality_checked_at = null, quality_report = null
        """,
        (interval.start, interval.end, rows_loaded, rows_quarantined, str(source), checksum),
    )
