"""The drift monitoring DAG's steps, one function per task (dags/drift_monitoring.py wires them)."""

from __future__ import annotations

import logging

from include.monitoring.evaluate import evaluate_run
from include.monitoring.scoring import score_pending
from include.notify import send_alert
from include.training.registry import get_model
from include.warehouse import db

log = logging.getLogger(__name__)


def score(run_id: str, triggering_asset_events=None) -> dict:
    """Score what the champion has not scored yet; the asset events are only logged (the data says
    what to score: Airflow 3.3.2 can leave queued events unconsumed)."""
    for asset, events in (triggering_asset_events or {}).items():
        for event in events:
            log.info("triggered by %s: %s", asset.name, event.extra)
    db.ensure_schema()
    return score_pending(run_id=run_id)


def evaluate(run_id: str, scored: dict) -> dict:
    """Evaluate the run's windows against the champion that scored them."""
    champion = get_model(scored["champion"]) if scored.get("champion") else None
    return evaluate_run(run_id, champion=champion) | {"rows_scored": scored["rows_scored"]}


def drift_details(result: dict) -> dict:
    """What the drift alert says about a drifted run (``evaluate``'s result)."""
    return {
        "model_version": result["champion"],
        "first_drift_day": result["first_drift_day"],
        "drifted_features": result["drifted_features"],
        "scores": result["scores"],
        "error_ratio": result["error_ratio"],
        "report": result["report_path"],
    }


def alert_drift(result: dict, ti=None) -> dict:
    """Send the drift alert (a warning) through the notifier; returns its details."""
    details = drift_details(result)
    send_alert(
        f"Drift detected for model {result['champion']}: {', '.join(result['drifted_features']) or 'error'}",
        details,
        severity="warning",
        context={"ti": ti},
    )
    return details


def drift_signal_extra(result: dict) -> dict:
    """The ``drift_signal`` asset event's extra: the alert's details, the drifted new windows, the run."""
    return drift_details(result) | {
        "windows": [w["day"] for w in result["windows"] if w["drift"] and w["new_window"]],
        "run_id": result["run_id"],
    }


def no_drift(result: dict) -> dict:
    """The windows evaluated and the report of a run without drift."""
    return {"windows": [w["day"] for w in result["windows"]], "report": result["report_path"]}
