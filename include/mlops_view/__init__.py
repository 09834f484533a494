"""The MLOps view: a page inside the Airflow UI over the warehouse (plugins/mlops_view.py mounts it).

``queries`` reads what the page shows, ``charts`` draws it as inline SVG (server-side: nothing
loaded from the internet), ``app`` is the FastAPI app behind Airflow's login.
"""

from __future__ import annotations

#: where the api-server mounts the app (plugins/mlops_view.py) and the UI's navigation entry points
URL_PREFIX = "/mlops"


def address(base_url: str) -> str:
    """The line `make run` prints: where the view is."""
    return f"MLOps view: {base_url.rstrip('/')}{URL_PREFIX}/  (in the Airflow UI: Browse > MLOps; same login)"
