"""Drift statistics, the drift decision and the HTML report, on frames built here (no database)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from include.monitoring.drift import (
    PREDICTION,
    Thresholds,
    compare,
    decide,
    error_stats,
    evaluate_window,
    json_safe,
    ks,
    psi,
)

RNG = np.random.default_rng(7)


def test_psi_matches_the_textbook_formula_on_decile_bins():
    ref = np.arange(1000, dtype=float)  # deciles: 10 equal bins of 100 values
    cur = np.concatenate([np.arange(0, 100.0), np.arange(900, 1000.0).repeat(4)])  # 20 % bin 0, 80 % bin 9
    expected_shares = np.full(10, 0.1)
    actual = np.array([0.2] + [1e-4] * 8 + [0.8])
    expected = np.sum((actual - expected_shares) * np.log(actual / expected_shares))
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-9)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_psi_grows_with_the_shift_and_ignores_nan():
    ref = RNG.normal(0, 1, 20_000)
    small = psi(ref, RNG.normal(0.1, 1, 5_000))
    large = psi(ref, RNG.normal(1.0, 1, 5_000))
    assert small < 0.05 < 0.25 < large
    with_nan = np.concatenate([RNG.normal(1.0, 1, 5_000), [np.nan] * 100])
    assert psi(ref, with_nan) == pytest.approx(psi(ref, with_nan[np.isfinite(with_nan)]))
    assert math.isnan(psi(ref, [np.nan]))


def test_ks_is_scipys_two_sample_test():
    a, b = RNG.normal(0, 1, 3000), RNG.normal(0.3, 1, 2000)
    res = stats.ks_2samp(a, b)
    assert ks(a, b) == pytest.approx((res.statistic, res.pvalue))


def test_a_feature_drifts_only_when_psi_ks_and_p_value_agree():
    t = Thresholds()
    ref = RNG.normal(20, 4, 20_000)
    assert compare("temperature_c", ref, RNG.normal(29, 4, 4800), t)["drifted"]
    assert not compare("temperature_c", ref, RNG.normal(20.2, 4, 4800), t)["drifted"]
    # a large shift of an unmonitored (calendar) column is reported, never flagged
    row = compare("day_of_week", ref, RNG.normal(29, 4, 4800), t, monitored=False)
    assert row["psi"] > 1 and not row["drifted"]
    # PSI alone is not enough: same shift, KS threshold out of reach
    assert not compare("x", ref, RNG.normal(29, 4, 4800), Thresholds(ks_threshold=1.01))["drifted"]


def test_statistics_use_a_bounded_deterministic_sample():
    t = Thresholds(max_rows=10_000)
    cur = RNG.normal(0.5, 1, 200_000)
    a = compare("x", RNG.normal(0, 1, 50_000), cur, t)
    assert a["cur_rows"] == 10_000 and a["ref_rows"] == 10_000
    assert compare("x", RNG.normal(0, 1, 50_000), cur, t)["cur_mean"] == a["cur_mean"]


def _features(drifted: int) -> list[dict]:
    return [{"feature": f"f{i}", "drifted": i < drifted} for i in range(5)]


@pytest.mark.parametrize(
    ("n_drifted", "ratio", "pred_drifted", "truth_rows", "expected"),
    [
        (2, 1.6, False, 5000, True),  # worse and inputs moved
        (2, 1.2, True, 5000, False),  # inputs moved, model fine: seasonal covariate shift
        (1, 1.6, False, 5000, False),  # one feature only
        (0, 2.6, False, 5000, True),  # error alone far off (concept drift)
        (2, math.nan, True, 0, True),  # no truth yet: features + predictions
        (2, math.nan, False, 0, False),
        (2, 1.6, True, 10, True),  # too few truth rows: falls back to features + predictions
    ],
)
def test_decision_rule(n_drifted, ratio, pred_drifted, truth_rows, expected):
    t = Thresholds(min_drifted_features=2, error_ratio_threshold=1.5, error_ratio_alone=2.5, min_truth_rows=500)
    pred = {"drifted": pred_drifted, "psi": 0.3, "ks_stat": 0.2}
    err = {"rows_with_truth": truth_rows, "error_ratio": ratio}
    drift, reasons = decide(_features(n_drifted), pred, err, t)
    assert drift is expected
    assert reasons or not drift


def test_error_stats_skip_rows_without_truth():
    out = error_stats([1.0, 3.0, np.nan], [2.0, 1.0, 5.0], reference_mae=0.5)
    assert out == {"rows_with_truth": 2, "mae": 1.5, "reference_mae": 0.5, "error_ratio": 3.0}
    assert math.isnan(error_stats([np.nan], [1.0], 0.5)["error_ratio"])


def _frames(shift: float, n: int = 4800):
    ref = pd.DataFrame(
        {
            "temperature_c": RNG.normal(15, 4, 20_000),
            "humidity_pct": RNG.normal(60, 8, 20_000),
            "hour_of_day": RNG.integers(0, 24, 20_000).astype(float),
        }
    )
    cur = pd.DataFrame(
        {
            "temperature_c": RNG.normal(15 + shift, 4, n),
            "humidity_pct": RNG.normal(60 - shift, 8, n),
            "hour_of_day": RNG.integers(0, 24, n).astype(float),
        }
    )
    ref_pred = 10 + 0.5 * ref["temperature_c"].to_numpy()
    cur["prediction"] = 10 + 0.5 * cur["temperature_c"].to_numpy()
    cur["demand"] = cur["prediction"] + RNG.normal(0, 1 + shift, n)
    reference = {"features": ref, "predictions": ref_pred, "valid_mae": 0.8}
    return reference, cur


def test_evaluate_window_flags_a_shift_and_not_a_stable_window():
    cols = ["temperature_c", "humidity_pct", "hour_of_day"]
    reference, stable = _frames(0.0)
    res = evaluate_window(reference, stable, cols, Thresholds())
    assert not res.drift and res.drifted_features == []
    reference, shifted = _frames(9.0)
    res = evaluate_window(reference, shifted, cols, Thresholds())
    assert res.drift and res.drifted_features == ["temperature_c", "humidity_pct"]
    assert set(res.scores()) == {"temperature_c", "humidity_pct", PREDICTION}
    assert res.error["error_ratio"] > 2
    # JSON-able for XCom and the asset event's extra
    assert json_safe({"a": np.float64(np.nan), "b": [np.int64(3)]}) == {"a": None, "b": [3]}


def test_report_is_self_contained_html_with_plots(tmp_path, monkeypatch):
    from datetime import date, datetime, timezone

    from include.monitoring.report import write_report

    monkeypatch.setenv("MLOPS_REPORTS_DIR", str(tmp_path))
    cols = ["temperature_c", "humidity_pct", "hour_of_day"]
    reference, shifted = _frames(9.0)
    res = evaluate_window(reference, shifted, cols, Thresholds())
    champion = {
        "version": "m1",
        "feature_set_version": "v2",
        "metric_value": 0.8,
        "train_start": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "train_end": datetime(2026, 1, 22, tzinfo=timezone.utc),
    }
    ev = {
        "day": date(2026, 1, 23),
        "start": datetime(2026, 1, 22, tzinfo=timezone.utc),
        "end": datetime(2026, 1, 24, tzinfo=timezone.utc),
        "rows": len(shifted),
        "new_window": True,
        "result": res,
    }
    path = write_report("manual__2026-01-24T00:00:00+00:00", champion, [ev], reference, shifted, Thresholds(), focus=ev)
    # a URI under the reports location (object storage: a local folder here), read back the same way
    from airflow.sdk import ObjectStoragePath

    assert path.startswith("file://" + str(tmp_path / "drift")), path
    text = ObjectStoragePath(path).read_text(encoding="utf-8")
    assert "Drift detected" in text and "temperature_c" in text
    assert text.count("data:image/png;base64,") == 1 and "<table>" in text
