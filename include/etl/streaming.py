"""Stream a day's Parquet file into a table: read, validate and encode chunk by chunk, COPY.

The file is read chunk by chunk (``iter_batches``, ``MLOPS_ETL_CHUNK_ROWS`` rows), each chunk
validated with array expressions (include/etl/validation.py) and its good rows encoded straight
into PostgreSQL's binary COPY format (include/etl/binary_copy.py). Reading/validating the next
chunk runs in a thread while the current one is sent (at most one chunk queued between them), so
memory does not grow with the size of the day. Bad rows go to a CSV spool file on local disk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from include.etl.binary_copy import COPY_COLUMNS, COPY_HEADER, COPY_TRAILER, encode_copy_rows
from include.etl.validation import QUARANTINE_SCHEMA, KeyDeduplicator, check_schema, validate_chunk
from include.intervals import Interval
from include.source import rules


@dataclass
class StreamStats:
    rows_in_file: int = 0
    rows_good: int = 0
    rows_bad: int = 0


def copy_file(conn, source, table, chunk_rows: int, interval: Interval, spool) -> StreamStats:
    """COPY the good rows of ``source`` (an ObjectStoragePath) into ``table`` (a psycopg
    ``sql.Identifier``), write the bad ones to ``spool`` (a local path); returns the counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from psycopg import sql

    stats = StreamStats()
    with source.open("rb") as fh:
        schema = pq.ParquetFile(fh).schema_arrow
        check_schema(schema, str(source))
        # string columns come as DictionaryArrays: validation parses each distinct value once
        as_dictionary = [c for c in rules.RAW_COLUMNS if pa.types.is_string(schema.field(c).type)]
        pf = pq.ParquetFile(fh, read_dictionary=as_dictionary)
        copy_sql = sql.SQL("copy {t} ({cols}) from stdin (format binary, freeze)").format(
            t=table, cols=sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
        )
        with conn.cursor() as cur:
            with cur.copy(copy_sql) as copy:
                copy.write(COPY_HEADER)
                for data in _prefetch(_stream_chunks(pf, chunk_rows, interval, spool, stats)):
                    copy.write(data)
                copy.write(COPY_TRAILER)
            copied = cur.rowcount
    if copied != stats.rows_good:
        raise RuntimeError(f"COPY wrote {copied} rows, validation passed {stats.rows_good}")
    return stats


def _stream_chunks(pf, chunk_rows: int, interval: Interval, spool, stats: StreamStats) -> Iterator[memoryview]:
    """Validate the file chunk by chunk; yield the good rows as binary COPY data, spool the bad."""
    import pyarrow.csv as pacsv

    start_s, end_s = int(interval.start.timestamp()), int(interval.end.timestamp())
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
