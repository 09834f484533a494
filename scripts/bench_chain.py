"""Bench section ``chain``: the whole ``make run`` chain and the scheduler's overhead.

``run(workdir)`` (called by scripts/bench.py with the bench environment) starts from empty bench
databases, starts a real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor)
and runs exactly what ``make run`` runs (``scripts.run_chain.run_chain``: the simulated days in
two phases, before and after the drift, ETL backfills, everything else through asset events,
drift-triggered retraining). Figures:

- ``chain_wall_s``: from the first ETL run starting to the last run of the chain finishing
  (``rag_ingestion`` excluded: it is not part of the chain), both phases included;
- ``asset_trigger_latency_s``: the median, over every run created by an asset event, of the time
  from the triggering event to the consumer run's first task starting (scheduler and
  dag-processor overhead, what a `[scheduler]` tuning would change); ``asset_trigger_latency_max_s``
  and ``asset_triggered_runs`` beside it;
- ``chain_days``, ``chain_drift_detected`` and ``chain_retraining_runs_triggered_by_drift`` to
  show that the chain measured is the real one.
"""

from __future__ import annotations

import os
import shutil
import statistics
from pathlib import Path

from scripts.stack import parse_ts


def trigger_latencies(stack) -> list[float]:
    """Seconds from each run's triggering asset event to its first task's start."""
    latencies = []
    for event in stack.asset_events():
        for ref in event.get("created_dagruns") or []:
            if not ref.get("triggering", True):
                continue
            starts = [
                parse_ts(t["start_date"])
                for t in stack.task_instances(ref["dag_id"], ref["run_id"])
                if t.get("start_date")
            ]
            if starts:
                latencies.append((min(starts) - parse_ts(event["timestamp"])).total_seconds())
    return latencies


def run(workdir: Path) -> dict:
    from scripts.bench import fresh_databases
    from scripts.run_chain import prepare, run_chain, run_days

    # a clean slate: the runs and data of other bench sections must not count here
    fresh_databases()
    for key in ("MLOPS_LANDING_URI", "MLOPS_ARCHIVE_URI", "MLOPS_ARTIFACTS_URI"):
        shutil.rmtree(os.environ[key].removeprefix("file://"), ignore_errors=True)

    start, end, drift_start = run_days()
    stack = prepare(os.environ.copy())
    try:
        summary = run_chain(stack, start, end, drift_start, timeout=1800, backfill_parallelism=2)
        latencies = trigger_latencies(stack)
    finally:
        stack.stop()
    failed = {d: s["failed"] for d, s in summary["airflow"]["runs"].items() if s.get("failed")}
    if failed:
        raise RuntimeError(f"chain runs failed: {failed}")
    return {
        "chain_wall_s": summary["airflow"]["chain_wall_s"],
        "chain_days": summary["etl"]["days_loaded"],
        "chain_runs": summary["airflow"]["runs"],
        "chain_drift_detected": summary["drift"]["drift_detected"],
        "chain_retraining_runs_triggered_by_drift": summary["drift"]["retraining_runs_triggered_by_drift"],
        "asset_trigger_latency_s": round(statistics.median(latencies), 2) if latencies else None,
        "asset_trigger_latency_max_s": round(max(latencies), 2) if latencies else None,
        "asset_triggered_runs": len(latencies),
    }
