"""`make bench`: performance figures, as ratios against baselines measured in the same run.

Runs the ``run(workdir) -> dict`` of every registered ``scripts/bench_<module>.py`` against an
isolated bench database pair (``<prefix>_airflow``, ``<prefix>_wh``; prefix ``bench``, or
``MLOPS_BENCH_DB_PREFIX``) and work folder, and writes ``reports/bench.json`` as a table:

- every section carries its own ``measured_at`` (UTC) and ``git_commit`` (``+dirty`` when the
  tree had uncommitted changes), so a figure can always be traced to the code that produced it;
- a full run (no ``--only``) rewrites the file whole; ``--only etl,rag`` replaces those sections
  and keeps the others with their own dates;
- a section that fails is written as ``{"failed": true, "error": ..., "measured_at": ...}``,
  never left stale beside fresh ones; a section that did not run is absent (full run) or kept
  with its old date (``--only``).

Registering a section is one line in ``SECTIONS``. These machines are noisy: compare ratios,
not absolute seconds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from scripts.stack_env import api_env, database_uri, databases_env, recreate_databases, storage_env

ROOT = Path(__file__).resolve().parents[1]
#: one line per section: (section name in bench.json, module scripts/bench_<module>.py)
SECTIONS: tuple[tuple[str, str], ...] = (
    ("etl", "etl"),
    ("features", "features"),
    ("training", "training"),
    ("rag", "rag"),
    ("retrieval", "retrieval"),
    ("drift", "drift"),
    ("chain", "chain"),
    ("scale_out", "scale_out"),
    ("scale", "scale"),
)
AREAS = tuple(name for name, _ in SECTIONS)


def bench_db_names() -> tuple[str, str]:
    """The bench's Airflow and warehouse database names (a shared cluster: a prefix per checkout)."""
    prefix = os.environ.get("MLOPS_BENCH_DB_PREFIX", "bench")
    return f"{prefix}_airflow", f"{prefix}_wh"


def git_commit() -> str:
    """HEAD of the checkout, with ``+dirty`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _admin_uri() -> str:
    return os.environ.get("MLOPS_TEST_PG_URI", "postgresql://postgres@127.0.0.1:55432/postgres")


def bench_env(workdir: Path) -> dict[str, str]:
    admin = _admin_uri()
    airflow_db, warehouse_db = bench_db_names()
    port = os.environ.get("MLOPS_BENCH_API_PORT", "8097")

    (workdir / "lineage").mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(workdir / "airflow"),
        **databases_env(database_uri(admin, airflow_db), database_uri(admin, warehouse_db)),
        **storage_env(workdir),
        "MLOPS_API_PORT": port,
        **api_env(port),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # lineage stays on (as in `make run`), into the bench folder, not the project's reports/lineage
        "MLOPS_LINEAGE_FILE": str(workdir / "lineage" / "events.jsonl"),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(workdir / "lineage" / "events.jsonl"), "append": True}
        ),
    }


def fresh_databases() -> None:
    """Empty bench databases: re-created, Airflow's migrated, the warehouse DDL applied."""
    from include.warehouse import db

    recreate_databases(_admin_uri(), bench_db_names())
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db.ensure_schema()


def print_table(results: dict) -> None:
    print()
    print(f"{'section':10s} {'figure':36s} value")
    print("-" * 64)
    for section, figures in results.items():
        if not isinstance(figures, dict):
            continue
        for key, value in figures.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            print(f"{section:10s} {key:36s} {value}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="", help=f"comma-separated sections (default: all of {', '.join(AREAS)})")
    ap.add_argument("--keep", action="store_true", help="keep the bench work folder")
    args = ap.parse_args(argv)
    wanted = [a.strip() for a in args.only.split(",") if a.strip()] or list(AREAS)
    unknown = sorted(set(wanted) - set(AREAS))
    if unknown:
        ap.error(f"unknown sections {unknown}; known: {', '.join(AREAS)}")
    full_run = not args.only

    workdir = ROOT / ".bench"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    os.environ.update(bench_env(workdir))
    fresh_databases()

    out_path = ROOT / "reports" / "bench.json"
    old: dict = {}
    if not full_run and out_path.exists():
        old = json.loads(out_path.read_text())
    commit = git_commit()
    results: dict = {
        "meta": {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit,
            "sections_run": wanted,
            "full_run": full_run,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    }
    # sections not run this time keep their own dates (--only); a full run starts from nothing
    # (only those that carry their own date: an undated section from an older file is dropped)
    results.update(
        {
            name: old[name]
            for name, _ in SECTIONS
            if name not in wanted and isinstance(old.get(name), dict) and "measured_at" in old[name]
        }
    )

    def write() -> None:
        ordered = {"meta": results["meta"], **{n: results[n] for n, _ in SECTIONS if n in results}}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(ordered, indent=2, default=str) + "\n")

    failures = []
    for name, module in SECTIONS:
        if name not in wanted:
            continue
        print(f"== bench {name}", flush=True)
        t0 = time.monotonic()
        area_dir = workdir / name
        area_dir.mkdir(exist_ok=True)
        stamp = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": commit}
        try:
            figures = importlib.import_module(f"scripts.bench_{module}").run(area_dir)
        except Exception as exc:
            traceback.print_exc()
            failures.append(name)
            figures = {"failed": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
        results[name] = {**stamp, **figures, "bench_s": round(time.monotonic() - t0, 1)}
        write()
    write()
    print_table({k: v for k, v in results.items() if k != "meta"})
    print(f"\nwritten to {out_path.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print(f"bench sections that failed: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
