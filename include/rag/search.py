"""Retrieval: ``search(question, k, store)`` over the pgvector index or its Weaviate mirror.

The question is embedded with the configured embedder (the same one that built the index) and
compared by cosine similarity with the stored vectors of that model only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STORES = ("pgvector", "weaviate")


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


def search(question: str, k: int = 5, store: str = "pgvector", embedder=None) -> list[Hit]:
    if store not in STORES:
        raise ValueError(f"store must be one of {STORES}, got {store!r}")
    if not question or not question.strip():
        raise ValueError("empty question")
    if embedder is None:
        from include.rag.embedders import get_embedder

        embedder = get_embedder()
    query = embedder.embed_query(question)
    if store == "pgvector":
        from include.rag.stores import pgvector as pg
        from include.warehouse import db

        conn = db.connect(autocommit=True)
        try:
            rows = pg.search(conn, query, k, embedder.name, embedder.dimension)
        finally:
            conn.close()
    else:
        from include.rag.stores import weaviate as wv
        from include.settings import get_settings

        rag = get_settings().rag
        with wv.connect(rag.weaviate_conn_id) as client:
            rows = wv.search(client.collections.use(rag.weaviate_collection), query, k, embedder.name)
    return [Hit(**row) for row in rows]


def top_documents(hits: list[Hit]) -> list[str]:
    """Distinct documents of ``hits`` in rank order."""
    seen: list[str] = []
    for h in hits:
        if h.doc_path not in seen:
            seen.append(h.doc_path)
    return seen
