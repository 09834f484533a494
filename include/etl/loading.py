"""Load one day's source file into ``warehouse.demand_hourly``: stream, validate, COPY, swap.

``load_day(day)`` does, inside ONE database transaction (the SQL of each step:
include/etl/day_partition.py; the streaming: include/etl/streaming.py):

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

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from include.etl import day_partition
from include.etl.binary_copy import _ROW, encode_copy_rows  # noqa: F401  (re-exported: tests, benchmarks)
from include.etl.day_partition import partition_name  # noqa: F401  (re-exported: include/features/seed.py)
from include.etl.streaming import copy_file
from include.intervals import Interval
from include.keys import file_sha256
from include.settings import get_settings
from include.source.landing import day_file_candidates, find_day_file
from include.warehouse import db

log = logging.getLogger(__name__)


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


class _Phases(dict):
    """Seconds per phase of a load: ``mark(label)`` closes the phase that ends now."""

    def __init__(self) -> None:
        super().__init__()
        self._mark = time.perf_counter()

    def mark(self, label: str) -> None:
        now = time.perf_counter()
        self[label] = round(now - self._mark, 3)
        self._mark = now


def find_source(day: date):
    """The day's file in the landing or archive zone; ``SourceFileMissing`` names the places searched."""
    source = find_day_file(day)
    if source is None:
        raise SourceFileMissing(f"no source file for {day}: looked for {[str(p) for p in day_file_candidates(day)]}")
    return source


def load_day(day: date, source=None, *, chunk_rows: int | None = None, conn=None) -> LoadResult:
    """Load ``day`` from ``source`` (an ObjectStoragePath; default: the landing or archive zone).

    ``conn``: an open psycopg connection to use (not closed here); default a new one.
    """
    t0 = time.perf_counter()
    chunk_rows = chunk_rows or get_settings().etl.chunk_rows
    source = source if source is not None else find_source(day)
    interval = Interval.of_day(day)
    phases = _Phases()
    checksum = file_sha256(source)
    phases.mark("checksum")

    own_conn = conn is None
    conn = conn or db.connect()
    try:
        with conn.transaction(), tempfile.TemporaryDirectory(prefix="etl-quarantine-") as tmp:
            day_partition.lock_day(conn, day)  # 1.
            load_table = day_partition.create_load_table(conn, day, interval, source.name)  # 2.
            spool = Path(tmp) / "quarantine.csv"
            stats = copy_file(conn, source, load_table, chunk_rows, interval, spool)
            phases.mark("copy")
            day_partition.stage_quarantine(conn, spool, has_rows=stats.rows_bad > 0)  # 3.
            phases.mark("quarantine_copy")
            day_partition.add_primary_key(conn, day)  # 4.
            phases.mark("primary_key")
            day_partition.swap_partition(conn, day, interval)
            phases.mark("swap")
            reasons = day_partition.write_quarantine(conn, interval, source.name)  # 3. (after the swap)
            day_partition.write_ledger(conn, interval, stats.rows_good, stats.rows_bad, source, checksum)  # 5.
            phases.mark("quarantine_ledger")
        phases.mark("commit")
    finally:
        if own_conn:
            conn.close()

    result = LoadResult(
        day=day.isoformat(),
        interval_start=interval.start.isoformat(),
        interval_end=interval.end.isoformat(),
        source_uri=str(source),
        source_file=source.name,
        source_checksum=checksum,
        rows_in_file=stats.rows_in_file,
        rows_loaded=stats.rows_good,
        rows_quarantined=stats.rows_bad,
        quarantine_reasons=reasons,
        seconds=round(time.perf_counter() - t0, 3),
        phases=dict(phases),
    )
    log.info(
        "loaded %s from %s: %d rows loaded, %d quarantined (%s) in %.2fs",
        day, source, result.rows_loaded, result.rows_quarantined, result.quarantine_reasons, result.seconds,
    )  # fmt: skip
    return result
