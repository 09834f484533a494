"""Bench section ``training``: do the mapped candidates really run side by side?

``run(workdir)`` (called by scripts/bench.py with the bench environment) seeds the bench
warehouse from the simulator (``MLOPS_BENCH_TRAIN_DAYS`` days x ``MLOPS_BENCH_TRAIN_ROWS_PER_DAY``
rows, default 21 x 10,000), builds the features with the feature DAG's own function, starts a
real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor, parallelism from
scripts/env.sh) and triggers the ``training`` DAG with ``{"force": true}`` twice on the same data:
K = 4 candidates from ``include/training/hyperparams.yaml``, one mapped task group instance each,

1. one at a time: the ``training`` pool set to 1 slot (the serial baseline, same tasks, same
   thread settings, same scheduler);
2. side by side: the pool at its ``airflow_settings.yaml`` size (slots x ``MLOPS_TRAIN_THREADS``
   <= cores).

Figures, from the task instances (Airflow's own start and end times):

- ``serial_group_wall_s`` / ``parallel_group_wall_s``: first start to last end of the
  ``candidate`` group's task instances in each run;
- ``parallel_vs_serial_wall_ratio`` = parallel / serial (goal <= 0.6 here; a true speedup
  cannot go below 1 / min(cores, slots), 0.5 on 2 cores);
- ``candidate_seconds``: per candidate, the ``train_candidate`` task's duration in the serial run
  (alone on the machine's cores) and its own split (read, walk-forward, refit, write);
  ``candidate_seconds_side_by_side`` the same in the side-by-side run (what time-sharing costs);
- ``run_wall_vs_bare_fit_limit`` (goal <= 1.5): the side-by-side run's wall time over its
  bare-fit limit, the sum of the bare estimator fits the run needs (every walk-forward fold and
  the refit of every candidate, on the same rows, the tasks' thread limit, timed here after the
  stack stopped; scripts/bench_scale.py ``bare_fit_seconds``) divided by the cores;
- ``run_wall_s`` of each run, ``candidates``, ``cpus``, ``pool_slots``, ``threads_per_task``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

from scripts.stack import StackError, parse_ts

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


def run_training(stack, timeout: float = 1800.0) -> tuple[str, float, list[dict]]:
    """Trigger a forced training run and wait: (run id, wall seconds, task instances)."""
    t0 = time.monotonic()
    run_id = stack.trigger("training", conf={"force": True})["dag_run_id"]
    deadline = t0 + timeout
    while True:
        state = stack.api("GET", f"/dags/training/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"training run {run_id} not finished after {timeout} s")
        time.sleep(2.0)
    wall = time.monotonic() - t0
    tis = stack.task_instances("training", run_id)
    if state != "success":
        raise RuntimeError(f"training run {run_id} ended {state}: {[(t['task_id'], t['state']) for t in tis]}")
    return run_id, wall, tis


def group_wall(tis: list[dict]) -> float:
    """First start to last end of the ``candidate`` group's task instances."""
    group = [t for t in tis if t["task_id"].startswith("candidate.") and t.get("start_date") and t.get("end_date")]
    return (max(parse_ts(t["end_date"]) for t in group) - min(parse_ts(t["start_date"]) for t in group)).total_seconds()


def candidate_seconds(stack, run_id: str, tis: list[dict]) -> dict:
    """Per candidate: its train task's duration and the split it returned (XCom)."""
    out = {}
    for t in tis:
        if t["task_id"] != "candidate.train_candidate":
            continue
        try:
            value = stack.api(
                "GET",
                f"/dags/training/dagRuns/{run_id}/taskInstances/{t['task_id']}/xcomEntries/return_value",
                params={"map_index": t["map_index"], "deserialize": True},
            ).get("value")
            value = json.loads(value) if isinstance(value, str) else (value or {})
        except (StackError, ValueError):  # the split is information; the durations are the figures
            value = {}
        out[value.get("name", str(t["map_index"]))] = {
            "task_s": round((parse_ts(t["end_date"]) - parse_ts(t["start_date"])).total_seconds(), 1),
            "fit_s": value.get("fit_seconds"),
            **(value.get("timings") or {}),
        }
    return out


def set_pool(stack, slots: int) -> None:
    body = {"pool": "training", "slots": slots, "include_deferred": False}
    stack.api("PATCH", "/pools/training", params={"update_mask": "slots"}, json=body)


def run(workdir: Path) -> dict:
    from include.settings import get_settings
    from scripts.bench_scale import bare_fit_seconds
    from scripts.load_settings import load as load_settings
    from scripts.stack import AirflowStack

    n_days = int(os.environ.get("MLOPS_BENCH_TRAIN_DAYS", "21"))
    rows_per_day = int(os.environ.get("MLOPS_BENCH_TRAIN_ROWS_PER_DAY", "10000"))
    seeded = prepare_features(n_days, rows_per_day)

    stack = AirflowStack(os.environ.copy())
    stack.start()
    try:
        load_settings(stack)
        slots = stack.api("GET", "/pools/training")["slots"]
        stack.wait_dags(["training"])
        stack.set_paused("training", False)
        set_pool(stack, 1)
        serial_id, serial_run_wall, serial_tis = run_training(stack)
        set_pool(stack, slots)
        parallel_id, parallel_run_wall, parallel_tis = run_training(stack)
        per_candidate = candidate_seconds(stack, serial_id, serial_tis)
        side_by_side = candidate_seconds(stack, parallel_id, parallel_tis)
        stack.stop()
        bare = bare_fit_seconds(parallel_id)  # machine to ourselves: the stack is down
    finally:
        stack.stop()
        reset_warehouse()  # the next sections start from an empty warehouse
    serial, parallel = group_wall(serial_tis), group_wall(parallel_tis)
    limit = sum(bare["bare_fit_s"].values()) / (os.cpu_count() or 1)
    return {
        "candidates": len(per_candidate),
        "rows_in_window": seeded["rows"],
        "cpus": os.cpu_count(),
        "parallelism": int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "32")),
        "pool_slots": slots,
        "threads_per_task": get_settings().training.threads_per_candidate,
        "serial_group_wall_s": round(serial, 2),
        "parallel_group_wall_s": round(parallel, 2),
        "parallel_vs_serial_wall_ratio": round(parallel / serial, 3),
        "serial_run_wall_s": round(serial_run_wall, 1),
        "run_wall_s": round(parallel_run_wall, 1),
        "candidate_seconds": per_candidate,
        "candidate_seconds_side_by_side": side_by_side,
        "bare_fit_s": bare["bare_fit_s"],
        "bare_fit_limit_s": round(limit, 1),
        "run_wall_vs_bare_fit_limit": round(parallel_run_wall / limit, 3),
    }
