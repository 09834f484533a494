"""The Weaviate path: the provider's hook + weaviate-client v4 against a stand-in server.

No Weaviate server can run here, so ``rag_weaviate_standin.WeaviateStandIn`` answers the
client's real REST calls and real gRPC messages (its own generated stubs). Everything on our
side is real: the hook builds the client from an Airflow connection, the DAG runs with
``dag.test()``, pgvector is the real PostgreSQL, embeddings come from the real local model.
Covered: collection creation, upsert, re-run without duplicates, deletes, a failed batch
raising (and the next run repairing), vector, keyword (bm25) and hybrid search, model change,
unreachable server.
"""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest

from tests.integration.rag_weaviate_standin import WeaviateStandIn
from tests.integration.test_rag_ingestion import SAMPLE_DOCS, ensure_pools, load_dag

pytestmark = pytest.mark.integration

SUBSET = (
    "runbooks/etl.md",
    "runbooks/rag_ingestion.md",
    "reference/glossary.md",
    "reference/vector-stores.md",
    "guides/faq.html",
    "notes/on-call-checklist.txt",
)
COLLECTION = "RagChunkTest"


@pytest.fixture(scope="module")
def wv_env(tmp_path_factory):
    from include.warehouse import db

    base = tmp_path_factory.mktemp("rag_wv")
    docs = base / "docs"
    for rel in SUBSET:
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_DOCS / rel, docs / rel)
    mp = pytest.MonkeyPatch()
    with WeaviateStandIn() as server:
        mp.setenv("AIRFLOW_CONN_WEAVIATE_DEFAULT", server.connection_uri)
        mp.setenv("MLOPS_WEAVIATE_ENABLED", "true")
        mp.setenv("MLOPS_WEAVIATE_COLLECTION", COLLECTION)
        mp.setenv("MLOPS_WEAVIATE_BATCH_SIZE", "7")  # several gRPC batches per document group
        mp.setenv("MLOPS_DOCS_URI", "file://" + str(docs))
        mp.setenv("MLOPS_ARTIFACTS_URI", "file://" + str(base / "artifacts"))
        mp.setenv("MLOPS_RAG_DOCS_PER_BATCH", "2")
        mp.setenv("MLOPS_TASK_RETRIES", "0")
        for var in ("MLOPS_RAG_EMBEDDER", "MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH"):
            mp.delenv(var, raising=False)
        with db.transaction() as conn:
            conn.execute("drop schema if exists rag cascade")
        db.ensure_schema()
        ensure_pools()
        yield {"server": server, "docs": docs, "dag": load_dag(), "mp": mp}
    mp.undo()


def pg_chunks() -> dict[str, tuple]:
    from include.warehouse import db

    conn = db.connect(autocommit=True)
    try:
        from include.rag.stores.pgvector import register

        register(conn)
        rows = conn.execute("select chunk_id, doc_path, text, embedding from rag.chunks").fetchall()
    finally:
        conn.close()
    return {r[0]: (r[1], r[2], r[3].to_numpy()) for r in rows}


def assert_mirror_equals_pgvector(server) -> int:
    objects = server.objects(COLLECTION)
    chunks = pg_chunks()
    assert len(objects) == len(chunks), "duplicates or missing objects"
    by_chunk = {o["props"]["chunk_id"]: (u, o) for u, o in objects.items()}
    assert set(by_chunk) == set(chunks)
    for cid, (doc_path, text, vec) in chunks.items():
        u, obj = by_chunk[cid]
        assert u == str(uuid.uuid5(uuid.NAMESPACE_DNS, cid))  # weaviate.util.generate_uuid5
        assert obj["props"]["doc_path"] == doc_path and obj["props"]["text"] == text
        assert obj["props"]["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
        np.testing.assert_allclose(obj["vector"], vec, rtol=0, atol=1e-6)
    return len(objects)


def ledger() -> dict[str, str]:
    from include.warehouse import db

    return dict(db.fetch_all("select doc_path, content_hash from rag.weaviate_sync"))


def run(dag):
    dr = dag.test()
    return dr, {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state for ti in dr.get_task_instances()
    }


class TestWeaviateMirror:
    def test_1_dag_creates_collection_and_upserts(self, wv_env):
        server = wv_env["server"]
        dr, states = run(wv_env["dag"])
        assert dr.state == "success", states
        assert states["setup_weaviate"] == "success" and states["sync_weaviate"] == "success"
        assert COLLECTION in server.store.classes
        cls = server.store.classes[COLLECTION]
        assert cls["vectorConfig"]["default"]["vectorIndexConfig"]["distance"] == "cosine"
        assert {p["name"]: p.get("tokenization") for p in cls["properties"]}["chunk_id"] == "field"
        n = assert_mirror_equals_pgvector(server)
        assert n > len(SUBSET)
        assert set(ledger()) == set(SUBSET)
        assert server.store.calls.count("BatchObjects") >= n / 7  # batches of MLOPS_WEAVIATE_BATCH_SIZE

    def test_2_rerun_and_full_resync_do_not_duplicate(self, wv_env):
        from include.rag import weaviate_sync
        from include.warehouse import db

        server = wv_env["server"]
        n = len(server.objects(COLLECTION))
        server.store.calls.clear()
        dr, states = run(wv_env["dag"])  # no change: nothing to send
        assert dr.state == "success" and "BatchObjects" not in server.store.calls
        with db.transaction() as conn:
            conn.execute("delete from rag.weaviate_sync")  # forget the ledger: everything is re-sent
        stats = weaviate_sync.sync_weaviate()
        assert stats["objects_written"] == n and stats["documents_synced"] == len(SUBSET)
        assert assert_mirror_equals_pgvector(server) == n

    def test_3_edit_replaces_and_delete_removes(self, wv_env):
        server = wv_env["server"]
        doc = wv_env["docs"] / "runbooks" / "etl.md"
        doc.write_text(doc.read_text().replace("## Re-running a day", "## Re-running a day\n\nCheck the ledger.\n"))
        (wv_env["docs"] / "guides" / "faq.html").unlink()
        dr, states = run(wv_env["dag"])
        assert dr.state == "success", states
        assert_mirror_equals_pgvector(server)
        assert not [o for o in server.objects(COLLECTION).values() if o["props"]["doc_path"] == "guides/faq.html"]
        assert "guides/faq.html" not in ledger()

    def test_4_failed_batch_raises_and_next_run_repairs(self, wv_env):
        from include.rag import weaviate_sync
        from include.rag.chunking import ChunkConfig, chunk_document
        from include.rag.documents import parse
        from include.rag.stores.weaviate import WeaviateWriteError
        from include.warehouse import db

        server = wv_env["server"]
        rel = "reference/glossary.md"
        doc = wv_env["docs"] / rel
        doc.write_text(doc.read_text() + "\n## Upsert\nInsert a row, or update it when the key exists.\n")
        old_hash = ledger()[rel]
        new_ids = {
            c.chunk_id
            for c in chunk_document(rel, parse(rel, "markdown", doc.read_bytes()), ChunkConfig.from_settings())
        }
        # 1. through the DAG, one object of the batch rejected (a partial failure: the client only
        #    logs those): sync_weaviate fails, so the run fails; pgvector is already updated
        server.store.reject.add(sorted(new_ids)[-1])
        dr, states = run(wv_env["dag"])
        assert dr.state == "failed"
        assert states["write_pgvector[0]"] == "success" and states["sync_weaviate"] == "failed"
        assert states["record_run"] == "upstream_failed"
        assert ledger()[rel] == old_hash  # not marked as synced
        assert {r[0] for r in db.fetch_all("select chunk_id from rag.chunks where doc_path = %s", (rel,))} == new_ids

        # 2. every object rejected (the client raises its own error): ours, naming a chunk
        server.store.reject.update(new_ids)
        with pytest.raises(WeaviateWriteError, match="reference/glossary.md::"):
            weaviate_sync.sync_weaviate()
        assert ledger()[rel] == old_hash

        # 3. server healthy again: the next sync repairs exactly what was missing
        server.store.reject.clear()
        stats = weaviate_sync.sync_weaviate()
        assert stats["documents_synced"] == 1
        assert_mirror_equals_pgvector(server)
        assert ledger()[rel] != old_hash

    def test_5_search_through_weaviate(self, wv_env):
        from include.rag.search import search

        q = "how are Weaviate object UUIDs chosen so that re-runs do not duplicate objects?"
        wv_hits = search(q, k=3, store="weaviate", mode="vector")
        pg_hits = search(q, k=3, store="pgvector", mode="vector")
        assert wv_hits[0].doc_path == "reference/vector-stores.md"
        assert [h.chunk_id for h in wv_hits] == [h.chunk_id for h in pg_hits]
        assert wv_hits[0].score == pytest.approx(pg_hits[0].score, abs=1e-4)

    def test_5b_keyword_and_hybrid_queries_through_weaviate(self, wv_env):
        """bm25 and hybrid go to the server as the client's real gRPC queries; an exact setting
        name, which the vector ranking misses, comes first in both stores' hybrid results."""
        from include.rag.search import search

        server = wv_env["server"]
        server.store.searches.clear()
        ident = "MLOPS_RAG_BATCH_CHUNKS"
        assert search(ident, k=3, store="weaviate", mode="keyword")[0].doc_path == "runbooks/rag_ingestion.md"
        hybrid = search(ident, k=3, store="weaviate")  # the default mode
        assert server.store.searches == ["bm25_search", "hybrid_search"]
        assert hybrid[0].doc_path == "runbooks/rag_ingestion.md"
        assert "MLOPS_RAG_BATCH_CHUNKS" in hybrid[0].text
        assert hybrid[0].chunk_id == search(ident, k=3, store="pgvector")[0].chunk_id
        assert hybrid[0].score > hybrid[1].score > 0
        # every term must match on the BM25 side: a word found nowhere leaves only the vector side
        only_vector = search(ident + " zebra", k=3, store="weaviate")
        assert [h.chunk_id for h in only_vector] == [
            h.chunk_id for h in search(ident + " zebra", k=3, store="weaviate", mode="vector")
        ]

    def test_6_model_change_recreates_collection(self, wv_env):
        from include.rag import weaviate_sync
        from include.warehouse import db
        from tests.integration.test_rag_ingestion import HashingEmbedder

        server = wv_env["server"]
        assert weaviate_sync.setup_weaviate()["status"] == "exists"
        result = weaviate_sync.setup_weaviate(HashingEmbedder())
        assert result["status"] == "recreated"
        assert server.objects(COLLECTION) == {}
        assert db.fetch_one("select count(*) from rag.weaviate_sync")[0] == 0

    def test_7_unreachable_server_fails_clearly(self, wv_env, monkeypatch):
        import json
        import socket

        from include.rag import weaviate_sync

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv(
            "AIRFLOW_CONN_WEAVIATE_DEFAULT",
            json.dumps({"conn_type": "weaviate", "host": "127.0.0.1", "port": port, "extra": {"grpc_port": port}}),
        )
        with pytest.raises(Exception, match="(?i)connect"):
            weaviate_sync.setup_weaviate()
