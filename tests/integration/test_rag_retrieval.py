"""Retrieval quality on the labelled questions, and the ``ask`` command line.

The sample collection is indexed with the real local model into the real pgvector (through the
pipeline's own functions), then every labelled question is searched by the three rankers
(vector, keyword, hybrid): per question style, hybrid must be at least as good as the better of
the other two on hit@1, hit@3 and MRR, and find the expected document in the top 3 for at least
90% of all questions. ``ask`` is run as a user would; the chat
model is a local HTTP stand-in of the OpenAI API reached through the provider's connection.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from include.rag import pipeline
    from include.warehouse import db

    base = tmp_path_factory.mktemp("rag_retrieval")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_DOCS_URI", "file://" + str(ROOT / "include" / "rag" / "docs"))
    mp.setenv("MLOPS_ARTIFACTS_URI", "file://" + str(base / "artifacts"))
    mp.setenv("MLOPS_REPORTS_DIR", str(base / "reports"))
    for var in ("MLOPS_RAG_EMBEDDER", "MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", "MLOPS_WEAVIATE_ENABLED"):
        mp.delenv(var, raising=False)
    with db.transaction() as conn:
        conn.execute("drop schema if exists rag cascade")
    counts = pipeline.run_once("retrieval_test")
    yield {"counts": counts, "base": base, "mp": mp}
    mp.undo()


def test_hybrid_search_is_at_least_as_good_as_either_ranker_on_every_question_style(indexed):
    """hit@1, hit@3 and MRR per style for vector, keyword and hybrid on the labelled questions."""
    from include.rag.evaluation import STYLES, evaluate, load_questions

    questions = load_questions()
    count = {s: sum(q["style"] == s for q in questions) for s in STYLES}
    assert count["paraphrase"] >= 20 and count["identifier"] >= 10 and count["original"] >= 30, count
    result = evaluate(questions)
    (indexed["base"] / "reports").mkdir(exist_ok=True)
    (indexed["base"] / "reports" / "rag_retrieval.json").write_text(json.dumps(result, indent=2))
    print("\nRAG retrieval (hit@1 / hit@3 / MRR):")
    for mode in ("vector", "keyword", "hybrid"):
        print(
            f"  {mode:8s}",
            "  ".join(
                f"{s}: {result[mode][s]['hit@1']:.3f}/{result[mode][s]['hit@3']:.3f}/{result[mode][s]['mrr']:.3f}"
                for s in (*STYLES, "all")
            ),
        )
    for style in STYLES:
        for metric in ("hit@1", "hit@3", "mrr"):
            best = max(result["vector"][style][metric], result["keyword"][style][metric])
            assert result["hybrid"][style][metric] >= best, (style, metric, result["hybrid"]["misses"])
    assert result["hybrid"]["all"]["hit@3"] >= 0.9, result["hybrid"]["misses"]
    # the default search is the hybrid one
    from include.rag.search import search

    q = questions[0]["q"]
    assert [h.chunk_id for h in search(q, k=5)] == [h.chunk_id for h in search(q, k=5, mode="hybrid")]


def test_exact_identifier_split_into_words_on_both_sides(indexed):
    """'warehouse.demand_hourly' is one host token to PostgreSQL's parser: the column splits it."""
    from include.rag.search import search
    from include.warehouse import db

    hits = search("warehouse.demand_hourly", k=3, mode="keyword")
    assert hits[0].doc_path == "reference/warehouse-data-model.md", hits
    plain, split = db.fetch_one(
        """
        select bool_or(to_tsvector('english', text) @@ plainto_tsquery('english', 'warehouse.demand_hourly')),
               bool_or(tsv @@ plainto_tsquery('english', 'warehouse demand_hourly'))
        from rag.chunks where chunk_id = %s
        """,
        (hits[0].chunk_id,),
    )
    assert (plain, split) == (False, True)


def test_search_rejects_bad_input(indexed):
    from include.rag.search import search

    with pytest.raises(ValueError, match="store"):
        search("x", store="elasticsearch")
    with pytest.raises(ValueError, match="empty"):
        search("   ")
    with pytest.raises(ValueError, match="mode"):
        search("x", mode="semantic")


def test_summary_section_reports_the_last_run(indexed):
    from include.rag.summary import summary_section

    section = summary_section()
    assert section["run_id"] == "retrieval_test"
    assert {k: section[k] for k in ("documents_seen", "documents_changed", "chunks_embedded", "chunks_deleted")} == {
        k: indexed["counts"][k] for k in ("documents_seen", "documents_changed", "chunks_embedded", "chunks_deleted")
    }
    assert section["chunks_embedded"] == section["chunks_total"] > section["documents_seen"] > 30


def test_ask_prints_chunks_with_sources_without_a_chat_model(indexed, capsys, monkeypatch):
    from include.rag import ask

    monkeypatch.delenv("AIRFLOW_CONN_OPENAI_DEFAULT", raising=False)
    assert ask.main(["what", "does", "PSI", "measure?", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n[") + out.startswith("[") == 3
    assert "reference/" in out or "runbooks/" in out
    assert "no 'openai_default' connection" in out


class _ChatStandIn(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions like the OpenAI API; records the request."""

    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Clear the failed task once the file arrives [1]."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_ask_gets_a_grounded_answer_through_the_openai_connection(indexed, capsys, monkeypatch):
    from include.rag import ask

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _ChatStandIn.requests = []
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_OPENAI_DEFAULT",
            json.dumps(
                {
                    "conn_type": "openai",
                    "host": f"http://127.0.0.1:{server.server_address[1]}/v1",
                    "password": "sk-test",
                }
            ),
        )
        assert ask.main(["the daily file never arrived and the sensor failed, what now?", "--k", "4"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert "Answer:" in out and "[1]" in out and "Sources:" in out
    assert "runbooks/etl.md" in out.split("Sources:")[1]
    (req,) = _ChatStandIn.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    system, user = req["body"]["messages"]
    assert "only the numbered sources" in system["content"] and "[n]" in system["content"]
    assert "[1] (" in user["content"] and "[4] (" in user["content"] and "Question:" in user["content"]
    assert req["body"]["model"] == "gpt-4o-mini" and req["body"]["temperature"] == 0
