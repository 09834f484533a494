"""Section ``rag`` of ``reports/run_summary.json``: the counts of this ``make run``'s ingestion runs.

``make run`` passes ``since`` (when it started): the counts add up every ``rag_ingestion`` run
that started since (unpausing the DAG starts its scheduled run next to the one ``make run``
triggers; the second finds nothing changed). Without it, the last run's counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include.warehouse import db

KEYS = ("documents_seen", "documents_changed", "chunks_embedded", "chunks_deleted")


def summary_section(since: datetime | None = None) -> dict[str, Any]:
    """{documents_seen, documents_changed, chunks_embedded, chunks_deleted} of the last run,
    plus run_id, documents_deleted, chunks_reused, chunks_total and model_name for context."""
    if since is not None:
        row = db.fetch_one(
            """
            select string_agg(run_id, ',' order by started_at), max(documents_seen), sum(documents_changed),
                   sum(chunks_embedded), sum(chunks_deleted), sum(documents_deleted), sum(chunks_reused),
                   (array_agg(chunks_total order by finished_at desc))[1],
                   (array_agg(model_name order by finished_at desc))[1], sum(weaviate_synced)
            from rag.ingest_runs where started_at >= %s
            having count(*) > 0
            """,
            (since,),
        )
    else:
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
    out = dict(zip(names, row, strict=True))
    return {k: int(v) if k in KEYS and v is not None else v for k, v in out.items()}
