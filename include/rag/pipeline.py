"""The work of the ``rag_ingestion`` DAG, one function per task (the bench calls the same ones).

Flow (XCom carries URIs and counts only; chunk text and vectors travel in Parquet files under
``<artifacts>/rag/staging/<run_id>/``):

1. ``setup_index``   schema + HNSW index of the configured model's dimension.
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
6. ``sync_weaviate`` optional mirror, driven by its own ledger (self-healing).
7. ``record_run``    counts -> ``rag.ingest_runs`` (the summary and the Asset extra); staging removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from include.rag.chunking import ChunkConfig, chunk_document
from include.rag.documents import list_documents, parse

log = logging.getLogger(__name__)


# --- helpers -------------------------------------------------------------------------------


def identity(embedder, cfg: ChunkConfig) -> dict[str, Any]:
    return {
        "model_name": embedder.name,
        "dimension": int(embedder.dimension),
        "signature": f"{embedder.name}|{int(embedder.dimension)}|{cfg.signature}",
    }


def _embedder(embedder=None):
    if embedder is not None:
        return embedder
    from include.rag.embedders import get_embedder

    return get_embedder()


def staging_dir(run_id: str):
    from include.settings import get_settings

    storage = get_settings().storage
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return storage.path(storage.artifacts_uri) / "rag" / "staging" / safe


def _write_parquet(path, table) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pq.write_table(table, f, compression="zstd")


def _read_parquet(path):
    import pyarrow.parquet as pq

    with path.open("rb") as f:
        return pq.read_table(f)


def _path(uri: str):
    from include.settings import get_settings

    return get_settings().storage.path(uri)


def _batches(items: Sequence, size: int) -> list[Sequence]:
    size = max(1, int(size))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _connect(autocommit: bool = False):
    from include.warehouse import db

    return db.connect(autocommit=autocommit)


# --- tasks ---------------------------------------------------------------------------------


def setup_index(embedder=None) -> dict[str, Any]:
    """Schema (idempotent DDL) and the HNSW index of the configured model's dimension."""
    from include.rag.stores import pgvector as pg
    from include.warehouse import db

    embedder = _embedder(embedder)
    db.ensure_schema()
    with db.transaction() as conn:
        created = pg.ensure_vector_index(conn, embedder.dimension)
    ident = identity(embedder, ChunkConfig.from_settings())
    return {**ident, "index_created": created}


def plan(
    run_id: str,
    root=None,
    embedder=None,
    cfg: ChunkConfig | None = None,
    docs_per_batch: int | None = None,
    batch_chunks: int | None = None,
):
    """Compare the source with the index; write one manifest per batch of changed documents.

    A batch takes changed documents (in path order) until it holds ``batch_chunks`` chunks to
    embed or ``docs_per_batch`` documents: the number of batches follows the amount of change.
    """
    import pyarrow as pa

    from include.rag.stores import pgvector as pg
    from include.settings import get_settings

    t0 = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat()
    embedder = _embedder(embedder)
    cfg = cfg or ChunkConfig.from_settings()
    rag = get_settings().rag
    docs_per_batch = max(1, docs_per_batch or rag.docs_per_batch)
    batch_chunks = max(1, batch_chunks or rag.batch_chunks)
    ident = identity(embedder, cfg)

    docs = list_documents(root)
    source_paths = {d.path for d in docs}
    conn = _connect(autocommit=True)
    try:
        indexed = pg.indexed_documents(conn)
        changed = [d for d in docs if indexed.get(d.path) != (d.content_hash, ident["signature"])]
        deleted = sorted(p for p in indexed if p not in source_paths)
        reusable = pg.existing_chunk_ids(conn, [d.path for d in changed], ident["model_name"], ident["dimension"])
    finally:
        conn.close()

    # chunk the changed documents and group them into batches
    groups: list[list[tuple]] = []
    group_embed = 0
    for d in changed:
        parsed = parse(d.path, d.format, d.data)
        chunks = chunk_document(d.path, parsed, cfg)
        n_embed = sum(c.chunk_id not in reusable for c in chunks)
        if not groups or len(groups[-1]) >= docs_per_batch or group_embed >= batch_chunks:
            groups.append([])
            group_embed = 0
        groups[-1].append((d, parsed, chunks))
        group_embed += n_embed

    batches: list[str] = []
    n_chunks = n_embed_total = 0
    out_dir = staging_dir(run_id)
    for b, group in enumerate(groups):
        cols: dict[str, list] = {
            k: [] for k in ("chunk_id", "doc_path", "position", "chunk_hash", "heading", "text", "metadata", "embed")
        }
        doc_rows = []
        for d, parsed, chunks in group:
            doc_rows.append(
                {
                    "doc_path": d.path,
                    "content_hash": d.content_hash,
                    "signature": ident["signature"],
                    "title": parsed.title,
                    "format": d.format,
                    "size_bytes": d.size_bytes,
                    "n_chunks": len(chunks),
                }
            )
            for c in chunks:
                cols["chunk_id"].append(c.chunk_id)
                cols["doc_path"].append(c.doc_path)
                cols["position"].append(c.position)
                cols["chunk_hash"].append(c.chunk_hash)
                cols["heading"].append(c.heading)
                cols["text"].append(c.text)
                cols["metadata"].append(
                    json.dumps({"title": parsed.title, "format": d.format, "source_uri": d.uri, "words": c.n_words})
                )
                cols["embed"].append(c.chunk_id not in reusable)
        table = pa.table({**cols, "position": pa.array(cols["position"], pa.int32())}).replace_schema_metadata(
            {"rag_documents": json.dumps(doc_rows), "rag_identity": json.dumps(ident)}
        )
        path = out_dir / f"batch_{b:05d}.manifest.parquet"
        _write_parquet(path, table)
        batches.append(str(path))
        n_chunks += table.num_rows
        n_embed_total += sum(cols["embed"])

    result = {
        "run_id": run_id,
        "started_at": started_at,
        **ident,
        "documents_seen": len(docs),
        "documents_changed": len(changed),
        "documents_deleted": len(deleted),
        "deleted_paths": deleted,
        "batches": batches,
        "chunks_planned": n_chunks,
        "chunks_to_embed": n_embed_total,
        "plan_seconds": round(time.perf_counter() - t0, 3),
    }
    log.info(
        "rag plan: %d seen, %d changed, %d deleted, %d batches, %d chunks (%d to embed)",
        len(docs),
        len(changed),
        len(deleted),
        len(batches),
        n_chunks,
        n_embed_total,
    )
    return result


def embed_batch(manifest_uri: str, embedder=None) -> dict[str, Any]:
    """Embed the chunks of one manifest that need it; write the staged file next to it."""
    import numpy as np
    import pyarrow as pa

    t0 = time.perf_counter()
    embedder = _embedder(embedder)
    src = _path(manifest_uri)
    table = _read_parquet(src)
    meta = table.schema.metadata or {}
    ident = json.loads(meta[b"rag_identity"])
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
    staged = table.append_column("embedding", emb).replace_schema_metadata(meta)
    dst = _path(manifest_uri.replace(".manifest.parquet", ".staged.parquet"))
    _write_parquet(dst, staged)
    return {
        "staged": str(dst),
        "documents": len(json.loads(meta[b"rag_documents"])),
        "chunks": table.num_rows,
        "chunks_embedded": len(texts),
        "chunks_reused": table.num_rows - len(texts),
        "embed_seconds": round(embed_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def write_pgvector(embedded: dict[str, Any]) -> dict[str, Any]:
    """Upsert one staged batch into pgvector in one transaction."""
    import numpy as np

    from include.rag.stores import pgvector as pg

    table = _read_parquet(_path(embedded["staged"]))
    meta = table.schema.metadata
    docs = json.loads(meta[b"rag_documents"])
    ident = json.loads(meta[b"rag_identity"])
    dim = ident["dimension"]
    all_ids = table.column("chunk_id").to_pylist()
    new = table.filter(table.column("embed"))
    vectors = (
        np.asarray(new.column("embedding").combine_chunks().flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)
        if new.num_rows
        else np.zeros((0, dim), dtype=np.float32)
    )
    columns = {
        c: new.column(c).to_pylist()
        for c in ("chunk_id", "doc_path", "position", "chunk_hash", "heading", "text", "metadata")
    }
    conn = _connect()
    try:
        result = pg.write_batch(conn, docs, all_ids, columns, vectors, ident["model_name"], dim)
    finally:
        conn.close()
    return {**result, "staged": embedded["staged"]}


def delete_removed(deleted_paths: Sequence[str]) -> dict[str, int]:
    from include.rag.stores import pgvector as pg

    conn = _connect()
    try:
        return pg.delete_documents(conn, list(deleted_paths))
    finally:
        conn.close()


def setup_weaviate(embedder=None) -> dict[str, Any]:
    """Create the Weaviate collection if missing (re-create it if it holds another model)."""
    from include.rag.stores import weaviate as wv
    from include.settings import get_settings
    from include.warehouse import db

    rag = get_settings().rag
    embedder = _embedder(embedder)
    with wv.connect(rag.weaviate_conn_id) as client:
        status = wv.ensure_collection(client, rag.weaviate_collection, embedder.name)
    if status != "exists":
        db.ensure_schema()
        with db.transaction() as conn:
            conn.execute("delete from rag.weaviate_sync")  # the mirror starts empty: resync everything
    return {"collection": rag.weaviate_collection, "status": status}


def _doc_version(content_hash: str, signature: str) -> str:
    return content_hash[:24] + "-" + hashlib.sha256(signature.encode()).hexdigest()[:8]


def sync_weaviate(embedder=None) -> dict[str, Any]:
    """Bring the Weaviate collection up to pgvector, from the ``rag.weaviate_sync`` ledger.

    Per batch of documents: upsert all their chunks (uuid5 of chunk_id), delete their objects of
    another document version, then record the batch in the ledger. Removed documents are deleted.
    A failure leaves the ledger behind, so the next run redoes exactly what is missing.
    """
    from include.rag.stores import pgvector as pg
    from include.rag.stores import weaviate as wv
    from include.settings import get_settings

    rag = get_settings().rag
    embedder = _embedder(embedder)
    stats = {"documents_synced": 0, "documents_removed": 0, "objects_written": 0, "objects_deleted": 0}
    conn = _connect(autocommit=True)
    try:
        with wv.connect(rag.weaviate_conn_id) as client:
            status = wv.ensure_collection(client, rag.weaviate_collection, embedder.name)
            if status != "exists":
                conn.execute("delete from rag.weaviate_sync")
            collection = client.collections.use(rag.weaviate_collection)
            gone = [
                r[0]
                for r in conn.execute(
                    "select doc_path from rag.weaviate_sync w "
                    "where not exists (select 1 from rag.documents d where d.doc_path = w.doc_path) order by 1"
                ).fetchall()
            ]
            if gone:
                stats["objects_deleted"] += wv.delete_documents(collection, gone)
                conn.execute("delete from rag.weaviate_sync where doc_path = any(%s)", (gone,))
                stats["documents_removed"] = len(gone)
            todo = conn.execute(
                """
                select d.doc_path, d.content_hash, d.signature, d.n_chunks from rag.documents d
                left join rag.weaviate_sync w using (doc_path)
                where w.doc_path is null or w.content_hash <> d.content_hash or w.signature <> d.signature
                order by d.doc_path
                """
            ).fetchall()
            pg.register(conn)
            for group in _batches(todo, rag.docs_per_batch):
                paths = [g[0] for g in group]
                rows = conn.execute(
                    """
                    select c.chunk_id, c.doc_path, c.position, d.title, c.heading, c.text, c.model_name,
                           c.dimension, c.embedding, d.content_hash, d.signature
                    from rag.chunks c join rag.documents d using (doc_path)
                    where c.doc_path = any(%s) order by c.doc_path, c.position
                    """,
                    (paths,),
                ).fetchall()
                if any(r[6] != embedder.name for r in rows):
                    raise RuntimeError(
                        "pgvector holds chunks of another model for these documents: run the index first"
                    )
                versions = {g[0]: _doc_version(g[1], g[2]) for g in group}
                objs = [
                    {
                        "chunk_id": r[0],
                        "doc_path": r[1],
                        "doc_version": versions[r[1]],
                        "position": r[2],
                        "title": r[3],
                        "heading": r[4],
                        "text": r[5],
                        "model_name": r[6],
                        "dimension": r[7],
                    }
                    for r in rows
                ]
                vectors = [r[8].to_numpy() for r in rows]
                stats["objects_written"] += wv.upsert(collection, objs, vectors, rag.weaviate_batch_size)
                stats["objects_deleted"] += wv.delete_stale(collection, versions)
                with conn.transaction():
                    conn.execute(
                        """
                        insert into rag.weaviate_sync (doc_path, content_hash, signature, n_chunks, synced_at)
                        select *, now() from unnest(%s::text[], %s::text[], %s::text[], %s::int[])
                        on conflict (doc_path) do update set content_hash = excluded.content_hash,
                            signature = excluded.signature, n_chunks = excluded.n_chunks, synced_at = now()
                        """,
                        (paths, [g[1] for g in group], [g[2] for g in group], [g[3] for g in group]),
                    )
                stats["documents_synced"] += len(group)
    finally:
        conn.close()
    return {"collection": rag.weaviate_collection, "collection_status": status, **stats}


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
    conn = _connect()
    try:
        with conn.transaction():
            total = conn.execute(
                "select count(*) from rag.chunks where model_name = %s and dimension = %s",
                (plan_result["model_name"], plan_result["dimension"]),
            ).fetchone()[0]
            conn.execute(
                """
                insert into rag.ingest_runs (run_id, started_at, finished_at, model_name, dimension,
                    documents_seen, documents_changed, documents_deleted, chunks_embedded, chunks_reused,
                    chunks_deleted, chunks_total, weaviate_synced)
                values (%(run_id)s, %(started_at)s, now(), %(model_name)s, %(dimension)s, %(documents_seen)s,
                    %(documents_changed)s, %(documents_deleted)s, %(chunks_embedded)s, %(chunks_reused)s,
                    %(chunks_deleted)s, %(chunks_total)s, %(weaviate_synced)s)
                on conflict (run_id) do update set finished_at = now(),
                    documents_seen = excluded.documents_seen, documents_changed = excluded.documents_changed,
                    documents_deleted = excluded.documents_deleted, chunks_embedded = excluded.chunks_embedded,
                    chunks_reused = excluded.chunks_reused, chunks_deleted = excluded.chunks_deleted,
                    chunks_total = excluded.chunks_total, weaviate_synced = excluded.weaviate_synced
                """,
                {
                    "run_id": plan_result["run_id"],
                    "started_at": plan_result["started_at"],
                    "model_name": plan_result["model_name"],
                    "dimension": plan_result["dimension"],
                    **counts,
                    "chunks_total": total,
                    "weaviate_synced": (weaviate or {}).get("documents_synced"),
                },
            )
    finally:
        conn.close()
    if cleanup:
        d = staging_dir(plan_result["run_id"])
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

    embedder = _embedder(embedder)
    timed("setup", setup_index, embedder)
    p = timed("plan", plan, run_id, root, embedder)
    embedded = [timed("embed", embed_batch, b, embedder) for b in p["batches"]]
    written = [timed("write", write_pgvector, e) for e in embedded]
    deleted = timed("delete", delete_removed, p["deleted_paths"])
    wv = timed("weaviate", sync_weaviate, embedder) if with_weaviate else None
    counts = timed("record", record_run, p, embedded, written, deleted, wv)
    seconds["model_encode"] = round(sum(e["embed_seconds"] for e in embedded), 4)
    return {**counts, "batches": len(p["batches"]), "seconds": seconds}
