"""A day that failed the quality gate feeds no feature: not its own, not its neighbours' lags and
windows (it counts as missing); fixing it rebuilds the days whose lookback reads it. Real PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig, clean_day
from tests.integration.test_features_build import expected_features

pytestmark = pytest.mark.integration

CFG = SourceConfig(rows_per_day=480, seed=5)  # 20 stations
START = date(2026, 5, 1)
N_DAYS = 20
FAILED = START + timedelta(days=10)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _fail_gate(day: date) -> None:
    """What the ETL's gate writes when a critical check fails: the rows stay, the verdict is false."""
    from include.warehouse import db

    with db.transaction() as conn:
        conn.execute(
            "update warehouse.load_ledger set quality_passed = false, quality_checked_at = clock_timestamp(), "
            'quality_report = \'{"status": "failed"}\' where interval_start = %s',
            (_utc(day),),
        )


def _assert_features(day: date, frames: dict, version: str = "v2") -> None:
    from include.features.definitions import feature_columns
    from include.features.store import read_features

    stations = [2, 9, 17]
    got = read_features(day, day + timedelta(days=1), version, station_ids=stations)
    exp = expected_features(frames, day, stations)
    assert len(got) == len(exp) == 72
    for col in feature_columns(version):
        np.testing.assert_allclose(
            got[col].to_numpy(float), exp[col].to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=f"{col} on {day}"
        )


@pytest.fixture
def frames(fresh_warehouse):
    days = day_list(START, N_DAYS)
    seed_days(days, CFG)
    return {d: clean_day(d, CFG) for d in days}


def test_a_failed_day_counts_as_missing_and_fixing_it_rebuilds_its_dependants(frames):
    from include.features.build import build_pending, find_pending
    from include.warehouse import db

    _fail_gate(FAILED)
    built = build_pending("v2")
    assert FAILED.isoformat() not in built["intervals_built"] and len(built["intervals_built"]) == N_DAYS - 1
    assert db.fetch_one("select count(*) from features.demand_features where ts >= %s and ts < %s",
                        (_utc(FAILED), _utc(FAILED + timedelta(days=1))))[0] == 0  # fmt: skip
    # the failed day's rows are still in demand_hourly, but the features see a gap
    without = {d: f for d, f in frames.items() if d != FAILED}
    for day in (FAILED + timedelta(days=1), FAILED + timedelta(days=7), START + timedelta(days=N_DAYS - 1)):
        _assert_features(day, without)
    from include.features.store import read_features

    after = read_features(FAILED + timedelta(days=1), FAILED + timedelta(days=2), "v2")
    assert after.demand_lag_24h.isna().all() and after.demand_mean_1d.isna().all()
    week = read_features(FAILED + timedelta(days=7), FAILED + timedelta(days=8), "v2")
    assert week.demand_lag_168h.isna().all() and week.demand_lag_24h.notna().all()

    # the day is fixed (re-delivered, reloaded, gate passed): it and every day whose lookback
    # covers it are pending again, per version's lookback
    seed_days([FAILED], CFG)
    pending_v2 = [iv.start.date() for iv in find_pending("v2")]
    assert pending_v2 == day_list(FAILED, N_DAYS - 10)  # 28-day lookback: every later day
    build_pending("v1")
    seed_days([FAILED], CFG)  # once more, now that v1 has been built on the repaired day
    assert [iv.start.date() for iv in find_pending("v1")] == day_list(FAILED, 8)  # 7-day lookback
    rebuilt = build_pending("v2")
    assert rebuilt["intervals_built"] == [d.isoformat() for d in pending_v2]
    for day in (FAILED, FAILED + timedelta(days=1), FAILED + timedelta(days=7)):
        _assert_features(day, frames)
    assert find_pending("v2") == []


def test_a_day_failing_after_a_reload_rebuilds_the_days_that_read_it(frames):
    from include.features.build import build_pending, find_pending

    build_pending("v1")
    assert find_pending("v1") == []
    _fail_gate(FAILED)
    # not the failed day itself (it is not ready), but the 7 days whose lookback read it
    assert [iv.start.date() for iv in find_pending("v1")] == day_list(FAILED + timedelta(days=1), 7)
    build_pending("v1")
    without = {d: f for d, f in frames.items() if d != FAILED}
    _assert_features(FAILED + timedelta(days=3), without, "v1")
