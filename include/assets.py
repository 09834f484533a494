"""Every Airflow Asset of the project, defined once.

Producer DAGs list these in ``outlets`` and consumer DAGs in ``schedule``: importing them
from here means a name or URI can never drift between the two sides. Postgres assets use
Airflow's URI form ``postgres://host:port/database/schema/table``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include.settings import get_settings

_wh = get_settings().warehouse

#: ETL output: hourly demand per station, one row per (station_id, ts), replaced per day.
WAREHOUSE_DEMAND = Asset(name="warehouse_demand", uri=_wh.asset_uri("warehouse", "demand_hourly"))

#: Feature store table, keyed by (station_id, ts, feature_set_version).
FEATURES_DEMAND = Asset(name="features_demand", uri=_wh.asset_uri("features", "demand_features"))

#: Model registry: a new champion or candidate was registered.
MODEL_REGISTRY = Asset(name="model_registry", uri=_wh.asset_uri("ml", "model_registry"))

#: Drift signal: emitted only when drift passes its threshold; retraining listens to it.
DRIFT_SIGNAL = Asset(name="drift_signal", uri=_wh.asset_uri("ml", "drift_report"))

#: RAG vector index (pgvector table; the Weaviate collection mirrors it).
RAG_INDEX = Asset(name="rag_index", uri=_wh.asset_uri("rag", "chunks"))

ALL_ASSETS = (WAREHOUSE_DEMAND, FEATURES_DEMAND, MODEL_REGISTRY, DRIFT_SIGNAL, RAG_INDEX)
