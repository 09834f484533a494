"""`make run`: the whole chain through Airflow's real scheduler, then a summary.

1. migrate Airflow's metadata database and apply the warehouse DDL;
2. start the api-server, scheduler, dag-processor and triggerer (reused when already up);
3. load airflow_settings.yaml (connections, pools, variables);
4. simulates time passing in three phases (default: the last MLOPS_RUN_DAYS=21 days, drifting
   from day MLOPS_RUN_DRIFT_DAY=10): the days before the drift, the first
   MLOPS_RUN_DRIFT_PHASE_DAYS=6 drifted days (drift is flagged and triggers retraining), then
   the days after the retrain, on which both champions are scored out of sample. For each
   phase the source's clock (Airflow Variable ``source_simulator_release_until``) moves to the
   phase's end, a backfill of the ``source_simulator`` DAG delivers the phase's files into the
   landing zone (nothing is written from outside Airflow), then a backfill of the ETL loads
   them; the feature, training and drift DAGs follow through asset events; the RAG DAG indexes
   the document collection;
5. the DAGs are unpaused at the start of the first phase (the scheduler then also creates the
   runs of yesterday: the simulator's waits for the clock, the ETL's for the file);
6. wait until every run is finished and the data is complete (a consumer whose asset event
   Airflow left queued is triggered once more, and the summary says how often and why);
7. print a summary, write it to reports/run_summary.json, and exit non-zero when a run of this
   make run failed or work is left pending.

The same commands run the chain under ``astro dev start`` (README, "The Astro path").
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
from scripts.load_settings import upsert
from scripts.stack import TERMINAL, AirflowStack, parse_ts
from scripts.workers import executor_section

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ("source_simulator", "etl", "feature_engineering", "training", "drift_monitoring", "rag_ingestion")
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
    from include.settings import get_settings

    n_days = int(os.environ.get("MLOPS_RUN_DAYS", "21"))
    drift_day = int(os.environ.get("MLOPS_RUN_DRIFT_DAY", "10"))  # 1-based; 0 disables drift
    end = today or datetime.now(timezone.utc).date()
    start = end - timedelta(days=n_days)
    drift_start = start + timedelta(days=drift_day - 1) if drift_day > 0 else None
    return start, end, get_settings().source.drift_start or drift_start


def source_env(drift_start: date | None) -> dict[str, str]:
    """Environment of the Airflow services for the simulated source: the drift start of this
    time line (the scheduler's own run of yesterday reads it from the settings)."""
    return {"MLOPS_SOURCE_DRIFT_START": drift_start.isoformat()} if drift_start else {}


def deliver_source_files(
    stack: AirflowStack, p_start: date, p_end: date, drift_start: date | None, timeout: float
) -> int:
    """Let the source deliver [p_start, p_end): move its clock to p_end, backfill the
    ``source_simulator`` DAG over those days and wait for its runs. Returns the days delivered."""
    from include.source.simulator import RELEASE_VARIABLE

    upsert(stack, "variables", "key", {"key": RELEASE_VARIABLE, "value": p_end.isoformat()})
    last = p_end - timedelta(days=1)
    stack.backfill(
        "source_simulator",
        f"{p_start.isoformat()}T00:00:00Z",
        f"{last.isoformat()}T00:00:00Z",
        max_active_runs=4,
        reprocess="failed",
        conf={"drift_start": drift_start.isoformat()} if drift_start else {},
    )

    def later(run: dict) -> bool:
        interval = parse_ts(run.get("data_interval_start"))
        return interval is not None and interval.date() >= p_end

    runs = stack.wait_quiet(["source_simulator"], settle_s=2.0, timeout=timeout, ignore=later)
    ours = [r for r in runs if not later(r) and p_start <= parse_ts(r["data_interval_start"]).date() < p_end]
    failed = [r["run_id"] for r in ours if r["state"] != "success"]
    if failed:
        raise SystemExit(f"source_simulator failed to deliver: {failed} (see the Airflow UI)")
    return len({parse_ts(r["data_interval_start"]).date() for r in ours})


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
    runs = {d: _this_run(stack.dag_runs(d), since) for d in dags}
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
        "pending_work": {d: n for d, n in missing_work().items() if d in dags},
        "counted_since": since.isoformat(timespec="seconds") if since else None,
    }
    summary["airflow"].update(executor_section(stack, dags))  # executor, tasks per worker and queue
    return summary


def _this_run(runs: list[dict], since: datetime | None) -> list[dict]:
    """The runs of this make run: still active, or ended at or after ``since`` (all when None)."""
    if since is None:
        return runs
    return [r for r in runs if r["state"] not in TERMINAL or (parse_ts(r.get("end_date")) or since) >= since]


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


def run_phases(
    start: date, end: date, drift_start: date | None, drift_phase_days: int | None = None
) -> list[tuple[date, date]]:
    """The simulated time line, as [from, to) phases: the days before the drift, the first
    ``drift_phase_days`` drifted days (MLOPS_RUN_DRIFT_PHASE_DAYS, default 6: drift is flagged and
    a new champion trained), then the rest. Each phase is delivered, backfilled and settled before
    the next one starts, as days arrive one after the other in production: the first champion is
    trained on the days before the drift, and the days of the last phase come after the new
    champion's training window (both champions are scored on them out of sample)."""
    if drift_phase_days is None:
        drift_phase_days = int(os.environ.get("MLOPS_RUN_DRIFT_PHASE_DAYS", "6"))
    if drift_start is None or not start < drift_start < end:
        return [(start, end)]
    retrained = drift_start + timedelta(days=max(1, drift_phase_days))
    if retrained >= end:
        return [(start, drift_start), (drift_start, end)]
    return [(start, drift_start), (drift_start, retrained), (retrained, end)]


def run_chain(
    stack: AirflowStack,
    start: date,
    end: date,
    drift_start: date | None,
    timeout: float = 1800.0,
    backfill_parallelism: int = 2,
) -> dict:
    """Let the source DAG deliver, backfill the ETL, let assets drive the rest; return the summary."""
    from include.source.simulator import RELEASE_VARIABLE

    t_start = time.monotonic()
    run_started = datetime.now(timezone.utc)  # the summary counts from here: this run only
    dags = chain_dags()
    stack.wait_dags(dags)
    retriggers: dict[str, dict] = {}
    phases = run_phases(start, end, drift_start)
    # the source's clock first: the run of yesterday the scheduler creates on unpausing waits for it
    upsert(stack, "variables", "key", {"key": RELEASE_VARIABLE, "value": phases[0][1].isoformat()})
    for i, (p_start, p_end) in enumerate(phases):
        if i == 0:
            # Unpausing `etl` (catchup off) makes the scheduler run the latest complete day at once;
            # until its file arrives, that run's sensor waits (reschedule mode: no worker slot held).
            for dag_id in dags:
                stack.set_paused(dag_id, False)
            log(f"unpaused {dags}")
            if "rag_ingestion" in dags:
                stack.trigger("rag_ingestion")
                log("rag_ingestion triggered")
        n = deliver_source_files(stack, p_start, p_end, drift_start, timeout)
        log(
            f"phase {i + 1}/{len(phases)}: source_simulator delivered {n} day(s) {p_start} .. "
            f"{p_end - timedelta(days=1)} (drift from {drift_start})"
        )
        if "etl" in dags:
            bf = stack.backfill(
                "etl",
                f"{p_start.isoformat()}T00:00:00Z",
                f"{(p_end - timedelta(days=1)).isoformat()}T00:00:00Z",
                max_active_runs=backfill_parallelism,
                reprocess="failed",
            )
            log(f"backfill {bf['id']} of etl created for {p_start} .. {p_end - timedelta(days=1)}")
        _settle(stack, dags, p_end, timeout, retriggers, phase=i + 1)
    summary = collect_summary(stack, dags, t_start, start, end, drift_start, retriggers, since=run_started)
    summary["days"]["phases"] = [{"from": a.isoformat(), "to": (b - timedelta(days=1)).isoformat()} for a, b in phases]
    return summary


def _settle(
    stack: AirflowStack, dags: list[str], phase_end: date, timeout: float, retriggers: dict, phase: int = 1
) -> None:
    """Wait until the phase's runs are done (a run of a later day, waiting for the source's clock
    or its file, does not count) and no consumer has work left in the data; re-trigger a consumer
    that has, and record it (``airflow.consumer_retriggers``: how often, in which phase, why)."""

    def waiting_for_a_later_day(run: dict) -> bool:
        interval = parse_ts(run.get("data_interval_start"))
        return run["dag_id"] in ("etl", "source_simulator") and interval is not None and interval.date() >= phase_end

    for _round in range(4):
        stack.wait_quiet(dags, settle_s=20.0, timeout=timeout, ignore=waiting_for_a_later_day)
        todo = {d: n for d, n in missing_work().items() if n and d in dags}
        if not todo:
            return
        for dag_id, n_pending in todo.items():
            reason = f"{n_pending} interval(s) still pending in the data after its asset events (phase {phase})"
            log(f"{dag_id}: {reason}; triggering it once more")
            stack.trigger(dag_id)
            entry = retriggers.setdefault(dag_id, {"count": 0, "reasons": []})
            entry["count"] += 1
            entry["reasons"].append(reason)


def verdict(summary: dict) -> list[str]:
    """Why this make run did not succeed (empty when it did): a run of this make run failed or is
    still active, or the data says work is left pending."""
    problems = []
    for dag_id, states in summary["airflow"]["runs"].items():
        bad = {s: n for s, n in states.items() if s != "success" and n}
        if bad:
            problems.append(f"{dag_id} runs not successful: {bad}")
    pending = summary["airflow"].get("pending_work") or {}
    problems += [f"{dag_id}: {n} interval(s) left pending" for dag_id, n in pending.items() if n]
    return problems


def prepare(env: dict[str, str]) -> AirflowStack:
    """Migrate, apply the DDL, start (or reuse) the services, load airflow_settings.yaml."""
    log("migrating Airflow's metadata database")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=env, stdout=subprocess.DEVNULL)
    from include.warehouse import db

    db.ensure_schema()
    stack = AirflowStack(env)
    extra = " + the S3-protocol server" if stack.supervisor.celery else ""
    log(f"starting {', '.join(stack.supervisor.programs)}{extra} (supervisord)")
    stack.start()
    counts = load_settings(stack)
    log(f"loaded airflow_settings.yaml: {counts}")
    return stack


def main() -> int:
    from include.settings import get_settings

    start, end, drift_start = run_days()
    stack = prepare({**os.environ, **source_env(drift_start)})
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
    problems = verdict(summary)
    for problem in problems:
        log(f"NOT OK: {problem} (see the UI and the alerts under MLOPS_REPORTS_URI)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
