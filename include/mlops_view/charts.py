"""Inline SVG charts of the MLOps view, drawn server-side (no JavaScript, nothing from the internet).

Every mark carries its value in ``data-*`` attributes (the browser test reads them) and a
``<title>`` (the tooltip).
"""

from __future__ import annotations

from html import escape

STATUS_COLOURS = {"passed": "#2e7d32", "warned": "#f9a825", "failed": "#c62828", "error": "#6a1b9a"}
PENDING = "#9e9e9e"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 10, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>{escape(s)}</text>'


def quality_chart(days: list[dict], max_share: float) -> str:
    """Rows loaded per day (bars coloured by the gate's status) and the share quarantined (dots)."""
    if not days:
        return '<p class="empty">No day loaded yet.</p>'
    w, h, left, bottom, top = max(360, 36 * len(days) + 90), 220, 50, 40, 14
    plot_h = h - bottom - top
    step = (w - left - 40) / len(days)
    top_rows = max(d["rows_loaded"] for d in days) or 1
    top_share = max(max_share * 1.5, *(_share(d) for d in days), 0.01)
    body = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 40}" y2="{h - bottom}" stroke="#555"/>']
    body.append(_text(left - 6, top + 4, f"{top_rows:,}", "end"))
    body.append(_text(w - 36, top + 4, f"{top_share:.0%}", "start", extra='fill="#1565c0"'))
    y_limit = h - bottom - plot_h * max_share / top_share
    body.append(
        f'<line class="limit" x1="{left}" y1="{y_limit:.1f}" x2="{w - 40}" y2="{y_limit:.1f}" '
        'stroke="#1565c0" stroke-dasharray="4 3"/>'
    )
    body.append(_text(w - 36, y_limit + 3, f"limit {max_share:.0%}", "start", 9, 'fill="#1565c0"'))
    points = []
    for i, d in enumerate(days):
        x = left + i * step
        bh = plot_h * d["rows_loaded"] / top_rows
        colour = STATUS_COLOURS.get(d["status"], PENDING)
        share = _share(d)
        body.append(
            f'<rect class="bar" x="{x + 2:.1f}" y="{h - bottom - bh:.1f}" width="{step - 4:.1f}" height="{bh:.1f}" '
            f'fill="{colour}" data-day="{d["day"]}" data-rows="{d["rows_loaded"]}" data-status="{d["status"]}" '
            f'data-quarantined="{d["rows_quarantined"]}"><title>{d["day"]}: {d["status"]}, {d["rows_loaded"]:,} rows, '
            f"{d['rows_quarantined']:,} quarantined ({share:.1%})</title></rect>"
        )
        cx, cy = x + step / 2, h - bottom - plot_h * share / top_share
        points.append(f"{cx:.1f},{cy:.1f}")
        body.append(
            f'<circle class="share" cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="#1565c0" data-share="{share:.4f}"/>'
        )
        if len(days) <= 20 or i % 2 == 0:
            body.append(_text(cx, h - bottom + 14, f"{d['day']:%m-%d}", size=9))
    body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    return _svg(w, h, body, "data quality per day")


def _share(d: dict) -> float:
    total = d["rows_loaded"] + d["rows_quarantined"]
    return d["rows_quarantined"] / total if total else 0.0


def psi_heatmap(psi: list[dict], windows: list[dict], psi_threshold: float, report_href) -> str:
    """Per-feature PSI by window: rows are features, columns windows (each linked to its report)."""
    if not psi:
        return '<p class="empty">No drift window evaluated yet.</p>'
    days = [w["window_day"] for w in windows]
    runs = {w["window_day"]: w["run_id"] for w in windows}
    features = sorted({p["feature"] for p in psi})
    cell, left, top = 22, 170, 56
    w, h = left + cell * len(days) + 10, top + cell * len(features) + 10
    body = []
    for j, day in enumerate(days):
        x = left + j * cell + cell / 2
        label = _text(x, top - 6, f"{day:%m-%d}", "start", 9, f'transform="rotate(-60 {x:.1f} {top - 6})"')
        body.append(f'<a class="report-link" href="{escape(report_href(runs[day]))}" target="_blank">{label}</a>')
    for i, f in enumerate(features):
        body.append(_text(left - 6, top + i * cell + cell * 0.65, f, "end"))
    col = {d: j for j, d in enumerate(days)}
    row = {f: i for i, f in enumerate(features)}
    for p in psi:
        if p["window_day"] not in col or p["psi"] is None:
            continue
        x, y = left + col[p["window_day"]] * cell, top + row[p["feature"]] * cell
        body.append(
            f'<rect class="cell" x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}"'
            f' fill="{_heat(p["psi"], psi_threshold)}"'
            f' data-feature="{escape(p["feature"])}" data-day="{p["window_day"]}" data-psi="{p["psi"]:.4f}"'
            f' stroke="{"#000" if p["drifted"] else "none"}"><title>{escape(p["feature"])} {p["window_day"]}: '
            f"PSI {p['psi']:.3f}{' (drifted)' if p['drifted'] else ''}</title></rect>"
        )
    return _svg(w, h, body, "PSI per feature and window")


def _heat(value: float, threshold: float) -> str:
    """White (0) to deep red (twice the threshold and above)."""
    t = max(0.0, min(1.0, value / (2 * threshold)))
    g = int(255 - 200 * t)
    return f"rgb(255,{g},{int(255 - 230 * t)})"


def error_ratio_line(windows: list[dict], threshold: float, report_href) -> str:
    """The model's error ratio (window MAE / validation MAE) per window; each point links to its report."""
    pts = [w for w in windows if w["error_ratio"] is not None]
    if not pts:
        return '<p class="empty">No window with ground truth yet.</p>'
    w, h, left, bottom, top = max(360, 24 * len(pts) + 80), 200, 46, 34, 14
    plot_h = h - bottom - top
    step = (w - left - 20) / max(len(pts), 1)
    top_v = max(threshold * 1.3, *(p["error_ratio"] for p in pts))
    body = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="#555"/>']
    body.append(_text(left - 6, top + 4, f"{top_v:.1f}", "end"))
    body.append(_text(left - 6, h - bottom, "0", "end"))
    y_t = h - bottom - plot_h * threshold / top_v
    body.append(
        f'<line class="limit" x1="{left}" y1="{y_t:.1f}" x2="{w - 20}" y2="{y_t:.1f}" stroke="#c62828" '
        'stroke-dasharray="4 3"/>'
    )
    body.append(_text(w - 22, y_t - 4, f"alarm {threshold:g}", "end", 9, 'fill="#c62828"'))
    coords = []
    for i, p in enumerate(pts):
        x, y = left + i * step + step / 2, h - bottom - plot_h * p["error_ratio"] / top_v
        coords.append(f"{x:.1f},{y:.1f}")
        colour = "#c62828" if p["drift_detected"] else "#1565c0"
        body.append(
            f'<a class="report-link" href="{escape(report_href(p["run_id"]))}" target="_blank">'
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" data-day="{p["window_day"]}" '
            f'data-ratio="{p["error_ratio"]:.4f}"><title>{p["window_day"]}: error ratio {p["error_ratio"]:.2f}'
            f"{' (drift)' if p['drift_detected'] else ''}, model {escape(p['model_version'])}</title></circle></a>"
        )
        body.append(_text(x, h - bottom + 14, f"{p['window_day']:%m-%d}", size=9))
    body.insert(1, f'<polyline points="{" ".join(coords)}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    return _svg(w, h, body, "model error ratio per window")
