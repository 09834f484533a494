"""Fitting and scoring candidates on the time-based split (see include/training/split.py)."""

from __future__ import annotations

import time

from include.training.split import recency_weights, walk_forward_folds

PRIMARY_METRIC = "valid_mae"


def regression_metrics(y_true, y_pred, prefix: str = "") -> dict:
    """MAE, RMSE, R², bias (mean error) and the mean of the truth, as plain floats."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if not len(y_true):
        raise ValueError("no rows to evaluate")
    return {
        f"{prefix}mae": float(mean_absolute_error(y_true, y_pred)),
        f"{prefix}rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        f"{prefix}r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        f"{prefix}bias": float(np.mean(y_pred - y_true)),
        f"{prefix}mean_actual": float(np.mean(y_true)),
        f"{prefix}rows": int(len(y_true)),
    }


def _days(frame):
    """The UTC day of each row as naive datetime64 (vectorised)."""
    return frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D").to_numpy()


def fit_pipeline(candidate: dict, frame, columns, categorical, ref_day, half_life_days: float, seed: int = 0):
    """Fit a fresh pipeline on ``frame`` with recency weights relative to ``ref_day``."""
    from include.features.definitions import TARGET
    from include.training.candidates import build_pipeline

    pipe = build_pipeline(candidate, columns, categorical, seed=seed)
    weights = recency_weights(_days(frame), ref_day, half_life_days)
    pipe.fit(frame[list(columns)], frame[TARGET].to_numpy(), model__sample_weight=weights)
    return pipe


def walk_forward_predict(candidate: dict, frame, columns, categorical, valid_start, half_life_days: float):
    """Predictions for every row of ``frame`` on or after ``valid_start``: each day by a model
    fitted only on the days before it. Returns (boolean mask of validation rows, predictions,
    seconds spent fitting)."""
    import numpy as np

    days = _days(frame)
    mask = days >= np.datetime64(valid_start.replace(tzinfo=None), "us")
    preds = np.full(len(frame), np.nan)
    fit_s = 0.0
    for day, train_mask, day_mask in walk_forward_folds(days, valid_start.replace(tzinfo=None)):
        if not train_mask.any():
            raise ValueError(f"no training rows before validation day {day.date()}")
        t = time.perf_counter()
        pipe = fit_pipeline(candidate, frame[train_mask], columns, categorical, day.to_datetime64(), half_life_days)
        fit_s += time.perf_counter() - t
        preds[day_mask] = pipe.predict(frame.loc[day_mask, list(columns)])
    return mask, preds[mask], fit_s
