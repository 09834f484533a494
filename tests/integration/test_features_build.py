"""Feature SQL against the real PostgreSQL: values checked against an independent pandas
computation, work found from the ledger, reloads invalidating dependants, versions coexisting."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig, clean_day

pytestmark = pytest.mark.integration

CFG = SourceConfig(rows_per_day=480, seed=11)  # 20 stations
START = date(2026, 3, 1)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def expected_features(frames: dict[date, pd.DataFrame], day: date, stations: list[int]) -> pd.DataFrame:
    """The v1 and v2 features of ``day`` for ``stations``, computed directly in pandas."""
    hist = pd.concat([f for d, f in frames.items() if d < day], ignore_index=True)
    hist = hist[hist.station_id.isin(stations)].copy()
    hist["day"] = hist.ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    hist["hour"] = hist.ts.dt.hour
    target = frames[day][frames[day].station_id.isin(stations)].copy()
    by_key = hist.set_index(["station_id", "ts"])["demand"]
    d0 = pd.Timestamp(day)
    out = pd.DataFrame({"station_id": target.station_id.to_numpy(), "ts": target.ts.to_numpy()})
    out["hour_of_day"] = target.ts.dt.hour.to_numpy()
    out["day_of_week"] = target.ts.dt.dayofweek.to_numpy() + 1
    out["is_weekend"] = (out["day_of_week"] >= 6).astype(float)
    out["is_holiday"] = target.is_holiday.astype(float).to_numpy()
    for col in ("temperature_c", "precipitation_mm", "humidity_pct"):
        out[col] = target[col].to_numpy()
    for col, back in (("demand_lag_24h", pd.Timedelta(hours=24)), ("demand_lag_168h", pd.Timedelta(days=7))):
        out[col] = by_key.reindex(pd.MultiIndex.from_arrays([out.station_id, out.ts - back])).to_numpy()

    def window(days):
        return hist[(hist.day >= d0 - pd.Timedelta(days=days)) & (hist.day < d0)]

    w1, w7, w28 = window(1), window(7), window(28)
    st = out.station_id
    out["demand_mean_1d"] = st.map(w1.groupby("station_id").demand.mean()).to_numpy()
    out["demand_mean_7d"] = st.map(w7.groupby("station_id").demand.mean()).to_numpy()
    sh7 = w7.groupby(["station_id", "hour"]).demand.mean()
    sh28 = w28.groupby(["station_id", "hour"]).demand.mean()
    keys = pd.MultiIndex.from_arrays([out.station_id, out.hour_of_day])
    out["demand_same_hour_mean_7d"] = sh7.reindex(keys).to_numpy()
    out["demand_same_hour_mean_28d"] = sh28.reindex(keys).to_numpy()
    out["station_demand_mean_28d"] = st.map(w28.groupby("station_id").demand.mean()).to_numpy()
    out["station_demand_std_28d"] = st.map(w28.groupby("station_id").demand.std(ddof=1)).to_numpy()
    out["temperature_anomaly_7d"] = out.temperature_c - st.map(w7.groupby("station_id").temperature_c.mean()).to_numpy()
    out["demand"] = target.demand.to_numpy()
    return out.sort_values(["ts", "station_id"]).reset_index(drop=True)


@pytest.fixture
def seeded(fresh_warehouse):
    """31 days of 20 stations, day 26 missing (never delivered): windows must see a gap, not a shift."""
    days = [d for d in day_list(START, 31) if d != START + timedelta(days=26)]
    frames = {d: clean_day(d, CFG) for d in days}
    seed_days(days, CFG)
    return frames


def test_features_match_pandas_for_a_few_stations(seeded):
    from include.features.build import build_pending
    from include.features.definitions import feature_columns
    from include.features.store import read_features

    out = build_pending("v2", batch_days=5)
    assert len(out["intervals_built"]) == 30
    stations = [1, 7, 20]
    for day in (START + timedelta(days=3), START + timedelta(days=27), START + timedelta(days=30)):
        got = read_features(day, day + timedelta(days=1), "v2", station_ids=stations)
        exp = expected_features(seeded, day, stations)
        assert len(got) == len(exp) == 72
        assert list(got.columns) == ["station_id", "ts", *feature_columns("v2"), "demand"]
        assert (got.station_id.to_numpy() == exp.station_id.to_numpy()).all()
        assert (got.ts.to_numpy() == exp.ts.to_numpy()).all()
        for col in feature_columns("v2") + ["demand"]:
            np.testing.assert_allclose(
                got[col].to_numpy(float), exp[col].to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=f"{col} on {day}"
            )
    # day 27 follows the missing day 26: no 24 h lag at all, but the 7-day windows still hold 6 days
    after_gap = read_features(START + timedelta(days=27), START + timedelta(days=28), "v2")
    assert after_gap.demand_lag_24h.isna().all() and after_gap.demand_mean_7d.notna().all()


def _table_fingerprint(version: str):
    from include.features.definitions import all_feature_columns
    from include.warehouse import db

    cols = ", ".join(["station_id", "ts", "feature_set_version", *all_feature_columns(), "demand"])
    return db.fetch_one(
        f"select count(*), sum(hashtext(row({cols})::text)::numeric) from features.demand_features "
        "where feature_set_version = %s",
        (version,),
    )


def test_work_comes_from_the_ledger_and_reruns_change_nothing(seeded):
    from include.features.build import build_pending, find_pending

    assert len(find_pending("v2")) == 30
    first = build_pending("v2")
    assert first["rows_built"] == 30 * 480
    before = _table_fingerprint("v2")
    assert before[0] == 30 * 480
    assert find_pending("v2") == []
    assert build_pending("v2") == {"rows_built": 0, "intervals_built": [], "feature_set_version": "v2"}
    # a forced rebuild of a range replaces its rows: same content, no duplicates
    rebuilt = build_pending("v2", start=START + timedelta(days=10), end=START + timedelta(days=13), rebuild=True)
    assert len(rebuilt["intervals_built"]) == 3 and rebuilt["rows_built"] == 3 * 480
    assert _table_fingerprint("v2") == before


def test_a_reloaded_day_rebuilds_itself_and_the_days_that_read_it(seeded):
    from include.features.build import build_pending, find_pending
    from include.features.seed import seed_days as reseed

    build_pending("v1")
    build_pending("v2")
    reloaded = START + timedelta(days=20)
    reseed([reloaded], CFG)
    pending_v1 = [iv.start.date() for iv in find_pending("v1")]
    pending_v2 = [iv.start.date() for iv in find_pending("v2")]
    # v1 looks back 7 days, v2 28 days; day 26 was never loaded
    missing = START + timedelta(days=26)
    assert pending_v1 == [d for d in day_list(reloaded, 8) if d != missing]
    assert pending_v2 == [d for d in day_list(reloaded, 11) if d != missing]


def test_versions_coexist(seeded):
    from include.features.build import build_pending
    from include.features.store import read_features

    build_pending("v1", end=START + timedelta(days=10))
    build_pending("v2", end=START + timedelta(days=10))
    day = START + timedelta(days=8)
    v1 = read_features(day, day + timedelta(days=1), "v1")
    v2 = read_features(day, day + timedelta(days=1), "v2")
    assert len(v1) == len(v2) == 480
    assert "station_demand_std_28d" not in v1.columns and "station_demand_std_28d" in v2.columns
    shared = [c for c in v1.columns]
    pd.testing.assert_frame_equal(v1[shared], v2[shared])
