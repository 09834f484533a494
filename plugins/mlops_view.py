"""The MLOps view inside the Airflow UI, and the project's custom deadline reference.

* ``fastapi_apps``: include/mlops_view (a FastAPI app) mounted in the api-server under ``/mlops``;
  every request needs the Airflow login (the api-server's own JWT, cookie or bearer token).
* ``external_views``: the "MLOps" entry in the UI's navigation, which embeds that page.
* ``deadline_references``: ``IntervalEndOrCreation`` (include/deadlines.py), so that the
  scheduler can evaluate the ETL's deadline.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.deadlines import IntervalEndOrCreation


def _fastapi_apps() -> list[dict]:
    try:
        from include.mlops_view import URL_PREFIX
        from include.mlops_view.app import create_app
    except ImportError:  # fastapi is part of the api-server; other components do not need the app
        return []
    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "MLOps view"}]


class MlopsViewPlugin(AirflowPlugin):
    name = "mlops_view"
    deadline_references = [IntervalEndOrCreation]
    fastapi_apps = _fastapi_apps()
    external_views = [
        {
            "name": "MLOps",
            "href": "/mlops/",
            "destination": "nav",
            "url_route": "mlops",
            "category": "browse",
        }
    ]
