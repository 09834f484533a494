"""`make bench`: performance figures, as ratios against baselines measured in the same run.

Runs every ``scripts/bench_<area>.py`` module's ``run(workdir) -> dict`` against an isolated
bench database pair (``bench_airflow``, ``bench_wh``) and work folder, merges the sections
into ``reports/bench.json`` and prints them as a table. ``--only etl,rag`` runs a subset.
These machines are noisy: compare ratios, not absolute seconds.
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
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
AREAS = ("etl", "features", "training", "rag", "drift", "chain", "scale")
# sections a module writes to, when not its own name
SECTION = {"chain": "drift"}


def bench_env(workdir: Path) -> dict[str, str]:
    admin = os.environ.get("MLOPS_TEST_PG_URI", "postgresql://postgres@127.0.0.1:55432/postgres")
    parts = urlsplit(admin)

    (workdir / "lineage").mkdir(parents=True, exist_ok=True)

    def uri(db: str, driver: str = "postgresql") -> str:
        return urlunsplit((driver, parts.netloc, "/" + db, "", ""))

    return {
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": uri("bench_airflow", "postgresql+psycopg"),
        "MLOPS_WAREHOUSE_URI": uri("bench_wh"),
        "AIRFLOW_CONN_WAREHOUSE": uri("bench_wh"),
        "MLOPS_LANDING_URI": "file://" + str(workdir / "landing"),
        "MLOPS_ARCHIVE_URI": "file://" + str(workdir / "archive"),
        "MLOPS_ARTIFACTS_URI": "file://" + str(workdir / "artifacts"),
        "MLOPS_REPORTS_DIR": str(workdir / "reports"),
        "MLOPS_API_PORT": "8097",
        "AIRFLOW__API__PORT": "8097",
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8097",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8097/execution/",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # lineage stays on (as in `make run`), into the bench folder, not the project's reports/lineage
        "MLOPS_LINEAGE_FILE": str(workdir / "lineage" / "events.jsonl"),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(workdir / "lineage" / "events.jsonl"), "append": True}
        ),
    }


def reset_databases(admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        for db in ("bench_airflow", "bench_wh"):
            conn.execute(f"drop database if exists {db} with (force)")
            conn.execute(f"create database {db}")


def fresh_databases() -> None:
    """Empty bench databases: re-created, Airflow's migrated, the warehouse DDL applied."""
    from include.warehouse import db

    reset_databases(os.environ.get("MLOPS_TEST_PG_URI", "postgresql://postgres@127.0.0.1:55432/postgres"))
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
    ap.add_argument("--only", default=",".join(AREAS), help="comma-separated areas")
    ap.add_argument("--keep", action="store_true", help="keep the bench work folder")
    args = ap.parse_args(argv)
    wanted = [a.strip() for a in args.only.split(",") if a.strip()]

    workdir = ROOT / ".bench"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    os.environ.update(bench_env(workdir))
    fresh_databases()

    out_path = ROOT / "reports" / "bench.json"
    results: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["meta"] = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    failures = []
    for area in wanted:
        if not (ROOT / "scripts" / f"bench_{area}.py").exists():
            continue
        section = SECTION.get(area, area)
        print(f"== bench {area}", flush=True)
        t0 = time.monotonic()
        area_dir = workdir / area
        area_dir.mkdir(exist_ok=True)
        try:
            figures = importlib.import_module(f"scripts.bench_{area}").run(area_dir)
        except Exception:
            traceback.print_exc()
            failures.append(area)
            continue
        figures[f"bench_{area}_s" if section != area else "bench_s"] = round(time.monotonic() - t0, 1)
        results.setdefault(section, {}).update(figures)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"\nwritten to {out_path.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print(f"bench sections that failed: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
