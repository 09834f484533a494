"""Bench section ``drift``: batch scoring and drift computation on 1,000,000 rows against raw predict.

``run(workdir)`` (called by scripts/bench.py with the bench environment) measures, in one run:

- data: 40 simulated days of 25,000 rows (1,042 stations) = 1,000,000 rows in the warehouse and
  their current feature set (``v2``), seeded and built with the project's own functions unless
  the ``features`` section left exactly that state behind;
- a champion-like model: the first hyperparameter set of ``include/training/hyperparams.yaml``
  (``hgb_poisson``, 200 trees) fitted with the training code (``fit_pipeline``) on 5 days, and
  its training reference (a 20,000-row sample, predictions, MAE), as the training DAG stores it;
- in memory, on the same 1,000,000-row feature frame, interleaved, median of 3:
  ``raw_predict_s`` = ``pipeline.predict(frame[feature_columns])`` (the baseline);
  ``scoring_s`` = ``include.monitoring.scoring.score_frame`` (what the DAG's scoring does with the
  frame); ``drift_s`` = ``include.monitoring.drift.evaluate_window`` on all 1,000,000 rows (16 features
  + predictions: PSI, KS, error; statistics on a 50,000-row deterministic sample per column);
- ``scoring_vs_raw_predict_ratio`` = (scoring_s + drift_s) / raw_predict_s (goal <= 1.5) and
  ``share_outside_predict`` = 1 - raw_predict_s / (scoring_s + drift_s);
- the DAG's whole path for the same rows (``end_to_end_*``): every pending interval found from the
  ledgers, read from the feature store (COPY), scored and stored (delete + COPY + ledger, one
  transaction per 7-day batch) -- ``read_s``, ``predict_s``, ``store_s``, ``end_to_end_s``,
  ``end_to_end_rows_per_s``, and ``end_to_end_vs_raw_predict_ratio`` for information (it is
  dominated by the database I/O, not by the model).
"""

from __future__ import annotations

import statistics
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

ROWS_PER_DAY = 25_000
DAYS = 40
START = date(2026, 1, 1)  # the same rows as the features section: reused when present
FIT_DAYS = 5
REPEATS = 3


def _utc(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=timezone.utc)


def _ensure_features(version: str) -> dict:
    from include.features.build import build_pending
    from include.features.seed import day_list, seed_days
    from include.source.simulator import SourceConfig
    from include.warehouse import db

    db.ensure_schema()
    have = db.fetch_one(
        "select count(*) from features.demand_features where feature_set_version = %s and ts >= %s and ts < %s",
        (version, _utc(START), _utc(START + timedelta(days=DAYS))),
    )[0]
    if have == ROWS_PER_DAY * DAYS:
        return {"reused_features": True, "prepare_s": 0.0}
    t = time.perf_counter()
    seed_days(day_list(START, DAYS), SourceConfig(rows_per_day=ROWS_PER_DAY, malformed_share=0.0, seed=1))
    with db.transaction() as conn:
        conn.execute("analyze warehouse.demand_hourly")
    build_pending(version, start=START, end=START + timedelta(days=DAYS))
    return {"reused_features": False, "prepare_s": round(time.perf_counter() - t, 1)}


def run(workdir: Path) -> dict:
    import numpy as np

    from include.features.definitions import CURRENT_FEATURE_SET_VERSION, TARGET, feature_set
    from include.features.store import read_features
    from include.monitoring.drift import Thresholds, evaluate_window
    from include.monitoring.scoring import pending_intervals, plan_batches, score_batch, score_frame
    from include.settings import get_settings
    from include.training.candidates import load_candidates
    from include.training.evaluate import fit_pipeline

    version = CURRENT_FEATURE_SET_VERSION
    fs = feature_set(version)
    cols = list(fs.columns)
    prep = _ensure_features(version)

    # a champion-like model, fitted with the training code on the last FIT_DAYS days
    t = time.perf_counter()
    fit_start = START + timedelta(days=DAYS - FIT_DAYS)
    train = read_features(fit_start, START + timedelta(days=DAYS), version)
    candidate = load_candidates()[0]
    model = fit_pipeline(
        candidate,
        train,
        cols,
        list(fs.categorical),
        np.datetime64(datetime.combine(START + timedelta(days=DAYS), dtime(0)), "us"),
        get_settings().training.recency_half_life_days,
    )
    train_pred = model.predict(train[cols])
    reference = {
        "features": train.sample(n=20_000, random_state=0)[cols].reset_index(drop=True),
        "predictions": train_pred,
        "valid_mae": float(np.abs(train[TARGET].to_numpy() - train_pred).mean()),
    }
    fit_s = time.perf_counter() - t

    # the same 1,000,000-row frame for every in-memory measurement
    t = time.perf_counter()
    frame = read_features(START, START + timedelta(days=DAYS), version)
    read_1m_s = time.perf_counter() - t
    assert len(frame) == ROWS_PER_DAY * DAYS, len(frame)
    thresholds = Thresholds.from_settings()
    raw, score, drift = [], [], []
    result = None
    for _ in range(REPEATS):
        t = time.perf_counter()
        model.predict(frame[cols])
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        pred = score_frame(model, frame, cols)
        score.append(time.perf_counter() - t)
        window = frame.assign(prediction=pred)
        t = time.perf_counter()
        result = evaluate_window(reference, window, cols, thresholds)
        drift.append(time.perf_counter() - t)
    raw_s, score_s, drift_s = (statistics.median(x) for x in (raw, score, drift))

    # the DAG's path: pending intervals from the ledgers, read + predict + store per batch
    champion = {"version": f"bench-{candidate['name']}", "feature_set_version": version}
    from include.warehouse import db

    with db.transaction() as conn:  # a re-run of the bench scores everything again
        conn.execute("delete from ml.scoring_ledger where model_version = %s", (champion["version"],))
    t = time.perf_counter()
    parts = {"rows": 0, "read_s": 0.0, "predict_s": 0.0, "store_s": 0.0}
    for batch in plan_batches(pending_intervals(champion), get_settings().drift.score_batch_days):
        out = score_batch(champion, model, batch, run_id="bench")
        for k in parts:
            parts[k] += out[k]
    e2e_s = time.perf_counter() - t
    assert parts["rows"] == ROWS_PER_DAY * DAYS, parts

    in_memory = score_s + drift_s
    return {
        "rows": int(len(frame)),
        "model": f"{candidate['name']} ({candidate['family']}, {candidate['params'].get('max_iter')} iterations)",
        "features_monitored": len([c for c in cols if c not in thresholds.exclude_features]),
        **prep,
        "fit_s": round(fit_s, 2),
        "read_1m_s": round(read_1m_s, 2),
        "raw_predict_s": round(raw_s, 3),
        "scoring_s": round(score_s, 3),
        "drift_s": round(drift_s, 3),
        "scoring_vs_raw_predict_ratio": round(in_memory / raw_s, 3),
        "share_outside_predict": round(1 - raw_s / in_memory, 3),
        "drift_detected_on_bench_data": bool(result.drift),
        "end_to_end_s": round(e2e_s, 2),
        "end_to_end_read_s": round(parts["read_s"], 2),
        "end_to_end_predict_s": round(parts["predict_s"], 2),
        "end_to_end_store_s": round(parts["store_s"], 2),
        "end_to_end_rows_per_s": round(parts["rows"] / e2e_s),
        "end_to_end_vs_raw_predict_ratio": round(e2e_s / raw_s, 2),
    }
