"""Retrieval: ``search(question, k, store, mode)`` over the pgvector index or its Weaviate mirror.

Three rankers, all restricted to the vectors of the configured embedder (the one that built the
index):

- ``vector``: the question's embedding against the stored vectors (cosine, HNSW).
- ``keyword``: full-text search, any of the question's terms (pgvector store: PostgreSQL
  ``tsvector`` + GIN, ``ts_rank``; Weaviate: BM25).
- ``hybrid`` (default): both, fused. On pgvector, reciprocal rank fusion (``rrf``) of the top
  ``CANDIDATES`` of the vector ranking and of the chunks that hold *every* term of the question;
  on Weaviate, its own hybrid query (ranked fusion, BM25 with the AND operator).

Why the keyword list of the fusion requires every term: fused with the any-term list, chunks
sharing one incidental word with a paraphrased question pushed the vector ranking's right answer
out of the top 3 (measured on ``include/rag/questions.json``, see the README's retrieval
section); requiring every term keeps the list short and precise (an exact identifier, a question
in the documents' own words) and leaves paraphrases to the vector ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.rag.embedders import get_embedder
from include.rag.stores import pgvector as pg
from include.rag.stores import weaviate as wv
from include.settings import get_settings
from include.warehouse import db

STORES = ("pgvector", "weaviate")
MODES = ("hybrid", "vector", "keyword")
RRF_K = 60  # the constant of Cormack et al. (2009); 5..100 gave the same figures on the labelled set
CANDIDATES = 50  # per ranker, before fusion


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_path: str
    position: int
    heading: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> str:
        """The chunk text without its breadcrumb line."""
        return self.text.split("\n\n", 1)[-1]


def rrf(rankings: list[list[dict[str, Any]]], k: int = RRF_K) -> list[dict[str, Any]]:
    """Reciprocal rank fusion: score(chunk) = sum over rankings of 1 / (k + rank), rank from 1.

    Each ranking is a list of rows with ``chunk_id``; the fused rows carry the fused ``score``,
    best first (ties by chunk id, so the order is deterministic).
    """
    scores: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, 1):
            scores[row["chunk_id"]] = scores.get(row["chunk_id"], 0.0) + 1.0 / (k + rank)
            rows.setdefault(row["chunk_id"], row)
    order = sorted(scores, key=lambda c: (-scores[c], c))
    return [{**rows[c], "score": scores[c]} for c in order]


def pgvector_ranking(conn, question: str, k: int, mode: str, embedder, vector=None) -> list[dict[str, Any]]:
    """The ``mode`` ranking from the pgvector store on an open connection (``vector``: the
    question's embedding when the caller already has it)."""
    if mode == "keyword":
        return pg.keyword_search(conn, question, k, embedder.name, embedder.dimension)
    vector = embedder.embed_query(question) if vector is None else vector
    if mode == "vector":
        return pg.vector_search(conn, vector, k, embedder.name, embedder.dimension)
    n = max(CANDIDATES, k)
    vec = pg.vector_search(conn, vector, n, embedder.name, embedder.dimension)
    kw = pg.keyword_search(conn, question, n, embedder.name, embedder.dimension, match="all")
    return rrf([vec, kw])[:k]


def weaviate_ranking(collection, question: str, k: int, mode: str, embedder, vector=None) -> list[dict[str, Any]]:
    """The ``mode`` ranking from a Weaviate collection (same arguments as ``pgvector_ranking``)."""
    if mode == "keyword":
        return wv.keyword_search(collection, question, k, embedder.name)
    vector = embedder.embed_query(question) if vector is None else vector
    if mode == "vector":
        return wv.vector_search(collection, vector, k, embedder.name)
    return wv.hybrid_search(collection, question, vector, k, embedder.name)


def _check(question: str, store: str, mode: str) -> None:
    if store not in STORES:
        raise ValueError(f"store must be one of {STORES}, got {store!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not question or not question.strip():
        raise ValueError("empty question")


def search(question: str, k: int = 5, store: str = "pgvector", embedder=None, mode: str = "hybrid") -> list[Hit]:
    """The top ``k`` chunks for ``question`` from ``store`` by ``mode`` (hybrid, vector or keyword)."""
    _check(question, store, mode)
    embedder = embedder if embedder is not None else get_embedder()
    if store == "pgvector":
        conn = db.connect(autocommit=True)
        try:
            rows = pgvector_ranking(conn, question, k, mode, embedder)
        finally:
            conn.close()
    else:
        rag = get_settings().rag
        with wv.connect(rag.weaviate_conn_id) as client:
            rows = weaviate_ranking(client.collections.use(rag.weaviate_collection), question, k, mode, embedder)
    return [Hit(**row) for row in rows]


def top_documents(hits: list[Hit]) -> list[str]:
    """Distinct documents of ``hits`` in rank order."""
    seen: list[str] = []
    for h in hits:
        if h.doc_path not in seen:
            seen.append(h.doc_path)
    return seen
