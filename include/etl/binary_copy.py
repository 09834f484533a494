"""PostgreSQL's binary COPY format for ``demand_hourly`` rows, encoded with NumPy.

Every column is fixed-width, so a whole chunk of validated rows is one NumPy structured array
written with one ``tobytes()``: no per-row Python, no text parsing on the server.
"""

from __future__ import annotations

import numpy as np

from include.etl.validation import ValidatedChunk

PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z: PostgreSQL's binary timestamp origin
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)

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
#: the columns of a row, in the order encoded
COPY_COLUMNS = ("station_id", "ts", "temperature_c", "precipitation_mm", "humidity_pct", "is_holiday", "demand")


def encode_copy_rows(chunk: ValidatedChunk) -> memoryview:
    """The good rows of a chunk in PostgreSQL's binary COPY row format (no header/trailer), as a
    view of one NumPy buffer (no extra copy)."""
    rows = np.empty(chunk.n_good, dtype=_ROW)
    rows["n"] = len(COPY_COLUMNS)
    rows["l_station_id"], rows["station_id"] = 4, chunk.station_id
    rows["l_ts"], rows["ts"] = 8, (chunk.ts_s - PG_EPOCH_S) * 1_000_000
    rows["l_temperature_c"], rows["temperature_c"] = 8, chunk.temperature_c
    rows["l_precipitation_mm"], rows["precipitation_mm"] = 8, chunk.precipitation_mm
    rows["l_humidity_pct"], rows["humidity_pct"] = 8, chunk.humidity_pct
    rows["l_is_holiday"], rows["is_holiday"] = 1, chunk.is_holiday
    rows["l_demand"], rows["demand"] = 4, chunk.demand
    return memoryview(rows).cast("B")
