"""Bench section ``etl``: load throughput against a plain binary COPY, load memory, DAG parse time.

``run(workdir)`` (called by scripts/bench.py with the bench environment) measures, in one run:

- ``load_vs_binary_copy_ratio`` (goal >= 0.8): a simulated 1,000,000-row day (clean, so that a
  plain load without validation can take it) is loaded by the ETL's load function
  (``include.etl.loading.load_day``: streaming read, validation, quarantine, binary COPY, primary
  key, partition swap, ledger, commit) and, as the baseline, by the fastest plain load of the same
  file: the same Parquet reader (``iter_batches``, same chunk size), the text columns cast by
  pyarrow, the rows encoded with NumPy into binary COPY format and sent with
  ``COPY ... (format binary, freeze)`` into a typed table created in the same transaction; no
  validation, no key, no swap, no ledger. Ratio = baseline seconds / load seconds (1.0 = the load
  costs nothing beyond the plain load). The two are interleaved and each repeated; medians.
- ``load_vs_csv_copy_ratio`` (information): the same against a CSV COPY of the file's text into a
  table of seven text columns (what an untyped staging load costs).
- ``load_rss_increase_mb_250k`` / ``load_rss_increase_mb_1m`` (headline, should stay flat): the
  load's own memory, i.e. how much the peak resident memory of a fresh process grows during
  ``load_day`` of a 250,000-row resp. 1,000,000-row day (default simulator file, with malformed
  rows): the child's ``VmHWM`` (/proc/self/status) after the load minus before it, once it has
  imported what the load uses (Airflow's Postgres hook, pyarrow, psycopg) and opened a
  connection (``rss_before_load_mb``). Streaming in chunks keeps the two sizes close; the only
  per-row state is the 8-byte key set used to detect duplicates (~8 MB at 1M rows).
  ``peak_rss_mb_*`` (information) is the whole process, mostly imports. Not
  ``getrusage().ru_maxrss``: on Linux a child started with fork+exec inherits the forking image's
  high-water mark in ``ru_maxrss``.
- ``dag_parse_s``: seconds for Airflow's DagBag to parse the whole DAG folder, in a fresh process
  once Airflow itself is imported (best of 3).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY_250K = date(2026, 3, 2)
DAY_1M = date(2026, 3, 3)
REPEATS = 3

#: modules a DAG file must not import at parse time (the developer guide's list, plus pyarrow)
HEAVY_MODULES = (
    "pandas", "numpy", "sklearn", "torch", "scipy", "weaviate", "openai", "soda_core", "psycopg",
    "psycopg2", "pyarrow", "sentence_transformers", "transformers", "matplotlib",
)  # fmt: skip

_PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import airflow, airflow.sdk  # Airflow itself is not part of the DAG folder's parse time, nor what
    import airflow.dag_processing.processor  # the dag-processor has loaded before it parses (task runner)
    from airflow.dag_processing.dagbag import DagBag

    before = set(sys.modules)
    t0 = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - t0
    new = {m.split(".")[0] for m in set(sys.modules) - before}
    print(json.dumps({
        "seconds": elapsed,
        "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
        "dags": sorted(bag.dag_ids),
        "import_errors": {k: v.splitlines()[-1] for k, v in bag.import_errors.items()},
        "heavy_imports": sorted(new & set(sys.argv[2].split(","))),
    }))
    """
)


def measure_dag_parse(dags_folder: Path = ROOT / "dags", repeats: int = 3) -> dict:
    """Parse the DAG folder in fresh processes after importing Airflow; the fastest of ``repeats``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    best = None
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE_SCRIPT, str(dags_folder), ",".join(HEAVY_MODULES)],
            check=True, capture_output=True, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    from datetime import date
    from include.etl.loading import load_day
    from include.settings import get_settings

    def vm(key):  # kB -> MB, from the kernel's accounting of this process image
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024

    # everything load_day imports or opens, so that what follows is the load's own footprint
    import psycopg, pyarrow.compute, pyarrow.csv, pyarrow.parquet
    from include.warehouse import db
    db.connect().close()
    s = get_settings().storage
    imported_mb = vm("VmHWM")
    result = load_day(date.fromisoformat(sys.argv[1]), s.path(sys.argv[2]))
    print(json.dumps({
        "peak_rss_mb": vm("VmHWM"),
        "rss_before_load_mb": imported_mb,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": result.seconds, "phases": result.phases, "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
    }))
    """
)


def _load_in_child(day: date, uri: str) -> dict:
    """Load ``day`` in a fresh process: its ru_maxrss is the load's peak memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, day.isoformat(), uri],
        check=True, capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def binary_copy_seconds(path: Path, conn, chunk_rows: int) -> float:
    """Baseline: the same file, plainly, into a typed table created in the same transaction with a
    binary ``COPY ... FREEZE``: pyarrow casts the text columns, NumPy lays out the rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    row = np.dtype(
        [("n", ">i2"), ("l1", ">i4"), ("station_id", ">i4"), ("l2", ">i4"), ("ts", ">i8"),
         ("l3", ">i4"), ("temperature_c", ">f8"), ("l4", ">i4"), ("precipitation_mm", ">f8"),
         ("l5", ">i4"), ("humidity_pct", ">f8"), ("l6", ">i4"), ("is_holiday", "u1"), ("l7", ">i4"), ("demand", ">i4")]
    )  # fmt: skip
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    pg_epoch_us = 946_684_800 * 1_000_000

    def encode(batch) -> memoryview:
        cols = dict(zip(batch.schema.names, batch.columns, strict=True))
        rows = np.empty(batch.num_rows, dtype=row)
        rows["n"] = 7
        rows["l1"], rows["l2"], rows["l3"], rows["l4"], rows["l5"], rows["l6"], rows["l7"] = 4, 8, 8, 8, 8, 1, 4
        rows["station_id"] = pc.cast(cols["station_id"], pa.int32()).to_numpy()
        ts = pc.strptime(cols["ts"], format="%Y-%m-%dT%H:%M:%SZ", unit="us")
        rows["ts"] = pc.cast(ts, pa.int64()).to_numpy() - pg_epoch_us
        for c in ("temperature_c", "precipitation_mm", "humidity_pct"):
            rows[c] = pc.cast(cols[c], pa.float64()).to_numpy()
        rows["is_holiday"] = pc.equal(cols["is_holiday"], "true").to_numpy(zero_copy_only=False)
        rows["demand"] = pc.cast(cols["demand"], pa.int32()).to_numpy()
        return memoryview(rows).cast("B")

    pf = pq.ParquetFile(path)
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("drop table if exists bench_binary_copy")
        cur.execute(
            "create table bench_binary_copy (station_id integer not null, ts timestamptz not null, "
            "temperature_c double precision not null, precipitation_mm double precision not null, "
            "humidity_pct double precision not null, is_holiday boolean not null, demand integer not null)"
        )
        with cur.copy("copy bench_binary_copy from stdin (format binary, freeze)") as copy:
            copy.write(header)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                copy.write(encode(batch))
            copy.write((-1).to_bytes(2, "big", signed=True))
    elapsed = time.perf_counter() - t0
    conn.execute("drop table bench_binary_copy")
    conn.commit()
    return elapsed


def csv_copy_seconds(path: Path, conn, chunk_rows: int) -> float:
    """Information: the same file streamed into an empty table of its (text) columns with CSV COPY."""
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    conn.execute("drop table if exists bench_csv_copy")
    pf = pq.ParquetFile(path)
    columns = ", ".join(f'"{name}" text' for name in pf.schema_arrow.names)
    conn.execute(f"create table bench_csv_copy ({columns})")
    conn.commit()
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy("copy bench_csv_copy from stdin (format csv)") as copy:
        for batch in pf.iter_batches(batch_size=chunk_rows):
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
            copy.write(buf.getbuffer())
    elapsed = time.perf_counter() - t0
    conn.execute("drop table bench_csv_copy")
    conn.commit()
    return elapsed


def run(workdir: Path) -> dict:
    from airflow.sdk import ObjectStoragePath

    from include.etl.loading import load_day
    from include.settings import get_settings
    from include.source.simulator import SourceConfig, file_name, write_day
    from include.warehouse import db

    db.ensure_schema()
    chunk_rows = get_settings().etl.chunk_rows
    files = {}
    for rows, day in ((250_000, DAY_250K), (1_000_000, DAY_1M)):
        folder = workdir / f"landing_{rows}"
        write_day(day, ObjectStoragePath("file://" + str(folder)), SourceConfig(rows_per_day=rows))
        files[rows] = (day, folder / file_name(day))

    # the load's memory: one fresh process per size
    rss = {rows: _load_in_child(day, "file://" + str(path)) for rows, (day, path) in files.items()}

    # throughput: load vs plain loads of the same clean 1M-row file, interleaved, in this process (warm)
    day = DAY_1M
    folder = workdir / "landing_clean"
    write_day(
        day, ObjectStoragePath("file://" + str(folder)), SourceConfig(rows_per_day=1_000_000, malformed_share=0.0)
    )
    path = folder / file_name(day)
    source = ObjectStoragePath("file://" + str(path))
    conn = db.connect()
    try:
        binary_copy_seconds(path, conn, chunk_rows)  # warm-up: page cache, imports
        csv_copy_seconds(path, conn, chunk_rows)
        load_day(day, source)
        binary_s, csv_s, load_s, phases = [], [], [], []
        for _ in range(REPEATS):
            binary_s.append(binary_copy_seconds(path, conn, chunk_rows))
            result = load_day(day, source)
            load_s.append(result.seconds)
            phases.append(result.phases)
            csv_s.append(csv_copy_seconds(path, conn, chunk_rows))
    finally:
        conn.close()
    parse = measure_dag_parse()

    binary_median, csv_median, load_median = (statistics.median(x) for x in (binary_s, csv_s, load_s))
    rows_in_file = result.rows_in_file
    assert result.rows_quarantined == 0 and result.rows_loaded == rows_in_file == 1_000_000, result

    def growth(rows: int) -> float:
        return round(rss[rows]["peak_rss_mb"] - rss[rows]["rss_before_load_mb"], 1)

    return {
        "load_vs_binary_copy_ratio": round(binary_median / load_median, 3),
        "load_rss_increase_mb_250k": growth(250_000),
        "load_rss_increase_mb_1m": growth(1_000_000),
        "dag_parse_s": round(parse["seconds"], 3),
        "load_vs_csv_copy_ratio": round(csv_median / load_median, 3),
        "load_1m_s": round(load_median, 3),
        "binary_copy_1m_s": round(binary_median, 3),
        "csv_copy_1m_s": round(csv_median, 3),
        "load_rows_per_s": round(rows_in_file / load_median),
        "binary_copy_rows_per_s": round(rows_in_file / binary_median),
        "load_phases_s": {k: round(statistics.median(p[k] for p in phases), 3) for k in phases[0]},
        "load_s_runs": [round(x, 3) for x in load_s],
        "binary_copy_s_runs": [round(x, 3) for x in binary_s],
        "csv_copy_s_runs": [round(x, 3) for x in csv_s],
        "rows_in_1m_file": rows_in_file,
        "memory_files_rows_quarantined": {str(k): v["rows_quarantined"] for k, v in rss.items()},
        "peak_rss_mb_250k": round(rss[250_000]["peak_rss_mb"], 1),
        "peak_rss_mb_1m": round(rss[1_000_000]["peak_rss_mb"], 1),
        "rss_before_load_mb": round(rss[1_000_000]["rss_before_load_mb"], 1),
        "chunk_rows": chunk_rows,
        "dag_parse_files_s": {k: round(v, 4) for k, v in parse["files"].items()},
    }


if __name__ == "__main__":  # standalone: python -m scripts.bench_etl  (environment from scripts/env.sh)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
