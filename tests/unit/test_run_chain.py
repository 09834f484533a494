"""`make run`'s driver (scripts/run_chain.py): its time line, what it counts, and when it fails."""

from __future__ import annotations

from datetime import date, datetime, timezone

from scripts.run_chain import _this_run, run_phases, verdict

START, END = date(2026, 11, 10), date(2026, 12, 1)  # 21 days


def test_three_phases_before_the_drift_the_retrain_and_out_of_sample():
    phases = run_phases(START, END, date(2026, 11, 19), drift_phase_days=6)
    assert phases == [
        (START, date(2026, 11, 19)),
        (date(2026, 11, 19), date(2026, 11, 25)),
        (date(2026, 11, 25), END),
    ]
    assert run_phases(START, END, date(2026, 11, 28), drift_phase_days=6) == [
        (START, date(2026, 11, 28)),
        (date(2026, 11, 28), END),
    ]
    assert run_phases(START, END, None) == [(START, END)]


def _summary(runs: dict, pending: dict | None = None) -> dict:
    return {"airflow": {"runs": runs, "pending_work": pending or {}}}


def test_verdict_names_failed_active_and_pending_work():
    assert verdict(_summary({"etl": {"success": 21}}, {"drift_monitoring": 0})) == []
    problems = verdict(_summary({"etl": {"success": 20, "failed": 1}, "training": {"running": 1}}, {"x": 2}))
    assert problems == [
        "etl runs not successful: {'failed': 1}",
        "training runs not successful: {'running': 1}",
        "x: 2 interval(s) left pending",
    ]


def test_only_the_runs_of_this_make_run_count():
    since = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    runs = [
        {"state": "success", "end_date": "2026-12-01T09:59:00Z"},  # an earlier make run
        {"state": "success", "end_date": "2026-12-01T10:05:00Z"},
        {"state": "failed", "end_date": "2026-12-01T10:07:00+00:00"},
        {"state": "running", "end_date": None},
    ]
    assert [r["state"] for r in _this_run(runs, since)] == ["success", "failed", "running"]
    assert _this_run(runs, None) == runs
