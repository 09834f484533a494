"""Drift alarms of the real drift code on simulated streams (part of bench section ``drift``).

For each of ``SEEDS`` simulator seeds x ``START_MONTHS`` start months (seasons), one stream of
daily data goes through the project's own path: the simulator's clean rows seeded into the
warehouse (``include/features/seed.py``), features built by the feature SQL
(``include.features.build``), a champion fitted with the training code on a 21-day window
(``fit_pipeline``; reference as the training DAG stores it: a sample of the training rows and the
in-sample predictions; its validation MAE from one model fitted on the first 18 days and scored
on the last 3 -- the DAG refits per validation day, which costs 3 fits instead of 1 for nearly
the same figure), then every day
scored (``score_frame``) and its drift window (the last ``MLOPS_DRIFT_WINDOW_DAYS`` days after
the training window) judged by ``include.monitoring.drift.evaluate_window`` with the settings'
thresholds, as the drift DAG does. Each stream has ``STABLE_DAYS`` days without drift after the
training window, then ``DRIFT_DAYS`` days of the simulator's drift (heat wave and behaviour change).

- ``false_alarm_rate_per_100_days`` (goal 0): drift decisions on stable days, per 100 stable days
  (``false_alarms`` of ``stable_days_judged``);
- ``detection_delay_days`` (goal <= 1): days from the first drifted day to the first window
  judged drifted, worst stream (a stream that never alarms within ``DRIFT_DAYS`` counts as a
  miss: ``missed_streams``); ``detection_delay_days_by_stream`` beside it.
"""

from __future__ import annotations

import os
import statistics
import time as clock
from datetime import date, datetime, timedelta

from include.intervals import utc_midnight

SEEDS = tuple(int(x) for x in os.environ.get("MLOPS_BENCH_ALARM_SEEDS", "1,2,3,4").split(","))
START_MONTHS = tuple(int(x) for x in os.environ.get("MLOPS_BENCH_ALARM_MONTHS", "1,5,9").split(","))  # seasons
ROWS_PER_DAY = 2400  # 100 stations, the simulator's default
WARMUP_DAYS = 7  # lookback history before the training window
TRAIN_DAYS = 21  # the training DAG's default window (MLOPS_TRAIN_WINDOW_DAYS)
VALID_DAYS = 3  # its walk-forward validation days (MLOPS_TRAIN_VALID_DAYS)
STABLE_DAYS = 30
DRIFT_DAYS = 4


def _reset_warehouse() -> None:
    from include.warehouse import db

    with db.transaction() as conn:
        for schema in ("warehouse", "features", "ml"):
            conn.execute(f"drop schema if exists {schema} cascade")
    db.ensure_schema()


def _champion(frame, cols, cats, train_end: datetime, candidate: dict):
    """Final model and training reference, as ``include.training.steps.train_candidate`` builds them."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from include.features.definitions import TARGET
    from include.settings import get_settings
    from include.training.evaluate import fit_pipeline, regression_metrics

    s = get_settings().training
    valid_start = train_end - timedelta(days=VALID_DAYS)
    mask = (frame["ts"] >= valid_start).to_numpy()
    with threadpool_limits(limits=os.cpu_count() or 1):
        holdout = fit_pipeline(
            candidate, frame[~mask], cols, cats, np.datetime64(valid_start.replace(tzinfo=None), "us"),
            s.recency_half_life_days,
        )  # fmt: skip
        valid_pred = holdout.predict(frame.loc[mask, cols])
        model = fit_pipeline(
            candidate, frame, cols, cats, np.datetime64(train_end.replace(tzinfo=None), "us"), s.recency_half_life_days
        )
    sample = frame.sample(n=min(s.reference_rows, len(frame)), random_state=0).sort_index()
    reference = {
        "features": sample[cols].reset_index(drop=True),
        "predictions": np.asarray(model.predict(frame[cols]), dtype=float),
        "valid_mae": float(regression_metrics(frame.loc[mask, TARGET], valid_pred)["mae"]),
    }
    return model, reference


def run_stream(seed: int, month: int, candidate: dict) -> dict:
    from include.features.build import build_pending
    from include.features.definitions import CURRENT_FEATURE_SET_VERSION, feature_set
    from include.features.seed import day_list, seed_days
    from include.features.store import read_features
    from include.monitoring.drift import Thresholds, evaluate_window
    from include.monitoring.scoring import score_frame
    from include.settings import get_settings
    from include.source.simulator import SourceConfig

    fs = feature_set(CURRENT_FEATURE_SET_VERSION)
    cols, cats = list(fs.columns), list(fs.categorical)
    start = date(2026, month, 1)
    train_start = start + timedelta(days=WARMUP_DAYS)
    train_end = train_start + timedelta(days=TRAIN_DAYS)
    drift_start = train_end + timedelta(days=STABLE_DAYS)
    end = drift_start + timedelta(days=DRIFT_DAYS)
    cfg = SourceConfig(rows_per_day=ROWS_PER_DAY, malformed_share=0.0, drift_start=drift_start, seed=seed)

    phases: dict[str, float] = {}
    t = clock.perf_counter()
    _reset_warehouse()
    seed_days(day_list(start, (end - start).days), cfg)
    build_pending(fs.version)
    phases["data_s"] = clock.perf_counter() - t
    t = clock.perf_counter()
    history = read_features(train_start, train_end, fs.version)
    model, reference = _champion(history, cols, cats, utc_midnight(train_end), candidate)
    phases["fit_s"] = clock.perf_counter() - t
    t = clock.perf_counter()

    scored = read_features(train_end, end, fs.version)
    scored["prediction"] = score_frame(model, scored, cols)
    day_of = scored["ts"].dt.tz_convert("UTC").dt.date
    thresholds = Thresholds.from_settings()
    window_days = get_settings().drift.window_days
    alarms: dict[date, bool] = {}
    for day in day_list(train_end, (end - train_end).days):
        first = max(day - timedelta(days=window_days - 1), train_end)
        window = scored[(day_of >= first) & (day_of <= day)]
        alarms[day] = bool(evaluate_window(reference, window, cols, thresholds).drift)
    phases["judge_s"] = clock.perf_counter() - t
    stable = [d for d in alarms if d < drift_start]
    detected = [d for d in alarms if d >= drift_start and alarms[d]]
    return {
        "seed": seed,
        "start": start.isoformat(),
        "stable_days": len(stable),
        "false_alarm_days": [d.isoformat() for d in stable if alarms[d]],
        "detection_delay_days": (detected[0] - drift_start).days if detected else None,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
    }


def run() -> dict:
    from include.training.candidates import load_candidates

    candidate = load_candidates()[0]
    streams = [run_stream(seed, month, candidate) for month in START_MONTHS for seed in SEEDS]
    stable_days = sum(s["stable_days"] for s in streams)
    false_alarms = sum(len(s["false_alarm_days"]) for s in streams)
    delays = [s["detection_delay_days"] for s in streams]
    found = [d for d in delays if d is not None]
    _reset_warehouse()
    return {
        "false_alarm_rate_per_100_days": round(100 * false_alarms / stable_days, 2),
        "detection_delay_days": max(found) if found and len(found) == len(delays) else None,
        "false_alarms": false_alarms,
        "stable_days_judged": stable_days,
        "missed_streams": len(delays) - len(found),
        "detection_delay_days_mean": round(statistics.mean(found), 2) if found else None,
        "detection_delay_days_by_stream": {f"seed{s['seed']}_{s['start']}": s["detection_delay_days"] for s in streams},
        "false_alarm_days_by_stream": {
            f"seed{s['seed']}_{s['start']}": s["false_alarm_days"] for s in streams if s["false_alarm_days"]
        },
        "alarm_streams": f"{len(SEEDS)} seeds x {len(START_MONTHS)} start months, {STABLE_DAYS} stable + "
        f"{DRIFT_DAYS} drifted days after a {TRAIN_DAYS}-day training window, {ROWS_PER_DAY} rows/day",
        "alarm_model": f"{candidate['name']} ({candidate['family']})",
        "alarm_phases_s_total": {k: round(sum(st["phases_s"][k] for st in streams), 1) for k in streams[0]["phases_s"]},
    }
