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
* ``champion_before_error_out_of_sample`` / ``champion_after_error_out_of_sample``: the champion in
  place when drift was first flagged and the one the retraining it triggered promoted
  (``out_of_sample_champion_after``, the first promotion after the flag), scored afresh (their
  stored Pipelines, one ``predict`` each) on the same rows: every hour with features and truth
  after the new champion's training window, so neither model saw them (``out_of_sample_days``,
  ``out_of_sample_from``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from include.features.definitions import TARGET, feature_columns
from include.features.store import read_features
from include.intervals import utc_midnight
from include.monitoring.scoring import score_frame
from include.training.registry import get_champion, get_model, load_model
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


def _out_of_sample(before: dict, after: dict) -> dict:
    """MAE of both models on the rows after ``after``'s training window (features and truth)."""
    import numpy as np

    since = after["train_end"]
    frames = {}
    for key, model in (("before", before), ("after", after)):
        frame = read_features(since, datetime(9999, 1, 1, tzinfo=timezone.utc), model["feature_set_version"])
        frame = frame[frame[TARGET].notna()]
        if frame.empty:  # no day with truth after the new champion's window yet
            return {"before": None, "after": None, "days": 0, "from": since.date().isoformat()}
        pred = score_frame(load_model(model["artifact_uri"]), frame, feature_columns(model["feature_set_version"]))
        frames[key] = frame[["station_id", "ts", TARGET]].assign(pred=pred)
    both = frames["before"].merge(frames["after"], on=["station_id", "ts"], suffixes=("_b", "_a"))
    if both.empty:
        return {"before": None, "after": None, "days": 0, "from": since.date().isoformat()}
    truth = both[f"{TARGET}_b"].to_numpy(dtype=np.float64)
    return {
        "before": float(np.mean(np.abs(both["pred_b"].to_numpy() - truth))),
        "after": float(np.mean(np.abs(both["pred_a"].to_numpy() - truth))),
        "days": int(both["ts"].dt.floor("D").nunique()),
        "from": since.date().isoformat(),
    }


def _round(value):
    return None if value is None else round(float(value), 4)


def summary_section(since: datetime | None = None) -> dict:
    """The section; counts cover what happened at or after ``since`` when given (``make run``
    passes its start), the champions are the ones of those drift windows."""
    window = {"since": since}
    recent = "(%(since)s::timestamptz is null or {col} >= %(since)s)"
    days_scored = db.fetch_one(
        "select count(distinct interval_start) from ml.scoring_ledger where rows_scored > 0 and "
        + recent.format(col="scored_at"),
        window,
    )[0]
    drifted = "drift_detected and new_window and " + recent.format(col="evaluated_at")
    first = db.fetch_one(
        f"select window_day, model_version, evaluated_at from ml.drift_runs where {drifted}"
        " order by window_day, evaluated_at limit 1",
        window,
    )
    features = [
        r[0]
        for r in db.fetch_all(
            f"select distinct unnest(drifted_features) as f from ml.drift_runs where {drifted} order by 1", window
        )
    ]
    retrain = None
    if _table_exists("ml.training_runs"):
        retrain = db.fetch_one(
            "select count(*) from ml.training_runs where train and 'drift_signal' = any(triggering_assets) and "
            + recent.format(col="decided_at"),
            window,
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
        "champion_before_error_out_of_sample": None,
        "champion_after_error_out_of_sample": None,
        "out_of_sample_champion_after": None,
        "out_of_sample_days": 0,
        "out_of_sample_from": None,
    }
    if first is None:
        return out
    champion = get_champion()
    after = champion["version"] if champion and champion["version"] != first[1] else None
    drift_from = utc_midnight(first[0])
    errs = _errors(first[1], after, drift_from)
    out.update(
        champion_after=after,
        champion_before_error_on_drifted_days=_round(errs["before"]),
        champion_after_error_on_drifted_days=_round(errs["after"]),
        drifted_days_compared=int(errs["days"]),
    )
    retrained = db.fetch_one(
        "select version from ml.model_registry where promoted_at >= %s and version <> %s order by promoted_at limit 1",
        (first[2], first[1]),
    )
    if retrained is not None:
        oos = _out_of_sample(get_model(first[1]), get_model(retrained[0]))
        out.update(
            champion_before_error_out_of_sample=_round(oos["before"]),
            champion_after_error_out_of_sample=_round(oos["after"]),
            out_of_sample_champion_after=retrained[0],
            out_of_sample_days=oos["days"],
            out_of_sample_from=oos["from"],
        )
    if after is not None:
        new = get_model(after)
        later = _errors(first[1], after, max(drift_from, new["train_end"]))
        if later["rows"]:
            out["errors_after_new_champion_window"] = {
                "from": new["train_end"].date().isoformat(),
                "before": _round(later["before"]),
                "after": _round(later["after"]),
                "days": int(later["days"]),
            }
    return out
