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
- ``scoring_end_to_end_ratio`` (goal >= 0.8; higher is better): the whole scoring step as the DAG
  runs it against the same three steps done plainly, on the same 1,000,000 rows and the same
  7-day batches, interleaved, median of ``E2E_REPEATS``. Defined as plain seconds / project
  seconds (1.0 = the project's step costs nothing beyond the plain one). Project: every pending
  interval found from the ledgers, ``score_batch`` per batch (``read_features``: COPY of the
  feature store to CSV parsed by pyarrow; ``score_frame``; one transaction: delete the
  version's range, binary COPY of the predictions, upsert the scoring ledger). Plain: per batch one
  ``COPY (select ...) TO STDOUT`` of the same columns parsed by pyarrow, ``model.predict``, and a
  binary ``COPY ... FREEZE`` of (model_version, ts, station_id, prediction) into a table created
  in the same transaction (no delete, no key, no ledger). Each project repetition scores the
  intervals for the first time, as the daily path does (the version's earlier predictions are
  removed and vacuumed first, untimed); ``rescore_end_to_end_s`` (information) is one more run
  that replaces every row (after a feature rebuild). ``end_to_end_*`` split the project's
  time into read, predict and store; ``end_to_end_vs_raw_predict_ratio`` is information.
- drift alarms (``scripts/bench_drift_alarms.py``): ``false_alarm_rate_per_100_days`` and
  ``detection_delay_days`` of the real drift code on simulated stable and drifted streams.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from include.intervals import utc_midnight

ROWS_PER_DAY = 25_000
DAYS = 40
START = date(2026, 1, 1)  # the same rows as the features section: reused when present
FIT_DAYS = 5
REPEATS = 3
E2E_REPEATS = 2


def _ensure_features(version: str) -> dict:
    from include.features.build import build_pending
    from include.features.seed import day_list, seed_days
    from include.source.simulator import SourceConfig
    from include.warehouse import db

    db.ensure_schema()
    have = db.fetch_one(
        "select count(*) from features.demand_features where feature_set_version = %s and ts >= %s and ts < %s",
        (version, utc_midnight(START), utc_midnight(START + timedelta(days=DAYS))),
    )[0]
    if have == ROWS_PER_DAY * DAYS:
        return {"reused_features": True, "prepare_s": 0.0}
    t = time.perf_counter()
    seed_days(day_list(START, DAYS), SourceConfig(rows_per_day=ROWS_PER_DAY, malformed_share=0.0, seed=1))
    with db.transaction() as conn:
        conn.execute("analyze warehouse.demand_hourly")
    build_pending(version, start=START, end=START + timedelta(days=DAYS))
    return {"reused_features": False, "prepare_s": round(time.perf_counter() - t, 1)}


def plain_scoring(model, version: str, cols: list[str], batches: list[list[tuple]]) -> dict:
    """The scoring step done plainly: COPY out, predict, COPY in (see the module docstring)."""
    import io

    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    from include.features.definitions import TARGET
    from include.warehouse import db

    row = np.dtype([("n", ">i2"), ("l1", ">i4"), ("version", "S16"), ("l2", ">i4"), ("ts", ">i8"),
                    ("l3", ">i4"), ("station_id", ">i4"), ("l4", ">i4"), ("prediction", ">f8")])  # fmt: skip
    select_cols = ", ".join(
        f"{c}::float8" if c not in ("is_weekend", "is_holiday") else f"{c}::int::float8" for c in cols
    )
    types = {"station_id": pa.int64(), "ts_us": pa.int64(), TARGET: pa.int64(), **{c: pa.float64() for c in cols}}
    out = {"rows": 0, "read_s": 0.0, "predict_s": 0.0, "store_s": 0.0}
    conn = db.connect()
    try:
        for batch in batches:
            start, end = batch[0][0], batch[-1][1]
            t = time.perf_counter()
            buf = io.BytesIO()
            query = (
                "copy (select station_id, ((extract(epoch from ts) - 946684800) * 1000000)::bigint as ts_us, "
                f"{select_cols}, demand from features.demand_features "
                "where feature_set_version = %s and ts >= %s and ts < %s) to stdout (format csv, header true)"
            )
            with conn.cursor() as cur, cur.copy(query, (version, start, end)) as copy:
                for chunk in copy:
                    buf.write(chunk)
            buf.seek(0)
            frame = pacsv.read_csv(buf, convert_options=pacsv.ConvertOptions(column_types=types)).to_pandas()
            conn.commit()
            out["read_s"] += time.perf_counter() - t
            t = time.perf_counter()
            pred = model.predict(frame[cols])
            out["predict_s"] += time.perf_counter() - t
            t = time.perf_counter()
            rows = np.empty(len(frame), dtype=row)
            rows["n"], rows["l1"], rows["l2"], rows["l3"], rows["l4"] = 4, 16, 8, 4, 8
            rows["version"] = b"bench-plain".ljust(16)
            rows["ts"] = frame["ts_us"].to_numpy()
            rows["station_id"] = frame["station_id"].to_numpy()
            rows["prediction"] = pred
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("drop table if exists bench_plain_predictions")
                cur.execute(
                    "create table bench_plain_predictions (model_version bytea, ts timestamptz, "
                    "station_id integer, prediction double precision)"
                )
                with cur.copy("copy bench_plain_predictions from stdin (format binary, freeze)") as copy:
                    copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
                    copy.write(memoryview(rows).cast("B"))
                    copy.write((-1).to_bytes(2, "big", signed=True))
            out["store_s"] += time.perf_counter() - t
            out["rows"] += len(frame)
        conn.execute("drop table if exists bench_plain_predictions")
        conn.commit()
    finally:
        conn.close()
    return out


def project_scoring(champion: dict, model, rescore: bool = False) -> tuple[float, dict]:
    """The DAG's scoring step on every interval (its ledger rows removed first, so all are pending).

    By default its earlier predictions are removed too (outside the timing): the daily path,
    where an interval is scored for the first time. ``rescore``: they stay, and every row is
    replaced (the path after a feature rebuild; information).
    """
    from include.monitoring.scoring import pending_intervals, plan_batches, score_batch
    from include.settings import get_settings
    from include.warehouse import db

    with db.transaction() as conn:
        conn.execute("delete from ml.scoring_ledger where model_version = %s", (champion["version"],))
        if not rescore:
            conn.execute("delete from ml.predictions where model_version = %s", (champion["version"],))
    if not rescore:
        with db.connect(autocommit=True) as conn:
            conn.execute("vacuum ml.predictions")  # as after the nightly autovacuum: no dead rows left
    t = time.perf_counter()
    parts = {"rows": 0, "read_s": 0.0, "predict_s": 0.0, "store_s": 0.0}
    for batch in plan_batches(pending_intervals(champion), get_settings().drift.score_batch_days):
        out = score_batch(champion, model, batch, run_id="bench")
        for k in parts:
            parts[k] += out[k]
    return time.perf_counter() - t, parts


def run(workdir: Path) -> dict:
    import numpy as np

    from include.features.definitions import CURRENT_FEATURE_SET_VERSION, TARGET, feature_set
    from include.features.store import read_features
    from include.monitoring.drift import Thresholds, evaluate_window
    from include.monitoring.scoring import pending_intervals, plan_batches, score_frame
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
        np.datetime64(START + timedelta(days=DAYS), "us"),
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

    # the whole scoring step: the DAG's path vs the same three steps done plainly, interleaved
    champion = {"version": f"bench-{candidate['name']}", "feature_set_version": version}
    # the same batches as the project's: every interval (no scoring ledger rows for this version)
    unscored = {"version": "bench-never-scored", "feature_set_version": version}
    batches = plan_batches(pending_intervals(unscored), get_settings().drift.score_batch_days)
    e2e, plain = [], []
    for _ in range(E2E_REPEATS):
        e2e.append(project_scoring(champion, model))
        t = time.perf_counter()
        plain_parts = plain_scoring(model, version, cols, batches)
        plain.append((time.perf_counter() - t, plain_parts))
    rescore_s, _ = project_scoring(champion, model, rescore=True)
    e2e_s = statistics.median(x[0] for x in e2e)
    parts = e2e[-1][1]
    plain_s = statistics.median(x[0] for x in plain)
    assert parts["rows"] == plain[-1][1]["rows"] == ROWS_PER_DAY * DAYS, (parts, plain[-1][1])

    in_memory = score_s + drift_s
    from scripts import bench_drift_alarms

    t = time.perf_counter()
    alarms = bench_drift_alarms.run()  # resets the warehouse: last
    alarms["alarms_bench_s"] = round(time.perf_counter() - t, 1)
    return {
        "scoring_end_to_end_ratio": round(plain_s / e2e_s, 3),
        "scoring_end_to_end_ratio_definition": "plain seconds / project seconds (higher is better)",
        **{k: alarms.pop(k) for k in ("false_alarm_rate_per_100_days", "detection_delay_days")},
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
        "plain_end_to_end_s": round(plain_s, 2),
        "rescore_end_to_end_s": round(rescore_s, 2),
        "end_to_end_s_runs": [round(x[0], 2) for x in e2e],
        "plain_end_to_end_s_runs": [round(x[0], 2) for x in plain],
        "plain_read_s": round(plain[-1][1]["read_s"], 2),
        "plain_predict_s": round(plain[-1][1]["predict_s"], 2),
        "plain_store_s": round(plain[-1][1]["store_s"], 2),
        "end_to_end_read_s": round(parts["read_s"], 2),
        "end_to_end_predict_s": round(parts["predict_s"], 2),
        "end_to_end_store_s": round(parts["store_s"], 2),
        "end_to_end_rows_per_s": round(parts["rows"] / e2e_s),
        "end_to_end_vs_raw_predict_ratio": round(e2e_s / raw_s, 2),
        **alarms,
    }
