"""Training building blocks without a database: config, pipelines, time-based splits, metrics."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from include.features.definitions import feature_columns, feature_set


def synthetic_frame(days: int = 10, stations: int = 5, seed: int = 0) -> pd.DataFrame:
    """A frame shaped like read_features() output; demand depends on hour and lag."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-01", periods=days * 24, freq="h", tz="UTC")
    frame = pd.DataFrame({"station_id": np.repeat(np.arange(1, stations + 1), len(ts)), "ts": np.tile(ts, stations)})
    n = len(frame)
    for col in feature_columns():
        frame[col] = rng.normal(10, 3, n)
    frame["hour_of_day"] = frame.ts.dt.hour.astype(float)
    frame["day_of_week"] = (frame.ts.dt.dayofweek + 1).astype(float)
    frame["demand_lag_168h"] = np.nan  # entirely missing, as in a short history
    frame.loc[frame.ts < ts[48], "demand_lag_24h"] = np.nan
    lam = 5 + 3 * np.sin(frame.hour_of_day / 3.8) + 0.2 * frame.temperature_c
    frame["demand"] = rng.poisson(np.clip(lam, 0.1, None))
    return frame


def test_shipped_hyperparameter_file_is_valid_and_has_two_families():
    from include.training.candidates import load_candidates

    cands = load_candidates()
    assert len(cands) >= 2 and len({c["family"] for c in cands}) >= 2
    assert all("forest" not in c["family"] for c in cands)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "non-empty list"),
        ([{"name": "a", "family": "random_forest"}], "family must be one of"),
        ([{"name": "a", "family": "ridge"}, {"name": "a", "family": "ridge"}], "duplicate candidate name"),
        ([{"name": "Bad Name", "family": "ridge"}], "needs a name"),
        ([{"name": "a", "family": "ridge", "oops": 1}], "unknown keys"),
        ([{"name": "a", "family": "ridge", "params": [1]}], "params must be a mapping"),
        ([{"name": "a", "family": "sklearn", "estimator": "RandomForest"}], "did you mean RandomForestRegressor"),
        ([{"name": "a", "family": "sklearn", "estimator": "LogisticRegression"}], "must name a scikit-learn regressor"),
        ([{"name": "a", "family": "sklearn"}], "must name a scikit-learn regressor"),
        (
            [{"name": "a", "family": "sklearn", "estimator": "RandomForestRegressor", "params": {"n_trees": 3}}],
            "bad params for RandomForestRegressor",
        ),
        (
            [{"name": "a", "family": "sklearn", "estimator": "KNeighborsRegressor", "params": {"n_neighbors": 0}}],
            "bad params for KNeighborsRegressor",
        ),
        ([{"name": "a", "family": "ridge", "estimator": "Ridge"}], "goes with family 'sklearn' only"),
    ],
)
def test_bad_hyperparameter_sets_get_clear_errors(raw, message):
    from include.training.candidates import HyperparameterConfigError, validate_candidates

    with pytest.raises(HyperparameterConfigError, match=message):
        validate_candidates(raw)


def test_missing_or_malformed_hyperparameter_file(tmp_path):
    from include.training.candidates import HyperparameterConfigError, load_candidates

    with pytest.raises(HyperparameterConfigError, match="does not exist"):
        load_candidates(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("candidates: [unclosed")
    with pytest.raises(HyperparameterConfigError, match="not valid YAML"):
        load_candidates(bad)


@pytest.mark.parametrize(
    "candidate",
    [
        {"name": "h", "family": "hist_gradient_boosting", "params": {"max_iter": 20}, "log_target": False},
        {"name": "r", "family": "ridge", "params": {"alpha": 1.0}, "log_target": True},
        {"name": "e", "family": "elastic_net", "params": {"alpha": 0.1}, "log_target": False},
        {"name": "f", "family": "sklearn", "estimator": "RandomForestRegressor", "params": {"n_estimators": 5}},
        {"name": "k", "family": "sklearn", "estimator": "KNeighborsRegressor", "params": {}, "log_target": True},
    ],
)
def test_every_family_fits_with_missing_columns_and_predicts_from_a_wider_frame(candidate):
    import pickle

    from include.training.evaluate import fit_pipeline

    fs = feature_set()
    frame = synthetic_frame()
    pipe = fit_pipeline(candidate, frame, list(fs.columns), list(fs.categorical), np.datetime64("2026-01-11"), 7.0)
    pred = pipe.predict(frame)  # extra columns (station_id, ts, demand) are ignored by the pipeline
    assert pred.shape == (len(frame),) and np.isfinite(pred).all()
    copy = pickle.loads(pickle.dumps(pipe))  # what the registry stores (joblib pickles)
    np.testing.assert_allclose(copy.predict(frame[list(fs.columns)]), pred)


def test_plan_window():
    from include.training.split import plan_window

    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(30)]
    w, why = plan_window(days, window_days=21, valid_days=3, min_train_days=5)
    assert w.train_end == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert w.train_start == datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert w.valid_start == datetime(2026, 1, 28, tzinfo=timezone.utc)
    assert "18 training + 3 validation days" == why
    w, why = plan_window(days[:7], window_days=21, valid_days=3, min_train_days=5)
    assert w is None and "not enough data" in why
    assert plan_window([], 21, 3, 5) == (None, "no features yet")


def test_walk_forward_folds_only_train_on_the_past():
    from include.training.split import walk_forward_folds

    days = pd.date_range("2026-01-01", periods=10, freq="D").repeat(3)
    folds = list(walk_forward_folds(days, pd.Timestamp("2026-01-08")))
    assert [d.day for d, _, _ in folds] == [8, 9, 10]
    for day, train_mask, day_mask in folds:
        assert (days[train_mask] < day).all() and (days[day_mask] == day).all()
        assert train_mask.sum() == 3 * (day.day - 1)


def test_recency_weights_halve_every_half_life():
    from include.training.split import recency_weights

    days = np.array(["2026-01-10", "2026-01-03", "2025-12-27"], dtype="datetime64[D]")
    w = recency_weights(days, np.datetime64("2026-01-10"), 7.0)
    np.testing.assert_allclose(w, [1.0, 0.5, 0.25])
    assert (recency_weights(days, np.datetime64("2026-01-10"), 0) == 1).all()


def test_walk_forward_predictions_cover_exactly_the_validation_days():
    from include.training.evaluate import walk_forward_predict

    fs = feature_set()
    frame = synthetic_frame(days=8)
    cand = {"name": "r", "family": "ridge", "params": {"alpha": 1.0}, "log_target": False}
    mask, pred, fit_s = walk_forward_predict(
        cand, frame, list(fs.columns), list(fs.categorical), datetime(2026, 1, 6, tzinfo=timezone.utc), 7.0
    )
    assert mask.sum() == 3 * 24 * 5 == len(pred) and np.isfinite(pred).all() and fit_s > 0
    assert (frame.loc[mask, "ts"] >= pd.Timestamp("2026-01-06", tz="UTC")).all()


def test_metrics_and_selection():
    from include.training.evaluate import regression_metrics
    from include.training.promotion import select_best

    m = regression_metrics([1, 2, 3], [1, 2, 5], prefix="valid_")
    assert m["valid_mae"] == pytest.approx(2 / 3) and m["valid_bias"] == pytest.approx(2 / 3)
    assert m["valid_rows"] == 3
    with pytest.raises(ValueError):
        regression_metrics([], [])
    best = select_best(
        [
            {"name": "b", "metrics": {"valid_mae": 1.0}},
            {"name": "a", "metrics": {"valid_mae": 1.0}},
            {"name": "c", "metrics": {"valid_mae": 2.0}},
        ]
    )
    assert best["name"] == "a"


def test_versions_and_run_keys_are_deterministic_and_path_safe():
    from include.training.steps import model_version, run_key

    plan = {
        "feature_set_version": "v2",
        "train_start": "2026-01-01T00:00:00+00:00",
        "valid_start": "2026-01-19T00:00:00+00:00",
        "train_end": "2026-01-22T00:00:00+00:00",
    }
    cand = {"name": "hgb", "family": "hist_gradient_boosting", "params": {"max_iter": 10}, "log_target": False}
    v1 = model_version(plan, {"data_checksum": "abc"}, cand)
    assert v1 == model_version(plan, {"data_checksum": "abc"}, dict(cand))
    assert v1.startswith("20260121-hgb-") and v1 != model_version(plan, {"data_checksum": "abd"}, cand)
    key = run_key("asset_triggered__2026-01-01T00:00:00+00:00_abc/..")
    assert "/" not in key and ":" not in key and key != run_key("asset_triggered__2026-01-01T00:00:00+00:00_abd")


def test_walk_forward_prefixes_are_the_walk_forward_folds_on_rows_in_time_order():
    from include.training.split import walk_forward_folds, walk_forward_prefixes

    days = np.asarray(pd.date_range("2026-01-01", periods=10, freq="D").repeat(3))
    folds = list(walk_forward_folds(days, pd.Timestamp("2026-01-08")))
    prefixes = list(walk_forward_prefixes(days, pd.Timestamp("2026-01-08")))
    assert len(folds) == len(prefixes) == 3
    for (day, train_mask, day_mask), (pday, n, end) in zip(folds, prefixes, strict=True):
        assert pd.Timestamp(pday) == day
        assert train_mask.sum() == n and train_mask[:n].all()  # every earlier row, and only those
        assert np.flatnonzero(day_mask).tolist() == list(range(n, end))


def test_linear_features_match_scikit_learns_imputer_scaler_and_one_hot():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from include.training.transformers import LinearFeatures

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    X[rng.random(500) < 0.2, 1] = np.nan  # a column with gaps: median + indicator
    X[:, 3] = rng.integers(0, 5, size=500)  # categorical
    ours = LinearFeatures(categorical=[3]).fit(X[:400])
    theirs = ColumnTransformer(
        [
            ("n", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), [0, 1, 2]),
            ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [3]),
        ]
    ).fit(X[:400])
    # the indicator comes right after its column in ours, after every numeric column in theirs
    expected = theirs.transform(X[400:])[:, [0, 1, 3, 2, 4, 5, 6, 7, 8]]
    got = ours.transform(X[400:])
    assert got.shape == expected.shape and got.flags.f_contiguous
    np.testing.assert_allclose(got, expected, atol=1e-9)
