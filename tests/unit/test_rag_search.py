"""Pure parts of retrieval and staging: reciprocal rank fusion, the scores, the manifest contract."""

from __future__ import annotations

import json

import pytest


def _rows(*ids):
    return [{"chunk_id": c, "doc_path": c.split(":")[0]} for c in ids]


def test_rrf_sums_reciprocal_ranks_and_breaks_ties_by_chunk_id():
    from include.rag.search import rrf

    fused = rrf([_rows("a", "b", "c"), _rows("c", "d")], k=60)
    score = {r["chunk_id"]: r["score"] for r in fused}
    assert score["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert score["a"] == pytest.approx(1 / 61) and score["d"] == pytest.approx(1 / 62)
    assert [r["chunk_id"] for r in fused] == ["c", "a", "b", "d"]  # b (1/62) ties d (1/62): by id
    # a ranking that is empty (no chunk holds every term) leaves the other's order unchanged
    assert [r["chunk_id"] for r in rrf([_rows("x", "y", "z"), []])] == ["x", "y", "z"]


def test_scores_hit_at_k_and_mrr():
    from include.rag.evaluation import rank_of, scores

    assert rank_of("b", ["a", "b", "b"]) == 2 and rank_of("z", ["a"]) is None
    s = scores([1, 2, 4, None])
    assert s == {"n": 4, "hit@1": 0.25, "hit@3": 0.5, "mrr": round((1 + 0.5 + 0.25) / 4, 4)}


def test_labelled_questions_have_known_styles(tmp_path):
    from include.rag.evaluation import STYLES, load_questions

    questions = load_questions()
    assert {q["style"] for q in questions} == set(STYLES)
    bad = tmp_path / "q.json"
    bad.write_text(json.dumps({"questions": [{"q": "x", "doc": "a.md", "style": "vibes"}]}))
    with pytest.raises(ValueError, match="vibes"):
        load_questions(bad)


def test_manifest_round_trip_through_object_storage(tmp_path, monkeypatch):
    from include.rag import manifest
    from include.rag.chunking import ChunkConfig, chunk_document
    from include.rag.documents import SourceDocument, content_hash, parse

    monkeypatch.setenv("MLOPS_ARTIFACTS_URI", "file://" + str(tmp_path / "artifacts"))
    data = b"# Title\n\n## Part\n\n" + b"word " * 300
    doc = SourceDocument("a/b.md", "file:///x/a/b.md", content_hash(data), len(data), "markdown", data)
    parsed = parse(doc.path, doc.format, doc.data)
    chunks = chunk_document(doc.path, parsed, ChunkConfig(chunk_words=120, overlap_words=24))
    ident = {"model_name": "m", "dimension": 3, "signature": "m|3|x"}
    table = manifest.build([(doc, parsed, chunks)], ident, reusable={chunks[0].chunk_id})
    assert tuple(table.column_names) == manifest.COLUMNS
    uri = manifest.write(manifest.manifest_path("run/1", 0), table)
    assert uri.startswith("file://") and "/rag/staging/run_1/batch_00000.manifest.parquet" in uri
    m = manifest.read(uri)
    assert m.identity == ident
    assert m.documents == [manifest.document_row(doc, parsed, len(chunks), "m|3|x")]
    assert m.table.column("embed").to_pylist() == [False] + [True] * (len(chunks) - 1)
    assert manifest.staged_uri(uri).endswith("batch_00000.staged.parquet")
    import pyarrow as pa

    plain = manifest.write(manifest.staging_dir("run/1") / "other.parquet", pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="not a RAG manifest"):
        manifest.read(plain)
