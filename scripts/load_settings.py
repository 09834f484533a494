"""airflow_settings.yaml (Astro CLI format): the project's connections, variables and pools.

The same file feeds every place that needs them; the pools defined here are the only
definition of the project's pools:

* ``make run`` / the tests: :func:`load` puts everything into a running local Airflow through
  its REST API (connections given in the environment, AIRFLOW_CONN_*, take precedence at run time);
* ``astro dev start`` reads the file itself;
* a deployment: ``python -m scripts.load_settings --pools-tsv`` prints one ``name<TAB>slots<TAB>
  description`` line per pool, which the deploy workflow feeds to ``astro deployment pool
  create|update``; ``--pools-json`` prints the file ``airflow pools import`` reads (Helm, README).

    python -m scripts.load_settings                 load into the local stack (scripts/env.sh)
    python -m scripts.load_settings --pools-tsv     the pools, for the deploy workflow
    python -m scripts.load_settings --pools-json    the pools, for `airflow pools import`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = ROOT / "airflow_settings.yaml"


def spec(path: Path = SETTINGS_FILE) -> dict:
    """The ``airflow`` mapping of the settings file (connections, pools, variables)."""
    return (yaml.safe_load(path.read_text()) or {}).get("airflow", {}) or {}


def pools(path: Path = SETTINGS_FILE) -> dict[str, dict]:
    """{pool name: {"slots", "description", "include_deferred"}}; a name defined twice is an error."""
    out: dict[str, dict] = {}
    for pool in spec(path).get("pools") or []:
        name = pool["pool_name"]
        if name in out:
            raise ValueError(f"pool {name!r} is defined twice in {path.name}")
        slots = pool["pool_slot"]
        if not isinstance(slots, int) or slots < 1:
            raise ValueError(f"pool {name!r}: pool_slot must be a positive integer, got {slots!r}")
        out[name] = {
            "slots": slots,
            "description": pool.get("pool_description") or "",
            "include_deferred": bool(pool.get("include_deferred", False)),
        }
    return out


def upsert(stack, collection: str, key: str, body: dict) -> None:
    """Create ``body`` in ``collection`` (connections, pools, variables), or update it when it exists."""
    from scripts.stack import StackError

    try:
        stack.api("POST", f"/{collection}", json=body)
    except StackError as exc:
        if "409" not in str(exc):
            raise
        stack.api("PATCH", f"/{collection}/{body[key]}", json=body)


def load(stack, path: Path = SETTINGS_FILE) -> dict[str, int]:
    """Put the file's connections, pools and variables into the Airflow behind ``stack``."""
    settings = spec(path)
    counts = {"connections": 0, "pools": 0, "variables": 0}
    for conn in settings.get("connections") or []:
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
    for name, pool in pools(path).items():
        body = {"name": name, **pool}
        upsert(stack, "pools", "name", body)
        counts["pools"] += 1
    for var in settings.get("variables") or []:
        body = {"key": var["variable_name"], "value": str(var.get("variable_value", ""))}
        upsert(stack, "variables", "key", body)
        counts["variables"] += 1
    return counts


def main(argv: list[str]) -> int:
    if "--pools-tsv" in argv:
        for name, pool in pools().items():
            print(f"{name}\t{pool['slots']}\t{pool['description']}")
        return 0
    if "--pools-json" in argv:
        print(json.dumps(pools(), indent=2))
        return 0
    from scripts.stack import AirflowStack

    print(load(AirflowStack()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
