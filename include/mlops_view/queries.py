"""What the MLOps view shows, read from the warehouse in one connection (a few small queries)."""

from __future__ import annotations

from typing import Any

from include.settings import get_settings
from include.warehouse import db

HISTORY_LIMIT = 30
RUNS_LIMIT = 20
QUALITY_DAYS = 60
DRIFT_WINDOWS = 30

_QUERIES = {
    "champion": """
        select version, candidate_name, model_family, metric_name, metric_value, metrics, train_start, train_end,
               feature_set_version, rows_trained, promoted_at, decision_reason, review_decision, reviewed_by,
               review_comment, review_automatic, reviewed_at, run_id
          from ml.model_registry where status = 'champion'""",
    "models": f"""
        select version, candidate_name, model_family, status, metric_value, created_at, promoted_at, retired_at,
               decision_reason, review_decision, reviewed_by, review_comment, review_automatic, run_id
          from ml.model_registry order by coalesce(promoted_at, updated_at, created_at) desc, version
         limit {HISTORY_LIMIT}""",
    "runs": f"""
        select run_id, decided_at, train, reason, triggering_assets, champion_before, selected_version,
               champion_after, outcome, outcome_reason, review_decision, reviewed_by, review_comment,
               review_automatic, finished_at
          from ml.training_runs order by decided_at desc limit {RUNS_LIMIT}""",
    "quality": f"""
        select (interval_start at time zone 'UTC')::date as day, rows_loaded, rows_quarantined,
               case when quality_passed is null then 'pending'
                    else coalesce(quality_report->>'status', case when quality_passed then 'passed' else 'failed' end)
               end as status
          from (select * from warehouse.load_ledger order by interval_start desc limit {QUALITY_DAYS}) d
         order by interval_start""",
    # the latest evaluation of each window (a window is re-evaluated when its features are rebuilt)
    "windows": f"""
        select * from (
            select distinct on (window_day) window_day, run_id, model_version, error_ratio, mae, reference_mae,
                   drift_detected, drifted_features, report_path, evaluated_at
              from ml.drift_runs order by window_day desc, evaluated_at desc) w
         order by window_day desc limit {DRIFT_WINDOWS}""",
    "rag_totals": """
        select (select count(*) from rag.documents) as documents, (select count(*) from rag.chunks) as chunks,
               (select coalesce(array_agg(distinct model_name), '{}') from rag.chunks) as models""",
    "rag_last": """
        select run_id, started_at, finished_at, model_name, documents_seen, documents_changed, documents_deleted,
               chunks_embedded, chunks_reused, chunks_deleted, chunks_total
          from rag.ingest_runs order by finished_at desc limit 1""",
}

_PSI = """
    select r.window_day, r.feature, r.psi, r.drifted
      from ml.drift_report r
      join unnest(%(runs)s::text[], %(days)s::date[]) as w(run_id, window_day)
        on r.run_id = w.run_id and r.window_day = w.window_day
     where r.feature <> '__prediction__'
     order by r.feature, r.window_day"""


def load() -> dict[str, Any]:
    """Every section of the page as lists of dicts (a missing table reads as empty)."""
    from psycopg.rows import dict_row

    data: dict[str, Any] = {}
    conn = db.connect(autocommit=True)
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            for name, sql in _QUERIES.items():
                try:
                    data[name] = cur.execute(sql).fetchall()
                except Exception as exc:  # e.g. undefined table before the first run of a DAG
                    if getattr(exc, "sqlstate", None) not in ("42P01", "42703"):
                        raise
                    data[name] = []
            windows = data["windows"]
            data["psi"] = (
                cur.execute(
                    _PSI,
                    {"runs": [w["run_id"] for w in windows], "days": [w["window_day"] for w in windows]},
                ).fetchall()
                if windows
                else []
            )
    finally:
        conn.close()
    data["champion"] = data["champion"][0] if data["champion"] else None
    data["rag_totals"] = data["rag_totals"][0] if data["rag_totals"] else None
    data["rag_last"] = data["rag_last"][0] if data["rag_last"] else None
    data["windows"] = list(reversed(data["windows"]))  # oldest first, for the charts
    return data


def report_uri(run_id: str) -> str | None:
    """The drift report of a drift_monitoring run, as recorded by it (a path or a URI)."""
    row = db.fetch_one("select report_path from ml.drift_runs where run_id = %s and report_path is not null", (run_id,))
    return row[0] if row else None


def read_report(uri: str) -> bytes:
    """The bytes of a report by its URI (``file://``, ``s3://``, ... or a plain local path)."""
    if "://" not in uri:
        uri = "file://" + uri
    with get_settings().storage.path(uri).open("rb") as fh:
        return fh.read()
