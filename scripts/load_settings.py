"""Load airflow_settings.yaml (Astro CLI format) into a running Airflow through its REST API.

The same file feeds `astro dev start` and the no-Docker stack. Connections given in the
environment (AIRFLOW_CONN_*) take precedence over these at run time, as in any Airflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from scripts.stack import AirflowStack, StackError

ROOT = Path(__file__).resolve().parents[1]


def upsert(stack: AirflowStack, collection: str, key: str, body: dict) -> None:
    """Create ``body`` in ``collection`` (connections, pools, variables), or update it when it exists."""
    try:
        stack.api("POST", f"/{collection}", json=body)
    except StackError as exc:
        if "409" not in str(exc):
            raise
        stack.api("PATCH", f"/{collection}/{body[key]}", json=body)


def load(stack: AirflowStack, path: Path = ROOT / "airflow_settings.yaml") -> dict[str, int]:
    spec = (yaml.safe_load(path.read_text()) or {}).get("airflow", {}) or {}
    counts = {"connections": 0, "pools": 0, "variables": 0}
    for conn in spec.get("connections") or []:
        extra = conn.get("conn_extra")
        body = {
            "connection_id": conn["conn_id"],
            "conn_type": conn["conn_type"],
            "host": conn.get("conn_host"),
            "schema": conn.get("conn_schema"),
            "login": conn.get("conn_login"),
            "password": conn.get("conn_password"),
            "port": conn.get("conn_port"),
            "extra": json.dumps(extra) if isinstance(extra, dict) else extra,
        }
        upsert(stack, "connections", "connection_id", body)
        counts["connections"] += 1
    for pool in spec.get("pools") or []:
        body = {
            "name": pool["pool_name"],
            "slots": int(pool["pool_slot"]),
            "description": pool.get("pool_description"),
            "include_deferred": False,
        }
        upsert(stack, "pools", "name", body)
        counts["pools"] += 1
    for var in spec.get("variables") or []:
        body = {"key": var["variable_name"], "value": str(var.get("variable_value", ""))}
        upsert(stack, "variables", "key", body)
        counts["variables"] += 1
    return counts


if __name__ == "__main__":
    print(load(AirflowStack()))
