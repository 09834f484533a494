"""Time-based splits: a rolling training window and walk-forward validation over its last days.

The window is ``[train_start, train_end)`` of whole UTC days, ending at the newest day of
features. Its last ``valid_days`` days are the validation window. Validation is walk-forward:
each validation day is predicted by a model fitted only on the days before it (within the
window), exactly as the deployed model will be used: refitted up to yesterday, predicting
today. Nothing is ever shuffled across time. The model that is stored is then refitted on the
whole window (training + validation days), so it knows the most recent regime; its validation
error is the walk-forward error of the same procedure.

Training rows can be weighted by recency (exponential decay, ``recency_half_life_days``), so
after a level shift the newest days count most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from include.intervals import utc_midnight


@dataclass(frozen=True)
class Window:
    train_start: datetime
    valid_start: datetime
    train_end: datetime

    def to_dict(self) -> dict:
        return {k: getattr(self, k).isoformat() for k in ("train_start", "valid_start", "train_end")}

    @classmethod
    def from_dict(cls, d: dict) -> Window:
        return cls(*(datetime.fromisoformat(d[k]) for k in ("train_start", "valid_start", "train_end")))


def plan_window(
    feature_days: list[date], window_days: int, valid_days: int, min_train_days: int
) -> tuple[Window | None, str]:
    """The training window over the available ``feature_days`` (days with features), or None
    and why not. The window ends after the newest day and spans ``window_days`` calendar days
    (fewer if the history is shorter)."""
    if not feature_days:
        return None, "no features yet"
    days = sorted(set(feature_days))
    train_end = utc_midnight(days[-1]) + timedelta(days=1)
    train_start = max(train_end - timedelta(days=window_days), utc_midnight(days[0]))
    valid_start = train_end - timedelta(days=valid_days)
    n_train = sum(1 for d in days if train_start <= utc_midnight(d) < valid_start)
    n_valid = sum(1 for d in days if valid_start <= utc_midnight(d) < train_end)
    if n_train < min_train_days or n_valid < 1:
        return None, (
            f"not enough data: {n_train} training days (need {min_train_days}) and "
            f"{n_valid} validation days before {train_end.date()}"
        )
    return Window(train_start, valid_start, train_end), f"{n_train} training + {n_valid} validation days"


def recency_weights(day_values, ref_day, half_life_days: float):
    """Weights 0.5 ** (age / half-life) with age in days before ``ref_day`` (vectorised)."""
    import numpy as np

    if not half_life_days or half_life_days <= 0:
        return np.ones(len(day_values))
    age = (ref_day - day_values) / np.timedelta64(1, "D")
    return np.power(0.5, np.asarray(age, dtype=float) / half_life_days)


def walk_forward_folds(days, valid_start):
    """(validation day, boolean mask of training rows, boolean mask of that day's rows) per day."""
    import numpy as np
    import pandas as pd

    days = pd.DatetimeIndex(days)
    valid_start = pd.Timestamp(valid_start)
    for day in np.unique(days[days >= valid_start]):
        yield pd.Timestamp(day), np.asarray(days < day), np.asarray(days == day)


def walk_forward_prefixes(sorted_days, valid_start):
    """The same folds over rows in time order: (validation day, n, end) per day, where the
    training rows are ``[:n]`` (every day before) and the day's rows ``[n:end]``."""
    import numpy as np

    sorted_days = np.asarray(sorted_days)
    valid_start = np.datetime64(valid_start, "us")
    for day in np.unique(sorted_days[sorted_days >= valid_start]):
        n, end = np.searchsorted(sorted_days, day, side="left"), np.searchsorted(sorted_days, day, side="right")
        yield day, int(n), int(end)
