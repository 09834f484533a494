"""Training: dynamically mapped candidates, champion/challenger promotion, versioned registry.

Schedule: ``features_demand | drift_signal`` -- new features or a drift signal start a run.

Retraining policy (``include/training/policy.py``), so that a 30-day backfill does not retrain 30
times: a run trains only when

1. it was triggered with ``{"force": true}``, or
2. no champion exists yet (the first model ever trained becomes champion), or
3. a ``drift_signal`` event is among the run's triggering asset events (and at least one new day
   of features exists after the champion's training window), or
4. the champion uses another feature-set version than the current one, or
5. at least ``MLOPS_RETRAIN_AFTER_DAYS`` (default 7) new days of features exist after the end of
   the champion's training window;

and the rolling window holds enough data. Otherwise ``plan`` short-circuits the run (every other
task is skipped, cleanly). Each decision and its reason is recorded in ``ml.training_runs``.

Tasks (``include/training`` holds the logic, this file only wires it):

- ``plan`` (short-circuit) applies the policy; the window is the last ``MLOPS_TRAIN_WINDOW_DAYS``
  (default 21) days of features, its last ``MLOPS_TRAIN_VALID_DAYS`` (3) days for validation.
- ``create_scratch`` (setup) creates the run's scratch space under
  ``<artifacts_uri>/scratch/<run>/``; ``remove_scratch`` (teardown) removes it, even when training
  fails.
- ``extract_data`` reads the window's features once into the scratch space (Parquet) with a checksum.
- ``load_candidates`` reads the hyperparameter sets from ``include/training/hyperparams.yaml``
  (``MLOPS_HYPERPARAMS_FILE``; or the ``hyperparameters`` / ``hyperparams_file`` params).
- ``candidate`` -- a task group mapped over the sets, one instance per set:
  ``train_candidate`` fits on a time-based split (walk-forward validation: each validation day
  predicted by a model fitted only on the days before it; never shuffled), then refits on the
  whole window (training + validation days, so the stored model knows the newest regime) and
  stores the Pipeline and its training reference (for drift monitoring) under
  ``<artifacts_uri>/models/<version>/`` through ``ObjectStoragePath``; ``evaluate_candidate``
  computes the validation metrics and registers the candidate in ``ml.model_registry``.
- ``compare`` selects the best candidate (lowest validation MAE) and scores the champion on the
  same validation rows: the policy says promote if the candidate is better by
  ``MLOPS_PROMOTION_MARGIN`` (default 2 %), no champion exists or the champion cannot be loaded.
- ``review`` (Airflow's HITL branch operator, include/training/review.py) goes to ``promote`` or
  ``reject``: on the policy's decision when ``MLOPS_PROMOTION_APPROVAL=auto`` (default; recorded
  as automatic), or on a reviewer's Approve / Reject in the UI or REST API when ``required``
  (no answer within ``MLOPS_PROMOTION_APPROVAL_TIMEOUT_S``: Reject). The run's ``approval``
  param overrides the setting.
- ``promote`` retires the old champion and promotes the new one in one transaction, alerts
  through the notifier and updates the ``model_registry`` asset; ``reject`` records the decision.
- ``archive_cold_storage`` moves landing files older than the champion's training window start
  minus ``MLOPS_COLD_STORAGE_AGE_DAYS`` to the archive (``include/storage/archive.py``).

Model versions derive from what was trained (window, data checksum, hyperparameters), so
re-running a run upserts the same registry rows: no duplicates. XCom carries URIs and metrics,
never models or frames. Failures alert through the notifier of ``default_args``; training tasks
run on the ``TRAINING_QUEUE`` worker queue; ``train_candidate`` takes a slot of the ``training``
pool (slots x ``MLOPS_TRAIN_THREADS`` <= the worker's cores) and the candidates have the lowest
priority weight, so the chain's other tasks run while they train. ``max_active_runs=1``.
Deadline: a run must finish within ``MLOPS_TRAINING_DEADLINE_S`` (2 h) after it was queued,
else an alert (include/deadlines.py).
"""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, XComArg, dag, setup, task, task_group, teardown

from include.assets import DRIFT_SIGNAL, FEATURES_DEMAND, MODEL_REGISTRY
from include.dag_defaults import START_DATE, TRAINING_POOL, TRAINING_QUEUE, WAREHOUSE_POOL, default_args
from include.deadlines import training_deadline
from include.training.review import PromotionReviewOperator

# candidates take the `training` pool's slots and yield to every other task of the chain
CANDIDATE = {"queue": TRAINING_QUEUE, "priority_weight": 1, "weight_rule": "absolute"}


@dag(
    dag_id="training",
    schedule=(FEATURES_DEMAND | DRIFT_SIGNAL),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["training", "ml", "registry"],
    doc_md=__doc__,
    deadline=training_deadline(),
    params={
        "approval": Param(
            None,
            type=["null", "string"],
            enum=[None, "auto", "required"],
            description="Override MLOPS_PROMOTION_APPROVAL for this run: auto or required (a person approves).",
        ),
        "force": Param(False, type="boolean", description="Train whatever the retraining policy says."),
        "hyperparameters": Param(
            None, type=["null", "array"], description="Hyperparameter sets overriding the YAML file (same schema)."
        ),
        "hyperparams_file": Param(
            None, type=["null", "string"], description="Another YAML file of hyperparameter sets."
        ),
    },
)
def training():
    @task.short_circuit(multiple_outputs=False)
    def plan(*, params=None, run_id=None, triggering_asset_events=None):
        """Apply the retraining policy; short-circuit the run when it says no."""
        from include.training import steps

        names = sorted({asset.name for asset in triggering_asset_events}) if triggering_asset_events else []
        decision = steps.plan(run_id, names, force=bool((params or {}).get("force")))
        return decision if decision["train"] else False

    @setup
    @task(multiple_outputs=False)
    def create_scratch(plan: dict) -> str:
        """Create the run's scratch space (setup)."""
        from include.training import steps

        return steps.create_scratch(plan)

    @task(queue=TRAINING_QUEUE, pool=WAREHOUSE_POOL, multiple_outputs=False)
    def extract_data(plan: dict, scratch: str) -> dict:
        """Read the window's features once into the scratch space, with a checksum."""
        from include.lineage import report_lineage, table
        from include.training import steps

        report_lineage(inputs=[table("features", "demand_features")])  # OpenLineage; the scratch copy is tracked
        return steps.extract_data(plan, scratch)

    @task(multiple_outputs=False)
    def load_candidates(*, params=None) -> list[dict]:
        """Read and validate the hyperparameter sets (one mapped candidate per set)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.training import steps
        from include.training.candidates import HyperparameterConfigError

        params = params or {}
        try:
            return steps.load_candidates(params.get("hyperparams_file"), params.get("hyperparameters"))
        except HyperparameterConfigError as exc:  # a retry cannot fix a bad config
            raise AirflowFailException(str(exc)) from exc

    @task(pool=TRAINING_POOL, **CANDIDATE, multiple_outputs=False, map_index_template="{{ candidate_name }}")
    def train_candidate(hp: dict, plan: dict, data: dict, scratch: str) -> dict:
        """Walk-forward validate one hyperparameter set, refit on the window, store the model."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException
        from sklearn.utils._param_validation import InvalidParameterError

        from include.lineage import report_lineage
        from include.training import steps

        get_current_context()["candidate_name"] = hp["name"]
        try:
            trained = steps.train_candidate(hp, plan, data, scratch)
        except (InvalidParameterError, TypeError) as exc:  # bad hyperparameters: not retried
            raise AirflowFailException(f"candidate {hp['name']}: invalid hyperparameters: {exc}") from exc
        report_lineage(outputs=[trained["artifact_uri"], trained.get("reference_uri")])  # OpenLineage: the model
        return trained

    @task(**CANDIDATE, multiple_outputs=False, map_index_template="{{ candidate_name }}")
    def evaluate_candidate(trained: dict, plan: dict, data: dict) -> dict:
        """Compute the candidate's validation metrics and register it."""
        from airflow.sdk import get_current_context

        from include.lineage import report_lineage, table
        from include.training import steps

        get_current_context()["candidate_name"] = trained["name"]
        report_lineage(inputs=[trained["artifact_uri"]], outputs=[table("ml", "model_registry")])  # OpenLineage
        return steps.evaluate_candidate(trained, plan, data)

    @task_group(group_id="candidate")
    def candidate(hp: dict, plan: dict, data: dict, scratch: str):
        """Train then evaluate one hyperparameter set."""
        return evaluate_candidate(train_candidate(hp, plan, data, scratch), plan, data)

    @task(queue=TRAINING_QUEUE, multiple_outputs=False)
    def compare(results: list[dict], plan: dict, data: dict) -> dict:
        """Select the best candidate and score the champion on the same validation rows."""
        from include.training import steps

        # pulling from a task inside a mapped group yields a bare value when only one instance ran
        results = [results] if isinstance(results, dict) else list(results)
        return steps.compare(results, plan, data)

    @task(outlets=[MODEL_REGISTRY], multiple_outputs=False)
    def promote(decision: dict, plan: dict, review: dict, *, ti=None) -> dict:
        """Make the challenger champion (one transaction), alert, update the registry asset."""
        from include.training import steps

        return steps.promote(decision, plan, context={"ti": ti}, review=review)

    @task(multiple_outputs=False)
    def reject(decision: dict, plan: dict, review: dict) -> dict:
        """Record the challenger as rejected, with the policy's or the reviewer's reason."""
        from include.training import steps

        return steps.reject(decision, plan, review=review)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, multiple_outputs=False)
    def archive_cold_storage() -> dict:
        """Move landing files older than the champion's window (minus the cold-storage age) to the archive."""
        from include.training import steps

        return steps.archive_cold_storage()

    @teardown
    @task(multiple_outputs=False)
    def remove_scratch(scratch: str) -> dict:
        """Remove the run's scratch space (teardown, also after a failure)."""
        from include.training import steps

        return steps.remove_scratch(scratch)

    the_plan = plan()
    scratch = create_scratch(the_plan)
    data = extract_data(the_plan, scratch)
    hyperparameter_sets = load_candidates()
    the_plan >> hyperparameter_sets
    results = candidate.partial(plan=the_plan, data=data, scratch=scratch).expand(hp=hyperparameter_sets)
    decision = compare(results, the_plan, data)
    review = PromotionReviewOperator(task_id="review")
    decision >> review
    the_review = XComArg(review, key="review")
    promoted, rejected = promote(decision, the_plan, the_review), reject(decision, the_plan, the_review)
    archived = archive_cold_storage()
    [promoted, rejected] >> archived
    archived >> remove_scratch(scratch)


training()
