"""The small helpers every floor shares: UTC days and data intervals, file checksums, run keys."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone

import pytest

from include import keys
from include.intervals import Interval, as_utc, utc_day, utc_midnight

CET = timezone(timedelta(hours=1))


def test_utc_day_and_midnight_follow_the_utc_calendar():
    late = datetime(2026, 3, 1, 0, 30, tzinfo=CET)  # 2026-02-28 23:30 UTC
    assert utc_day(late) == date(2026, 2, 28)
    assert utc_midnight(late) == datetime(2026, 2, 28, tzinfo=timezone.utc)
    assert utc_midnight(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert as_utc("2026-03-01T05:00:00") == datetime(2026, 3, 1, 5, tzinfo=timezone.utc)  # naive is UTC
    assert as_utc(date(2026, 3, 1)).tzinfo is timezone.utc


def test_an_interval_is_utc_half_open_and_round_trips_through_json():
    iv = Interval.of_day(date(2026, 1, 31))
    assert iv.start == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert iv.end == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert iv.day == date(2026, 1, 31)
    assert Interval.from_json(iv.to_json()) == iv
    assert iv.to_json() == ["2026-01-31T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]
    start, end = iv
    assert (start, end) == (iv.start, iv.end)
    # Airflow's data_interval_start/_end pass through as they are, whatever their timezone
    assert Interval(datetime(2026, 1, 31, 1, tzinfo=CET), datetime(2026, 2, 1, 1, tzinfo=CET)) == iv
    with pytest.raises(ValueError, match="ends before it starts"):
        Interval(iv.end, iv.start)


def test_file_sha256_streams_the_bytes(tmp_path, monkeypatch):
    data = bytes(range(256)) * 41
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    monkeypatch.setattr(keys, "_BLOCK", 1000)  # several blocks
    assert keys.file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_run_keys_are_file_name_safe_and_keep_distinct_ids_distinct():
    a = keys.run_key("manual__2026-01-01T00:00:00+00:00/..")
    b = keys.run_key("manual__2026-01-01T00:00:00+00:00_..")
    assert a != b and "/" not in a and ":" not in a and "+" not in a
    assert keys.run_key("x" * 300) != keys.run_key("x" * 301) and len(keys.run_key("x" * 300)) == 69
    assert keys.run_key("scheduled__2026") == keys.run_key("scheduled__2026")
