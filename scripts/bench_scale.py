"""Bench section ``scale``: does the chain's cost grow linearly with the rows?

``run(workdir)`` (called by scripts/bench.py with the bench environment) runs what ``make run``
runs (``scripts.run_chain``: 14 simulated days, drift from day 10, a real scheduler with the
LocalExecutor) once per size of ``MLOPS_BENCH_SCALE_ROWS`` (rows a day, default
``2400,24000,100000``), each from empty databases and storage. Figures per size and stage
(``etl``, ``features``, ``training``, ``drift``: the DAGs ``etl``, ``feature_engineering``,
``training``, ``drift_monitoring``), from Airflow's task instances:

- ``task_s``: the sum of the stage's task durations; ``wall_s``: its first task start to its last
  task end; ``peak_rss_mb``: the largest resident set of one of its task processes (sampled every
  0.5 s from the ``airflow worker -- <ti id>`` processes), and which task;
- ``chain_wall_s`` (``chain_wall_s_100k``: goal <= 300 s here);
- ``growth_per_10x_rows``: per stage, (task time ratio) / (rows ratio) between the two largest
  sizes (1.0 = linear; goal <= 1.1); ``growth_by_pair`` gives every consecutive pair;
- ``training.run_wall_vs_bare_fit_limit`` (written to the ``training`` section, goal <= 1.5): the
  wall time of the largest size's biggest training run over its bare-fit limit, the sum of the
  bare estimator fits that run needs (every walk-forward fold and the refit of every candidate, on
  the same rows, with the same thread settings, prepared matrices given) divided by the cores.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from scripts.stack import parse_ts
from scripts.stack_env import environ_restored

STAGES = {"etl": "etl", "features": "feature_engineering", "training": "training", "drift": "drift_monitoring"}
SIZES = "2400,24000,100000"
DAYS = 14  # the size: 100,000 rows a day over 14 days is 1.4M rows


class RssSampler(threading.Thread):
    """The peak RSS of every task process (``airflow worker -- <ti id>``), sampled."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval, self.peaks, self._done = interval, {}, threading.Event()

    def run(self) -> None:
        import psutil

        while not self._done.is_set():
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info.get("cmdline") or [])  # a set title may come split on spaces
                mem = proc.info.get("memory_info")
                if cmd.startswith("airflow worker -- ") and mem:
                    ti_id = cmd.removeprefix("airflow worker -- ").strip()
                    self.peaks[ti_id] = max(self.peaks.get(ti_id, 0), mem.rss)
            self._done.wait(self.interval)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join(timeout=5)
        return self.peaks


def _duration(ti: dict) -> float:
    if not (ti.get("start_date") and ti.get("end_date")):
        return 0.0
    return (parse_ts(ti["end_date"]) - parse_ts(ti["start_date"])).total_seconds()


def stage_figures(stack, peaks: dict[str, int]) -> tuple[dict, list[dict]]:
    """Per stage: task time, wall time, peak RSS; and the training runs' walls."""
    out, training_runs = {}, []
    for stage, dag_id in STAGES.items():
        tis = []
        for r in stack.dag_runs(dag_id):
            run_tis = stack.task_instances(dag_id, r["dag_run_id"])
            tis += run_tis
            if dag_id == "training" and any(
                t["task_id"] == "candidate.train_candidate" and t["state"] == "success" for t in run_tis
            ):
                training_runs.append({"run_id": r["dag_run_id"], "wall_s": _wall(run_tis)})
        timed = [t for t in tis if t.get("start_date") and t.get("end_date")]
        peak = max(timed, key=lambda t: peaks.get(t.get("id"), 0), default=None)
        out[stage] = {
            "task_s": round(sum(_duration(t) for t in timed), 1),
            "wall_s": round(_wall(timed), 1),
            "tasks": len(timed),
            "peak_rss_mb": round(peaks.get(peak.get("id"), 0) / 2**20) if peak else None,
            "peak_rss_task": peak["task_id"] if peak and peaks.get(peak.get("id")) else None,
        }
    return out, training_runs


def _wall(tis: list[dict]) -> float:
    timed = [t for t in tis if t.get("start_date") and t.get("end_date")]
    if not timed:
        return 0.0
    return (max(parse_ts(t["end_date"]) for t in timed) - min(parse_ts(t["start_date"]) for t in timed)).total_seconds()


def bare_fit_seconds(run_id: str) -> dict:
    """The bare estimator fits a training run needed, timed one after the other in this process
    with the tasks' thread limit: every fold and the refit of every candidate, on the same rows."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from include.features.definitions import feature_set
    from include.features.store import read_features
    from include.settings import get_settings
    from include.training.candidates import build_pipeline, load_candidates
    from include.training.evaluate import Design
    from include.training.split import recency_weights, walk_forward_prefixes
    from include.warehouse import db

    with db.connect() as conn:
        window = conn.execute(
            "select train_start, valid_start, train_end, feature_set_version from ml.training_runs where run_id = %s",
            (run_id,),
        ).fetchone()
    train_start, valid_start, train_end, version = window
    s = get_settings().training
    fs = feature_set(version)
    frame = read_features(train_start, train_end, version)
    ref_end = np.datetime64(train_end.replace(tzinfo=None), "us")
    per_candidate = {}
    for cand in load_candidates():
        pipe = build_pipeline(cand, list(fs.columns), list(fs.categorical))
        design = Design(pipe, frame)
        folds = [(day, n) for day, n, _ in walk_forward_prefixes(design.days, valid_start.replace(tzinfo=None))]
        total = 0.0
        for ref_day, n in [*folds, (ref_end, len(design.y))]:
            X = pipe[1].fit_transform(design.X[:n])  # the matrix the estimator gets: not its work
            y = np.log1p(design.y[:n]) if cand.get("log_target") else design.y[:n]
            w = recency_weights(design.days[:n], ref_day, s.recency_half_life_days)
            model = pipe[2].regressor if cand.get("log_target") else pipe[2]
            with threadpool_limits(limits=s.threads_per_candidate):
                t = time.perf_counter()
                model.fit(X, y, sample_weight=w)
                total += time.perf_counter() - t
        per_candidate[cand["name"]] = round(total, 2)
    return {"rows": len(frame), "fits_per_candidate": len(folds) + 1, "bare_fit_s": per_candidate}


def run_size(rows_per_day: int, workdir: Path) -> dict:
    from scripts.bench import fresh_databases
    from scripts.run_chain import prepare, run_chain, run_days

    fresh_databases()
    for key in ("MLOPS_LANDING_URI", "MLOPS_ARCHIVE_URI", "MLOPS_ARTIFACTS_URI"):
        shutil.rmtree(os.environ[key].removeprefix("file://"), ignore_errors=True)
    os.environ["MLOPS_SOURCE_ROWS_PER_DAY"] = str(rows_per_day)
    start, end, drift_start = run_days()
    stack = prepare(os.environ.copy())
    sampler = RssSampler()
    sampler.start()
    try:
        summary = run_chain(stack, start, end, drift_start, timeout=3600, backfill_parallelism=2)
        stages, training_runs = stage_figures(stack, sampler.peaks)  # every task has ended
    finally:
        sampler.stop()
        stack.stop()
    failed = {d: s["failed"] for d, s in summary["airflow"]["runs"].items() if s.get("failed")}
    if failed:
        raise RuntimeError(f"chain runs failed at {rows_per_day} rows a day: {failed}")
    return {
        "rows_per_day": rows_per_day,
        "rows": summary["etl"].get("rows_loaded"),
        "chain_wall_s": summary["airflow"]["chain_wall_s"],
        "stages": stages,
        "training_runs": training_runs,
    }


def run(workdir: Path) -> dict:
    sizes = [int(x) for x in os.environ.get("MLOPS_BENCH_SCALE_ROWS", SIZES).split(",") if x.strip()]
    results = {}
    with environ_restored(["MLOPS_SOURCE_ROWS_PER_DAY", "MLOPS_RUN_DAYS"]):
        os.environ["MLOPS_RUN_DAYS"] = str(DAYS)
        for rows in sizes:
            print(f"   scale: {rows} rows a day", flush=True)
            results[rows] = run_size(rows, workdir)
        largest = results[sizes[-1]]
        biggest = max(largest["training_runs"], key=lambda r: r["wall_s"], default=None)
        bare = bare_fit_seconds(biggest["run_id"]) if biggest else None
    pairs = {}
    for a, b in zip(sizes, sizes[1:], strict=False):
        pairs[f"{a}_to_{b}"] = {
            stage: round(
                (results[b]["stages"][stage]["task_s"] / max(results[a]["stages"][stage]["task_s"], 1e-9)) / (b / a),
                3,
            )
            for stage in STAGES
        }
    out = {
        "days": DAYS,
        "cpus": os.cpu_count(),
        "sizes": {str(k): v for k, v in results.items()},
        "growth_by_pair": pairs,
        "growth_per_10x_rows": pairs[list(pairs)[-1]] if pairs else None,
    }
    for rows, res in results.items():
        out[f"chain_wall_s_{rows // 1000}k" if rows >= 1000 else f"chain_wall_s_{rows}"] = res["chain_wall_s"]
    if bare:
        limit = sum(bare["bare_fit_s"].values()) / (os.cpu_count() or 1)
        out["training"] = {
            "run_wall_s": round(biggest["wall_s"], 1),
            "bare_fit_limit_s": round(limit, 1),
            "run_wall_vs_bare_fit_limit": round(biggest["wall_s"] / limit, 3),
            "rows_per_day": sizes[-1],
            **bare,
        }
    return out
