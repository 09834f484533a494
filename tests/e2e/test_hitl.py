"""Human-in-the-loop promotion and deadline alerts on a real scheduler (tests/e2e/conftest.py).

One stack, one warehouse, runs in this order (each needs the one before):

1. an ETL run whose file never comes misses its deadline: the notifier alerts;
2. ``auto``: the first model is promoted without anyone asked (no HITL request), recorded as
   automatic -- a deliberately weak model, so that every later challenger beats it;
3. ``required`` + Reject through the REST API: the reject path, the reviewer and the comment recorded;
4. ``required`` + no answer: the review times out, the default (Reject) applies, and the run,
   held by the review, misses its training deadline: both alert;
5. ``required`` + Approve through the REST API: the promote path, a new champion, approved by
   the reviewer.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import REVIEW_TIMEOUT_S, read_alerts

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

FLAT = [{"name": "flat", "family": "ridge", "params": {"alpha": 1.0e7}}]


def hgb(name: str, learning_rate: float) -> list[dict]:
    params = {"loss": "poisson", "max_iter": 40, "learning_rate": learning_rate}
    return [{"name": name, "family": "hist_gradient_boosting", "params": params}]


def trigger(stack, **conf) -> str:
    return stack.trigger("training", conf=conf)["dag_run_id"]


def wait_run(stack, run_id: str, dag_id: str = "training", timeout: float = 180) -> dict:
    def done():
        run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(done, timeout, f"{dag_id} run {run_id}", every=2.0)
    assert run["state"] == "success", stack.task_instances(dag_id, run_id)
    return run


def states(stack, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in stack.task_instances("training", run_id)}


def hitl_path(run_id: str) -> str:
    return f"/dags/training/dagRuns/{run_id}/taskInstances/review/-1/hitlDetails"


def wait_review(stack, run_id: str) -> dict:
    """The review request, once the scheduler has seen the task parked. An answer that arrives before
    the scheduler has processed the executor's event of the parked workload races it in Airflow 3.3.2
    (the resumed try is marked up_for_retry and the answer is lost), so the reviewer waits for the
    scheduler's "TaskInstance Finished ... state=awaiting_input" line, as a person takes seconds anyway."""
    log = stack.run_dir / "scheduler.log"

    def parked():
        if states(stack, run_id).get("review") != "awaiting_input":
            return None
        return any(
            "TaskInstance Finished" in line
            and f"run_id={run_id}," in line
            and "task_id=review," in line
            and "state=awaiting_input" in line
            for line in log.read_text(errors="replace").splitlines()
        )

    wait_for(parked, 150, f"the review request of {run_id}", every=2.0)
    return stack.api("GET", hitl_path(run_id))


def row(sql: str, *params):
    from include.warehouse import db

    return db.fetch_one(sql, params)


def review_of(run_id: str):
    return row(
        "select review_decision, reviewed_by, review_comment, review_automatic, outcome, selected_version"
        " from ml.training_runs where run_id = %s",
        run_id,
    )


def champion() -> str:
    return row("select version from ml.model_registry where status = 'champion'")[0]


def test_etl_run_that_misses_its_deadline_alerts(hitl_stack):
    stack, info = hitl_stack
    # unpausing makes the scheduler run yesterday's interval, whose file never comes
    stack.set_paused("etl", False)
    try:
        run = wait_for(lambda: stack.dag_runs("etl"), 60, "the scheduled etl run")[0]
        alert = wait_for(
            lambda: [a for a in read_alerts(info["reports"]) if a["subject"].startswith("Deadline missed: etl")],
            90,
            "the etl deadline alert",
        )[0]
        assert alert["details"]["run_id"] == run["dag_run_id"] and alert["details"]["allowed_s"] == 5
        assert alert["details"]["state"] == "running"  # the sensor still waits for the file
    finally:
        stack.set_paused("etl", True)
        for r in stack.dag_runs("etl"):
            if r["state"] not in ("success", "failed"):
                stack.api("PATCH", f"/dags/etl/dagRuns/{r['dag_run_id']}", json={"state": "failed"})


def test_auto_promotes_without_waiting_and_records_an_automatic_decision(hitl_stack):
    stack, _ = hitl_stack
    t0 = time.monotonic()
    run_id = trigger(stack, hyperparameters=FLAT)  # no approval param: MLOPS_PROMOTION_APPROVAL=auto
    wait_run(stack, run_id)
    st = states(stack, run_id)
    assert st["review"] == "success" and st["promote"] == "success" and st["reject"] == "skipped", st
    with pytest.raises(Exception, match="404"):  # nobody was asked
        stack.api("GET", hitl_path(run_id))
    decision, by, comment, automatic, outcome, version = review_of(run_id)
    assert (decision, by, automatic, outcome) == ("approved", None, True, "promoted")
    assert "first model" in comment or "auto" in comment
    assert champion() == version
    reg = row("select review_automatic, reviewed_by from ml.model_registry where version = %s", version)
    assert reg == (True, None)
    print(f"auto run: {time.monotonic() - t0:.1f} s")


def test_reviewer_rejects_through_the_rest_api(hitl_stack):
    stack, _ = hitl_stack
    before = champion()
    run_id = trigger(stack, force=True, approval="required", hyperparameters=hgb("hgb_a", 0.15))
    detail = wait_review(stack, run_id)
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    # the request shows the challenger beside the champion
    assert (
        before in detail["body"] and "hgb_a" in detail["body"] and "MAE on the same validation rows" in detail["body"]
    )
    assert "comment" in detail["params"]
    user, _ = stack.credentials()
    answer = stack.api(
        "PATCH",
        hitl_path(run_id),
        json={"chosen_options": ["Reject"], "params_input": {"comment": "wait for the holiday data"}},
    )
    assert answer["responded_by"]["name"] == user
    wait_run(stack, run_id)
    st = states(stack, run_id)
    assert st["reject"] == "success" and st["promote"] == "skipped", st
    decision, by, comment, automatic, outcome, version = review_of(run_id)
    assert (decision, by, comment, automatic, outcome) == (
        "rejected",
        user,
        "wait for the holiday data",
        False,
        "rejected",
    )
    status, reason, reviewed_by = row(
        "select status, decision_reason, reviewed_by from ml.model_registry where version = %s", version
    )
    assert status == "rejected" and reviewed_by == user and reason.startswith(f"rejected by {user}")
    assert champion() == before


def test_no_answer_times_out_rejects_and_the_run_misses_its_deadline(hitl_stack):
    stack, info = hitl_stack
    before = champion()
    t0 = time.monotonic()
    run_id = trigger(stack, force=True, approval="required", hyperparameters=hgb("hgb_b", 0.2))
    wait_review(stack, run_id)
    wait_run(stack, run_id, timeout=REVIEW_TIMEOUT_S + 150)
    waited = time.monotonic() - t0
    assert waited >= REVIEW_TIMEOUT_S
    st = states(stack, run_id)
    assert st["reject"] == "success" and st["promote"] == "skipped", st
    decision, by, comment, automatic, outcome, _ = review_of(run_id)
    assert (decision, by, automatic, outcome) == ("rejected", None, False, "rejected")
    assert comment == f"no response within {REVIEW_TIMEOUT_S} s: default Reject"
    assert champion() == before
    alerts = read_alerts(info["reports"])
    assert any(a["subject"].startswith("Review timed out") and a["run_id"] == run_id for a in alerts)
    missed = wait_for(
        lambda: [a for a in read_alerts(info["reports"]) if a["subject"].startswith("Deadline missed: training")],
        60,
        "the training deadline alert",
    )
    assert run_id in {a["details"]["run_id"] for a in missed}, missed


def test_reviewer_approves_through_the_rest_api(hitl_stack):
    stack, _ = hitl_stack
    before = champion()
    run_id = trigger(stack, force=True, approval="required", hyperparameters=hgb("hgb_c", 0.1))
    wait_review(stack, run_id)
    user, _ = stack.credentials()
    stack.api(
        "PATCH", hitl_path(run_id), json={"chosen_options": ["Approve"], "params_input": {"comment": "looks good"}}
    )
    wait_run(stack, run_id)
    st = states(stack, run_id)
    assert st["promote"] == "success" and st["reject"] == "skipped", st
    decision, by, comment, automatic, outcome, version = review_of(run_id)
    assert (decision, by, comment, automatic, outcome) == ("approved", user, "looks good", False, "promoted")
    assert champion() == version != before
    status, reason = row("select status, decision_reason from ml.model_registry where version = %s", before)
    assert status == "retired" and f"replaced by {version}" in reason
