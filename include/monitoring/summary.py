"""Section ``drift`` of ``reports/run_summary.json``, read from the warehouse after the chain ran.

* ``days_scored``: distinct days with stored predictions (any model version);
* ``drift_detected`` / ``first_drift_day``: whether a new window drifted, and the last day of the
  first such window (the day on which drift was flagged);
* ``drifted_features``: every feature that drifted in a drifted window;
* ``retraining_runs_triggered_by_drift``: training runs that trained and whose triggering asset
  events included the ``drift_signal`` asset (``ml.training_runs.triggering_assets``, recorded
  by the training DAG from ``triggering_asset_events``);
* ``champion_before_error_on_drifted_days`` / ``champion_after_error_on_drifted_days``: MAE of
  the champion that was in place when drift was first flagged, and of the current champion, on
  the same rows: every scored hour from ``first_drift_day`` on whose truth is in the warehouse
  (the new champion re-scores the history, so both have predictions there). The new champion
  was trained on part of those days; ``errors_after_new_champion_window`` compares the two
  on the days after its training window only, when there are any.
"""

from __future__ import annotations

from datetime import datetime

from include.intervals import utc_midnight
from include.training.registry import get_champion, get_model
from include.warehouse import db


def _table_exists(name: str) -> bool:
    return db.fetch_one("select to_regclass(%s) is not null", (name,))[0]


def _errors(before: str, after: str | None, since: datetime) -> dict:
    if after is None or after == before:
        row = db.fetch_one(
            """select avg(abs(p.prediction - h.demand)), count(*),
                      count(distinct date_trunc('day', p.ts, 'UTC'))
                 from ml.predictions p
                 join warehouse.demand_hourly h on h.station_id = p.station_id and h.ts = p.ts
                where p.model_version = %s and p.ts >= %s""",
            (before, since),
        )
        return {"before": row[0], "after": None, "rows": row[1], "days": row[2]}
    row = db.fetch_one(
        """select avg(abs(b.prediction - h.demand)), avg(abs(a.prediction - h.demand)), count(*),
                  count(distinct date_trunc('day', b.ts, 'UTC'))
             from ml.predictions b
             join ml.predictions a on a.model_version = %s and a.station_id = b.station_id and a.ts = b.ts
             join warehouse.demand_hourly h on h.station_id = b.station_id and h.ts = b.ts
            where b.model_version = %s and b.ts >= %s""",
        (after, before, since),
    )
    return {"before": row[0], "after": row[1], "rows": row[2], "days": row[3]}


def _round(value):
    return None if value is None else round(float(value), 4)


def summary_section() -> dict:
    days_scored = db.fetch_one("select count(distinct interval_start) from ml.scoring_ledger where rows_scored > 0")[0]
    first = db.fetch_one(
        """select window_day, model_version from ml.drift_runs
            where drift_detected and new_window order by window_day, evaluated_at limit 1"""
    )
    features = [
        r[0]
        for r in db.fetch_all(
            """select distinct unnest(drifted_features) as f from ml.drift_runs
                where drift_detected and new_window order by 1"""
        )
    ]
    retrain = None
    if _table_exists("ml.training_runs"):
        retrain = db.fetch_one(
            "select count(*) from ml.training_runs where train and 'drift_signal' = any(triggering_assets)"
        )[0]
    out = {
        "days_scored": int(days_scored),
        "drift_detected": first is not None,
        "first_drift_day": first[0].isoformat() if first else None,
        "drifted_features": features,
        "retraining_runs_triggered_by_drift": None if retrain is None else int(retrain),
        "champion_before_error_on_drifted_days": None,
        "champion_after_error_on_drifted_days": None,
        "champion_before": first[1] if first else None,
        "champion_after": None,
        "drifted_days_compared": 0,
        "errors_after_new_champion_window": None,
    }
    if first is None:
        return out
    champion = get_champion()
    after = champion["version"] if champion and champion["version"] != first[1] else None
    since = utc_midnight(first[0])
    errs = _errors(first[1], after, since)
    out.update(
        champion_after=after,
        champion_before_error_on_drifted_days=_round(errs["before"]),
        champion_after_error_on_drifted_days=_round(errs["after"]),
        drifted_days_compared=int(errs["days"]),
    )
    if after is not None:
        new = get_model(after)
        later = _errors(first[1], after, max(since, new["train_end"]))
        if later["rows"]:
            out["errors_after_new_champion_window"] = {
                "from": new["train_end"].date().isoformat(),
                "before": _round(later["before"]),
                "after": _round(later["after"]),
                "days": int(later["days"]),
            }
    return out
