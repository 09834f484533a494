"""Retrieval quality on the labelled questions, and the ``ask`` command line.

The sample collection is indexed with the real local model into the real pgvector (through the
pipeline's own functions), then every labelled question is searched: the expected document must
be among the top 3 results for at least 80% of them. ``ask`` is run as a user would; the chat
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
QUESTIONS = ROOT / "include" / "rag" / "questions.json"


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


def test_labelled_questions_find_their_document_in_the_top_3(indexed):
    from include.rag.embedders import get_embedder
    from include.rag.search import search, top_documents

    questions = json.loads(QUESTIONS.read_text())["questions"]
    assert len(questions) >= 30
    embedder = get_embedder()
    top3_chunks = top3_docs = 0
    misses = []
    for item in questions:
        hits = search(item["q"], k=10, embedder=embedder)
        top3_chunks += item["doc"] in [h.doc_path for h in hits[:3]]
        top3_docs += item["doc"] in top_documents(hits)[:3]
        if item["doc"] not in [h.doc_path for h in hits[:3]]:
            misses.append((item["q"], item["doc"], [h.doc_path for h in hits[:3]]))
    share = top3_chunks / len(questions)
    report = {
        "questions": len(questions),
        "top3_chunks_hit_share": round(share, 4),
        "top3_documents_hit_share": round(top3_docs / len(questions), 4),
        "misses": misses,
    }
    (indexed["base"] / "reports").mkdir(exist_ok=True)
    (indexed["base"] / "reports" / "rag_retrieval.json").write_text(json.dumps(report, indent=2))
    print(f"\nRAG retrieval: expected document in the top 3 chunks for {top3_chunks}/{len(questions)} = {share:.1%}")
    assert share >= 0.8, report


def test_search_rejects_bad_input(indexed):
    from include.rag.search import search

    with pytest.raises(ValueError, match="store"):
        search("x", store="elasticsearch")
    with pytest.raises(ValueError, match="empty"):
        search("   ")


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
