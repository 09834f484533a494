"""Alerts: one notifier used by every DAG, and ``send_alert`` for alerts raised inside tasks.

``ProjectNotifier`` is an Airflow notifier (``on_failure_callback=ProjectNotifier(...)``).
By default it writes every alert to the task log and stores it as one JSON object under
``<MLOPS_REPORTS_URI>/alerts/`` (``reports/alerts/`` under the project locally, an S3 prefix in
the Celery profile), so a newcomer sees alerts without any account; :func:`read_alerts` reads them.
When ``MLOPS_SMTP_CONN_ID`` names an SMTP connection and ``MLOPS_ALERT_EMAIL`` an address,
alerts also go out by e-mail through the SMTP provider's notifier; ``MLOPS_SLACK_WEBHOOK_CONN_ID``
does the same for Slack when apache-airflow-providers-slack is installed.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import BaseNotifier

from include.settings import get_settings

log = logging.getLogger("mlops.alerts")


def alerts_root():
    """``<reports_uri>/alerts``: one JSON object per alert (an ObjectStoragePath).

    One object per alert, never an appended file: tasks on different workers raise alerts at the
    same time, and object stores cannot append."""
    storage = get_settings().storage
    return storage.path(storage.reports_uri) / "alerts"


def read_alerts() -> list[dict[str, Any]]:
    """Every recorded alert, oldest first."""
    root = alerts_root()
    if not root.exists():
        return []
    paths = sorted((p for p in root.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
    return [json.loads(p.read_text()) for p in paths]


def send_alert(
    subject: str,
    details: dict[str, Any] | None = None,
    severity: str = "error",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record and deliver one alert. Returns the alert as written."""
    alert: dict[str, Any] = {
        "at": datetime.now(timezone.utc).isoformat(),
        "severity": severity,
        "subject": subject,
        "details": details or {},
    }
    if context:
        ti = context.get("ti") or context.get("task_instance")
        alert.update(
            dag_id=getattr(ti, "dag_id", None),
            task_id=getattr(ti, "task_id", None),
            run_id=getattr(ti, "run_id", None),
            try_number=getattr(ti, "try_number", None),
        )
    line = json.dumps(alert, default=str, sort_keys=True)
    (log.warning if severity == "warning" else log.error)("ALERT %s", line)
    root = alerts_root()
    root.mkdir(parents=True, exist_ok=True)
    # the name sorts by time; the random part keeps two alerts of one microsecond apart
    name = f"{datetime.fromisoformat(alert['at']):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
    with (root / name).open("w", encoding="utf-8") as fh:
        fh.write(line)
    _deliver_external(subject, line, context)
    return alert


def _deliver_external(subject: str, body: str, context: dict[str, Any] | None) -> None:
    channels = get_settings().alerts
    smtp_conn, to = channels.smtp_conn_id, channels.email
    if smtp_conn and to:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(
                to=to, subject=f"[mlops] {subject}", html_content=f"<pre>{body}</pre>", smtp_conn_id=smtp_conn
            ).notify(context or {})
        except Exception:  # an alert channel being down must not hide the alert itself
            log.exception("e-mail alert failed; the alert is in %s", alerts_root())
    slack_conn = channels.slack_webhook_conn_id
    if slack_conn:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            SlackWebhookNotifier(slack_webhook_conn_id=slack_conn, text=f"*{subject}*\n```{body}```").notify(
                context or {}
            )
        except Exception:
            log.exception("Slack alert failed; the alert is in %s", alerts_root())


class ProjectNotifier(BaseNotifier):
    """Airflow notifier for task/DAG callbacks: ``on_failure_callback=ProjectNotifier("...")``."""

    template_fields = ("message",)

    def __init__(self, message: str = "{{ ti.dag_id }}.{{ ti.task_id }} failed", severity: str = "error"):
        super().__init__()
        self.message = message
        self.severity = severity

    def notify(self, context) -> None:
        exc = context.get("exception")
        send_alert(
            self.message,
            {"exception": repr(exc)} if exc is not None else {},
            severity=self.severity,
            context=context,
        )
