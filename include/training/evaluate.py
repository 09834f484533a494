"""Fitting and scoring candidates on the time-based split (see include/training/split.py)."""

from __future__ import annotations

import time

from include.features.definitions import TARGET
from include.training.candidates import build_pipeline, takes_sample_weight
from include.training.split import recency_weights, walk_forward_prefixes

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


class Design:
    """The window as arrays, converted once per task: ``X`` (the pipeline's ``select`` output),
    ``y``, ``days`` (UTC day per row) and ``frame`` itself, rows in time order so that "every
    day before d" is the prefix ``[:n]`` of every array (a view: folds copy nothing)."""

    def __init__(self, pipeline, frame):
        import numpy as np

        days = _days(frame)
        self.order = None  # the rows' positions in the frame given, when they had to be sorted
        if len(days) > 1 and (days[1:] < days[:-1]).any():  # read_features orders by ts already
            self.order = np.argsort(days, kind="stable")
            frame, days = frame.iloc[self.order], days[self.order]
        self.frame, self.days = frame, days
        self.X = pipeline[:1].fit_transform(frame)
        self.y = frame[TARGET].to_numpy(dtype=float)


def fit_on_rows(pipeline, design: Design, n: int, ref_day, half_life_days: float):
    """Fit ``pipeline[1:]`` (preparation and model) on the first ``n`` rows of ``design``,
    weighted by recency relative to ``ref_day`` (when the model takes weights); returns the
    fitted tail (a Pipeline sharing ``pipeline``'s steps)."""
    tail = pipeline[1:]
    fit_params = {}
    if takes_sample_weight(tail[-1]):  # every built-in family does; some scikit-learn regressors do not
        fit_params["model__sample_weight"] = recency_weights(design.days[:n], ref_day, half_life_days)
    tail.fit(design.X[:n], design.y[:n], **fit_params)
    return tail


def fit_pipeline(candidate: dict, frame, columns, categorical, ref_day, half_life_days: float, seed: int = 0):
    """Fit a fresh pipeline on ``frame`` with recency weights relative to ``ref_day``."""
    pipe = build_pipeline(candidate, columns, categorical, seed=seed)
    design = Design(pipe, frame)
    fit_on_rows(pipe, design, len(design.y), ref_day, half_life_days)
    return pipe


def walk_forward_predict(candidate: dict, frame, columns, categorical, valid_start, half_life_days: float):
    """Predictions for every row of ``frame`` on or after ``valid_start``: each day by a model
    fitted only on the days before it. Returns (boolean mask of validation rows, predictions,
    seconds spent fitting)."""
    import numpy as np

    design = Design(build_pipeline(candidate, columns, categorical), frame)
    mask, preds, fit_s, _ = walk_forward(candidate, design, columns, categorical, valid_start, half_life_days)
    if design.order is None:
        return mask, preds, fit_s
    full = np.full(len(mask), np.nan)
    full[mask] = preds
    frame_mask, frame_full = np.empty_like(mask), np.empty_like(full)  # back to the frame's row order
    frame_mask[design.order], frame_full[design.order] = mask, full
    return frame_mask, frame_full[frame_mask], fit_s


def walk_forward(candidate: dict, design: Design, columns, categorical, valid_start, half_life_days: float):
    """Walk-forward over ``design`` (rows in time order): (validation mask, predictions,
    seconds fitting, list of the folds' training row counts)."""
    import numpy as np

    valid_start = valid_start.replace(tzinfo=None)
    mask = design.days >= np.datetime64(valid_start, "us")
    preds = np.full(len(design.y), np.nan)
    fit_s, fold_rows = 0.0, []
    for day, n, end in walk_forward_prefixes(design.days, valid_start):
        if n == 0:
            raise ValueError(f"no training rows before validation day {str(day)[:10]}")
        t = time.perf_counter()
        tail = fit_on_rows(build_pipeline(candidate, columns, categorical), design, n, day, half_life_days)
        fit_s += time.perf_counter() - t
        preds[n:end] = tail.predict(design.X[n:end])
        fold_rows.append(n)
    return mask, preds[mask], fit_s, fold_rows
