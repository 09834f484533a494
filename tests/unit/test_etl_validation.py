"""Vectorised validation of raw chunks and the binary COPY encoding (no database)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.etl.loading import _ROW, encode_copy_rows
from include.etl.validation import KeyDeduplicator, SourceSchemaError, check_schema, validate_chunk
from include.source import rules

START = int(datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp())
END = START + 86400

GOOD = {
    "station_id": "7",
    "ts": "2026-01-05T08:00:00Z",
    "temperature_c": "-3.25",
    "precipitation_mm": "0.00",
    "humidity_pct": "81.5",
    "is_holiday": "false",
    "demand": "12",
}


def batch(rows: list[dict], dictionary: bool = False) -> pa.RecordBatch:
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in rules.RAW_COLUMNS})
    if dictionary:
        table = pa.table({c: table.column(c).dictionary_encode() for c in rules.RAW_COLUMNS})
    return table.to_batches()[0]


def row(**changes) -> dict:
    return {**GOOD, **changes}


CASES = [
    (row(), None),
    (row(station_id=None), "null_required: station_id"),
    (row(ts=None), "null_required: ts"),
    (row(demand=None), "null_required: demand"),
    (row(temperature_c="n/a"), "bad_type: temperature_c"),
    (row(demand="12.5"), "bad_type: demand"),
    (row(station_id="x1"), "bad_type: station_id"),
    (row(ts="2026-01-05 08:00"), "bad_type: ts"),
    (row(is_holiday="maybe"), "bad_type: is_holiday"),
    (row(humidity_pct="140.0"), "out_of_range: humidity_pct"),
    (row(precipitation_mm="-0.5"), "out_of_range: precipitation_mm"),
    (row(temperature_c="61"), "out_of_range: temperature_c"),
    (row(station_id="0"), "out_of_range: station_id"),
    (row(demand="-1"), "out_of_range: demand"),
    (row(ts="2026-01-06T00:00:00Z"), "outside_interval: ts"),
    (row(ts="2026-01-04T23:00:00Z"), "outside_interval: ts"),
    (row(ts="2026-01-05T08:30:00Z"), "not_on_hour: ts"),
    (row(station_id="+8"), "bad_type: station_id"),
    (row(demand="99999999999"), "bad_type: demand"),
    (row(temperature_c="nan"), "bad_type: temperature_c"),
    (row(is_holiday="TRUE", temperature_c="1e1", precipitation_mm=".5", station_id="08"), None),
]


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
@pytest.mark.parametrize(("raw", "reason"), CASES)
def test_each_rule_quarantines_with_its_reason(raw, reason, dictionary):
    # a good row first so that dictionary arrays carry several values
    chunk = validate_chunk(batch([row(station_id="99"), raw], dictionary), 1, START, END, KeyDeduplicator())
    if reason is None:
        assert chunk.n_good == 2 and chunk.n_bad == 0
    else:
        assert chunk.n_good == 1 and chunk.n_bad == 1
        bad = chunk.bad.to_pylist()[0]
        assert bad["reason"] == reason
        assert bad["row_number"] == 2
        assert {c: bad[c] for c in rules.RAW_COLUMNS} == raw  # raw values as delivered


def test_all_failing_rules_of_a_row_are_reported():
    chunk = validate_chunk(batch([row(demand="x", humidity_pct="101")]), 10, START, END, KeyDeduplicator())
    assert chunk.bad.to_pylist()[0]["reason"] == "bad_type: demand; out_of_range: humidity_pct"
    assert chunk.bad.to_pylist()[0]["row_number"] == 10


def test_typed_values_of_good_rows():
    chunk = validate_chunk(batch([row(), row(station_id="8", is_holiday="t")]), 1, START, END, KeyDeduplicator())
    assert chunk.station_id.tolist() == [7, 8]
    assert chunk.ts_s.tolist() == [START + 8 * 3600] * 2
    assert chunk.temperature_c.tolist() == [-3.25, -3.25]
    assert chunk.is_holiday.tolist() == [False, True]
    assert chunk.demand.dtype == np.int32 and chunk.station_id.dtype == np.int32


def test_duplicates_within_and_across_chunks_keep_the_first_occurrence():
    dedup = KeyDeduplicator()
    first = validate_chunk(batch([row(), row(station_id="8"), row()]), 1, START, END, dedup)
    assert first.n_good == 2
    assert first.bad.column("row_number").to_pylist() == [3]
    assert first.bad.column("reason").to_pylist()[0].startswith("duplicate_key")
    second = validate_chunk(batch([row(station_id="8"), row(station_id="9")]), 4, START, END, dedup)
    assert second.station_id.tolist() == [9]
    assert second.bad.column("row_number").to_pylist() == [4]
    assert len(dedup) == 3


def test_a_bad_row_does_not_claim_its_key():
    # the first row with key (7, 08:00) is malformed: the later good one with the same key is kept
    chunk = validate_chunk(batch([row(demand="x"), row()]), 1, START, END, KeyDeduplicator())
    assert chunk.n_good == 1 and chunk.bad.column("row_number").to_pylist() == [1]


def test_missing_column_is_a_schema_error():
    schema = pa.schema([(c, pa.string()) for c in rules.RAW_COLUMNS if c != "demand"])
    with pytest.raises(SourceSchemaError, match="demand"):
        check_schema(schema, "demand_2026-01-05.parquet")


def test_simulator_day_matches_its_corruption_labels(tmp_path):
    """Over a simulated day, exactly the rows the simulator corrupted are quarantined, with their kind."""
    from include.source.simulator import SourceConfig, parquet_bytes, raw_day

    day = date(2026, 1, 5)
    raw, kinds = raw_day(day, SourceConfig(rows_per_day=4800, malformed_share=0.05, seed=3))
    path = tmp_path / "day.parquet"
    path.write_bytes(parquet_bytes(raw))
    dedup, bad, good = KeyDeduplicator(), [], 0
    pf = pq.ParquetFile(path, read_dictionary=list(rules.RAW_COLUMNS))
    first = 1
    for b in pf.iter_batches(batch_size=1000):  # several chunks: duplicates cross chunk borders
        chunk = validate_chunk(b, first, START, END, dedup)
        first += b.num_rows
        good += chunk.n_good
        bad.append(chunk.bad)
    bad = pa.concat_tables(bad)
    expected = np.flatnonzero(kinds.to_numpy() != "") + 1
    assert sorted(bad.column("row_number").to_pylist()) == expected.tolist()
    assert good == len(raw) - len(expected)
    kind_of = {i + 1: k for i, k in enumerate(kinds)}
    prefix = {"bad_type": "bad_type", "null_required": "null_required", "out_of_range": "out_of_range",
              "duplicate": "duplicate_key"}  # fmt: skip
    for rn, reason in zip(bad.column("row_number").to_pylist(), bad.column("reason").to_pylist(), strict=True):
        assert reason.startswith(prefix[kind_of[rn]]), (rn, reason, kind_of[rn])


def test_binary_copy_rows_roundtrip():
    chunk = validate_chunk(batch([row(), row(station_id="8", demand="3", is_holiday="true")]), 1, START, END,
                           KeyDeduplicator())  # fmt: skip
    data = encode_copy_rows(chunk)
    assert len(data) == 2 * _ROW.itemsize
    decoded = np.frombuffer(bytes(data), dtype=_ROW)
    assert decoded["n"].tolist() == [7, 7]
    assert decoded["station_id"].tolist() == [7, 8]
    assert decoded["demand"].tolist() == [12, 3]
    assert decoded["is_holiday"].tolist() == [0, 1]
    # microseconds since 2000-01-01 UTC
    pg_epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    expected_us = int((datetime(2026, 1, 5, 8, tzinfo=timezone.utc) - pg_epoch).total_seconds()) * 1_000_000
    assert decoded["ts"].tolist() == [expected_us] * 2
