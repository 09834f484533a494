"""Batch scoring with the champion: find what to score from the data, predict, store.

What to score comes from the data, not from asset events (Airflow 3.3.2 can leave queued
events unconsumed): every interval of ``features.feature_ledger`` (the champion's feature-set
version, at least one row) that

* has no row in ``ml.scoring_ledger`` for the champion's model version, or
* whose features were rebuilt after they were scored (``feature_ledger.built_at`` newer than
  the ``features_built_at`` recorded when scoring).

So a new champion re-scores the whole history (its predictions sit next to the old champion's,
keyed by model version), and a rebuilt day is scored again.

Contiguous intervals are scored in batches (``MLOPS_SCORE_BATCH_DAYS``): one ``COPY`` read of
the features, one vectorised ``predict`` over the batch, and one transaction that deletes the
version's rows of the time range, ``COPY``s the new predictions in (CSV serialised by pyarrow)
and upserts the ledger rows. Re-runs replace, never duplicate.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from include.etl.binary_copy import COPY_HEADER, COPY_TRAILER, PG_EPOCH_S
from include.features.definitions import feature_columns
from include.features.store import read_features
from include.settings import get_settings
from include.training.registry import get_champion, load_model
from include.warehouse import db

log = logging.getLogger(__name__)


def pending_intervals(champion: dict | None = None) -> list[tuple[datetime, datetime, datetime]]:
    """(interval_start, interval_end, features_built_at) to score with ``champion`` (default: the
    current champion; nothing without one), oldest first."""
    champion = champion or get_champion()
    if champion is None:
        return []

    rows = db.fetch_all(
        """select f.interval_start, f.interval_end, f.built_at
             from features.feature_ledger f
             left join ml.scoring_ledger s
               on s.interval_start = f.interval_start and s.model_version = %(model)s
            where f.feature_set_version = %(fsv)s
              and f.rows_built > 0
              and (s.interval_start is null or s.features_built_at < f.built_at)
            order by f.interval_start""",
        {"model": champion["version"], "fsv": champion["feature_set_version"]},
    )
    return [(a, b, c) for a, b, c in rows]


def plan_batches(intervals: list[tuple], batch_days: int) -> list[list[tuple]]:
    """Group sorted intervals into runs of contiguous intervals, at most ``batch_days`` each."""
    batches: list[list[tuple]] = []
    for iv in sorted(intervals, key=lambda i: i[0]):
        last = batches[-1] if batches else None
        if last and last[-1][1] == iv[0] and len(last) < max(1, batch_days):
            last.append(iv)
        else:
            batches.append([iv])
    return batches


def score_frame(model, frame, feature_cols: list[str]):
    """The model's predictions for every row of ``frame`` (one vectorised call), clipped at 0
    (demand is a count) and as float64."""
    import numpy as np

    pred = np.asarray(model.predict(frame[feature_cols]), dtype=np.float64)
    np.maximum(pred, 0.0, out=pred)
    return pred


def utc_microseconds(ts):
    """A timezone-aware pandas Series of timestamps as naive UTC ``datetime64[us]`` (NumPy)."""
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")


def predictions_copy(model_version: str, frame, pred) -> bytes:
    """Binary COPY bytes of (model_version, ts, station_id, prediction): every field has a fixed
    width within a batch, so all rows are one NumPy structured array (no text on either side)."""
    import numpy as np

    version = model_version.encode()
    row = np.dtype(
        [
            ("n", ">i2"),
            ("l_version", ">i4"), ("version", f"S{len(version)}"),
            ("l_ts", ">i4"), ("ts", ">i8"),
            ("l_station_id", ">i4"), ("station_id", ">i4"),
            ("l_prediction", ">i4"), ("prediction", ">f8"),
        ]
    )  # fmt: skip
    rows = np.empty(len(frame), dtype=row)
    rows["n"] = 4
    rows["l_version"], rows["version"] = len(version), version
    rows["l_ts"], rows["ts"] = 8, utc_microseconds(frame["ts"]).astype(np.int64) - PG_EPOCH_S * 1_000_000
    rows["l_station_id"], rows["station_id"] = 4, frame["station_id"].to_numpy()
    rows["l_prediction"], rows["prediction"] = 8, np.asarray(pred, dtype=np.float64)
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def store_predictions(conn, model_version: str, start: datetime, end: datetime, frame, pred) -> int:
    """Replace ``model_version``'s predictions of [start, end) on ``conn`` (caller's transaction)."""
    conn.execute(
        "delete from ml.predictions where model_version = %s and ts >= %s and ts < %s",
        (model_version, start, end),
    )
    if not len(frame):
        return 0
    with (
        conn.cursor() as cur,
        cur.copy("copy ml.predictions (model_version, ts, station_id, prediction) from stdin (format binary)") as copy,
    ):
        copy.write(predictions_copy(model_version, frame, pred))
    return len(frame)


def score_batch(champion: dict, model, batch: list[tuple], run_id: str | None = None) -> dict:
    """Score contiguous intervals ``batch`` with ``model`` and store them in one transaction."""
    import numpy as np

    start, end = batch[0][0], batch[-1][1]
    cols = feature_columns(champion["feature_set_version"])
    t0 = time.perf_counter()
    frame = read_features(start, end, champion["feature_set_version"])
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = score_frame(model, frame, cols)
    t_pred = time.perf_counter() - t0
    # rows per interval, for the ledger (vectorised: interval index of every row)
    starts = np.array([b[0].astimezone(timezone.utc).replace(tzinfo=None) for b in batch], dtype="datetime64[us]")
    ts = utc_microseconds(frame["ts"])
    counts = (
        np.bincount(np.searchsorted(starts, ts, side="right") - 1, minlength=len(batch))
        if len(frame)
        else (np.zeros(len(batch), dtype=int))
    )
    t0 = time.perf_counter()
    with db.transaction() as conn:
        rows = store_predictions(conn, champion["version"], start, end, frame, pred)
        with conn.cursor() as cur:
            cur.executemany(
                """insert into ml.scoring_ledger
                     (interval_start, model_version, interval_end, feature_set_version, rows_scored,
                      features_built_at, scored_at, run_id)
                   values (%s, %s, %s, %s, %s, %s, clock_timestamp(), %s)
                   on conflict (interval_start, model_version) do update
                      set interval_end = excluded.interval_end, rows_scored = excluded.rows_scored,
                          feature_set_version = excluded.feature_set_version,
                          features_built_at = excluded.features_built_at,
                          scored_at = excluded.scored_at, run_id = excluded.run_id""",
                [
                    (b[0], champion["version"], b[1], champion["feature_set_version"], int(n), b[2], run_id)
                    for b, n in zip(batch, counts, strict=True)
                ],
            )
    t_store = time.perf_counter() - t0
    log.info(
        "scored %s rows of [%s, %s) with %s (read %.2fs, predict %.2fs, store %.2fs)",
        rows,
        start,
        end,
        champion["version"],
        t_read,
        t_pred,
        t_store,
    )
    return {
        "rows": rows,
        "intervals": [b[0].date().isoformat() for b in batch],
        "read_s": t_read,
        "predict_s": t_pred,
        "store_s": t_store,
    }


def score_pending(champion: dict | None = None, run_id: str | None = None) -> dict:
    """Score every pending interval with the champion. Returns JSON-able counts."""
    champion = champion or get_champion()
    if champion is None:
        return {"champion": None, "rows_scored": 0, "intervals_scored": [], "reason": "no champion yet"}
    pending = pending_intervals(champion)
    out = {
        "champion": champion["version"],
        "rows_scored": 0,
        "intervals_scored": [],
        "read_s": 0.0,
        "predict_s": 0.0,
        "store_s": 0.0,
    }
    if not pending:
        return out
    model = load_model(champion["artifact_uri"])
    for batch in plan_batches(pending, get_settings().drift.score_batch_days):
        res = score_batch(champion, model, batch, run_id)
        out["rows_scored"] += res["rows"]
        out["intervals_scored"] += res["intervals"]
        for k in ("read_s", "predict_s", "store_s"):
            out[k] = round(out[k] + res[k], 3)
    return out
