"""The optional Weaviate mirror of the pgvector index: ``setup_weaviate`` and ``sync_weaviate`` tasks.

What to write comes from the ``rag.weaviate_sync`` ledger (the document versions the mirror
holds), never from the run's own plan: a run where Weaviate was down is caught up by the next one.
The SQL lives in ``include.rag.stores.pgvector``, the Weaviate calls in ``include.rag.stores.weaviate``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from include.rag.embedders import get_embedder
from include.rag.stores import pgvector as pg
from include.rag.stores import weaviate as wv
from include.settings import get_settings
from include.warehouse import db


def doc_version(content_hash: str, signature: str) -> str:
    """What a Weaviate object records of its document's version (content and index signature)."""
    return content_hash[:24] + "-" + hashlib.sha256(signature.encode()).hexdigest()[:8]


def setup_weaviate(embedder=None) -> dict[str, object]:
    """Create the Weaviate collection if missing (re-create it if it holds another model)."""
    rag = get_settings().rag
    embedder = embedder if embedder is not None else get_embedder()
    with wv.connect(rag.weaviate_conn_id) as client:
        status = wv.ensure_collection(client, rag.weaviate_collection, embedder.name)
    if status != "exists":
        db.ensure_schema()
        with db.transaction() as conn:
            pg.reset_weaviate_ledger(conn)
    return {"collection": rag.weaviate_collection, "status": status}


def _batches(items: Sequence, size: int) -> list[Sequence]:
    size = max(1, int(size))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _sync_group(conn, collection, group, model_name: str, batch_size: int) -> dict[str, int]:
    """Upsert every chunk of these documents, delete their objects of another version, then
    record them in the ledger (only after Weaviate accepted everything)."""
    chunks = pg.chunks_of(conn, [g[0] for g in group])
    if any(c["model_name"] != model_name for c in chunks):
        raise RuntimeError("pgvector holds chunks of another model for these documents: run the index first")
    versions = {path: doc_version(content_hash, signature) for path, content_hash, signature, _ in group}
    objects = [{**c, "doc_version": versions[c["doc_path"]]} for c in chunks]
    written = wv.upsert(collection, objects, [c["embedding"] for c in chunks], batch_size)
    deleted = wv.delete_stale(collection, versions)
    pg.mark_weaviate_synced(conn, group)
    return {"objects_written": written, "objects_deleted": deleted}


def sync_weaviate(embedder=None) -> dict[str, object]:
    """Bring the Weaviate collection up to pgvector, from the ``rag.weaviate_sync`` ledger.

    1. ensure the collection (a new one empties the ledger: everything is resent);
    2. delete the objects of documents gone from the index;
    3. per batch of documents the mirror lacks: upsert, delete stale versions, record.
    A failure leaves the ledger behind, so the next run redoes exactly what is missing.
    """
    rag = get_settings().rag
    embedder = embedder if embedder is not None else get_embedder()
    stats = {"documents_synced": 0, "documents_removed": 0, "objects_written": 0, "objects_deleted": 0}
    conn = db.connect(autocommit=True)
    try:
        with wv.connect(rag.weaviate_conn_id) as client:
            status = wv.ensure_collection(client, rag.weaviate_collection, embedder.name)
            if status != "exists":
                pg.reset_weaviate_ledger(conn)
            collection = client.collections.use(rag.weaviate_collection)
            gone = pg.weaviate_removed(conn)
            if gone:
                stats["objects_deleted"] += wv.delete_documents(collection, gone)
                pg.forget_weaviate_documents(conn, gone)
                stats["documents_removed"] = len(gone)
            for group in _batches(pg.weaviate_pending(conn), rag.docs_per_batch):
                done = _sync_group(conn, collection, group, embedder.name, rag.weaviate_batch_size)
                stats["objects_written"] += done["objects_written"]
                stats["objects_deleted"] += done["objects_deleted"]
                stats["documents_synced"] += len(group)
    finally:
        conn.close()
    return {"collection": rag.weaviate_collection, "collection_status": status, **stats}
