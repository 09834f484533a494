"""Human-in-the-loop promotion: a person approves the challenger before it becomes champion.

``PromotionReviewOperator`` is Airflow's ``HITLBranchOperator`` (standard provider) between
``compare`` and ``promote`` / ``reject``. It branches on the decision:

* the policy rejects, or the selected model already is the champion: nothing to approve, the
  decision is recorded as automatic;
* ``MLOPS_PROMOTION_APPROVAL=auto`` (the local default, or the run's ``approval`` param): the
  policy's "promote" stands, recorded as automatic, no wait -- ``make run`` stays unattended;
* ``required``: the task asks for a response in the Airflow UI (Browse > Required Actions, or
  the task's "Required Action" tab) and the REST API (``PATCH /api/v2/dags/training/dagRuns/
  {run_id}/taskInstances/review/-1/hitlDetails``), with the challenger's metrics beside the
  champion's (``promotion.review_request``). **Approve** goes to ``promote``, **Reject** to
  ``reject``; without an answer within ``MLOPS_PROMOTION_APPROVAL_TIMEOUT_S`` (default one day)
  the scheduler applies the default, **Reject**.

The decision (approved / rejected), who made it, the comment and whether it was automatic are
recorded with the training run and the registry row (``registry.record_review``), pushed as the
``review`` XCom for ``promote`` / ``reject``, and a waiting review and a timeout alert through the
project's notifier.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param

from include.notify import send_alert
from include.settings import get_settings
from include.training.promotion import review_request
from include.training.registry import record_review

APPROVE, REJECT = "Approve", "Reject"


class PromotionReviewOperator(HITLBranchOperator):
    """Branch to ``promote_task_id`` or ``reject_task_id``: automatically, or on a person's answer."""

    def __init__(
        self,
        *,
        compare_task_id: str = "compare",
        plan_task_id: str = "plan",
        promote_task_id: str = "promote",
        reject_task_id: str = "reject",
        **kwargs,
    ) -> None:
        s = get_settings().training
        # the reviewer's form: the comment only (the DAG's params, passed down by @dag, stay the DAG's)
        kwargs.pop("params", None)
        params = {"comment": Param("", type="string", description="Why (recorded with the decision)", source="task")}
        super().__init__(
            subject="Promote the challenger to champion?",
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            options_mapping={APPROVE: promote_task_id, REJECT: reject_task_id},
            params=params,
            response_timeout=timedelta(seconds=s.approval_timeout_s),
            **kwargs,
        )
        self.compare_task_id = compare_task_id
        self.plan_task_id = plan_task_id

    def _inputs(self, context) -> tuple[dict, dict]:
        ti = context["ti"]
        return ti.xcom_pull(task_ids=self.compare_task_id), ti.xcom_pull(task_ids=self.plan_task_id)

    def execute(self, context):
        decision, plan = self._inputs(context)
        mode = (context["params"] or {}).get("approval") or get_settings().training.promotion_approval
        automatic = automatic_review(decision, mode)
        if automatic is not None:
            self._record(context, decision, plan, automatic)
            return self.do_branch(context, self.options_mapping[APPROVE if automatic["approved"] else REJECT])

        self.subject, self.body = review_request(decision, plan)
        try:
            link = self.generate_link_to_ui_from_context(context=context)
        except ValueError:  # no [api] base_url configured
            link = None
        send_alert(
            f"Review needed: {self.subject}",
            {"link": link, "timeout_s": int(self.response_timeout.total_seconds()), "policy": decision["reason"]},
            severity="info",
            context=context,
        )
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        if "error" not in event:
            decision, plan = self._inputs(context)
            user = event.get("responded_by_user") or None
            timed_out = bool(event.get("timedout"))
            comment = (event.get("params_input") or {}).get("comment") or ""
            if timed_out and not comment:
                comment = f"no response within {int(self.response_timeout.total_seconds())} s: default {REJECT}"
            chosen = event["chosen_options"][0]
            review = {
                "approved": chosen == APPROVE,
                "decision": "approved" if chosen == APPROVE else "rejected",
                "by": user["name"] if user else None,
                "comment": comment,
                "automatic": False,
                "timed_out": timed_out,
                "at": _iso(event.get("responded_at")),
            }
            self._record(context, decision, plan, review)
            if timed_out:
                send_alert(
                    f"Review timed out: {decision['selected_version']} rejected",
                    {"comment": comment},
                    severity="warning",
                    context=context,
                )
        return super().execute_complete(context, event)

    @staticmethod
    def _record(context, decision: dict, plan: dict, review: dict) -> None:

        record_review(plan["run_id"], decision["selected_version"], review)
        context["ti"].xcom_push(key="review", value=review)


def automatic_review(decision: dict, mode: str) -> dict | None:
    """The review when no person needs to decide, else None (``mode`` is auto | required)."""
    if mode not in ("auto", "required"):
        raise ValueError(f"approval mode must be 'auto' or 'required', not {mode!r}")
    if not decision["promote"]:
        why, approved = "the policy rejects the challenger: nothing to approve", False
    elif not decision.get("changed", True):
        why, approved = "the selected model already is the champion", True
    elif mode == "auto":
        why, approved = "MLOPS_PROMOTION_APPROVAL=auto: the policy's decision stands", True
    else:
        return None
    return {
        "approved": approved,
        "decision": "approved" if approved else "rejected",
        "by": None,
        "comment": why,
        "automatic": True,
        "timed_out": False,
        "at": datetime.now(timezone.utc).isoformat(),
    }


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else datetime.now(timezone.utc).isoformat()
