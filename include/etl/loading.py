"""Load one day's source file into ``warehouse.demand_hourly``: stream, validate, COPY, swap.

``load_day(day)`` does, inside ONE database transaction:

1. take an advisory lock for the day (two loads of the same day never interleave);
2. create a new table shaped like ``demand_hourly`` with a CHECK that every ts lies in the day,
   and stream the file into it: the Parquet file is read chunk by chunk (``iter_batches``,
   ``MLOPS_ETL_CHUNK_ROWS`` rows), each chunk validated with array expressions
   (include/etl/validation.py) and its good rows encoded straight into PostgreSQL's binary COPY
   format with NumPy (fixed-width rows: no per-row Python, no text parsing on the server).
   Reading/validating the next chunk runs in a thread while the current one is sent (at most one
   chunk queued between them), so memory does not grow with the size of the day;
3. bad rows go to a spool file on local disk, then are COPYed into a temporary table and
   inserted into ``warehouse.quarantine`` with their reason, source file, row number and raw
   values as jsonb (built by SQL);
4. add the primary key, then swap the new table in as the day's partition of ``demand_hourly``
   (the previous partition of that day, if any, is dropped; rows of the day that other writers
   put in the default partition are deleted) — readers see the old day or the new day. Nothing
   locks ``demand_hourly`` before this step, and the swap takes its strongest lock first, so
   concurrent loads of different days cannot deadlock; it waits at most ``_LOCK_TIMEOUT`` for
   readers, then fails and the task retries;
5. write the day's ``warehouse.load_ledger`` row (rows loaded/quarantined, source file, its
   sha256, loaded_at) with ``quality_passed = null``; the quality gate sets it afterwards.

Any error rolls everything back: no half-written day, and re-running a day gives the same rows.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from include.etl import rules
from include.etl.validation import QUARANTINE_SCHEMA, KeyDeduplicator, ValidatedChunk, check_schema, validate_chunk

log = logging.getLogger(__name__)

TABLE = "warehouse.demand_hourly"
DEFAULT_PARTITION = "warehouse.demand_hourly_default"
_PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z: PostgreSQL's binary timestamp origin
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_LOCK_TIMEOUT = "60s"  # the swap waits at most this long for readers of demand_hourly, then the task retries

#: Binary COPY row: field count, then (length, value) per column, big-endian. Every column is
#: fixed-width, so a whole chunk is one NumPy structured array written with one ``tobytes()``.
_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l_station_id", ">i4"), ("station_id", ">i4"),
        ("l_ts", ">i4"), ("ts", ">i8"),
        ("l_temperature_c", ">i4"), ("temperature_c", ">f8"),
        ("l_precipitation_mm", ">i4"), ("precipitation_mm", ">f8"),
        ("l_humidity_pct", ">i4"), ("humidity_pct", ">f8"),
        ("l_is_holiday", ">i4"), ("is_holiday", "u1"),
        ("l_demand", ">i4"), ("demand", ">i4"),
    ]
)  # fmt: skip
_COPY_COLUMNS = ("station_id", "ts", "temperature_c", "precipitation_mm", "humidity_pct", "is_holiday", "demand")
#: demand_hourly's columns (include/warehouse/sql/001_warehouse.sql) but source_file; ATTACH checks they match
_LOAD_TABLE_COLUMNS = (
    "station_id integer not null, ts timestamptz not null, temperature_c double precision not null, "
    "precipitation_mm double precision not null, humidity_pct double precision not null, "
    "is_holiday boolean not null, demand integer not null"
)


class SourceFileMissing(FileNotFoundError):
    pass


@dataclass
class LoadResult:
    day: str
    interval_start: str
    interval_end: str
    source_uri: str
    source_file: str
    source_checksum: str
    rows_in_file: int
    rows_loaded: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: seconds spent per phase (checksum, copy, quarantine, primary_key, swap, commit)
    phases: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_in_file if self.rows_in_file else 0.0


def day_interval(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def partition_name(day: date) -> str:
    return f"demand_hourly_p{day:%Y%m%d}"


def file_checksum(path, block: int = 1 << 20) -> str:
    """sha256 of the file's bytes, read in blocks (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def encode_copy_rows(chunk: ValidatedChunk) -> memoryview:
    """The good rows of a chunk in PostgreSQL's binary COPY row format (no header/trailer), as a
    view of one NumPy buffer (no extra copy)."""
    rows = np.empty(chunk.n_good, dtype=_ROW)
    rows["n"] = len(_COPY_COLUMNS)
    rows["l_station_id"], rows["station_id"] = 4, chunk.station_id
    rows["l_ts"], rows["ts"] = 8, (chunk.ts_s - _PG_EPOCH_S) * 1_000_000
    rows["l_temperature_c"], rows["temperature_c"] = 8, chunk.temperature_c
    rows["l_precipitation_mm"], rows["precipitation_mm"] = 8, chunk.precipitation_mm
    rows["l_humidity_pct"], rows["humidity_pct"] = 8, chunk.humidity_pct
    rows["l_is_holiday"], rows["is_holiday"] = 1, chunk.is_holiday
    rows["l_demand"], rows["demand"] = 4, chunk.demand
    return memoryview(rows).cast("B")


def _prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """Run ``items`` in a thread, at most ``depth`` results ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(exc)

    thread = threading.Thread(target=work, name="etl-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


def _release_memory() -> None:
    """Hand memory freed by the last chunk back to the OS (glibc ``malloc_trim``, Arrow's pool).

    Without it the allocators keep the freed chunk buffers and peak RSS creeps up with the
    number of chunks, i.e. with the day's size; with it only the duplicate-key set grows.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


_malloc_trim = None


@dataclass
class _StreamStats:
    rows_in_file: int = 0
    rows_good: int = 0
    rows_bad: int = 0


def _stream_chunks(
    pf, chunk_rows: int, start: datetime, end: datetime, spool, stats: _StreamStats
) -> Iterator[memoryview]:
    """Validate the file chunk by chunk; yield the good rows as binary COPY data, spool the bad."""
    import pyarrow.csv as pacsv

    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    dedup = KeyDeduplicator()
    with pacsv.CSVWriter(spool, QUARANTINE_SCHEMA, write_options=pacsv.WriteOptions(include_header=False)) as bad_out:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(rules.RAW_COLUMNS)):
            chunk = validate_chunk(batch, stats.rows_in_file + 1, start_s, end_s, dedup)
            stats.rows_in_file += batch.num_rows
            stats.rows_good += chunk.n_good
            stats.rows_bad += chunk.n_bad
            if chunk.n_bad:
                bad_out.write_table(chunk.bad.cast(QUARANTINE_SCHEMA))
            del batch
            data = encode_copy_rows(chunk) if chunk.n_good else None
            del chunk
            _release_memory()
            if data is not None:
                yield data


def load_day(day: date, source=None, *, chunk_rows: int | None = None, conn=None) -> LoadResult:
    """Load ``day`` from ``source`` (an ObjectStoragePath; default: the landing or archive zone).

    ``conn``: an open psycopg connection to use (not closed here); default a new one.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from psycopg import sql

    from include.settings import get_settings
    from include.source.landing import day_file_candidates, find_day_file
    from include.warehouse import db

    t0 = time.perf_counter()
    chunk_rows = chunk_rows or get_settings().etl.chunk_rows
    if source is None:
        source = find_day_file(day)
        if source is None:
            raise SourceFileMissing(
                f"no source file for {day}: looked for {[str(p) for p in day_file_candidates(day)]}"
            )
    start, end = day_interval(day)
    name = source.name
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(label: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[label] = round(now - mark, 3)
        mark = now

    checksum = file_checksum(source)
    phase("checksum")

    load_table = f"demand_hourly_load_{day:%Y%m%d}"
    part_table = partition_name(day)
    ident = lambda t: sql.Identifier("warehouse", t)  # noqa: E731

    own_conn = conn is None
    conn = conn or db.connect()
    stats = _StreamStats()
    try:
        with conn.transaction(), tempfile.TemporaryDirectory(prefix="etl-quarantine-") as tmp:
            conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"etl:demand_hourly:{day}",))
            # Columns spelled out rather than LIKE demand_hourly: LIKE would lock the parent table
            # for the whole load, and two loads upgrading that lock at the swap could deadlock.
            # Every row of a file has the same source_file: a column default, not bytes on the wire.
            conn.execute(
                sql.SQL(
                    "create table {t} ({columns}, source_file text not null default {name}, "
                    "constraint {chk} check (ts >= {start} and ts < {end}))"
                ).format(
                    t=ident(load_table),
                    columns=sql.SQL(_LOAD_TABLE_COLUMNS),
                    name=sql.Literal(name),
                    chk=sql.Identifier(f"{part_table}_ts_in_day"),
                    start=sql.Literal(start),
                    end=sql.Literal(end),
                )
            )

            spool = Path(tmp) / "quarantine.csv"
            with source.open("rb") as fh:
                schema = pq.ParquetFile(fh).schema_arrow
                check_schema(schema, str(source))
                # string columns come as DictionaryArrays: validation parses each distinct value once
                as_dictionary = [c for c in rules.RAW_COLUMNS if pa.types.is_string(schema.field(c).type)]
                pf = pq.ParquetFile(fh, read_dictionary=as_dictionary)
                copy_sql = sql.SQL("copy {t} ({cols}) from stdin (format binary, freeze)").format(
                    t=ident(load_table), cols=sql.SQL(", ").join(map(sql.Identifier, _COPY_COLUMNS))
                )
                with conn.cursor() as cur:
                    with cur.copy(copy_sql) as copy:
                        copy.write(_COPY_HEADER)
                        for data in _prefetch(_stream_chunks(pf, chunk_rows, start, end, spool, stats)):
                            copy.write(data)
                        copy.write(_COPY_TRAILER)
                    copied = cur.rowcount
            phase("copy")
            if copied != stats.rows_good:
                raise RuntimeError(f"COPY wrote {copied} rows, validation passed {stats.rows_good}")

            conn.execute(
                "create temp table _etl_quarantine (row_number bigint, reason text, "
                + ", ".join(f"{c} text" for c in rules.RAW_COLUMNS)
                + ") on commit drop"
            )
            if stats.rows_bad:
                with conn.cursor() as cur, cur.copy("copy _etl_quarantine from stdin (format csv)") as copy:
                    with spool.open("rb") as fh:
                        while block := fh.read(1 << 20):
                            copy.write(block)

            phase("quarantine_copy")
            conn.execute(
                sql.SQL("alter table {t} add constraint {pk} primary key (station_id, ts)").format(
                    t=ident(load_table), pk=sql.Identifier(f"{part_table}_pkey_new")
                )
            )
            conn.execute(sql.SQL("alter table {t} alter column source_file drop default").format(t=ident(load_table)))
            phase("primary_key")
            _swap_partition(conn, sql, ident, load_table, part_table, start, end)
            phase("swap")

            conn.execute("delete from warehouse.quarantine where interval_start = %s", (start,))
            raw_json = ", ".join(f"'{c}', {c}" for c in rules.RAW_COLUMNS)
            conn.execute(
                "insert into warehouse.quarantine (interval_start, source_file, row_number, reason, raw) "
                f"select %s, %s, row_number, reason, jsonb_build_object({raw_json}) from _etl_quarantine",
                (start, name),
            )
            reasons = dict(
                conn.execute(
                    "select reason, count(*) from _etl_quarantine group by reason order by count(*) desc, reason"
                ).fetchall()
            )
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
                (start, end, stats.rows_good, stats.rows_bad, str(source), checksum),
            )
            phase("quarantine_ledger")
        phase("commit")
    finally:
        if own_conn:
            conn.close()

    result = LoadResult(
        day=day.isoformat(),
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        source_uri=str(source),
        source_file=name,
        source_checksum=checksum,
        rows_in_file=stats.rows_in_file,
        rows_loaded=stats.rows_good,
        rows_quarantined=stats.rows_bad,
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
        seconds=round(time.perf_counter() - t0, 3),
        phases=phases,
    )
    log.info(
        "loaded %s from %s: %d rows loaded, %d quarantined (%s) in %.2fs",
        day, source, result.rows_loaded, result.rows_quarantined, result.quarantine_reasons, result.seconds,
    )  # fmt: skip
    return result


def _swap_partition(conn, sql, ident, load_table: str, part_table: str, start: datetime, end: datetime) -> None:
    """Make ``load_table`` the partition of [start, end), replacing the previous one."""
    conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    existing = conn.execute("select to_regclass(%s)", (f"warehouse.{part_table}",)).fetchone()[0]
    # Strongest lock first, parent before default partition: concurrent loads cannot deadlock.
    mode = "access exclusive" if existing else "share update exclusive"
    conn.execute(sql.SQL("lock table {} in {} mode").format(sql.SQL(TABLE), sql.SQL(mode)))
    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.SQL(DEFAULT_PARTITION)))
    if existing:
        conn.execute(sql.SQL("drop table {}").format(ident(part_table)))
    conn.execute(f"delete from {DEFAULT_PARTITION} where ts >= %s and ts < %s", (start, end))
    conn.execute(
        sql.SQL("alter table {parent} attach partition {t} for values from ({start}) to ({end})").format(
            parent=sql.SQL(TABLE), t=ident(load_table), start=sql.Literal(start), end=sql.Literal(end)
        )
    )
    conn.execute(sql.SQL("alter table {} rename to {}").format(ident(load_table), sql.Identifier(part_table)))
    conn.execute(
        sql.SQL("alter index {} rename to {}").format(
            ident(f"{part_table}_pkey_new"), sql.Identifier(f"{part_table}_pkey")
        )
    )
