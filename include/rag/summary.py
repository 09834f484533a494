"""Section ``rag`` of ``reports/run_summary.json``: the counts of the last ingestion run."""

from __future__ import annotations

from typing import Any

KEYS = ("documents_seen", "documents_changed", "chunks_embedded", "chunks_deleted")


def summary_section() -> dict[str, Any]:
    """{documents_seen, documents_changed, chunks_embedded, chunks_deleted} of the last run,
    plus run_id, documents_deleted, chunks_reused, chunks_total and model_name for context."""
    from include.warehouse import db

    row = db.fetch_one(
        """
        select run_id, documents_seen, documents_changed, chunks_embedded, chunks_deleted,
               documents_deleted, chunks_reused, chunks_total, model_name, weaviate_synced
        from rag.ingest_runs order by finished_at desc, run_id desc limit 1
        """
    )
    if row is None:
        return {**dict.fromkeys(KEYS), "run_id": None, "error": "no rag_ingestion run recorded"}
    names = (
        "run_id",
        *KEYS,
        "documents_deleted",
        "chunks_reused",
        "chunks_total",
        "model_name",
        "weaviate_synced",
    )
    return dict(zip(names, row, strict=True))
