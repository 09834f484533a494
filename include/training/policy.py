"""Retraining policy: decide from the data whether a run of the training DAG trains at all.

The training DAG is scheduled on ``FEATURES_DEMAND | DRIFT_SIGNAL``: every feature build and
every drift signal starts a run, so a 30-day backfill starts many runs. Each run trains only if

1. the run was started with ``force`` (a human asked), or
2. there is no champion yet (the first model ever trained becomes champion), or
3. a ``DRIFT_SIGNAL`` event is among the run's triggering asset events and at least one day of
   features exists after the champion's training window (retraining on the same data is useless), or
4. the champion was trained on another feature-set version than the current one, or
5. at least ``MLOPS_RETRAIN_AFTER_DAYS`` (default 7) new days of features exist after the end of
   the champion's training window.

and, in every case, only if the rolling window holds enough days (``MLOPS_TRAIN_MIN_DAYS``
training days before the ``MLOPS_TRAIN_VALID_DAYS`` validation days). Otherwise the run is
short-circuited: the rest of the DAG is skipped, and the decision and its reason are recorded
in ``ml.training_runs`` either way.
"""

from __future__ import annotations

from datetime import datetime, timezone

from include.features.definitions import CURRENT_FEATURE_SET_VERSION
from include.settings import get_settings
from include.training.registry import get_champion
from include.training.split import plan_window
from include.warehouse import db

DRIFT_ASSET_NAME = "drift_signal"


def _feature_days(version: str) -> list:

    rows = db.fetch_all(
        "select (interval_start at time zone 'UTC')::date from features.feature_ledger "
        "where feature_set_version = %s and rows_built > 0 order by 1",
        (version,),
    )
    return [r[0] for r in rows]


def decide(triggering_assets: list[str] | None = None, force: bool = False) -> dict:
    """The decision as a JSON-able dict: ``train`` (bool), ``reason``, the window if training."""
    s = get_settings().training
    version = CURRENT_FEATURE_SET_VERSION
    triggering_assets = sorted(set(triggering_assets or []))
    champion = get_champion()
    days = _feature_days(version)
    window, why = plan_window(days, s.window_days, s.valid_days, s.min_train_days)

    new_days = None
    if champion is not None:
        champ_end = champion["train_end"].astimezone(timezone.utc).date()
        new_days = sum(1 for d in days if d >= champ_end)

    if force:
        train, reason = True, "forced by the run's params"
    elif champion is None:
        train, reason = True, "no champion yet"
    elif DRIFT_ASSET_NAME in triggering_assets:
        if new_days:
            train, reason = True, f"drift signalled; {new_days} new day(s) of features since the champion's window"
        else:
            train, reason = False, "drift signalled but no new day of features since the champion's window"
    elif champion["feature_set_version"] != version:
        train, reason = True, f"feature set changed: champion uses {champion['feature_set_version']}, current {version}"
    elif new_days >= s.retrain_after_days:
        train, reason = (
            True,
            (f"{new_days} new day(s) of features since the champion's window (>= {s.retrain_after_days})"),
        )
    else:
        train, reason = (
            False,
            (
                f"{new_days} new day(s) of features since the champion's window "
                f"(< {s.retrain_after_days}), no drift signal"
            ),
        )
    if train and window is None:
        train, reason = False, f"{reason}, but {why}"
    elif train:
        reason = f"{reason}; window: {why}"

    decision = {
        "train": train,
        "reason": reason,
        "triggering_assets": triggering_assets,
        "feature_set_version": version,
        "champion_before": champion["version"] if champion else None,
        "new_days_since_champion": new_days,
        "decided_at": datetime.now(timezone.utc).isoformat(),
    }
    if window is not None and train:
        decision.update(window.to_dict())
    return decision
