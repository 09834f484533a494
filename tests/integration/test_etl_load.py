"""include.etl.loading against the real PostgreSQL: rows, quarantine, ledger, atomicity."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.source.simulator import SourceConfig, clean_day, file_name, raw_day, write_day

pytestmark = pytest.mark.integration

DAY = date(2026, 1, 7)
CFG = SourceConfig(rows_per_day=2400, malformed_share=0.03, seed=11)
COLS = ["station_id", "ts", "temperature_c", "precipitation_mm", "humidity_pct", "is_holiday", "demand"]


def landing():
    from include.settings import get_settings

    s = get_settings().storage
    return s.path(s.landing_uri)


def expected_rows(day: date, cfg: SourceConfig) -> pd.DataFrame:
    """The simulator's clean rows minus the ones it corrupted (duplicates are extra copies)."""
    clean = clean_day(day, cfg)
    _, kinds = raw_day(day, cfg)
    keep = kinds.iloc[: len(clean)].to_numpy() == ""
    return clean[keep].sort_values(["station_id", "ts"]).reset_index(drop=True)


def warehouse_rows(db, day: date) -> pd.DataFrame:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    rows = db.fetch_all(
        f"select {', '.join(COLS)} from warehouse.demand_hourly where ts >= %s and ts < %s order by station_id, ts",
        (start, start + timedelta(days=1)),
    )
    frame = pd.DataFrame(rows, columns=COLS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def table_digest(db) -> list[tuple]:
    """Everything a re-run must leave unchanged (not the load timestamps)."""
    return [
        db.fetch_all("select md5(string_agg(d::text, ',' order by station_id, ts)) from warehouse.demand_hourly d"),
        db.fetch_all(
            "select md5(string_agg(concat_ws('|', interval_start, source_file, row_number, reason, raw), ',' "
            "order by interval_start, row_number)) from warehouse.quarantine"
        ),
        db.fetch_all(
            "select interval_start, interval_end, rows_loaded, rows_quarantined, source_checksum "
            "from warehouse.load_ledger order by 1"
        ),
    ]


def test_day_loads_expected_rows_quarantine_and_ledger(fresh_warehouse, tmp_storage):
    from include.etl.loading import load_day

    db = fresh_warehouse
    write_day(DAY, landing(), CFG)
    result = load_day(DAY, chunk_rows=500)  # several chunks

    expected = expected_rows(DAY, CFG)
    got = warehouse_rows(db, DAY)
    assert len(got) == len(expected) == result.rows_loaded
    pd.testing.assert_frame_equal(got, expected.astype(got.dtypes.to_dict()), check_exact=True)

    raw, kinds = raw_day(DAY, CFG)
    assert result.rows_in_file == len(raw)
    assert result.rows_quarantined == int((kinds != "").sum())
    quarantined = db.fetch_all(
        "select row_number, reason, raw, source_file from warehouse.quarantine where interval_start = %s "
        "order by row_number",
        (datetime(2026, 1, 7, tzinfo=timezone.utc),),
    )
    assert [r[0] for r in quarantined] == (np.flatnonzero(kinds.to_numpy() != "") + 1).tolist()
    assert {r[3] for r in quarantined} == {file_name(DAY)}
    prefix = {"bad_type": "bad_type", "null_required": "null_required", "out_of_range": "out_of_range",
              "duplicate": "duplicate_key"}  # fmt: skip
    for row_number, reason, raw_json, _ in quarantined:
        assert reason.startswith(prefix[kinds.iloc[row_number - 1]])
        assert raw_json == {c: (None if pd.isna(v) else v) for c, v in raw.iloc[row_number - 1].items()}
    assert sum(result.quarantine_reasons.values()) == result.rows_quarantined

    ledger = db.fetch_one(
        "select interval_end, rows_loaded, rows_quarantined, source_file, source_checksum, quality_passed "
        "from warehouse.load_ledger where interval_start = %s",
        (datetime(2026, 1, 7, tzinfo=timezone.utc),),
    )
    from include.source.simulator import checksum, parquet_bytes

    assert ledger[:3] == (datetime(2026, 1, 8, tzinfo=timezone.utc), result.rows_loaded, result.rows_quarantined)
    assert ledger[3].endswith(file_name(DAY)) and ledger[4] == checksum(parquet_bytes(raw)) and ledger[5] is None
    # the day is its own partition; nothing in the default partition
    assert db.fetch_one("select count(*) from warehouse.demand_hourly_p20260107") == (result.rows_loaded,)
    assert db.fetch_one("select count(*) from warehouse.demand_hourly_default") == (0,)


def test_reloading_changes_nothing_and_replaces_stray_rows(fresh_warehouse, tmp_storage):
    from include.etl.loading import load_day

    db = fresh_warehouse
    write_day(DAY, landing(), CFG)
    write_day(DAY + timedelta(days=1), landing(), CFG)
    load_day(DAY)
    load_day(DAY + timedelta(days=1))
    before = table_digest(db)
    load_day(DAY)
    assert table_digest(db) == before
    # rows some other writer put into a loaded day, or into a day not loaded yet (they land in the
    # default partition), are replaced by the day's next load
    conn = db.connect(autocommit=True)
    for ts in ("2026-01-07T05:00:00Z", "2026-01-09T05:00:00Z"):
        conn.execute(f"insert into warehouse.demand_hourly values (99999, '{ts}', 1, 0, 50, false, 1, 'manual')")
    conn.close()
    assert db.fetch_one("select count(*) from warehouse.demand_hourly_default") == (1,)
    load_day(DAY)
    assert db.fetch_all("select ts::date from warehouse.demand_hourly where station_id = 99999") == [
        (date(2026, 1, 9),)
    ]
    write_day(DAY + timedelta(days=2), landing(), CFG)
    load_day(DAY + timedelta(days=2))
    assert db.fetch_one("select count(*) from warehouse.demand_hourly where station_id = 99999") == (0,)
    assert db.fetch_one("select count(*) from warehouse.demand_hourly_default") == (0,)


def test_a_failing_load_leaves_the_previous_day_untouched(fresh_warehouse, tmp_storage):
    from include.etl.loading import load_day
    from include.etl.validation import SourceSchemaError

    db = fresh_warehouse
    write_day(DAY, landing(), CFG)
    load_day(DAY)
    before = table_digest(db)
    # the source re-delivers the day without the demand column: nothing may change
    raw, _ = raw_day(DAY, CFG)
    broken = pa.Table.from_pandas(raw.drop(columns=["demand"]), preserve_index=False)
    path = landing() / file_name(DAY)
    with path.open("wb") as fh:
        pq.write_table(broken, fh)
    with pytest.raises(SourceSchemaError, match="demand"):
        load_day(DAY)
    assert table_digest(db) == before
    tables = db.fetch_all("select tablename from pg_tables where schemaname = 'warehouse' and tablename like '%load%'")
    assert tables == [("load_ledger",)]  # no leftover load table


def test_old_days_load_from_the_archive(fresh_warehouse, tmp_storage):
    from include.etl.loading import SourceFileMissing, load_day
    from include.settings import get_settings

    s = get_settings().storage
    with pytest.raises(SourceFileMissing, match=file_name(DAY)):
        load_day(DAY)
    write_day(DAY, s.path(s.archive_uri), CFG)
    result = load_day(DAY)
    assert "archive" in result.source_uri and result.rows_loaded == len(expected_rows(DAY, CFG))


def test_summary_section(fresh_warehouse, tmp_storage):
    from include.etl.loading import load_day
    from include.etl.summary import summary_section

    write_day(DAY, landing(), CFG)
    result = load_day(DAY)
    fresh_warehouse.connect(autocommit=True).execute(
        'update warehouse.load_ledger set quality_passed = true, quality_report = \'{"status": "warned"}\''
    )
    assert summary_section() == {
        "days_loaded": 1,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "quality_gate": {"2026-01-07": "warned"},
    }


def test_concurrent_loads_and_reloads_do_not_deadlock_or_mix(fresh_warehouse, tmp_storage):
    """Loads of different days and re-loads of the same day at once (what a backfill with several
    active runs does): each day ends up exactly as after a lone load."""
    from concurrent.futures import ThreadPoolExecutor

    from include.etl.loading import load_day

    db = fresh_warehouse
    days = [DAY + timedelta(days=i) for i in range(3)]
    for day in days:
        write_day(day, landing(), CFG)
        load_day(day)
    alone = table_digest(db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load_day, days * 3))
    assert [r.day for r in results] == [d.isoformat() for d in days * 3]
    assert table_digest(db) == alone
