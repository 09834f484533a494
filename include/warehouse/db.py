"""The one place that opens warehouse connections and applies the DDL.

Connections go through the Postgres provider's hook (connection id ``warehouse``), which
gives a psycopg 3 connection: server-side COPY, binary COPY and ``executemany`` pipelines.
Outside Airflow (bench, scripts, tests) the same hook reads ``AIRFLOW_CONN_WAREHOUSE``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from include.settings import get_settings

SQL_DIR = Path(__file__).parent / "sql"
_DDL_LOCK_KEY = 7_431_202_611  # pg_advisory_xact_lock key serialising concurrent DDL


def get_hook():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=get_settings().warehouse.conn_id)


def connect(autocommit: bool = False):
    """A new psycopg connection to the warehouse (caller closes it)."""
    conn = get_hook().get_conn()
    conn.autocommit = autocommit
    return conn


@contextlib.contextmanager
def transaction() -> Iterator:
    """``with transaction() as conn:`` commits on success, rolls back on error, always closes."""
    conn = connect()
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()


def ddl_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


def ensure_schema() -> None:
    """Apply every ``sql/NNN_*.sql`` file in order. Idempotent (IF NOT EXISTS everywhere)."""
    with transaction() as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK_KEY,))
        for path in ddl_files():
            conn.execute(path.read_text())


def fetch_all(sql: str, params: tuple | dict | None = None) -> list[tuple]:
    conn = connect(autocommit=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def fetch_one(sql: str, params: tuple | dict | None = None) -> tuple | None:
    rows = fetch_all(sql, params)
    return rows[0] if rows else None


def copy_to_frame(query, types: dict):
    """Run ``copy (...) to stdout (format csv, header true)`` and parse the CSV with pyarrow into a
    pandas DataFrame. ``types``: column name -> pyarrow type (or its name, e.g. ``"int64"``)."""
    import io

    import pyarrow as pa
    from pyarrow import csv as pacsv

    buf = io.BytesIO()
    conn = connect(autocommit=True)
    try:
        with conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in copy:
                buf.write(chunk)
    finally:
        conn.close()
    buf.seek(0)
    column_types = {k: getattr(pa, v)() if isinstance(v, str) else v for k, v in types.items()}
    return pacsv.read_csv(buf, convert_options=pacsv.ConvertOptions(column_types=column_types)).to_pandas()
