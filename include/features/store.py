"""Read features out of ``features.demand_features``.

One ``COPY ... TO STDOUT`` streams the rows as CSV and pyarrow parses them (vectorised), much
faster than fetching Python tuples. Feature columns come back as float64 (null -> NaN, booleans
-> 0/1), ``station_id`` and ``demand`` as int64, ``ts`` as UTC timestamps.
"""

from __future__ import annotations

from datetime import date, datetime

from include.features.build import find_pending
from include.features.definitions import TARGET, feature_columns, feature_set
from include.intervals import as_utc
from include.warehouse import db


def read_features(
    start: date | datetime | str,
    end: date | datetime | str,
    version: str | None = None,
    station_ids: list[int] | None = None,
):
    """Features of ``version`` (default: current) for timestamps in [start, end).

    Columns: ``station_id``, ``ts``, the version's feature columns, ``demand``; ordered by
    ``ts, station_id``.
    """
    import pandas as pd
    import pyarrow as pa
    from psycopg import sql as pgsql

    fs = feature_set(version)
    cols = feature_columns(fs.version)
    select_cols = pgsql.SQL(", ").join(
        pgsql.SQL("{c}::int::float8 as {c}").format(c=pgsql.Identifier(c))
        if c in ("is_weekend", "is_holiday")
        else pgsql.SQL("{c}::float8 as {c}").format(c=pgsql.Identifier(c))
        for c in cols
    )
    where = pgsql.SQL("feature_set_version = {v} and ts >= {s} and ts < {e}").format(
        v=pgsql.Literal(fs.version), s=pgsql.Literal(as_utc(start)), e=pgsql.Literal(as_utc(end))
    )
    if station_ids is not None:
        where = pgsql.SQL("{w} and station_id = any({ids})").format(
            w=where, ids=pgsql.Literal([int(s) for s in station_ids])
        )
    query = pgsql.SQL(
        "copy (select station_id, (extract(epoch from ts) * 1000)::bigint as ts_ms, {cols}, demand "
        "from features.demand_features where {where} order by ts, station_id) "
        "to stdout (format csv, header true)"
    ).format(cols=select_cols, where=where)

    types = {"station_id": pa.int64(), "ts_ms": pa.int64(), TARGET: pa.int64(), **{c: pa.float64() for c in cols}}
    frame = db.copy_to_frame(query, types)
    frame.insert(1, "ts", pd.to_datetime(frame.pop("ts_ms"), unit="ms", utc=True))
    return frame


def pending_intervals(version: str | None = None) -> list[str]:
    """Start days (ISO) of the loaded intervals still without up-to-date features for
    ``version`` (default: current): what a run of ``feature_engineering`` would build now."""
    return [iv.start.date().isoformat() for iv in find_pending(version)]
