"""Bench section ``rag``: real ``rag_ingestion`` DAG runs against a raw ``model.encode``.

``run(workdir)`` (called by scripts/bench.py with the bench environment) builds a collection of
at least ``MIN_CHUNKS`` chunks from variants of the shipped documents (``include/rag/docs``
copied under ``variant<i>/`` folders, each file with one line naming its variant, so no two
chunks are the same text), starts a real Airflow (api-server, scheduler, dag-processor,
triggerer; LocalExecutor: every task its own process) and triggers ``rag_ingestion``:

- ``dag_throughput_ratio_vs_raw_encode`` (goal >= 0.7): chunks/s of the first DAG run (from the run's
  start to its end as Airflow records them: planning, the mapped ``embed_batch`` tasks -- each a
  separate task process that loads the model --, the pgvector writes, the run record) divided by
  chunks/s of a bare ``model.encode`` of the very same chunk texts, same model and batch size, in
  this process with the model already loaded (the best plain way to embed them). The raw encode
  runs just before the DAG runs and just after them (mean of the two), while the stack is idle.
- ``dag_nochange_rerun_ratio`` (goal <= 0.1): wall time of a second DAG run with nothing changed
  (no document re-embedded, no embedding task mapped) / the first run's.
- per-task figures from the task instances: ``embed_tasks``, their summed and maximum duration,
  and ``embed_task_model_load_s`` (the mean time a task spent outside ``model.encode``: model
  load and Parquet staging) from the tasks' return values.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scripts.stack import parse_ts
from scripts.stack_env import environ_restored

ROOT = Path(__file__).resolve().parents[1]
MIN_CHUNKS = int(os.environ.get("MLOPS_BENCH_RAG_MIN_CHUNKS", "2000"))
RUN_TIMEOUT_S = 1800


def make_collection(target: Path, min_chunks: int) -> list[str]:
    """Variants of the shipped documents under ``target`` until they chunk into >= ``min_chunks``;
    returns the chunk texts (the project's own listing, parsing and chunking)."""
    from airflow.sdk import ObjectStoragePath

    from include.rag.chunking import ChunkConfig, chunk_document
    from include.rag.documents import list_documents, parse

    source = ROOT / "include" / "rag" / "docs"
    files = [p for p in sorted(source.rglob("*")) if p.is_file()]
    cfg = ChunkConfig.from_settings()
    texts: list[str] = []
    i = 0
    while len(texts) < min_chunks:
        folder = target / f"variant{i:02d}"
        for p in files:
            out = folder / p.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            data = p.read_text()
            if p.suffix in (".md", ".txt"):  # a first line of its own: the variant's chunks differ
                data = f"{data.rstrip()}\n\nVariant {i} of this page, generated for the benchmark.\n"
            out.write_text(data)
        i += 1
        texts += [
            c.text
            for d in list_documents(ObjectStoragePath("file://" + str(folder)))
            for c in chunk_document(d.path, parse(d.path, d.format, d.data), cfg)
        ]
    return texts


def _raw_encode_seconds(embedder, texts: list[str]) -> float:
    t0 = time.perf_counter()
    embedder.model.encode(
        texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return time.perf_counter() - t0


def _wait_all_runs(stack) -> list[dict]:
    """Wait until every ``rag_ingestion`` run is finished; returns them, oldest first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = stack.dag_runs("rag_ingestion")
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"rag_ingestion runs not finished after {RUN_TIMEOUT_S} s: {runs}")
        time.sleep(1.0)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise RuntimeError(f"rag_ingestion runs failed: {failed}")
    return sorted(runs, key=lambda r: parse_ts(r["start_date"]))


def _embedded(stack, run: dict) -> list[dict]:
    tis = stack.task_instances("rag_ingestion", run["dag_run_id"])
    return [t for t in tis if t["task_id"] == "embed_batch" and t["state"] == "success"]


def _wall(run: dict) -> float:
    return (parse_ts(run["end_date"]) - parse_ts(run["start_date"])).total_seconds()


def measured_runs(stack) -> tuple[dict, dict]:
    """(the first run, which embedded the collection; a later run that found nothing to do).

    Unpausing lets the cron schedule (``catchup=False``) create a run of its latest interval
    beside the one triggered here; ``max_active_runs=1`` runs them one after the other. Whichever
    embedded is the first run; a run after it is the no-change run (one is triggered if needed).
    """
    stack.trigger("rag_ingestion")
    runs = _wait_all_runs(stack)
    embedding = [r for r in runs if _embedded(stack, r)]
    if len(embedding) != 1:
        raise RuntimeError(f"expected exactly one run to embed the collection, got {len(embedding)}: {runs}")
    first = embedding[0]
    later = [r for r in runs if parse_ts(r["start_date"]) >= parse_ts(first["end_date"])]
    if not later:
        stack.trigger("rag_ingestion")
        later = [r for r in _wait_all_runs(stack) if parse_ts(r["start_date"]) >= parse_ts(first["end_date"])]
    again = later[0]
    if _embedded(stack, again):
        raise RuntimeError(f"the no-change run {again['dag_run_id']} embedded chunks")
    return first, again


def _embed_return(stack, run_id: str, map_index: int) -> dict | None:
    """The return value of one mapped embed_batch task (its own timing of ``model.encode``)."""
    from scripts.stack import StackError

    try:
        entry = stack.api(
            "GET",
            f"/dags/rag_ingestion/dagRuns/{run_id}/taskInstances/embed_batch/xcomEntries/return_value",
            params={"map_index": map_index, "deserialize": "true", "stringify": "false"},
        )
    except StackError:
        return None
    value = entry.get("value")
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _duration(ti: dict) -> float:
    return (parse_ts(ti["end_date"]) - parse_ts(ti["start_date"])).total_seconds()


def run(workdir: Path) -> dict:
    keys = ("MLOPS_DOCS_URI", "MLOPS_RAG_EMBEDDER", "MLOPS_WEAVIATE_ENABLED")
    with environ_restored(keys):
        return _run(workdir)


def _run(workdir: Path) -> dict:
    from include.rag.embedders import LocalEmbedder, get_embedder
    from include.warehouse import db
    from scripts.load_settings import load as load_settings
    from scripts.stack import AirflowStack

    docs = workdir / "docs"
    os.environ["MLOPS_DOCS_URI"] = "file://" + str(docs)
    os.environ["MLOPS_RAG_EMBEDDER"] = "local"
    os.environ["MLOPS_WEAVIATE_ENABLED"] = "false"
    texts = make_collection(docs, MIN_CHUNKS)
    with db.transaction() as conn:
        conn.execute("drop schema if exists rag cascade")
    db.ensure_schema()

    embedder = get_embedder()
    assert isinstance(embedder, LocalEmbedder)
    embedder.embed(["warm-up: load the model and its kernels"])
    raw_before = _raw_encode_seconds(embedder, texts)

    stack = AirflowStack(os.environ.copy())
    stack.start()
    try:
        load_settings(stack)
        stack.wait_dags(["rag_ingestion"])
        stack.set_paused("rag_ingestion", False)
        first, again = measured_runs(stack)
        first_id, first_s, again_s = first["dag_run_id"], _wall(first), _wall(again)
        first_tis = stack.task_instances("rag_ingestion", first_id)
        raw_after = _raw_encode_seconds(embedder, texts)
        embed_returns = [
            _embed_return(stack, first_id, t["map_index"]) for t in first_tis if t["task_id"] == "embed_batch"
        ]
    finally:
        stack.stop()
    stored = db.fetch_one("select count(*) from rag.chunks")[0]
    assert stored == len(texts), (stored, len(texts))
    embeds = [t for t in first_tis if t["task_id"] == "embed_batch" and t["state"] == "success"]
    # the DAG's cron schedule must not have indexed the collection before the measured run
    assert len(embeds) >= 2, f"the measured first run embedded in {len(embeds)} task(s): {first_tis}"
    raw_s = (raw_before + raw_after) / 2
    dag_cps, raw_cps = len(texts) / first_s, len(texts) / raw_s
    embed_durations = [_duration(t) for t in embeds]
    encode_s = [float(r.get("embed_seconds", 0.0)) for r in embed_returns if isinstance(r, dict)]
    return {
        "dag_throughput_ratio_vs_raw_encode": round(dag_cps / raw_cps, 3),
        "dag_nochange_rerun_ratio": round(again_s / first_s, 4),
        "chunks": len(texts),
        "documents": len([p for p in docs.rglob("*") if p.is_file()]),
        "embed_batch_size": embedder.batch_size,
        "dag_first_run_s": round(first_s, 2),
        "dag_nochange_run_s": round(again_s, 2),
        "dag_chunks_per_s": round(dag_cps, 1),
        "raw_encode_s": [round(raw_before, 2), round(raw_after, 2)],
        "raw_encode_chunks_per_s": round(raw_cps, 1),
        "embed_tasks": len(embeds),
        "embed_tasks_sum_s": round(sum(embed_durations), 2),
        "embed_task_max_s": round(max(embed_durations), 2) if embed_durations else None,
        "embed_tasks_encode_sum_s": round(sum(encode_s), 2) if encode_s else None,
        "embed_task_outside_encode_mean_s": round((sum(embed_durations) - sum(encode_s)) / len(encode_s), 2)
        if encode_s
        else None,
        "first_run_tasks_s": {
            f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: round(_duration(t), 2)
            for t in first_tis
            if t.get("start_date") and t.get("end_date")
        },
    }
