"""Bench section ``retrieval``: hit@1, hit@3 and MRR of the vector, keyword and hybrid rankers.

The shipped collection (``include/rag/docs``) is indexed with the real local model into the bench
warehouse through the DAG's own functions (``include.rag.pipeline.run_once``), then every labelled
question of ``include/rag/questions.json`` is ranked by the three rankers of
``include.rag.search`` (pgvector store) and scored per question style by
``include.rag.evaluation`` -- the same numbers ``tests/integration/test_rag_retrieval.py`` asserts.

- ``<mode>.<style>``: {n, hit@1, hit@3, mrr} for mode in vector / keyword / hybrid and style in
  original / paraphrase / identifier / all;
- ``hybrid_at_least_best_on_every_style``: hybrid >= max(vector, keyword) on every style and
  metric (goal: true); ``hybrid_hit3_all`` (goal >= 0.9);
- ``query_ms_median``: what a search costs per ranker (the hybrid runs both queries), measured
  on an open connection with the question already embedded, and ``embed_query_ms_median``;
- ``hybrid_misses``: the questions hybrid does not place in the top 3, for the record.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from scripts.stack_env import environ_restored

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("MLOPS_DOCS_URI", "MLOPS_ARTIFACTS_URI", "MLOPS_RAG_EMBEDDER", "MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH")


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def _latencies(questions, embedder) -> dict:
    from include.rag.search import MODES, pgvector_ranking
    from include.warehouse import db

    texts = [q["q"] for q in questions]
    embed_ms = []
    vectors = []
    for text in texts:
        t0 = time.perf_counter()
        vectors.append(embedder.embed_query(text))
        embed_ms.append((time.perf_counter() - t0) * 1000)
    out = {}
    conn = db.connect(autocommit=True)
    try:
        for mode in MODES:
            ms = []
            for text, vector in zip(texts, vectors, strict=True):
                t0 = time.perf_counter()
                pgvector_ranking(conn, text, 10, mode, embedder, vector)
                ms.append((time.perf_counter() - t0) * 1000)
            out[mode] = round(statistics.median(ms), 2)
    finally:
        conn.close()
    return {"query_ms_median": out, "embed_query_ms_median": round(statistics.median(embed_ms), 2)}


def run(workdir: Path) -> dict:
    from include.rag import pipeline
    from include.rag.embedders import LocalEmbedder, get_embedder
    from include.rag.evaluation import STYLES, evaluate, load_questions
    from include.warehouse import db

    with environ_restored(KEYS):
        os.environ["MLOPS_DOCS_URI"] = "file://" + str(ROOT / "include" / "rag" / "docs")
        os.environ["MLOPS_ARTIFACTS_URI"] = "file://" + str(workdir / "artifacts")
        os.environ["MLOPS_RAG_EMBEDDER"] = "local"
        os.environ.pop("MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", None)
        with db.transaction() as conn:
            conn.execute("drop schema if exists rag cascade")
        db.ensure_schema()
        embedder = get_embedder()
        assert isinstance(embedder, LocalEmbedder)
        counts = pipeline.run_once("bench_retrieval", embedder=embedder)
        questions = load_questions()
        result = evaluate(questions, embedder=embedder)
        at_least = all(
            result["hybrid"][s][m] >= max(result["vector"][s][m], result["keyword"][s][m])
            for s in STYLES
            for m in ("hit@1", "hit@3", "mrr")
        )
        figures = {
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _commit(),
            "chunks": counts["chunks_total"],
            "questions": {s: sum(q["style"] == s for q in questions) for s in STYLES},
            **{
                f"{mode}.{style}": result[mode][style]
                for mode in ("vector", "keyword", "hybrid")
                for style in (*STYLES, "all")
            },
            "hybrid_at_least_best_on_every_style": at_least,
            "hybrid_hit3_all": result["hybrid"]["all"]["hit@3"],
            **_latencies(questions, embedder),
            "hybrid_misses": [
                f"[{m['style']}] {m['q']} -> {m['doc']} (rank {m['rank']})" for m in result["hybrid"]["misses"]
            ],
        }
        return figures
