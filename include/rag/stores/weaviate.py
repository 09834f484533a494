"""Weaviate store: a mirror of the pgvector index, through the Weaviate provider and client v4.

- The client comes from the provider's ``WeaviateHook`` (connection ``weaviate_default``:
  host/port = REST, extras ``grpc_host``/``grpc_port`` = gRPC; v4 batches and queries use gRPC).
- ``ensure_collection``: creates the collection if missing (self-provided vectors, HNSW, cosine;
  exact-match ``field`` tokenization on ids and paths). If it holds vectors of another model it is
  dropped and re-created: Weaviate cannot mix dimensions in one index, and the mirror is rebuilt
  from pgvector.
- ``upsert``: ``insert_many`` in batches, object UUID = ``generate_uuid5(chunk_id)``, so a re-run
  replaces objects instead of duplicating them. Any per-object error of a batch raises
  :class:`WeaviateWriteError` (the client only logs them).
- ``delete_*``: ``delete_many`` with filters; failures raise.
- ``vector_search`` / ``keyword_search`` / ``hybrid_search``: ``near_vector``, ``bm25`` and
  ``hybrid`` queries restricted to the current model.

``include.rag.pipeline.sync_weaviate`` decides what to write from the ``rag.weaviate_sync`` ledger.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from include.settings import get_settings

PROPERTIES = (
    # name, data type, tokenization (None = the server's default, word)
    ("chunk_id", "text", "field"),
    ("doc_path", "text", "field"),
    ("doc_version", "text", "field"),
    ("position", "int", None),
    ("title", "text", None),
    ("heading", "text", None),
    ("text", "text", None),
    ("model_name", "text", "field"),
    ("dimension", "int", None),
)
RETURN_PROPERTIES = ["chunk_id", "doc_path", "position", "heading", "text", "title", "model_name"]
KEYWORD_PROPERTIES = ("heading", "text")  # what BM25 reads (the text starts with the breadcrumb)
HYBRID_ALPHA = 0.5
DELETE_PAGE = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS: one delete_many matches at most this


class WeaviateWriteError(RuntimeError):
    """A batch (or delete) reported errors: nothing is marked as synced."""


def object_uuid(chunk_id: str) -> str:
    from weaviate.util import generate_uuid5

    return str(generate_uuid5(chunk_id))


@contextmanager
def connect(conn_id: str | None = None) -> Iterator[Any]:
    """A connected ``weaviate.WeaviateClient`` from the provider's hook; closed on exit."""
    from airflow.providers.weaviate.hooks.weaviate import WeaviateHook

    if conn_id is None:
        conn_id = get_settings().rag.weaviate_conn_id
    client = WeaviateHook(conn_id=conn_id).get_conn()
    try:
        yield client
    finally:
        client.close()


def _property_configs():
    from weaviate.classes.config import DataType, Property, Tokenization

    types = {"text": DataType.TEXT, "int": DataType.INT}
    toks = {"field": Tokenization.FIELD, None: None}
    return [Property(name=n, data_type=types[t], tokenization=toks[tok]) for n, t, tok in PROPERTIES]


def ensure_collection(client, name: str, model_name: str) -> str:
    """'created', 'recreated' (held another model's vectors) or 'exists'."""
    from weaviate.classes.config import Configure, VectorDistances
    from weaviate.classes.query import Filter

    if client.collections.exists(name):
        other = client.collections.use(name).query.fetch_objects(
            filters=Filter.by_property("model_name").not_equal(model_name), limit=1
        )
        if not other.objects:
            return "exists"
        client.collections.delete(name)
        status = "recreated"
    else:
        status = "created"
    client.collections.create(
        name,
        description="RAG chunks: mirror of the pgvector table rag.chunks (dags/rag_ingestion.py)",
        properties=_property_configs(),
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        ),
    )
    return status


def upsert(collection, rows: Sequence[dict[str, Any]], vectors, batch_size: int = 200) -> int:
    """Insert-or-replace objects (uuid5 of chunk_id) in batches; raise on any failed object."""
    from weaviate.classes.data import DataObject
    from weaviate.exceptions import WeaviateInsertManyAllFailedError

    written = 0
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        objects = [
            DataObject(
                uuid=object_uuid(row["chunk_id"]),
                properties={n: row[n] for n, _, _ in PROPERTIES},
                vector=[float(x) for x in vectors[start + i]],
            )
            for i, row in enumerate(part)
        ]
        try:
            result = collection.data.insert_many(objects)
        except WeaviateInsertManyAllFailedError as exc:
            raise WeaviateWriteError(
                f"Weaviate rejected all {len(objects)} objects of a batch (first: {part[0]['chunk_id']}): {exc}"
            ) from exc
        if result.has_errors:
            first = sorted(result.errors.items())[:3]
            detail = "; ".join(f"{part[i]['chunk_id']}: {err.message}" for i, err in first)
            raise WeaviateWriteError(
                f"Weaviate rejected {len(result.errors)} of {len(objects)} objects of a batch: {detail}"
            )
        written += len(objects)
    return written


def _delete(collection, where) -> int:
    deleted = 0
    for _ in range(1000):
        result = collection.data.delete_many(where=where)
        if result.failed:
            raise WeaviateWriteError(f"Weaviate failed to delete {result.failed} of {result.matches} objects")
        deleted += result.successful
        if result.matches < DELETE_PAGE:
            return deleted
    raise WeaviateWriteError("delete_many did not converge")


def delete_documents(collection, doc_paths: Sequence[str]) -> int:
    from weaviate.classes.query import Filter

    if not doc_paths:
        return 0
    return _delete(collection, Filter.by_property("doc_path").contains_any(list(doc_paths)))


def delete_stale(collection, versions: dict[str, str]) -> int:
    """Objects of these documents whose doc_version is not the current one."""
    from weaviate.classes.query import Filter

    if not versions:
        return 0
    where = Filter.any_of(
        [
            Filter.by_property("doc_path").equal(path) & Filter.by_property("doc_version").not_equal(version)
            for path, version in versions.items()
        ]
    )
    return _delete(collection, where)


def _hits(result, score) -> list[dict[str, Any]]:
    return [
        {
            "chunk_id": o.properties["chunk_id"],
            "doc_path": o.properties["doc_path"],
            "position": int(o.properties["position"]),
            "heading": o.properties["heading"],
            "text": o.properties["text"],
            "metadata": {"title": o.properties.get("title")},
            "score": score(o.metadata),
        }
        for o in result.objects
    ]


def _common(k: int, model_name: str, metadata: str) -> dict[str, Any]:
    """The arguments every query shares: limit, this model's objects only, what to return."""
    from weaviate.classes.query import Filter, MetadataQuery

    return {
        "limit": int(k),
        "filters": Filter.by_property("model_name").equal(model_name),
        "return_metadata": MetadataQuery(**{metadata: True}),
        "return_properties": RETURN_PROPERTIES,
    }


def vector_search(collection, query_vector, k: int, model_name: str) -> list[dict[str, Any]]:
    """``near_vector``: top-k by cosine similarity among this model's objects."""
    result = collection.query.near_vector(
        near_vector=[float(x) for x in query_vector], **_common(k, model_name, "distance")
    )
    return _hits(result, lambda m: 1.0 - float(m.distance))


def keyword_search(collection, question: str, k: int, model_name: str) -> list[dict[str, Any]]:
    """``bm25`` over the text properties (any term), among this model's objects."""
    result = collection.query.bm25(
        query=question, query_properties=list(KEYWORD_PROPERTIES), **_common(k, model_name, "score")
    )
    return _hits(result, lambda m: float(m.score))


def hybrid_search(collection, question: str, query_vector, k: int, model_name: str) -> list[dict[str, Any]]:
    """Weaviate's ``hybrid`` query: BM25 (every term, as on pgvector) and the vector, rank-fused.

    ``alpha`` 0.5 weighs both sides equally; ``HybridFusion.RANKED`` is reciprocal rank fusion,
    the same rule as ``include.rag.search.rrf`` on pgvector.
    """
    from weaviate.classes.query import BM25Operator, HybridFusion

    result = collection.query.hybrid(
        query=question,
        vector=[float(x) for x in query_vector],
        alpha=HYBRID_ALPHA,
        query_properties=list(KEYWORD_PROPERTIES),
        fusion_type=HybridFusion.RANKED,
        bm25_operator=BM25Operator.and_(),
        **_common(k, model_name, "score"),
    )
    return _hits(result, lambda m: float(m.score))
