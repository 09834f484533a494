"""rag_ingestion through real DAG runs (``dag.test()``), real PostgreSQL + pgvector, the real
local embedding model, on a copy of the sample collection.

One scenario, in order (each step builds on the index the previous one left):
first run embeds every chunk -> a no-change run embeds none (nothing mapped) -> editing one
document re-embeds only its changed chunks -> deleting one removes its chunks -> a model change
re-embeds everything -> a model of another dimension gets its own HNSW index.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from include.rag.embedders import Embedder

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DOCS = ROOT / "include" / "rag" / "docs"
DAG_FILE = ROOT / "dags" / "rag_ingestion.py"


class HashingEmbedder(Embedder):
    """A deterministic 64-dimension bag-of-words embedder: stands for "another model with another
    dimension" (only one real model is installed offline). Used by the dimension-change step only."""

    name = "test/hashing-64"
    dimension = 64

    def embed(self, texts):
        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def load_dag():
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location("rag_ingestion_dag_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (dag,) = [v for v in vars(module).values() if isinstance(v, DAG)]
    return dag


def ensure_pools() -> None:
    from airflow.models.pool import Pool

    from include.dag_defaults import EMBEDDING_POOL, WAREHOUSE_POOL

    for name, slots in ((WAREHOUSE_POOL, 6), (EMBEDDING_POOL, 2)):
        Pool.create_or_update_pool(name=name, slots=slots, description="rag tests", include_deferred=False)


def run_dag(dag) -> tuple[object, dict[str, str], dict]:
    """One dag.test() run -> (dag run, {task_id[map_index]: state}, rag.ingest_runs row)."""
    from include.warehouse import db

    dr = dag.test()
    states = {}
    for ti in dr.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[key] = ti.state
    assert dr.state == "success", states
    cols = (
        "documents_seen documents_changed documents_deleted chunks_embedded chunks_reused chunks_deleted chunks_total"
    ).split()
    row = db.fetch_one(f"select {', '.join(cols)} from rag.ingest_runs where run_id = %s", (dr.run_id,))
    assert row is not None, f"no rag.ingest_runs row for {dr.run_id}"
    return dr, states, dict(zip(cols, row, strict=True))


def chunk_rows() -> dict[str, tuple]:
    from include.warehouse import db

    return {
        r[0]: r[1:]
        for r in db.fetch_all("select chunk_id, doc_path, model_name, dimension, embedded_at from rag.chunks")
    }


def asset_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "rag_index")
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(e.extra or {}) for e in rows]


def expected_chunks(docs_dir: Path) -> dict[str, list[str]]:
    """doc path -> chunk ids, computed with the library directly (independent of the DAG)."""
    from airflow.sdk import ObjectStoragePath

    from include.rag.chunking import ChunkConfig, chunk_document
    from include.rag.documents import list_documents, parse

    cfg = ChunkConfig.from_settings()
    out = {}
    for d in list_documents(ObjectStoragePath("file://" + str(docs_dir))):
        out[d.path] = [c.chunk_id for c in chunk_document(d.path, parse(d.path, d.format, d.data), cfg)]
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private copy of the sample collection and artifact store; fresh rag schema."""
    from include.warehouse import db

    base = tmp_path_factory.mktemp("rag_dag")
    docs = base / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_DOCS_URI", "file://" + str(docs))
    mp.setenv("MLOPS_ARTIFACTS_URI", "file://" + str(base / "artifacts"))
    mp.setenv("MLOPS_REPORTS_DIR", str(base / "reports"))
    mp.setenv("MLOPS_RAG_DOCS_PER_BATCH", "8")
    mp.setenv("MLOPS_WEAVIATE_ENABLED", "false")
    mp.setenv("MLOPS_TASK_RETRIES", "0")
    for var in ("MLOPS_RAG_EMBEDDER", "MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", "MLOPS_RAG_CHUNK_WORDS"):
        mp.delenv(var, raising=False)
    with db.transaction() as conn:
        conn.execute("drop schema if exists rag cascade")
    db.ensure_schema()
    ensure_pools()
    yield {"docs": docs, "base": base, "dag": load_dag(), "mp": mp}
    mp.undo()


class TestIncrementalIngestion:
    def test_1_first_run_embeds_every_chunk(self, env):
        expected = expected_chunks(env["docs"])
        n_docs, n_chunks = len(expected), sum(len(v) for v in expected.values())
        assert n_docs >= 30 and n_chunks > n_docs

        dr, states, counts = run_dag(env["dag"])

        assert counts == {
            "documents_seen": n_docs,
            "documents_changed": n_docs,
            "documents_deleted": 0,
            "chunks_embedded": n_chunks,
            "chunks_reused": 0,
            "chunks_deleted": 0,
            "chunks_total": n_chunks,
        }
        rows = chunk_rows()
        assert sorted(rows) == sorted(c for ids in expected.values() for c in ids)
        assert {(r[1], r[2]) for r in rows.values()} == {("sentence-transformers/all-MiniLM-L6-v2", 384)}
        # dynamic mapping follows the change: ceil(docs / 8) embedding and write tasks
        n_batches = -(-n_docs // 8)
        assert sorted(k for k in states if k.startswith("embed_batch[")) == [
            f"embed_batch[{i}]" for i in range(n_batches)
        ]
        assert all(states[f"write_pgvector[{i}]"] == "success" for i in range(n_batches))
        assert states["setup_weaviate"] == "skipped" and states["sync_weaviate"] == "skipped"
        assert states["publish_index"] == "success"
        assert asset_events()[-1] == {
            **{k: v for k, v in counts.items()},
            "model_name": "sentence-transformers/all-MiniLM-L6-v2",
        }
        # staging files are removed after a successful run
        assert not list((env["base"] / "artifacts").rglob("*.parquet"))
        env["first_rows"] = rows

    def test_2_no_change_run_embeds_nothing(self, env):
        events_before = len(asset_events())
        dr, states, counts = run_dag(env["dag"])

        assert counts["documents_changed"] == 0 and counts["chunks_embedded"] == 0
        assert counts["chunks_deleted"] == 0 and counts["documents_seen"] == len(expected_chunks(env["docs"]))
        assert states["embed_batch"] == "skipped" and states["write_pgvector"] == "skipped"  # nothing mapped
        assert states["publish_index"] == "skipped"
        assert len(asset_events()) == events_before  # no Asset event for a no-op run
        assert chunk_rows() == env["first_rows"]  # not even embedded_at moved

        from include.rag.summary import summary_section

        section = summary_section()
        assert {
            k: section[k] for k in ("documents_seen", "documents_changed", "chunks_embedded", "chunks_deleted")
        } == {
            "documents_seen": counts["documents_seen"],
            "documents_changed": 0,
            "chunks_embedded": 0,
            "chunks_deleted": 0,
        }

    def test_3_editing_one_document_reembeds_only_its_changed_chunks(self, env):
        doc = env["docs"] / "runbooks" / "etl.md"
        before = expected_chunks(env["docs"])
        doc.write_text(
            doc.read_text().replace(
                "## Re-running a day",
                "## Re-running a day\n\nAlways check the load ledger before and after a re-run.\n",
            )
        )
        after = expected_chunks(env["docs"])
        assert {p for p in after if after[p] != before[p]} == {"runbooks/etl.md"}
        new_ids = set(after["runbooks/etl.md"]) - set(before["runbooks/etl.md"])
        gone_ids = set(before["runbooks/etl.md"]) - set(after["runbooks/etl.md"])
        assert new_ids and len(new_ids) < len(after["runbooks/etl.md"])  # a partial change

        dr, states, counts = run_dag(env["dag"])

        assert counts["documents_changed"] == 1
        assert counts["chunks_embedded"] == len(new_ids)
        assert counts["chunks_reused"] == len(after["runbooks/etl.md"]) - len(new_ids)
        assert counts["chunks_deleted"] == len(gone_ids)
        assert [k for k in states if k.startswith("embed_batch[")] == ["embed_batch[0]"]
        rows = chunk_rows()
        assert set(rows) == {c for ids in after.values() for c in ids}
        changed = {cid for cid, r in rows.items() if env["first_rows"].get(cid) != r}
        assert changed == new_ids  # every other chunk is untouched, vectors and timestamps included
        env["first_rows"] = rows

    def test_4_deleting_a_document_removes_its_chunks(self, env):
        (env["docs"] / "guides" / "faq.html").unlink()
        n_faq = sum(1 for r in env["first_rows"].values() if r[0] == "guides/faq.html")
        assert n_faq > 0

        dr, states, counts = run_dag(env["dag"])

        assert counts["documents_deleted"] == 1 and counts["documents_changed"] == 0
        assert counts["chunks_embedded"] == 0 and counts["chunks_deleted"] == n_faq
        rows = chunk_rows()
        assert not [r for r in rows.values() if r[0] == "guides/faq.html"]
        assert rows == {k: v for k, v in env["first_rows"].items() if v[0] != "guides/faq.html"}
        from include.warehouse import db

        assert db.fetch_one("select count(*) from rag.documents where doc_path = 'guides/faq.html'")[0] == 0
        assert asset_events()[-1]["chunks_deleted"] == n_faq
        env["first_rows"] = rows

    def test_5_model_change_reembeds_everything(self, env):
        # The same weights with a shorter input window are a different embedding space; the
        # recorded model id changes, so every chunk must be re-embedded (no vector mixing).
        env["mp"].setenv("MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", "128")
        try:
            dr, states, counts = run_dag(env["dag"])
        finally:
            env["mp"].delenv("MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH")
        n = len(env["first_rows"])
        assert counts["documents_changed"] == counts["documents_seen"]
        assert counts["chunks_embedded"] == n and counts["chunks_reused"] == 0 and counts["chunks_total"] == n
        rows = chunk_rows()
        assert set(rows) == set(env["first_rows"])  # same chunks (ids do not depend on the model)
        assert {(r[1], r[2]) for r in rows.values()} == {("sentence-transformers/all-MiniLM-L6-v2@seq128", 384)}
        assert all(rows[c][3] > env["first_rows"][c][3] for c in rows)

    def test_6_other_dimension_gets_its_own_index_and_search_uses_it(self, env):
        from include.rag.search import search
        from include.warehouse import db

        env["mp"].setenv("MLOPS_RAG_EMBEDDER", f"{__name__}:HashingEmbedder")
        try:
            dr, states, counts = run_dag(env["dag"])
            hits = search("how do I re-run a failed day in the etl pipeline", k=3)
        finally:
            env["mp"].delenv("MLOPS_RAG_EMBEDDER")
        n = len(env["first_rows"])
        assert counts["chunks_embedded"] == n and counts["chunks_total"] == n
        assert db.fetch_all("select distinct model_name, dimension from rag.chunks") == [("test/hashing-64", 64)]
        assert db.fetch_one("select count(*) from pg_indexes where indexname = 'chunks_embedding_64_hnsw'")[0] == 1
        assert hits and all(h.doc_path for h in hits)
        conn = db.connect(autocommit=True)
        try:
            # the table is tiny: take the cheaper plans away so the plan shows whether the partial
            # HNSW index *can* serve this query (its expression and predicate match)
            conn.execute("set enable_seqscan = off")
            conn.execute("set enable_sort = off")
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "explain select chunk_id from rag.chunks where dimension = 64 and model_name = 'test/hashing-64' "
                    "order by (embedding::vector(64)) <=> %s::vector(64) limit 3",
                    ("[" + ",".join(["0.1"] * 64) + "]",),
                ).fetchall()
            )
        finally:
            conn.close()
        assert "chunks_embedding_64_hnsw" in plan


def test_dag_parses_light_and_follows_the_conventions(monkeypatch):
    """Structure: pools, mapping, outlets, defaults; no heavy imports at parse time."""
    import subprocess
    import sys

    # heavy modules the DAG file adds on top of what importing Airflow itself loads
    code = (
        f"import json, sys, runpy; import airflow.sdk; before = set(sys.modules); runpy.run_path({str(DAG_FILE)!r}); "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'numpy', 'pandas', 'pyarrow', 'weaviate', "
        "'openai', 'psycopg', 'sklearn', 'scipy') if m in sys.modules and m not in before]; print(json.dumps(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

    from include.dag_defaults import EMBEDDING_POOL, WAREHOUSE_POOL

    monkeypatch.delenv("MLOPS_TASK_RETRIES", raising=False)
    dag = load_dag()
    assert dag.catchup is False and dag.max_active_runs == 1 and dag.doc_md
    tasks = {t.task_id: t for t in dag.tasks}
    assert tasks["embed_batch"].pool == EMBEDDING_POOL
    for tid in ("plan", "write_pgvector", "delete_removed", "record_run", "sync_weaviate"):
        assert tasks[tid].pool == WAREHOUSE_POOL, tid
    assert [o.name for o in tasks["publish_index"].outlets] == ["rag_index"]
    assert all(t.retries >= 2 and t.retry_exponential_backoff for t in dag.tasks)
