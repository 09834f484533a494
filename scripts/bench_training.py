"""Bench section ``training``: do the mapped candidates really run side by side?

``run(workdir)`` (called by scripts/bench.py with the bench environment) seeds the bench
warehouse from the simulator (``MLOPS_BENCH_TRAIN_DAYS`` days x ``MLOPS_BENCH_TRAIN_ROWS_PER_DAY``
rows, default 21 x 10,000), builds the features with the feature DAG's own function, starts a
real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor, parallelism from
scripts/env.sh) and triggers the ``training`` DAG with ``{"force": true}``: K = 4 candidates
from ``include/training/hyperparams.yaml``, one mapped task group instance each.

Figures, from the task instances of that run (Airflow's own start and end times):

- ``mapped_group_wall_s``: first start to last end of the ``candidate`` group's task instances;
- ``candidates_sum_s``: the sum of those task instances' durations (what a serial run costs);
- ``mapped_wall_vs_sum_ratio`` = wall / sum (goal <= 0.6 on 2 cores: the candidates overlap);
- ``run_wall_s``: the whole DAG run, and ``candidates``, ``cpus``.
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from scripts.stack import parse_ts

START = date(2026, 3, 1)


def reset_warehouse() -> None:
    from include.warehouse import db

    with db.transaction() as conn:
        for schema in ("warehouse", "features", "ml"):
            conn.execute(f"drop schema if exists {schema} cascade")
    db.ensure_schema()


def prepare_features(n_days: int, rows_per_day: int) -> dict:
    from include.features.build import build_pending
    from include.features.seed import day_list, seed_days
    from include.source.simulator import SourceConfig

    reset_warehouse()
    rows = seed_days(day_list(START, n_days), SourceConfig(rows_per_day=rows_per_day, malformed_share=0.0, seed=7))
    built = build_pending()
    return {"rows": rows, "days_built": len(built["intervals_built"])}


def run(workdir: Path) -> dict:
    from scripts.load_settings import load as load_settings
    from scripts.stack import AirflowStack

    n_days = int(os.environ.get("MLOPS_BENCH_TRAIN_DAYS", "21"))
    rows_per_day = int(os.environ.get("MLOPS_BENCH_TRAIN_ROWS_PER_DAY", "10000"))
    seeded = prepare_features(n_days, rows_per_day)

    stack = AirflowStack(os.environ.copy())
    stack.start()
    try:
        load_settings(stack)
        stack.wait_dags(["training"])
        stack.set_paused("training", False)
        t0 = time.monotonic()
        run_id = stack.trigger("training", conf={"force": True})["dag_run_id"]
        deadline = time.monotonic() + 1200
        while True:
            state = stack.api("GET", f"/dags/training/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"training run {run_id} not finished after 1200 s")
            time.sleep(2.0)
        run_wall = time.monotonic() - t0
        tis = stack.task_instances("training", run_id)
    finally:
        stack.stop()
        reset_warehouse()  # the next sections start from an empty warehouse
    if state != "success":
        raise RuntimeError(f"training run {run_id} ended {state}: {[(t['task_id'], t['state']) for t in tis]}")

    group = [t for t in tis if t["task_id"].startswith("candidate.") and t.get("start_date") and t.get("end_date")]
    candidates = sorted({t["map_index"] for t in group})
    starts = [parse_ts(t["start_date"]) for t in group]
    ends = [parse_ts(t["end_date"]) for t in group]
    wall = (max(ends) - min(starts)).total_seconds()
    total = sum((e - s).total_seconds() for s, e in zip(starts, ends, strict=True))
    train_only = sum(
        (parse_ts(t["end_date"]) - parse_ts(t["start_date"])).total_seconds()
        for t in group
        if t["task_id"] == "candidate.train_candidate"
    )
    return {
        "candidates": len(candidates),
        "rows_in_window": seeded["rows"],
        "cpus": os.cpu_count(),
        "parallelism": int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "32")),
        "mapped_group_wall_s": round(wall, 2),
        "candidates_sum_s": round(total, 2),
        "train_tasks_sum_s": round(train_only, 2),
        "mapped_wall_vs_sum_ratio": round(wall / total, 3),
        "run_wall_s": round(run_wall, 1),
    }
