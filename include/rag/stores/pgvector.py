"""pgvector store: the system of record of the RAG index (schema ``rag``, DDL 005_rag.sql).

Writes go through one transaction per batch of documents: the batch's chunk rows are binary-COPYed
into a temporary staging table, the documents rows are upserted, the batch documents' chunks
that no longer exist are deleted and the staged chunks upserted by ``chunk_id``. A batch is
therefore either fully visible or not at all, and a re-run of the same batch is a no-op.
Vectors go over the wire in pgvector's binary format (the ``pgvector`` package's psycopg adapter).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

HNSW_VECTOR_MAX_DIM = 2000  # pgvector: HNSW on vector up to 2,000 dimensions
HNSW_HALFVEC_MAX_DIM = 4000  # ... on halfvec up to 4,000

# the columns of rag.chunks a batch writes: the chunk's own (also the manifest's), then the model's
CHUNK_FIELDS = ("chunk_id", "doc_path", "position", "chunk_hash", "heading", "text", "metadata")
CHUNK_COLUMNS = (*CHUNK_FIELDS, "model_name", "dimension", "embedding")
_COPY_TYPES = ["text", "text", "int4", "text", "text", "text", "jsonb", "text", "int4", "vector"]


def _vtype(dim: int) -> str:
    if dim <= HNSW_VECTOR_MAX_DIM:
        return f"vector({dim})"
    if dim <= HNSW_HALFVEC_MAX_DIM:
        return f"halfvec({dim})"
    raise ValueError(f"{dim} dimensions: pgvector's HNSW index supports at most {HNSW_HALFVEC_MAX_DIM}")


def vector_expr(dim: int) -> str:
    """The indexed expression for ``dim``; queries must order by exactly this to use the index."""
    return f"(embedding::{_vtype(dim)})"


def index_name(dim: int) -> str:
    return f"chunks_embedding_{int(dim)}_hnsw"


def register(conn) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)


def ensure_vector_index(conn, dim: int) -> bool:
    """Create the HNSW cosine index of dimension ``dim`` if missing. True when it was created."""
    dim = int(dim)
    exists = conn.execute(
        "select 1 from pg_indexes where schemaname = 'rag' and indexname = %s", (index_name(dim),)
    ).fetchone()
    if exists:
        return False
    ops = "vector_cosine_ops" if dim <= HNSW_VECTOR_MAX_DIM else "halfvec_cosine_ops"
    conn.execute(
        f"create index if not exists {index_name(dim)} on rag.chunks "
        f"using hnsw ({vector_expr(dim)} {ops}) where dimension = {dim}"
    )
    return True


def indexed_documents(conn) -> dict[str, tuple[str, str]]:
    """doc_path -> (content_hash, signature) of every document in the index."""
    rows = conn.execute("select doc_path, content_hash, signature from rag.documents").fetchall()
    return {path: (h, sig) for path, h, sig in rows}


def existing_chunk_ids(conn, doc_paths: Sequence[str], model_name: str, dimension: int) -> set[str]:
    """Chunk ids of these documents already embedded with this model (their vectors are reused)."""
    if not doc_paths:
        return set()
    rows = conn.execute(
        "select chunk_id from rag.chunks where doc_path = any(%s) and model_name = %s and dimension = %s",
        (list(doc_paths), model_name, dimension),
    ).fetchall()
    return {r[0] for r in rows}


def write_batch(
    conn,
    documents: Sequence[dict[str, Any]],
    chunk_ids: Sequence[str],
    embedded: dict[str, Sequence[Any]],
    vectors: np.ndarray,
    model_name: str,
    dimension: int,
) -> dict[str, int]:
    """One transaction: documents upserted, stale chunks deleted, new chunks upserted.

    ``documents``: dicts with doc_path, content_hash, signature, title, format, size_bytes, n_chunks.
    ``chunk_ids``: every chunk id of these documents in the new version (embedded or reused).
    ``embedded``: columns (chunk_id, doc_path, position, chunk_hash, heading, text, metadata) of
    the chunks to write, aligned with the rows of ``vectors``.
    """
    n = len(embedded["chunk_id"])
    if vectors.shape != (n, dimension):
        raise ValueError(f"vectors shape {vectors.shape} != ({n}, {dimension})")
    paths = [d["doc_path"] for d in documents]
    with conn.transaction():
        register(conn)
        conn.execute(
            "create temp table if not exists rag_chunks_stage "
            "(like rag.chunks including defaults) on commit delete rows"
        )
        with conn.cursor() as cur:
            with cur.copy(f"copy rag_chunks_stage ({', '.join(CHUNK_COLUMNS)}) from stdin (format binary)") as cp:
                cp.set_types(_COPY_TYPES)
                meta = embedded["metadata"]
                for i in range(n):
                    cp.write_row(
                        (
                            embedded["chunk_id"][i],
                            embedded["doc_path"][i],
                            int(embedded["position"][i]),
                            embedded["chunk_hash"][i],
                            embedded["heading"][i],
                            embedded["text"][i],
                            meta[i] if isinstance(meta[i], str) else json.dumps(meta[i]),
                            model_name,
                            dimension,
                            vectors[i],
                        )
                    )
        conn.execute(
            """
            insert into rag.documents as d
                (doc_path, content_hash, signature, title, format, size_bytes, n_chunks, indexed_at)
            select * , now() from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                        %s::bigint[], %s::int[])
            on conflict (doc_path) do update set
                content_hash = excluded.content_hash, signature = excluded.signature,
                title = excluded.title, format = excluded.format, size_bytes = excluded.size_bytes,
                n_chunks = excluded.n_chunks, indexed_at = excluded.indexed_at
            """,
            (
                paths,
                [d["content_hash"] for d in documents],
                [d["signature"] for d in documents],
                [d["title"] for d in documents],
                [d["format"] for d in documents],
                [int(d["size_bytes"]) for d in documents],
                [int(d["n_chunks"]) for d in documents],
            ),
        )
        deleted = conn.execute(
            "delete from rag.chunks where doc_path = any(%s) and not (chunk_id = any(%s))",
            (paths, list(chunk_ids)),
        ).rowcount
        written = conn.execute(
            f"""
            insert into rag.chunks ({", ".join(CHUNK_COLUMNS)}, embedded_at)
            select {", ".join(CHUNK_COLUMNS)}, now() from rag_chunks_stage
            on conflict (chunk_id) do update set
                position = excluded.position, heading = excluded.heading, text = excluded.text,
                metadata = excluded.metadata, model_name = excluded.model_name,
                dimension = excluded.dimension, embedding = excluded.embedding,
                embedded_at = excluded.embedded_at
            """
        ).rowcount
        present = conn.execute(
            "select count(*) from rag.chunks where doc_path = any(%s) and model_name = %s and dimension = %s",
            (paths, model_name, dimension),
        ).fetchone()[0]
        if present != len(chunk_ids):
            raise RuntimeError(
                f"batch of {len(paths)} documents: {present} chunks in the index after the write, "
                f"expected {len(chunk_ids)} (a reused chunk vanished?): rolled back; re-run the DAG"
            )
    return {"chunks_written": written, "chunks_deleted": deleted, "documents_written": len(paths)}


def delete_documents(conn, doc_paths: Sequence[str]) -> dict[str, int]:
    """Remove documents and all their chunks, in one transaction."""
    if not doc_paths:
        return {"documents_deleted": 0, "chunks_deleted": 0}
    with conn.transaction():
        chunks = conn.execute("delete from rag.chunks where doc_path = any(%s)", (list(doc_paths),)).rowcount
        docs = conn.execute("delete from rag.documents where doc_path = any(%s)", (list(doc_paths),)).rowcount
    return {"documents_deleted": docs, "chunks_deleted": chunks}


# Full-text side: the query gets the same treatment as the generated column ``tsv`` (005_rag.sql).
_TSQUERY = (
    "(select coalesce(array_to_string(array(select quote_literal(l) from unnest(tsvector_to_array("
    "to_tsvector('english', regexp_replace(%(q)s, '[./:]+', ' ', 'g')))) l where l !~ '\\\\'), %(op)s), '')"
    ")::tsquery"
)
_ROW = "chunk_id, doc_path, position, heading, text, metadata"


def _hits(rows) -> list[dict[str, Any]]:
    names = ("chunk_id", "doc_path", "position", "heading", "text", "metadata", "score")
    return [{**dict(zip(names, r, strict=True)), "score": float(r[6])} for r in rows]


def vector_search(conn, query_vector, k: int, model_name: str, dimension: int) -> list[dict[str, Any]]:
    """Top-k chunks by cosine similarity, through the HNSW index of ``dimension``."""
    register(conn)
    expr = vector_expr(dimension)
    qcast = f"%(q)s::vector::{_vtype(dimension)}"
    with conn.transaction():
        # filtered HNSW scans: keep scanning until k rows pass the model filter (pgvector >= 0.8)
        conn.execute("set local hnsw.iterative_scan = relaxed_order")
        conn.execute(f"set local hnsw.ef_search = {max(40, 4 * int(k))}")
        rows = conn.execute(
            f"""
            select {_ROW}, 1 - ({expr} <=> {qcast}) as score
            from rag.chunks
            where dimension = {int(dimension)} and model_name = %(model)s
            order by {expr} <=> {qcast}
            limit %(k)s
            """,
            {"q": query_vector, "model": model_name, "k": int(k)},
        ).fetchall()
    return _hits(rows)


def keyword_search(
    conn, question: str, k: int, model_name: str, dimension: int, match: str = "any"
) -> list[dict[str, Any]]:
    """Top-k chunks by PostgreSQL full-text rank (``ts_rank``), through the GIN index on ``tsv``.

    ``match="any"``: a chunk qualifies with one of the question's terms (a plain keyword search);
    ``"all"``: only chunks holding every term (``plainto_tsquery``'s rule), the precise list that
    hybrid search fuses with the vector ranking.
    """
    if match not in ("any", "all"):
        raise ValueError(f"match must be 'any' or 'all', got {match!r}")
    rows = conn.execute(
        f"""
        select {_ROW}, ts_rank(tsv, query) as score
        from rag.chunks, (select {_TSQUERY} as query) q
        where tsv @@ query and dimension = %(dim)s and model_name = %(model)s
        order by score desc, chunk_id
        limit %(k)s
        """,
        {
            "q": question,
            "op": " | " if match == "any" else " & ",
            "model": model_name,
            "dim": int(dimension),
            "k": int(k),
        },
    ).fetchall()
    return _hits(rows)


# --- run ledger and Weaviate mirror ledger ----------------------------------------------------

_RUN_COLUMNS = ("run_id", "started_at", "model_name", "dimension", "documents_seen", "documents_changed")
_RUN_COLUMNS += (
    "documents_deleted",
    "chunks_embedded",
    "chunks_reused",
    "chunks_deleted",
    "chunks_total",
    "weaviate_synced",
)


def record_ingest_run(conn, run: dict[str, Any]) -> int:
    """Upsert the run's counts into ``rag.ingest_runs`` (one transaction); returns chunks_total.

    ``run``: every column of ``_RUN_COLUMNS`` but ``chunks_total``, which is counted here (the
    chunks of the run's model), in the same transaction.
    """
    cols = ", ".join(_RUN_COLUMNS)
    values = ", ".join(f"%({c})s" for c in _RUN_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS[4:])
    with conn.transaction():
        total = conn.execute(
            "select count(*) from rag.chunks where model_name = %s and dimension = %s",
            (run["model_name"], run["dimension"]),
        ).fetchone()[0]
        conn.execute(
            f"insert into rag.ingest_runs ({cols}, finished_at) values ({values}, now()) "
            f"on conflict (run_id) do update set finished_at = now(), {updates}",
            {**run, "chunks_total": total},
        )
    return total


def reset_weaviate_ledger(conn) -> None:
    """The mirror starts empty (collection created or re-created): every document is resent."""
    conn.execute("delete from rag.weaviate_sync")


def weaviate_removed(conn) -> list[str]:
    """Documents in the Weaviate ledger that are no longer in the index."""
    rows = conn.execute(
        "select doc_path from rag.weaviate_sync w "
        "where not exists (select 1 from rag.documents d where d.doc_path = w.doc_path) order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def forget_weaviate_documents(conn, doc_paths: Sequence[str]) -> None:
    conn.execute("delete from rag.weaviate_sync where doc_path = any(%s)", (list(doc_paths),))


def weaviate_pending(conn) -> list[tuple[str, str, str, int]]:
    """(doc_path, content_hash, signature, n_chunks) of documents the mirror lacks at this version."""
    return conn.execute(
        """
        select d.doc_path, d.content_hash, d.signature, d.n_chunks from rag.documents d
        left join rag.weaviate_sync w using (doc_path)
        where w.doc_path is null or w.content_hash <> d.content_hash or w.signature <> d.signature
        order by d.doc_path
        """
    ).fetchall()


def chunks_of(conn, doc_paths: Sequence[str]) -> list[dict[str, Any]]:
    """Every chunk of these documents with its vector (numpy) and document title, in order."""
    register(conn)
    rows = conn.execute(
        """
        select c.chunk_id, c.doc_path, c.position, d.title, c.heading, c.text, c.model_name,
               c.dimension, c.embedding
        from rag.chunks c join rag.documents d using (doc_path)
        where c.doc_path = any(%s) order by c.doc_path, c.position
        """,
        (list(doc_paths),),
    ).fetchall()
    names = ("chunk_id", "doc_path", "position", "title", "heading", "text", "model_name", "dimension", "embedding")
    return [{**dict(zip(names, r, strict=True)), "embedding": r[8].to_numpy()} for r in rows]


def mark_weaviate_synced(conn, documents: Sequence[tuple[str, str, str, int]]) -> None:
    """Record (doc_path, content_hash, signature, n_chunks) as mirrored, in one transaction."""
    with conn.transaction():
        conn.execute(
            """
            insert into rag.weaviate_sync (doc_path, content_hash, signature, n_chunks, synced_at)
            select *, now() from unnest(%s::text[], %s::text[], %s::text[], %s::int[])
            on conflict (doc_path) do update set content_hash = excluded.content_hash,
                signature = excluded.signature, n_chunks = excluded.n_chunks, synced_at = now()
            """,
            tuple(list(col) for col in zip(*documents, strict=True)),
        )
