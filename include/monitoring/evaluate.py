"""Drift evaluation of a run: which windows, their data, the statistics, the stored report.

Windows come from the data: one window per day scored by the champion that lies after the
champion's training window (``train_end``) and that no other run has evaluated for this
champion yet (or that was re-scored since). The window of day D covers the ``window_days``
days ending with D, but never reaches back into the champion's training window (those rows
are in-sample). A new champion therefore starts with fresh windows, only on days it has not
been trained on: the history it re-scores is never judged against its own reference.

When a run has no new window (it was triggered, but no new day was scored after the
champion's window), it re-evaluates the latest window so that every run writes a report; such
a re-evaluation (``new_window = false``) never alerts or signals: its window was judged before.

Every run replaces its own rows of ``ml.drift_runs`` (one per window) and ``ml.drift_report``
(one per feature and window) in one transaction, so a retried task never duplicates them,
and writes the HTML report (include/monitoring/report.py).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from include.features.definitions import feature_columns
from include.features.store import read_features
from include.intervals import Interval, utc_midnight
from include.monitoring.drift import PREDICTION, Thresholds, evaluate_window, json_safe
from include.monitoring.report import write_report
from include.settings import get_settings
from include.training.registry import get_champion, load_reference
from include.warehouse import db

log = logging.getLogger(__name__)


def pending_windows(champion: dict, run_id: str) -> list[date]:
    """Days (window ends) to evaluate for ``champion`` in run ``run_id``, oldest first."""
    rows = db.fetch_all(
        """select (s.interval_start at time zone 'UTC')::date as day
             from ml.scoring_ledger s
            where s.model_version = %(model)s
              and s.interval_start >= %(train_end)s
              and s.rows_scored > 0
              and not exists (
                    select 1 from ml.drift_runs d
                     where d.model_version = s.model_version
                       and d.window_day = (s.interval_start at time zone 'UTC')::date
                       and d.new_window
                       and d.run_id <> %(run_id)s
                       and d.evaluated_at >= s.scored_at)
            order by 1""",
        {"model": champion["version"], "train_end": champion["train_end"], "run_id": run_id},
    )
    return [r[0] for r in rows]


def latest_scored_day(champion: dict) -> date | None:
    row = db.fetch_one(
        """select max((interval_start at time zone 'UTC')::date) from ml.scoring_ledger
            where model_version = %s and interval_start >= %s and rows_scored > 0""",
        (champion["version"], champion["train_end"]),
    )
    return row[0] if row else None


def load_scored(champion: dict, start: datetime, end: datetime):
    """Features, the champion's prediction and the warehouse's truth (``truth``, NaN where it
    has not arrived) of every scored row in [start, end)."""
    import pandas as pd
    from psycopg import sql as pgsql

    feats = read_features(start, end, champion["feature_set_version"])
    query = pgsql.SQL(
        """copy (select p.station_id, (extract(epoch from p.ts) * 1000)::bigint as ts_ms, p.prediction,
                        h.demand::float8 as truth
                   from ml.predictions p
                   left join warehouse.demand_hourly h on h.station_id = p.station_id and h.ts = p.ts
                  where p.model_version = {model} and p.ts >= {start} and p.ts < {end})
           to stdout (format csv, header true)"""
    ).format(model=pgsql.Literal(champion["version"]), start=pgsql.Literal(start), end=pgsql.Literal(end))
    preds = db.copy_to_frame(
        query, {"station_id": "int64", "ts_ms": "int64", "prediction": "float64", "truth": "float64"}
    )
    preds.insert(1, "ts", pd.to_datetime(preds.pop("ts_ms"), unit="ms", utc=True))
    return feats.merge(preds, on=["station_id", "ts"], how="inner", validate="one_to_one")


def window_bounds(day: date, window_days: int, train_end: datetime) -> Interval:
    """[start, end) of the window ending with ``day``, clipped to the champion's unseen data."""
    start = max(utc_midnight(day - timedelta(days=max(1, window_days) - 1)), train_end.astimezone(timezone.utc))
    return Interval(start, utc_midnight(day + timedelta(days=1)))


def _store(run_id: str, champion: dict, evaluated: list[dict], report_path: str | None) -> None:
    from psycopg.types.json import Jsonb

    def f(x):
        return json_safe(float(x)) if x is not None else None

    runs, report = [], []
    for ev in evaluated:
        res = ev["result"]
        runs.append(
            (
                run_id,
                ev["day"],
                ev["start"],
                ev["end"],
                champion["version"],
                champion["feature_set_version"],
                ev["new_window"],
                ev["rows"],
                res.error["rows_with_truth"],
                f(res.error["mae"]),
                f(res.error["reference_mae"]),
                f(res.error["error_ratio"]),
                f(res.prediction["psi"]),
                f(res.prediction["ks_stat"]),
                res.drift,
                res.drifted_features,
                res.reasons,
                Jsonb(res.thresholds),
                report_path,
            )
        )
        for row in [*res.features, {**res.prediction, "feature": PREDICTION}]:
            report.append(
                (
                    run_id,
                    ev["day"],
                    row["feature"],
                    champion["version"],
                    bool(row["monitored"]),
                    f(row["psi"]),
                    f(row["ks_stat"]),
                    f(row["ks_pvalue"]),
                    f(row["ref_mean"]),
                    f(row["cur_mean"]),
                    f(row["ref_std"]),
                    f(row["cur_std"]),
                    row["ref_rows"],
                    row["cur_rows"],
                    bool(row["drifted"]),
                )
            )
    with db.transaction() as conn:
        conn.execute("delete from ml.drift_report where run_id = %s", (run_id,))
        conn.execute("delete from ml.drift_runs where run_id = %s", (run_id,))
        with conn.cursor() as cur:
            cur.executemany(
                """insert into ml.drift_runs
                     (run_id, window_day, window_start, window_end, model_version, feature_set_version, new_window,
                      rows_evaluated, rows_with_truth, mae, reference_mae, error_ratio, prediction_psi, prediction_ks,
                      drift_detected, drifted_features, reasons, thresholds, report_path)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                runs,
            )
            cur.executemany(
                """insert into ml.drift_report
                     (run_id, window_day, feature, model_version, monitored, psi, ks_stat, ks_pvalue, ref_mean,
                      cur_mean, ref_std, cur_std, ref_rows, cur_rows, drifted)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                report,
            )


def evaluate_run(run_id: str, champion: dict | None = None) -> dict:
    """Evaluate this run's windows, store the report rows, write the HTML. Returns a JSON-able
    summary (``drift`` is true when a *new* window drifted)."""
    champion = champion or get_champion()
    t = Thresholds.from_settings()
    window_days = get_settings().drift.window_days
    if champion is None:
        path = write_report(run_id, None, [], None, None, t, note="No champion model yet: nothing was scored.")
        return {
            "run_id": run_id,
            "champion": None,
            "drift": False,
            "windows": [],
            "report_path": path,
            "drifted_features": [],
            "scores": {},
        }

    days, new = pending_windows(champion, run_id), True
    if not days:
        latest = latest_scored_day(champion)
        days, new = ([latest], False) if latest else ([], False)
    if not days:
        note = "No scored day after the champion's training window yet: nothing to compare."
        path = write_report(run_id, champion, [], None, None, t, note=note)
        _store(run_id, champion, [], path)
        return {
            "run_id": run_id,
            "champion": champion["version"],
            "drift": False,
            "windows": [],
            "report_path": path,
            "drifted_features": [],
            "scores": {},
        }

    reference = load_reference(champion["reference_uri"])
    if reference.get("valid_mae") is None:
        reference["valid_mae"] = champion.get("metric_value")
    cols = feature_columns(champion["feature_set_version"])
    bounds = {d: window_bounds(d, window_days, champion["train_end"]) for d in days}
    span = load_scored(champion, min(b.start for b in bounds.values()), max(b.end for b in bounds.values()))
    evaluated = []
    for d in days:
        start, end = bounds[d]
        window = span[(span["ts"] >= start) & (span["ts"] < end)]
        if window.empty:
            continue
        result = evaluate_window(reference, window, cols, t, truth_col="truth")
        evaluated.append(
            {"day": d, "start": start, "end": end, "rows": int(len(window)), "new_window": new, "result": result}
        )
        log.info("window %s..%s (%s rows): drift=%s %s", start.date(), d, len(window), result.drift, result.reasons)
    drifted = [e for e in evaluated if e["new_window"] and e["result"].drift]
    # the plots show the first drifted window, else the latest one
    focus = drifted[0] if drifted else (evaluated[-1] if evaluated else None)
    focus_frame = span[(span["ts"] >= focus["start"]) & (span["ts"] < focus["end"])] if focus else None
    path = write_report(run_id, champion, evaluated, reference, focus_frame, t, focus=focus)
    _store(run_id, champion, evaluated, path)

    drifted_features = sorted({f for e in drifted for f in e["result"].drifted_features})
    first = drifted[0]["result"] if drifted else None
    return json_safe(
        {
            "run_id": run_id,
            "champion": champion["version"],
            "drift": bool(drifted),
            "report_path": path,
            "drifted_features": drifted_features,
            "scores": first.scores() if first else {},
            "first_drift_day": drifted[0]["day"].isoformat() if drifted else None,
            "error_ratio": first.error["error_ratio"] if first else None,
            "windows": [
                {
                    "day": e["day"].isoformat(),
                    "new_window": e["new_window"],
                    "rows": e["rows"],
                    "drift": e["result"].drift,
                    "drifted_features": e["result"].drifted_features,
                    "error_ratio": e["result"].error["error_ratio"],
                    "prediction_psi": e["result"].prediction["psi"],
                    "reasons": e["result"].reasons,
                }
                for e in evaluated
            ],
        }
    )
