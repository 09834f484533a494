"""Registers include/lineage/listener.py: per-task hook lineage for OpenLineage events."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.lineage import listener


class MlopsLineagePlugin(AirflowPlugin):
    name = "mlops_lineage"
    listeners = [listener]
