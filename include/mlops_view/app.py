"""The MLOps view's FastAPI app, mounted in Airflow's api-server at ``/mlops`` (plugins/mlops_view.py).

Routes (all behind Airflow's login: the api-server's JWT, from the UI's ``_token`` cookie or an
``Authorization: Bearer`` header, validated by Airflow's own ``get_user`` dependency; the user
must be allowed to read DAGs):

* ``/mlops/``: the page -- champion and its history, latest training runs, data quality per day,
  drift over time (PSI heat map, error ratio), the RAG index;
* ``/mlops/api/summary``: the same data as JSON;
* ``/mlops/drift-report/{run_id}``: the HTML drift report of a drift_monitoring run, read by the
  URI that run recorded (only reports the warehouse knows are served).
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from include.mlops_view import URL_PREFIX, charts, queries
from include.settings import get_settings


async def require_user(request: Request):
    """The logged-in Airflow user, or 401/403 -- Airflow's own token validation, nothing of ours."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_dag(method="GET", user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to read DAGs")
    return user


User = Annotated[Any, Depends(require_user)]


def create_app() -> FastAPI:
    app = FastAPI(title="MLOps view", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _auth_error(request: Request, exc: HTTPException):
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            login = f"/auth/login/?next={quote(str(request.url))}"
            page = (
                f"<h1>{exc.status_code}: {escape(str(exc.detail))}</h1><p><a href='{login}'>Log in to Airflow</a></p>"
            )
            return HTMLResponse(page, status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def page(user: User) -> HTMLResponse:
        t0 = time.perf_counter()
        data = queries.load()
        body = render(data, getattr(user, "username", None) or user.get_name())
        ms = (time.perf_counter() - t0) * 1000
        return HTMLResponse(
            body.replace("{{render_ms}}", f"{ms:.0f}"), headers={"Server-Timing": f"render;dur={ms:.1f}"}
        )

    @app.get("/api/summary")
    def summary(user: User) -> Response:
        return Response(json.dumps(queries.load(), default=_json), media_type="application/json")

    @app.get("/drift-report/{run_id:path}", response_class=HTMLResponse)
    def drift_report(run_id: str, user: User) -> HTMLResponse:
        uri = queries.report_uri(run_id)
        if uri is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no drift report recorded for run {run_id!r}")
        try:
            return HTMLResponse(queries.read_report(uri))
        except FileNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"the drift report {uri} is gone") from None

    return app


def _json(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def report_href(run_id: str) -> str:
    return f"{URL_PREFIX}/drift-report/{quote(run_id, safe='')}"


# --- the page ----------------------------------------------------------------------------------
def _v(value, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float) and spec:
        return format(value, spec)
    return escape(str(value))


def _review(row: dict) -> str:
    if not row.get("review_decision"):
        return "-"
    who = "automatic" if row.get("review_automatic") else (row.get("reviewed_by") or "timeout (nobody)")
    comment = f": {escape(row['review_comment'])}" if row.get("review_comment") else ""
    return f"<b>{escape(row['review_decision'])}</b> by {escape(who)}{comment}"


def _table(headers: list[str], rows: list[list[str]], cls: str) -> str:
    if not rows:
        return '<p class="empty">Nothing yet.</p>'
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _records(columns: dict, records: list[dict], cls: str) -> str:
    """A table of ``records``, one column per entry of ``columns``: its header, and the record's
    key (shown with ``_v``) or a function of the record that gives the cell's HTML."""
    cells = [[_v(r[c]) if isinstance(c, str) else c(r) for c in columns.values()] for r in records]
    return _table(list(columns), cells, cls)


_MODEL_COLUMNS = {
    "version": "version",
    "status": lambda m: f'<span class="status {m["status"]}">{m["status"]}</span>',
    "valid MAE": lambda m: _v(m["metric_value"], ".4f"),
    "created": "created_at",
    "promoted": "promoted_at",
    "retired": "retired_at",
    "why": "decision_reason",
    "review": _review,
}
_RUN_COLUMNS = {
    "run": "run_id",
    "decided": "decided_at",
    "trained?": lambda r: "yes" if r["train"] else "no",
    "policy's reason": "reason",
    "outcome": "outcome",
    "outcome reason": "outcome_reason",
    "review": _review,
}


def render(data: dict, username: str | None) -> str:
    s = get_settings()
    champ = data["champion"]
    if champ:
        champion = (
            f'<div class="card"><div>Champion <span id="champion-version">{escape(champ["version"])}</span></div>'
            f"<div>{escape(champ['model_family'])} ({escape(champ['candidate_name'])}), feature set "
            f"{escape(champ['feature_set_version'])}, {champ['metric_name']} "
            f"<b>{_v(champ['metric_value'], '.4f')}</b>, trained on {champ['train_start']:%Y-%m-%d} .. "
            f"{champ['train_end']:%Y-%m-%d} ({champ['rows_trained']:,} rows)</div>"
            f"<div>promoted {_v(champ['promoted_at'])}: {_v(champ['decision_reason'])}</div>"
            f"<div>review: {_review(champ)}</div></div>"
        )
    else:
        champion = '<div class="card"><span id="champion-version">none</span>: no model promoted yet.</div>'
    models = _records(_MODEL_COLUMNS, data["models"], "models")
    runs = _records(_RUN_COLUMNS, data["runs"], "runs")
    quality = charts.quality_chart(data["quality"], s.etl.max_quarantine_share)
    heat = charts.psi_heatmap(data["psi"], data["windows"], s.drift.psi_threshold, report_href)
    ratio = charts.error_ratio_line(data["windows"], s.drift.error_ratio_threshold, report_href)
    reports = " ".join(
        f'<a class="report-link" href="{escape(report_href(r))}" target="_blank">{escape(r)}</a>'
        for r in dict.fromkeys(w["run_id"] for w in reversed(data["windows"]) if w["report_path"])
    )
    rag_t, rag_l = data["rag_totals"] or {}, data["rag_last"]
    rag = (
        f'<p id="rag-totals">{rag_t.get("documents", 0)} documents, {rag_t.get("chunks", 0)} chunks, model '
        f"{escape(', '.join(rag_t.get('models') or []) or '-')}</p>"
    )
    if rag_l:
        rag += (
            f"<p>Last run {escape(rag_l['run_id'])} finished {_v(rag_l['finished_at'])}: "
            f"{rag_l['documents_seen']} seen, "
            f"{rag_l['documents_changed']} changed, {rag_l['documents_deleted']} deleted; chunks "
            f"{rag_l['chunks_embedded']} embedded, {rag_l['chunks_reused']} reused, {rag_l['chunks_deleted']} deleted, "
            f"{rag_l['chunks_total']} in total</p>"
        )
    legend = " ".join(
        f'<span class="swatch" style="background:{c}"></span>{k}' for k, c in charts.STATUS_COLOURS.items()
    )
    return PAGE.format(
        user=escape(username or "?"),
        champion=champion,
        models=models,
        runs=runs,
        quality=quality,
        legend=legend,
        heat=heat,
        ratio=ratio,
        reports=reports or '<span class="empty">none yet</span>',
        rag=rag,
        psi=s.drift.psi_threshold,
        ratio_threshold=s.drift.error_ratio_threshold,
        approval=escape(s.training.promotion_approval),
    )


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MLOps</title>
<style>
body{{font:14px system-ui,sans-serif;margin:16px;color:#222}}h1{{font-size:20px;margin:0 0 8px}}
h2{{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #ddd}}.card{{background:#f4f8fb;border:1px solid #cfe0ee;
padding:10px;border-radius:6px;line-height:1.6}}#champion-version{{font-weight:700;font-family:monospace}}
table{{border-collapse:collapse;font-size:12px;width:100%}}td,th{{border-bottom:1px solid #eee;padding:3px 6px;
text-align:left;vertical-align:top}}th{{background:#fafafa}}.status{{padding:1px 5px;border-radius:3px;color:#fff}}
.champion{{background:#2e7d32}}.retired{{background:#757575}}.rejected{{background:#c62828}}.candidate{{background:#1565c0}}
.empty{{color:#888}}.swatch{{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}}
.muted{{color:#777;font-size:12px}}
.grid{{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}}
</style></head><body>
<h1>MLOps</h1><div class="muted">Logged in as {user}. Promotion approval: {approval}. From the warehouse; rendered in
{{{{render_ms}}}} ms.</div>
<h2>Champion</h2>{champion}
<h2>Model history</h2>{models}
<h2>Latest training runs</h2>{runs}
<h2>Data quality per day</h2><div>Bars: rows loaded, coloured by the quality gate: {legend};
dots: share quarantined.</div>
<div id="quality">{quality}</div>
<h2>Drift over time</h2><div class="grid"><div id="psi"><div>PSI per feature (red at {psi} and above; outlined:
drifted). Each window's date opens its drift report.</div>{heat}</div><div id="error-ratio"><div>Model error ratio
(window MAE / validation MAE; alarm at {ratio_threshold}).</div>{ratio}</div></div>
<div>Drift reports: {reports}</div>
<h2>RAG index</h2><div id="rag">{rag}</div>
</body></html>"""
