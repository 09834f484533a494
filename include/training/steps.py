"""The training DAG's steps, one function per task (dags/training.py stays configuration).

Every step takes and returns small JSON-able dicts (URIs, counts, metrics): models and frames
travel through object storage (``ObjectStoragePath``), never through XCom.

Run layout:

* scratch space ``<artifacts_uri>/scratch/<run_key>/`` (created by the setup task, removed by the
  teardown task): ``data.parquet`` (the window's features), ``<candidate>/valid_predictions.parquet``;
* registry artifacts ``<artifacts_uri>/models/<version>/{model,reference}.joblib`` (kept).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timedelta

from include.features.definitions import TARGET, feature_set
from include.features.store import read_features
from include.keys import run_key
from include.notify import send_alert
from include.settings import get_settings
from include.storage.archive import archive_landing
from include.training import policy, registry
from include.training.candidates import build_pipeline, family_label, validate_candidates
from include.training.candidates import load_candidates as _load
from include.training.evaluate import PRIMARY_METRIC, Design, fit_on_rows, regression_metrics, walk_forward
from include.training.promotion import compare_with_champion, final_reason, select_best
from include.training.registry import get_champion
from include.warehouse import db

log = logging.getLogger(__name__)


def _storage():

    return get_settings().storage


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- plan ------------------------------------------------------------------------------------
def plan(run_id: str, triggering_assets: list[str] | None = None, force: bool = False) -> dict:
    """Apply the retraining policy (include/training/policy.py) and record the decision."""
    db.ensure_schema()
    decision = policy.decide(triggering_assets, force=force)
    decision["run_id"] = run_id
    decision["run_key"] = run_key(run_id)
    registry.record_run_decision(run_id, decision)
    log.info("retraining decision: %s (%s)", "train" if decision["train"] else "skip", decision["reason"])
    return decision


# --- setup / teardown ------------------------------------------------------------------------
def create_scratch(plan: dict) -> str:
    s = _storage()
    path = s.path(s.artifacts_uri) / "scratch" / plan["run_key"]
    if path.exists():  # a re-run starts clean
        path.rmdir(recursive=True)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def remove_scratch(scratch_uri: str) -> dict:
    path = _storage().path(scratch_uri)
    existed = path.exists()
    if existed:
        path.rmdir(recursive=True)
    return {"scratch_uri": scratch_uri, "removed": existed}


# --- data ------------------------------------------------------------------------------------
def extract_data(plan: dict, scratch_uri: str) -> dict:
    """Read the window's features once, store them in the scratch space, checksum them."""
    import pandas as pd

    frame = read_features(_dt(plan["train_start"]), _dt(plan["train_end"]), plan["feature_set_version"])
    if frame.empty:
        raise ValueError(f"no features between {plan['train_start']} and {plan['train_end']}")
    checksum = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    uri = str(_storage().path(scratch_uri) / "data.parquet")
    with _storage().path(uri).open("wb") as fh:
        frame.to_parquet(fh, index=False)
    valid_rows = int((frame["ts"] >= pd.Timestamp(plan["valid_start"])).sum())
    return {"data_uri": uri, "rows": int(len(frame)), "valid_rows": valid_rows, "data_checksum": checksum}


def _read_parquet(uri: str):
    import pandas as pd

    with _storage().path(uri).open("rb") as fh:
        return pd.read_parquet(fh)


def _write_parquet(frame, uri: str) -> str:
    path = _storage().path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        frame.to_parquet(fh, index=False)
    return uri


def load_candidates(path: str | None = None, override: list | None = None) -> list[dict]:

    if override:
        return validate_candidates(override, "DAG param 'hyperparameters'")
    return _load(path)


def model_version(plan: dict, data: dict, candidate: dict) -> str:

    key = json.dumps(
        {
            "fs": plan["feature_set_version"],
            "window": [plan["train_start"], plan["valid_start"], plan["train_end"]],
            "data": data["data_checksum"],
            "candidate": candidate,
            "half_life": get_settings().training.recency_half_life_days,
        },
        sort_keys=True,
        default=str,
    )
    end = _dt(plan["train_end"]) - timedelta(days=1)
    return f"{end:%Y%m%d}-{candidate['name']}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


# --- one candidate ---------------------------------------------------------------------------
def train_candidate(candidate: dict, plan: dict, data: dict, scratch_uri: str) -> dict:
    """Walk-forward validation predictions, then the final refit on the whole window; stores
    the model and its training reference under the version's path."""
    import numpy as np
    import pandas as pd
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first, so that threadpool_limits applies to it)
    from threadpoolctl import threadpool_limits

    s = get_settings().training
    fs = feature_set(plan["feature_set_version"])
    cols, cats = list(fs.columns), list(fs.categorical)
    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    frame = _read_parquet(data["data_uri"])
    valid_start = _dt(plan["valid_start"])
    version = model_version(plan, data, candidate)
    model = build_pipeline(candidate, cols, cats)
    design = Design(model, frame)  # the window as one array, once; folds fit on its prefixes
    frame = design.frame  # in time order (as read)
    timings["read_s"], t = time.perf_counter() - t, time.perf_counter()
    # Threads per task x training pool slots <= the worker's cores (README "Training cost").
    with threadpool_limits(limits=s.threads_per_candidate):
        mask, valid_pred, fold_fit_s, _ = walk_forward(
            candidate, design, cols, cats, valid_start, s.recency_half_life_days
        )
        timings["walk_forward_s"], t = time.perf_counter() - t, time.perf_counter()
        ref_day = np.datetime64(_dt(plan["train_end"]).replace(tzinfo=None), "us")
        fit_on_rows(model, design, len(design.y), ref_day, s.recency_half_life_days)
        final_fit_s = time.perf_counter() - t
        train_pred = model[1:].predict(design.X)
        timings["refit_s"], t = time.perf_counter() - t, time.perf_counter()
    del design  # the arrays are not needed any more: free them before the artifacts are written
    valid = frame.loc[mask, ["station_id", "ts", TARGET]].rename(columns={TARGET: "y"})
    valid["y_pred"] = valid_pred
    pred_uri = str(_storage().path(scratch_uri) / candidate["name"] / "valid_predictions.parquet")
    _write_parquet(valid, pred_uri)

    valid_mae = regression_metrics(valid["y"], valid_pred)["mae"]
    train_mae = regression_metrics(frame[TARGET], train_pred)["mae"]
    artifact_uri, reference_uri = registry.artifact_uris(version)
    existing = registry.get_model(version)
    if existing is not None and existing["status"] in ("champion", "retired"):
        # a deployed model's files are immutable: a re-run keeps them
        artifact_uri, reference_uri = existing["artifact_uri"], existing["reference_uri"]
    else:
        sample = frame.sample(n=min(s.reference_rows, len(frame)), random_state=0).sort_index()
        reference = {
            "version": version,
            "feature_set_version": fs.version,
            "feature_columns": cols,
            "features": sample[cols].reset_index(drop=True),
            "predictions": np.asarray(train_pred, dtype=float),
            "train_mae": float(train_mae),
            "valid_mae": float(valid_mae),
            "train_start": plan["train_start"],
            "train_end": plan["train_end"],
            "valid_start": plan["valid_start"],
            "rows": int(len(frame)),
        }
        registry.save_object(model, artifact_uri)
        registry.save_object(reference, reference_uri)
    timings["write_s"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    log.info(
        "trained %s (%s): walk-forward MAE %.4f, in-sample MAE %.4f, %.1f s (%s)",
        candidate["name"],
        version,
        valid_mae,
        train_mae,
        seconds,
        ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
    )
    return {
        "name": candidate["name"],
        "family": candidate["family"],
        "candidate": candidate,
        "version": version,
        "artifact_uri": artifact_uri,
        "reference_uri": reference_uri,
        "predictions_uri": pred_uri,
        "train_mae": float(train_mae),
        "fit_seconds": round(fold_fit_s + final_fit_s, 3),
        "seconds": round(seconds, 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "rows": int(len(frame)),
        "valid_rows": int(len(valid)),
        "valid_days": int(pd.Series(valid["ts"].dt.floor("D")).nunique()),
    }


def evaluate_candidate(trained: dict, plan: dict, data: dict) -> dict:
    """Validation metrics from the walk-forward predictions; registers the candidate."""
    pred = _read_parquet(trained["predictions_uri"])
    metrics = regression_metrics(pred["y"], pred["y_pred"], prefix="valid_")
    metrics.update(train_mae=trained["train_mae"], fit_seconds=trained["fit_seconds"], valid_days=trained["valid_days"])
    candidate = trained["candidate"]
    registry.register_candidate(
        {
            "version": trained["version"],
            "candidate_name": candidate["name"],
            "model_family": family_label(candidate),
            "hyperparameters": {"params": candidate["params"], "log_target": candidate["log_target"]}
            | ({"estimator": candidate["estimator"]} if "estimator" in candidate else {}),
            "metrics": metrics,
            "metric_name": PRIMARY_METRIC,
            "metric_value": metrics[PRIMARY_METRIC],
            "train_start": plan["train_start"],
            "train_end": plan["train_end"],
            "valid_start": plan["valid_start"],
            "feature_set_version": plan["feature_set_version"],
            "data_checksum": data["data_checksum"],
            "rows_trained": trained["rows"],
            "artifact_uri": trained["artifact_uri"],
            "reference_uri": trained["reference_uri"],
            "run_id": plan["run_id"],
        }
    )
    return {
        k: trained[k]
        for k in ("name", "family", "version", "artifact_uri", "reference_uri", "predictions_uri", "seconds")
    } | {"metrics": metrics}


# --- decide ------------------------------------------------------------------------------------
def compare(results: list[dict], plan: dict, data: dict) -> dict:
    """Select the best candidate and compare it with the champion on the validation window."""
    import pandas as pd

    results = [r for r in results if r]
    best = select_best(results)
    frame = _read_parquet(data["data_uri"])
    valid = frame[frame["ts"] >= pd.Timestamp(plan["valid_start"])].reset_index(drop=True)
    valid.attrs["feature_set_version"] = plan["feature_set_version"]
    decision = compare_with_champion(
        best,
        get_champion(),
        valid,
        _dt(plan["valid_start"]),
        _dt(plan["train_end"]),
        get_settings().training.promotion_margin,
    )
    decision["candidates"] = {r["name"]: r["metrics"]["valid_mae"] for r in results}
    log.info("decision: %s - %s", "promote" if decision["promote"] else "reject", decision["reason"])
    return decision


def promote(decision: dict, plan: dict, context=None, review: dict | None = None) -> dict:

    reason = final_reason(decision, review)
    out = registry.promote(decision["selected_version"], reason, run_id=plan["run_id"])
    registry.record_run_outcome(plan["run_id"], decision["selected_version"], "promoted", reason)
    if out["changed"]:
        send_alert(
            f"New champion model {decision['selected_version']}",
            {
                "previous": out["previous"],
                "reason": reason,
                "candidate_mae": decision["candidate_mae"],
                "champion_mae": decision["champion_mae"],
                "training_reason": plan["reason"],
            },
            severity="info",
            context=context,
        )
    return out


def reject(decision: dict, plan: dict, review: dict | None = None) -> dict:

    reason = final_reason(decision, review)
    registry.reject(decision["selected_version"], reason, run_id=plan["run_id"])
    registry.record_run_outcome(plan["run_id"], decision["selected_version"], "rejected", reason)
    return {"rejected": decision["selected_version"], "reason": reason}


def archive_cold_storage() -> dict:
    """Move landing files older than (champion window start - cold-storage age) to the archive."""
    champion = get_champion()
    if champion is None:
        return {"skipped": "no champion"}
    before = champion["train_start"].date() - timedelta(days=get_settings().training.cold_storage_age_days)
    result = archive_landing(before=before)
    log.info("cold storage: files before %s -> %s", before, result)
    return {"before": before.isoformat(), **(result or {})}
