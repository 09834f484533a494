"""Airflow listener that keeps hook lineage per task (registered by plugins/mlops_lineage.py).

* ``on_task_instance_running``: forget datasets collected earlier in this process, so that
  under ``dag.test()`` (all tasks in one process) one task's datasets do not leak into the
  next task's OpenLineage events. In a scheduled run each task has its own process and
  this is a no-op.
* ``on_task_instance_success`` / ``on_task_instance_failed``: when hooks, ObjectStoragePath
  or :func:`include.lineage.report_lineage` collected anything, add the task's declared
  ``inlets``/``outlets`` Assets to it, because the OpenLineage provider ignores them then.

Both run before the OpenLineage listener (``tryfirst``), which extracts in a forked child.
"""

from __future__ import annotations

from airflow.listeners import hookimpl

from include import lineage


@hookimpl(tryfirst=True)
def on_task_instance_running(previous_state, task_instance):
    lineage.reset_collector()


@hookimpl(tryfirst=True)
def on_task_instance_success(previous_state, task_instance):
    lineage.merge_declared_assets(getattr(task_instance, "task", None))


@hookimpl(tryfirst=True)
def on_task_instance_failed(previous_state, task_instance, error):
    lineage.merge_declared_assets(getattr(task_instance, "task", None))
