"""Versioned model registry: artifacts in object storage, metadata in ``ml.model_registry``.

Artifacts live under ``<artifacts_uri>/models/<version>/`` through Airflow's
``ObjectStoragePath`` (``file://`` by default, ``s3://...`` by configuration):

* ``model.joblib``: the fitted scikit-learn ``Pipeline`` (preprocessing included), refitted on
  the whole training window (see include/training/split.py);
* ``reference.joblib``: the training reference drift monitoring compares against: a sample of
  the training feature values (``features``), the model's predictions on its training data
  (``predictions``), ``train_mae`` (in-sample error of the stored model) and ``valid_mae``
  (walk-forward validation error), plus the feature columns and feature-set version.

Statuses: ``candidate`` (registered, not decided), ``champion`` (exactly one, enforced by a
partial unique index), ``retired`` (a former champion), ``rejected`` (not selected, or not
better than the champion by the margin). Promotion is one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include.settings import get_settings
from include.warehouse import db

_PROMOTION_LOCK_KEY = 7_431_202_612

_CHAMPION_COLUMNS = """version, candidate_name, model_family, hyperparameters, metrics, metric_name,
    metric_value, train_start, train_end, valid_start, feature_set_version, data_checksum, rows_trained,
    artifact_uri, reference_uri, status, decision_reason, run_id, created_at, promoted_at, retired_at"""


# --- artifacts -----------------------------------------------------------------------------
def models_root():

    s = get_settings().storage
    return s.path(s.artifacts_uri) / "models"


def artifact_uris(version: str) -> tuple[str, str]:
    base = models_root() / version
    return str(base / "model.joblib"), str(base / "reference.joblib")


def _path(uri: str):

    return get_settings().storage.path(uri)


def save_object(obj: Any, uri: str) -> str:
    """joblib-dump ``obj`` to ``uri`` (written to a temporary name, then moved into place)."""
    import joblib

    target = _path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / (target.name + ".tmp")
    with tmp.open("wb") as fh:
        joblib.dump(obj, fh, compress=3)
    tmp.replace(target)
    return uri


def load_object(uri: str) -> Any:
    import joblib

    with _path(uri).open("rb") as fh:
        return joblib.load(fh)


def load_model(artifact_uri: str):
    """The fitted Pipeline stored at ``artifact_uri``: ``.predict(frame[feature_columns])``."""
    return load_object(artifact_uri)


def load_reference(reference_uri: str) -> dict:
    """The training reference stored with a model (see module docstring)."""
    return load_object(reference_uri)


# --- registry rows -------------------------------------------------------------------------
def _rows(sql: str, params=None) -> list[dict]:
    from psycopg.rows import dict_row

    conn = db.connect(autocommit=True)
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchall()
    finally:
        conn.close()


def get_champion() -> dict | None:
    """The current champion's registry row as a dict, or None before the first promotion."""
    rows = _rows(f"select {_CHAMPION_COLUMNS} from ml.model_registry where status = 'champion'")
    return rows[0] if rows else None


def get_model(version: str) -> dict | None:
    rows = _rows(f"select {_CHAMPION_COLUMNS} from ml.model_registry where version = %s", (version,))
    return rows[0] if rows else None


def list_models(run_id: str | None = None) -> list[dict]:
    if run_id is None:
        return _rows(f"select {_CHAMPION_COLUMNS} from ml.model_registry order by created_at, version")
    return _rows(
        f"select {_CHAMPION_COLUMNS} from ml.model_registry where run_id = %s order by created_at, version", (run_id,)
    )


def register_candidate(entry: dict) -> dict:
    """Insert a candidate, or update the metrics/artifacts of the same version on a re-run.
    A re-run never changes an existing row's status (a champion stays champion)."""
    from psycopg.types.json import Jsonb

    params = dict(entry)
    params["hyperparameters"] = Jsonb(entry["hyperparameters"])
    params["metrics"] = Jsonb(entry["metrics"])
    with db.transaction() as conn:
        conn.execute(
            """insert into ml.model_registry
                 (version, candidate_name, model_family, hyperparameters, metrics, metric_name, metric_value,
                  train_start, train_end, valid_start, feature_set_version, data_checksum, rows_trained,
                  artifact_uri, reference_uri, status, run_id)
               values (%(version)s, %(candidate_name)s, %(model_family)s, %(hyperparameters)s, %(metrics)s,
                  %(metric_name)s, %(metric_value)s, %(train_start)s, %(train_end)s, %(valid_start)s,
                  %(feature_set_version)s, %(data_checksum)s, %(rows_trained)s, %(artifact_uri)s,
                  %(reference_uri)s, 'candidate', %(run_id)s)
               on conflict (version) do update
                  set metrics = excluded.metrics,
                      metric_value = excluded.metric_value,
                      rows_trained = excluded.rows_trained,
                      artifact_uri = excluded.artifact_uri,
                      reference_uri = excluded.reference_uri,
                      run_id = excluded.run_id,
                      updated_at = clock_timestamp()""",
            params,
        )
    return get_model(entry["version"])


def promote(version: str, reason: str, run_id: str | None = None) -> dict:
    """Make ``version`` the champion in one transaction (old champion -> retired; the run's
    other candidates -> rejected). Idempotent. Returns {previous, champion, changed}."""
    with db.transaction() as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (_PROMOTION_LOCK_KEY,))
        row = conn.execute("select status from ml.model_registry where version = %s for update", (version,)).fetchone()
        if row is None:
            raise LookupError(f"model version {version!r} is not registered")
        prev = conn.execute("select version from ml.model_registry where status = 'champion'").fetchone()
        previous = prev[0] if prev else None
        changed = previous != version
        if changed:
            conn.execute(
                """update ml.model_registry
                      set status = 'retired', retired_at = clock_timestamp(), updated_at = clock_timestamp(),
                          decision_reason = coalesce(decision_reason, '') ||
                                            case when decision_reason is null then '' else '; ' end ||
                                            'retired: replaced by ' || %s
                    where status = 'champion'""",
                (version,),
            )
            conn.execute(
                """update ml.model_registry
                      set status = 'champion', promoted_at = clock_timestamp(), retired_at = null,
                          decision_reason = %s, updated_at = clock_timestamp()
                    where version = %s""",
                (reason, version),
            )
        if run_id is not None:
            _reject_others(conn, run_id, version)
    return {"previous": previous, "champion": version, "changed": changed}


def reject(version: str, reason: str, run_id: str | None = None) -> None:
    """Record ``version`` (and the run's other candidates) as rejected. Never touches a champion."""
    with db.transaction() as conn:
        conn.execute(
            """update ml.model_registry set status = 'rejected', decision_reason = %s, updated_at = clock_timestamp()
                where version = %s and status in ('candidate', 'rejected')""",
            (reason, version),
        )
        if run_id is not None:
            _reject_others(conn, run_id, version)


def _reject_others(conn, run_id: str, selected: str) -> None:
    conn.execute(
        """update ml.model_registry
              set status = 'rejected', decision_reason = 'not selected: ' || %s || ' had the lowest validation error',
                  updated_at = clock_timestamp()
            where run_id = %s and version <> %s and status = 'candidate'""",
        (selected, run_id, selected),
    )


# --- training runs -------------------------------------------------------------------------
def record_run_decision(run_id: str, decision: dict) -> None:

    with db.transaction() as conn:
        conn.execute(
            """insert into ml.training_runs
                 (run_id, decided_at, train, reason, triggering_assets, feature_set_version,
                  train_start, train_end, valid_start, champion_before)
               values (%(run_id)s, clock_timestamp(), %(train)s, %(reason)s, %(triggering_assets)s,
                  %(feature_set_version)s, %(train_start)s, %(train_end)s, %(valid_start)s, %(champion_before)s)
               on conflict (run_id) do update
                  set decided_at = excluded.decided_at, train = excluded.train, reason = excluded.reason,
                      triggering_assets = excluded.triggering_assets,
                      feature_set_version = excluded.feature_set_version,
                      train_start = excluded.train_start, train_end = excluded.train_end,
                      valid_start = excluded.valid_start, champion_before = excluded.champion_before,
                      selected_version = null, champion_after = null, outcome = null,
                      outcome_reason = null, finished_at = null""",
            {
                "run_id": run_id,
                "train": decision["train"],
                "reason": decision["reason"],
                "triggering_assets": list(decision.get("triggering_assets") or []),
                "feature_set_version": decision.get("feature_set_version"),
                "train_start": decision.get("train_start"),
                "train_end": decision.get("train_end"),
                "valid_start": decision.get("valid_start"),
                "champion_before": decision.get("champion_before"),
            },
        )


def record_run_outcome(run_id: str, selected: str | None, outcome: str, reason: str) -> None:

    champion = get_champion()
    with db.transaction() as conn:
        conn.execute(
            """update ml.training_runs
                  set selected_version = %s, champion_after = %s, outcome = %s, outcome_reason = %s,
                      finished_at = clock_timestamp()
                where run_id = %s""",
            (selected, champion["version"] if champion else None, outcome, reason, run_id),
        )


def as_json(row: dict | None) -> dict | None:
    """A registry row with datetimes as ISO strings (for XCom and logs)."""
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def record_review(run_id: str, version: str, review: dict) -> None:
    """Record the promotion review (include/training/review.py) with the run and the model."""
    params = {
        "run_id": run_id,
        "version": version,
        "decision": review["decision"],
        "by": review.get("by"),
        "comment": review.get("comment"),
        "automatic": bool(review.get("automatic")),
        "at": review.get("at"),
    }
    sets = """set review_decision = %(decision)s, reviewed_by = %(by)s, review_comment = %(comment)s,
                  review_automatic = %(automatic)s, reviewed_at = coalesce(%(at)s::timestamptz, clock_timestamp())"""
    with db.transaction() as conn:
        conn.execute(f"update ml.model_registry {sets} where version = %(version)s", params)
        conn.execute(f"update ml.training_runs {sets} where run_id = %(run_id)s", params)
