"""Point Airflow at this project before the parse test imports it (``pytest .astro`` locally).

Only fills in what the environment does not set: under ``astro dev parse`` the Runtime image
already sets AIRFLOW_HOME=/usr/local/airflow and the DAG folder, and nothing here changes them.
No metadata database is needed: the parse test reads no Airflow table.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if str(ROOT) not in sys.path:  # DAG files import include.*
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

_defaults = {
    # a throwaway AIRFLOW_HOME: nothing is written to ~/airflow or into the project
    "AIRFLOW_HOME": tempfile.mkdtemp(prefix="mlops-astro-parse-"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
}
for key, value in _defaults.items():
    os.environ.setdefault(key, value)
