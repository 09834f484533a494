"""The ``training`` section of reports/run_summary.json, read from the registry after the chain ran."""

from __future__ import annotations

from datetime import datetime

from include.training.registry import get_champion
from include.warehouse import db


def summary_section(since: datetime | None = None) -> dict:
    """``candidates_trained`` (registry rows), ``champion_version`` and ``champion_metric``
    (its walk-forward validation MAE), plus the training runs and what the policy decided. The
    counts cover what happened at or after ``since`` when given (``make run`` passes its start);
    the champion is the current one."""
    window = {"since": since}
    recent = "(%(since)s::timestamptz is null or {col} >= %(since)s)"
    created = recent.format(col="created_at")
    (candidates,) = db.fetch_one(f"select count(*) from ml.model_registry where {created}", window)
    statuses = dict(db.fetch_all(f"select status, count(*) from ml.model_registry where {created} group by 1", window))
    runs = db.fetch_all(
        """select count(*), count(*) filter (where train),
                  count(*) filter (where outcome = 'promoted'), count(*) filter (where outcome = 'rejected'),
                  count(*) filter (where train and 'drift_signal' = any(triggering_assets))
             from ml.training_runs where """
        + recent.format(col="decided_at"),
        window,
    )[0]
    champion = get_champion()
    return {
        "candidates_trained": int(candidates),
        "champion_version": champion["version"] if champion else None,
        "champion_metric": champion["metric_value"] if champion else None,
        "champion_metric_name": champion["metric_name"] if champion else None,
        "champion_family": champion["model_family"] if champion else None,
        "champion_train_window": (
            [champion["train_start"].date().isoformat(), champion["train_end"].date().isoformat()] if champion else None
        ),
        "registry_statuses": {k: int(v) for k, v in statuses.items()},
        "training_runs": int(runs[0]),
        "training_runs_trained": int(runs[1]),
        "promotions": int(runs[2]),
        "rejections": int(runs[3]),
        "training_runs_triggered_by_drift": int(runs[4]),
    }
