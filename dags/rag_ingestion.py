"""RAG ingestion: keep a vector index in step with the project's documentation.

Source: the folder at ``MLOPS_DOCS_URI`` (``ObjectStoragePath``; ``file://include/rag/docs`` by
default, ``s3://`` with ``MLOPS_STORAGE_CONN_ID``) holding Markdown, plain text and HTML.

Each run compares the source with the index: a document is new or changed when the sha256 of its
bytes, or the index signature (embedding model, dimension, chunking settings), differs from
``rag.documents``. Only those documents are chunked and embedded; chunks whose deterministic id
(path + position + content hash) is already stored with the same model keep their vector.
Documents deleted at the source lose their chunks. A model change re-embeds everything.

Tasks (``include/rag/pipeline.py`` and ``include/rag/weaviate_sync.py`` hold the logic, this file
only wires it):

- ``setup_weaviate`` create the Weaviate collection if missing (only when ``MLOPS_WEAVIATE_ENABLED``).
- ``plan`` (warehouse pool) ensure the schema and the HNSW index of the model's dimension (idempotent
  DDL, not a task of its own: one task process less on every run), hash the source, diff with the
  index, write one manifest per batch of changed
  documents (up to ``MLOPS_RAG_BATCH_CHUNKS`` chunks to embed or ``MLOPS_RAG_DOCS_PER_BATCH``
  documents): the number of mapped tasks follows the amount of change, and with no change nothing
  is mapped (the embedding tasks are skipped: no model load).
- ``embed_batch`` (mapped, ``embeddings`` pool) the local offline model by default, OpenAI via
  its connection when ``MLOPS_RAG_EMBEDDER=openai``; vectors go to a staged Parquet file.
- ``write_pgvector`` (mapped, warehouse pool) one transaction per batch: upsert by chunk id,
  stale chunks deleted.
- ``delete_removed`` chunks of documents gone from the source.
- ``sync_weaviate`` mirror pgvector into Weaviate from its own ledger (optional).
- ``record_run`` counts into ``rag.ingest_runs``; staging files removed.
- ``publish_index`` updates the ``rag_index`` Asset with the counts as extra -- only when the
  index changed (skipped otherwise, so consumers are not triggered by no-op runs).

Schedule: daily at 03:00 UTC, ``catchup=False``. The DAG reconciles current state rather than
processing a data interval, so a missed day needs no backfill: the next run catches up on every
change. Trigger it by hand after editing documents. ``max_active_runs=1``: two runs never diff
against each other's half-written state. XCom carries URIs and counts only.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, TriggerRule, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include.assets import RAG_INDEX
from include.dag_defaults import EMBEDDING_POOL, WAREHOUSE_POOL, default_args


def _weaviate_enabled(context) -> bool:
    from include.settings import get_settings

    return get_settings().rag.weaviate_enabled


@dag(
    dag_id="rag_ingestion",
    schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["rag", "embeddings", "pgvector", "weaviate"],
    doc_md=__doc__,
)
def rag_ingestion():
    @task.run_if(_weaviate_enabled, skip_message="Weaviate disabled (MLOPS_WEAVIATE_ENABLED)")
    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def setup_weaviate() -> dict:
        """Create the Weaviate collection if missing."""
        from include.rag import weaviate_sync

        return weaviate_sync.setup_weaviate()

    @task(pool=WAREHOUSE_POOL)
    def plan(*, run_id: str | None = None, ti=None) -> list[str]:
        """Ensure the schema and HNSW index, diff the source with the index; the manifest URIs to
        embed (the full plan: XCom 'plan')."""
        from include.lineage import report_lineage, table
        from include.rag import pipeline

        report_lineage(inputs=[table("rag", "documents")])  # OpenLineage; the documents read are tracked
        pipeline.setup_index()  # idempotent DDL: here, not a task of its own (one process less per run)
        result = pipeline.plan(run_id)
        ti.xcom_push(key="plan", value=result)
        return result["batches"]

    @task(
        pool=EMBEDDING_POOL,
        multiple_outputs=False,
        map_index_template="{{ task.op_kwargs['manifest_uri'].rsplit('/', 1)[-1] }}",
    )
    def embed_batch(manifest_uri: str) -> dict:
        """Embed one manifest's new chunks into its staged file."""
        from include.rag import pipeline

        return pipeline.embed_batch(manifest_uri)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def write_pgvector(embedded: dict) -> dict:
        """Upsert one staged batch into pgvector in one transaction."""
        from include.lineage import report_lineage, table
        from include.rag import pipeline

        report_lineage(outputs=[table("rag", "chunks"), table("rag", "documents")])  # OpenLineage
        return pipeline.write_pgvector(embedded)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def delete_removed(plan_result: dict) -> dict:
        """Remove the chunks of documents gone from the source."""
        from include.lineage import report_lineage, table
        from include.rag import pipeline

        report_lineage(outputs=[table("rag", "chunks"), table("rag", "documents")])  # OpenLineage
        return pipeline.delete_removed(plan_result["deleted_paths"])

    @task.run_if(_weaviate_enabled, skip_message="Weaviate disabled (MLOPS_WEAVIATE_ENABLED)")
    @task(pool=WAREHOUSE_POOL, trigger_rule=TriggerRule.NONE_FAILED, multiple_outputs=False)
    def sync_weaviate() -> dict:
        """Mirror pgvector into Weaviate from the mirror's ledger."""
        from include.rag import weaviate_sync

        return weaviate_sync.sync_weaviate()

    @task(pool=WAREHOUSE_POOL, trigger_rule=TriggerRule.NONE_FAILED, multiple_outputs=False)
    def record_run(plan_result: dict, embedded, written, deleted: dict, weaviate: dict | None) -> dict:
        """Record the run's counts in rag.ingest_runs; remove its staging files."""
        from include.rag import pipeline

        return pipeline.record_run(plan_result, list(embedded or []), list(written or []), deleted, weaviate)

    @task(outlets=[RAG_INDEX], multiple_outputs=False)
    def publish_index(counts: dict, *, outlet_events=None) -> dict:
        """Publish the rag_index Asset with the counts as extra, only when the index changed."""
        if not (counts["documents_changed"] or counts["documents_deleted"]):
            raise AirflowSkipException("index unchanged: no rag_index Asset event")
        outlet_events[RAG_INDEX].extra = counts
        return counts

    weaviate_ready = setup_weaviate()
    batches = plan()
    plan_result = batches["plan"]
    embedded = embed_batch.expand(manifest_uri=batches)
    written = write_pgvector.expand(embedded=embedded)
    deleted = delete_removed(plan_result)
    synced = sync_weaviate()
    [written, deleted, weaviate_ready] >> synced
    counts = record_run(plan_result, embedded, written, deleted, synced)
    publish_index(counts)


rag_ingestion_dag = rag_ingestion()
