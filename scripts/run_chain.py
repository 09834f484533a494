"""`make run`: the whole chain through Airflow's real scheduler, then a summary.

1. migrate Airflow's metadata database and apply the warehouse DDL;
2. start the api-server, scheduler, dag-processor and triggerer (reused when already up);
3. load airflow_settings.yaml (connections, pools, variables);
4. simulates time passing in two phases, the days before the drift (default: the last
   MLOPS_RUN_DAYS=14 days, drifting from day MLOPS_RUN_DRIFT_DAY=10), then the drifted days:
   for each, the simulated source delivers one Parquet file per day and a real backfill of the
   ETL is created over those days; the feature, training and drift DAGs follow through asset
   events, drift triggers retraining; the RAG DAG indexes the document collection;
5. the DAGs are unpaused at the start of the first phase (the scheduler then also runs the
   ETL for yesterday, whose sensor waits for the file the second phase delivers);
6. wait until every run is finished and the data is complete (a consumer whose asset event
   Airflow left queued is triggered once more: it finds its work from the data);
7. print a summary and write it to reports/run_summary.json.

Running it again reuses what exists: files already delivered stay, days already loaded are
not backfilled again (reprocess_behavior "failed"), the warehouse contents stay the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from include.mlops_view import address as mlops_view_address
from scripts.load_settings import load as load_settings
from scripts.stack import AirflowStack, parse_ts
from scripts.workers import executor_section

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ("etl", "feature_engineering", "training", "drift_monitoring", "rag_ingestion")
SUMMARY_MODULES = {
    "etl": "include.etl.summary",
    "features": "include.features.summary",
    "training": "include.training.summary",
    "rag": "include.rag.summary",
    "drift": "include.monitoring.summary",
    "lineage": "include.lineage.summary",
    "cold_storage": "include.storage.summary",
}


def log(msg: str) -> None:
    print(f"[make run {datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def run_days(today: date | None = None) -> tuple[date, date, date | None]:
    """[start, end) of the simulated days and the first drifted day."""
    n_days = int(os.environ.get("MLOPS_RUN_DAYS", "14"))
    drift_day = int(os.environ.get("MLOPS_RUN_DRIFT_DAY", "10"))  # 1-based; 0 disables drift
    end = today or datetime.now(timezone.utc).date()
    start = end - timedelta(days=n_days)
    drift_start = start + timedelta(days=drift_day - 1) if drift_day > 0 else None
    return start, end, drift_start


def deliver_source_files(start: date, end: date, drift_start: date | None) -> int:
    from include.settings import get_settings
    from include.source.simulator import SourceConfig, write_range

    s = get_settings()
    cfg = SourceConfig(
        rows_per_day=s.source.rows_per_day,
        malformed_share=s.source.malformed_share,
        drift_start=s.source.drift_start or drift_start,
        missing_days=s.source.missing_days,
        seed=s.source.seed,
    )
    return len(write_range(start, end, s.storage.path(s.storage.landing_uri), cfg))


def chain_dags() -> list[str]:
    """The chain's DAGs whose files exist (the project grows DAG by DAG)."""
    return [d for d in CHAIN if (ROOT / "dags" / f"{d}.py").exists()]


def missing_work() -> dict[str, int]:
    """What the data says is still to do: consumers are re-triggered for it."""
    from include.warehouse import db

    todo: dict[str, int] = {}
    queries = {
        "feature_engineering": "include.features.store:pending_intervals",
        "drift_monitoring": "include.monitoring.scoring:pending_intervals",
    }
    for dag_id, ref in queries.items():
        mod_name, fn_name = ref.split(":")
        try:
            mod = __import__(mod_name, fromlist=[fn_name])
            fn = getattr(mod, fn_name)
        except (ImportError, AttributeError):
            continue
        try:
            todo[dag_id] = len(fn())
        except Exception as exc:  # table missing before the first run, etc.
            log(f"could not check pending work of {dag_id}: {exc}")
    del db
    return todo


def collect_summary(
    stack: AirflowStack,
    dags: list[str],
    t_start: float,
    start: date,
    end: date,
    drift_start: date | None,
    retriggers: dict[str, int],
    since: datetime | None = None,
) -> dict:
    import importlib
    import inspect

    summary: dict = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "chain_s": round(time.monotonic() - t_start, 1),
        "days": {
            "from": start.isoformat(),
            "to": (end - timedelta(days=1)).isoformat(),
            "drift_start": drift_start.isoformat() if drift_start else None,
        },
    }
    runs = {d: stack.dag_runs(d) for d in dags}
    for section, module in SUMMARY_MODULES.items():
        try:
            fn = importlib.import_module(module).summary_section
            summary[section] = fn(since=since) if "since" in inspect.signature(fn).parameters else fn()
        except ImportError:
            continue
    if "etl" in summary:
        summary["etl"]["wall_s"] = _wall_s(runs.get("etl", []))
    summary["airflow"] = {
        "runs": {d: _states(r) for d, r in runs.items()},
        "chain_wall_s": _wall_s([r for rs in runs.values() for r in rs if r["dag_id"] != "rag_ingestion"]),
        "consumer_retriggers": retriggers,
        "restarts": stack.restarts(since=since),  # services the supervisor restarted during this run
    }
    summary["airflow"].update(executor_section(stack, dags))  # executor, tasks per worker and queue
    return summary


def _wall_s(runs: list[dict]) -> float | None:
    starts = [parse_ts(r["start_date"]) for r in runs if r.get("start_date")]
    ends = [parse_ts(r["end_date"]) for r in runs if r.get("end_date")]
    if not starts or not ends:
        return None
    return round((max(ends) - min(starts)).total_seconds(), 1)


def _states(runs: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        out[r["state"]] = out.get(r["state"], 0) + 1
    return out


def print_summary(summary: dict, stack: AirflowStack) -> None:
    from include.settings import get_settings

    print()
    print("=" * 72)
    for section in ("etl", "features", "training", "drift", "rag"):
        if section in summary:
            body = ", ".join(f"{k}={v}" for k, v in summary[section].items() if not isinstance(v, (dict, list)))
            print(f"{section:9s} {body}")
    print(f"airflow   runs={summary['airflow']['runs']} restarts={summary['airflow'].get('restarts', {})}")
    user, password = stack.credentials()
    print("=" * 72)
    print(f"Summary: reports/run_summary.json    Alerts: {get_settings().storage.reports_uri}/alerts/")
    print(f"Airflow UI: {stack.base_url}  (login {user} / {password})  -- `make stop` stops it")
    print(mlops_view_address(stack.base_url))


def run_phases(start: date, end: date, drift_start: date | None) -> list[tuple[date, date]]:
    """The simulated time line, as [from, to) phases: the days before the drift, then the drifted
    days. Each phase is delivered, backfilled and settled before the next one starts, as days
    arrive one after the other in production: the first champion is trained on the days before
    the drift, whatever order the scheduler happens to run things in."""
    if drift_start is None or not start < drift_start < end:
        return [(start, end)]
    return [(start, drift_start), (drift_start, end)]


def run_chain(
    stack: AirflowStack,
    start: date,
    end: date,
    drift_start: date | None,
    timeout: float = 1800.0,
    backfill_parallelism: int = 2,
) -> dict:
    """Deliver the files, backfill the ETL, let assets drive the rest; return the summary."""
    t_start = time.monotonic()
    run_started = datetime.now(timezone.utc)  # summary sections that take `since` count from here
    dags = chain_dags()
    stack.wait_dags(dags)
    retriggers: dict[str, int] = {}
    for i, (p_start, p_end) in enumerate(run_phases(start, end, drift_start)):
        n = deliver_source_files(p_start, p_end, drift_start)
        log(
            f"phase {i + 1}: source delivered {n} new file(s) for {p_start} .. {p_end - timedelta(days=1)}"
            f" (drift from {drift_start})"
        )
        if i == 0:
            # Unpausing `etl` (catchup off) makes the scheduler run the latest complete day at once;
            # until its file arrives, that run's sensor waits (reschedule mode: no worker slot held).
            for dag_id in dags:
                stack.set_paused(dag_id, False)
            log(f"unpaused {dags}")
            if "rag_ingestion" in dags:
                stack.trigger("rag_ingestion")
                log("rag_ingestion triggered")
        if "etl" in dags:
            bf = stack.backfill(
                "etl",
                f"{p_start.isoformat()}T00:00:00Z",
                f"{(p_end - timedelta(days=1)).isoformat()}T00:00:00Z",
                max_active_runs=backfill_parallelism,
                reprocess="failed",
            )
            log(f"backfill {bf['id']} of etl created for {p_start} .. {p_end - timedelta(days=1)}")
        _settle(stack, dags, p_end, timeout, retriggers)
    return collect_summary(stack, dags, t_start, start, end, drift_start, retriggers, since=run_started)


def _settle(stack: AirflowStack, dags: list[str], phase_end: date, timeout: float, retriggers: dict) -> None:
    """Wait until the phase's runs are done (an ETL run of a later day, waiting for its file, does
    not count) and no consumer has work left in the data; re-trigger a consumer that has."""

    def waiting_for_a_later_file(run: dict) -> bool:
        interval = parse_ts(run.get("data_interval_start"))
        return run["dag_id"] == "etl" and interval is not None and interval.date() >= phase_end

    for _round in range(4):
        stack.wait_quiet(dags, settle_s=20.0, timeout=timeout, ignore=waiting_for_a_later_file)
        todo = {d: n for d, n in missing_work().items() if n and d in dags}
        if not todo:
            return
        for dag_id, n_pending in todo.items():
            log(f"{dag_id}: {n_pending} interval(s) still pending after its asset events; triggering it once more")
            stack.trigger(dag_id)
            retriggers[dag_id] = retriggers.get(dag_id, 0) + 1


def prepare(env: dict[str, str]) -> AirflowStack:
    """Migrate, apply the DDL, start (or reuse) the services, load airflow_settings.yaml."""
    log("migrating Airflow's metadata database")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=env, stdout=subprocess.DEVNULL)
    from include.warehouse import db

    db.ensure_schema()
    stack = AirflowStack(env)
    log("starting Airflow (api-server, scheduler, dag-processor, triggerer)")
    stack.start()
    counts = load_settings(stack)
    log(f"loaded airflow_settings.yaml: {counts}")
    return stack


def main() -> int:
    from include.settings import get_settings

    stack = prepare(os.environ.copy())
    start, end, drift_start = run_days()
    summary = run_chain(
        stack,
        start,
        end,
        drift_start,
        timeout=float(os.environ.get("MLOPS_RUN_TIMEOUT_S", "1800")),
        backfill_parallelism=int(os.environ.get("MLOPS_RUN_BACKFILL_PARALLELISM", "2")),
    )
    reports = get_settings().storage.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print_summary(summary, stack)
    failed = {d: s.get("failed", 0) for d, s in summary["airflow"]["runs"].items() if s.get("failed")}
    if failed:
        log(f"some runs failed: {failed} (see the UI and the alerts under MLOPS_REPORTS_URI)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
