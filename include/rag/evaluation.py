"""Retrieval quality on the labelled questions (``include/rag/questions.json``), per style and ranker.

Each question names the document that answers it and its style: ``original`` (the documents'
own words), ``paraphrase`` (few words in common with the document) or ``identifier`` (an exact
table, column, index, asset or setting name). A ranker's result is its list of chunks; the rank of
a question is the position of the first chunk of the expected document (1 = best).

- ``hit@1`` / ``hit@3``: share of questions whose rank is at most 1 / 3;
- ``mrr``: mean of 1 / rank (0 when the document is not in the top ``DEPTH``).

``scripts/bench_retrieval.py`` and ``tests/integration/test_rag_retrieval.py`` both call
``evaluate``, so the bench's figures and the test's assertions are the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from include.rag.embedders import get_embedder
from include.rag.search import MODES, pgvector_ranking, weaviate_ranking
from include.rag.stores import weaviate as wv
from include.settings import get_settings
from include.warehouse import db

QUESTIONS = Path(__file__).with_name("questions.json")
STYLES = ("original", "paraphrase", "identifier")
DEPTH = 10


def load_questions(path: Path = QUESTIONS) -> list[dict[str, str]]:
    questions = json.loads(path.read_text())["questions"]
    unknown = {q.get("style") for q in questions} - set(STYLES)
    if unknown:
        raise ValueError(f"{path}: unknown question styles {sorted(map(str, unknown))}; expected {STYLES}")
    return questions


def rank_of(doc: str, ranked_docs: list[str]) -> int | None:
    """1-based position of the first chunk of ``doc``, None when absent."""
    return ranked_docs.index(doc) + 1 if doc in ranked_docs else None


def scores(ranks: list[int | None]) -> dict[str, float]:
    n = max(1, len(ranks))
    return {
        "n": len(ranks),
        "hit@1": round(sum(r is not None and r <= 1 for r in ranks) / n, 4),
        "hit@3": round(sum(r is not None and r <= 3 for r in ranks) / n, 4),
        "mrr": round(sum(1.0 / r for r in ranks if r is not None) / n, 4),
    }


def evaluate(
    questions: list[dict[str, str]] | None = None,
    modes: tuple[str, ...] = MODES,
    store: str = "pgvector",
    embedder=None,
) -> dict[str, Any]:
    """{mode: {style: {n, hit@1, hit@3, mrr}, "all": {...}, "misses": [...]}}.

    The rankings are ``include.rag.search``'s own; the questions are embedded in one batch and
    searched over one connection (a search per question would open one each).
    """
    questions = questions if questions is not None else load_questions()
    embedder = embedder if embedder is not None else get_embedder()
    vectors = embedder.embed([q["q"] for q in questions])
    if store == "pgvector":
        conn = db.connect(autocommit=True)
        try:
            return _evaluate(questions, vectors, modes, lambda *a: pgvector_ranking(conn, *a), embedder)
        finally:
            conn.close()
    rag = get_settings().rag
    with wv.connect(rag.weaviate_conn_id) as client:
        collection = client.collections.use(rag.weaviate_collection)
        return _evaluate(questions, vectors, modes, lambda *a: weaviate_ranking(collection, *a), embedder)


def _evaluate(questions, vectors, modes, ranking, embedder) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        ranks = []
        misses = []
        for q, vector in zip(questions, vectors, strict=True):
            docs = [row["doc_path"] for row in ranking(q["q"], DEPTH, mode, embedder, vector)]
            rank = rank_of(q["doc"], docs)
            ranks.append(rank)
            if rank is None or rank > 3:
                misses.append({"q": q["q"], "style": q["style"], "doc": q["doc"], "rank": rank, "top3": docs[:3]})
        by_style = {s: scores([r for r, q in zip(ranks, questions, strict=True) if q["style"] == s]) for s in STYLES}
        out[mode] = {**by_style, "all": scores(ranks), "misses": misses}
    return out
