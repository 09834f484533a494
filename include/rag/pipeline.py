"""The work of the ``rag_ingestion`` DAG, one function per task (the bench calls the same ones).

Flow (XCom carries URIs and counts only; chunk text and vectors travel in the Parquet files of
``include.rag.manifest`` under ``<artifacts>/rag/staging/<run_id>/``):

1. ``setup_index``   schema + HNSW index of the configured model's dimension (the DAG's ``plan``
                     task calls it first).
2. ``plan``          list + hash the source; a document is *changed* when its (content hash,
                     signature) differs from ``rag.documents`` -- the signature is model name,
                     dimension and chunking settings, so a model change re-embeds everything.
                     Changed documents are chunked; chunks whose id is already stored with the
                     same model are marked for reuse. One manifest per batch (up to
                     ``batch_chunks`` chunks to embed or ``docs_per_batch`` documents): the
                     number of batches follows the change, zero change -> zero batches.
                     Documents gone from the source are listed.
3. ``embed_batch``   (mapped, embedding pool) embed the manifest's new chunks -> staged file.
4. ``write_pgvector``(mapped, warehouse pool) one transaction per batch (stores.pgvector).
5. ``delete_removed`` chunks and rows of deleted documents.
6. ``sync_weaviate`` optional mirror, driven by its own ledger (self-healing): ``weaviate_sync``.
7. ``record_run``    counts -> ``rag.ingest_runs`` (the summary and the Asset extra); staging removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from include.rag import manifest
from include.rag.chunking import ChunkConfig, chunk_document
from include.rag.documents import SourceDocument, list_documents, parse
from include.rag.embedders import get_embedder
from include.rag.stores import pgvector as pg
from include.rag.weaviate_sync import sync_weaviate
from include.settings import get_settings
from include.warehouse import db

log = logging.getLogger(__name__)


def identity(embedder, cfg: ChunkConfig) -> dict[str, Any]:
    return {
        "model_name": embedder.name,
        "dimension": int(embedder.dimension),
        "signature": f"{embedder.name}|{int(embedder.dimension)}|{cfg.signature}",
    }


def setup_index(embedder=None) -> dict[str, Any]:
    """Schema (idempotent DDL) and the HNSW index of the configured model's dimension."""
    embedder = embedder if embedder is not None else get_embedder()
    db.ensure_schema()
    with db.transaction() as conn:
        created = pg.ensure_vector_index(conn, embedder.dimension)
    return {**identity(embedder, ChunkConfig.from_settings()), "index_created": created}


def _diff(docs: list[SourceDocument], ident: dict[str, Any]):
    """(changed documents, deleted paths, ids of chunks already stored with this model)."""
    conn = db.connect(autocommit=True)
    try:
        indexed = pg.indexed_documents(conn)
        changed = [d for d in docs if indexed.get(d.path) != (d.content_hash, ident["signature"])]
        source_paths = {d.path for d in docs}
        deleted = sorted(p for p in indexed if p not in source_paths)
        reusable = pg.existing_chunk_ids(conn, [d.path for d in changed], ident["model_name"], ident["dimension"])
    finally:
        conn.close()
    return changed, deleted, reusable


def _group(changed, cfg: ChunkConfig, reusable: set[str], docs_per_batch: int, batch_chunks: int) -> list[list]:
    """Chunk the changed documents; a batch takes them in path order until it holds
    ``batch_chunks`` chunks to embed or ``docs_per_batch`` documents."""
    groups: list[list[tuple]] = []
    to_embed = 0
    for d in changed:
        parsed = parse(d.path, d.format, d.data)
        chunks = chunk_document(d.path, parsed, cfg)
        if not groups or len(groups[-1]) >= docs_per_batch or to_embed >= batch_chunks:
            groups.append([])
            to_embed = 0
        groups[-1].append((d, parsed, chunks))
        to_embed += sum(c.chunk_id not in reusable for c in chunks)
    return groups


def plan(
    run_id: str,
    root=None,
    embedder=None,
    cfg: ChunkConfig | None = None,
    docs_per_batch: int | None = None,
    batch_chunks: int | None = None,
):
    """Compare the source with the index; write one manifest per batch of changed documents.

    1. list and hash the source; 2. diff with ``rag.documents`` (changed, deleted, reusable
    chunks); 3. chunk the changed documents into batches (the number of batches follows the amount
    of change); 4. write each batch's manifest. Returns the plan (URIs and counts) for XCom.
    """
    t0 = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat()
    embedder = embedder if embedder is not None else get_embedder()
    cfg = cfg or ChunkConfig.from_settings()
    rag = get_settings().rag
    ident = identity(embedder, cfg)

    docs = list_documents(root)
    changed, deleted, reusable = _diff(docs, ident)
    groups = _group(
        changed, cfg, reusable, max(1, docs_per_batch or rag.docs_per_batch), max(1, batch_chunks or rag.batch_chunks)
    )
    tables = [manifest.build(group, ident, reusable) for group in groups]
    batches = [manifest.write(manifest.manifest_path(run_id, b), t) for b, t in enumerate(tables)]

    result = {
        "run_id": run_id,
        "started_at": started_at,
        **ident,
        "documents_seen": len(docs),
        "documents_changed": len(changed),
        "documents_deleted": len(deleted),
        "deleted_paths": deleted,
        "batches": batches,
        "chunks_planned": sum(t.num_rows for t in tables),
        "chunks_to_embed": sum(t.column("embed").to_pylist().count(True) for t in tables),
        "plan_seconds": round(time.perf_counter() - t0, 3),
    }
    log.info(
        "rag plan: %d seen, %d changed, %d deleted, %d batches, %d chunks (%d to embed)",
        *(result[k] for k in ("documents_seen", "documents_changed", "documents_deleted")),
        len(batches),
        result["chunks_planned"],
        result["chunks_to_embed"],
    )
    return result


def embed_batch(manifest_uri: str, embedder=None) -> dict[str, Any]:
    """Embed the chunks of one manifest that need it; write the staged file next to it."""
    import numpy as np
    import pyarrow as pa

    t0 = time.perf_counter()
    embedder = embedder if embedder is not None else get_embedder()
    m = manifest.read(manifest_uri)
    ident, table = m.identity, m.table
    if (ident["model_name"], ident["dimension"]) != (embedder.name, int(embedder.dimension)):
        raise RuntimeError(
            f"manifest planned for {ident['model_name']}/{ident['dimension']} but the configured embedder is "
            f"{embedder.name}/{embedder.dimension}: the configuration changed mid-run; trigger a new run"
        )
    dim = ident["dimension"]
    mask = table.column("embed")
    texts = table.filter(mask).column("text").to_pylist()
    t1 = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_s = time.perf_counter() - t1
    if vectors.shape != (len(texts), dim):
        raise RuntimeError(f"embedder returned shape {vectors.shape}, expected ({len(texts)}, {dim})")
    # one fixed-size list column; reused chunks get a null (their stored vector stays)
    embed_mask = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
    full = np.zeros((table.num_rows, dim), dtype=np.float32)
    full[embed_mask] = vectors
    emb = pa.FixedSizeListArray.from_arrays(pa.array(full.ravel(), pa.float32()), dim, mask=pa.array(~embed_mask))
    staged = manifest.with_metadata(table.append_column("embedding", emb), m.documents, ident)
    dst = manifest.write(manifest.staged_uri(manifest_uri), staged)
    return {
        "staged": dst,
        "documents": len(m.documents),
        "chunks": table.num_rows,
        "chunks_embedded": len(texts),
        "chunks_reused": table.num_rows - len(texts),
        "embed_seconds": round(embed_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def write_pgvector(embedded: dict[str, Any]) -> dict[str, Any]:
    """Upsert one staged batch into pgvector in one transaction."""
    import numpy as np

    m = manifest.read(embedded["staged"])
    dim = m.identity["dimension"]
    new = m.table.filter(m.table.column("embed"))
    vectors = (
        np.asarray(new.column("embedding").combine_chunks().flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)
        if new.num_rows
        else np.zeros((0, dim), dtype=np.float32)
    )
    columns = {c: new.column(c).to_pylist() for c in manifest.CHUNK_FIELDS}
    all_ids = m.table.column("chunk_id").to_pylist()
    conn = db.connect()
    try:
        result = pg.write_batch(conn, m.documents, all_ids, columns, vectors, m.identity["model_name"], dim)
    finally:
        conn.close()
    return {**result, "staged": embedded["staged"]}


def delete_removed(deleted_paths: Sequence[str]) -> dict[str, int]:
    """Remove the chunks and rows of documents gone from the source."""
    conn = db.connect()
    try:
        return pg.delete_documents(conn, list(deleted_paths))
    finally:
        conn.close()


def record_run(
    plan_result: dict[str, Any],
    embedded: Sequence[dict[str, Any]] = (),
    written: Sequence[dict[str, Any]] = (),
    deleted: dict[str, int] | None = None,
    weaviate: dict[str, Any] | None = None,
    cleanup: bool = True,
) -> dict[str, Any]:
    """Counts of the run -> ``rag.ingest_runs``; remove the run's staging files."""
    embedded = [e for e in (embedded or []) if e]
    written = [w for w in (written or []) if w]
    deleted = deleted or {}
    if len(written) != len(plan_result["batches"]):
        raise RuntimeError(f"{len(written)} batches written of {len(plan_result['batches'])} planned")
    counts = {
        "documents_seen": plan_result["documents_seen"],
        "documents_changed": plan_result["documents_changed"],
        "documents_deleted": plan_result["documents_deleted"],
        "chunks_embedded": sum(e["chunks_embedded"] for e in embedded),
        "chunks_reused": sum(e["chunks_reused"] for e in embedded),
        "chunks_deleted": int(deleted.get("chunks_deleted", 0)) + sum(w["chunks_deleted"] for w in written),
    }
    run = {
        **{k: plan_result[k] for k in ("run_id", "started_at", "model_name", "dimension")},
        **counts,
        "weaviate_synced": (weaviate or {}).get("documents_synced"),
    }
    conn = db.connect()
    try:
        total = pg.record_ingest_run(conn, run)
    finally:
        conn.close()
    if cleanup:
        d = manifest.staging_dir(plan_result["run_id"])
        if d.exists():
            d.rmdir(recursive=True)
    return {**counts, "chunks_total": total, "model_name": plan_result["model_name"]}


def run_once(run_id: str, root=None, embedder=None, with_weaviate: bool = False) -> dict[str, Any]:
    """The whole DAG in one process, through the same functions (bench, CLI indexing).

    Returns the run's counts plus ``seconds``: wall time per step.
    """
    seconds: dict[str, float] = {}

    def timed(step, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            seconds[step] = round(seconds.get(step, 0.0) + time.perf_counter() - t0, 4)

    embedder = embedder if embedder is not None else get_embedder()
    timed("setup", setup_index, embedder)
    p = timed("plan", plan, run_id, root, embedder)
    embedded = [timed("embed", embed_batch, b, embedder) for b in p["batches"]]
    written = [timed("write", write_pgvector, e) for e in embedded]
    deleted = timed("delete", delete_removed, p["deleted_paths"])
    wv = timed("weaviate", sync_weaviate, embedder) if with_weaviate else None
    counts = timed("record", record_run, p, embedded, written, deleted, wv)
    seconds["model_encode"] = round(sum(e["embed_seconds"] for e in embedded), 4)
    return {**counts, "batches": len(p["batches"]), "seconds": seconds}
