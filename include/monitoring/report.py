"""The human-readable drift report: one self-contained HTML file per run.

Written to ``<reports_uri>/drift/drift_<run id>.html`` (``MLOPS_REPORTS_URI``, object storage): the decision and
its reasons, the thresholds, one line per evaluated window (error against training time,
prediction drift, drifted features) and, for the first drifted window (else the latest), a
table of every feature's PSI and KS and a grid of plots of the reference vs current
distributions (matplotlib, PNG embedded as base64: the file can be mailed or archived alone).
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone

from include.keys import run_key
from include.settings import get_settings


def report_dir():
    """``<reports_uri>/drift`` (an ObjectStoragePath: a local folder or an S3 prefix)."""
    storage = get_settings().storage
    path = storage.path(storage.reports_uri) / "drift"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if v != v:  # NaN
        return "–"
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def plot_distributions(reference: dict, window, features: list[dict], prediction: dict) -> str:
    """PNG (base64) of one histogram per feature and one for the predictions: reference vs
    current, as densities on shared bins."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [
        (f["feature"], reference["features"][f["feature"]].to_numpy(), window[f["feature"]].to_numpy(), f)
        for f in features
    ]
    panels.append(("prediction", np.asarray(reference["predictions"]), window["prediction"].to_numpy(), prediction))
    ncols = 4
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.8 * nrows), dpi=80)
    FigureCanvasAgg(fig)
    for i, (name, ref, cur, stats) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ref = np.asarray(ref, dtype=float)
        cur = np.asarray(cur, dtype=float)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        if both.size:
            lo, hi = np.quantile(both, [0.001, 0.999])
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, 41)
            ax.hist(ref, bins=bins, density=True, alpha=0.5, label="reference (training)", color="#4c72b0")
            ax.hist(cur, bins=bins, density=True, alpha=0.5, label="current window", color="#dd8452")
        flag = "DRIFT " if stats.get("drifted") else ""
        ax.set_title(
            f"{flag}{name}\nPSI {_fmt(stats.get('psi'), 2)} · KS {_fmt(stats.get('ks_stat'), 2)}",
            fontsize=9,
            color="#b00020" if stats.get("drifted") else "black",
        )
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.drift{background:#fde2e4}.banner{padding:.8em 1em;font-size:18px}
.bad{background:#fde2e4;border-left:6px solid #b00020}.ok{background:#e3f4e1;border-left:6px solid #2e7d32}"""


def write_report(
    run_id: str,
    champion: dict | None,
    evaluated: list[dict],
    reference: dict | None,
    focus_frame,
    thresholds,
    focus: dict | None = None,
    note: str | None = None,
) -> str:
    """Write the run's HTML report; returns its path."""
    drifted = [e for e in evaluated if e["new_window"] and e["result"].drift]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Drift report {html.escape(run_id)}</title>"
        f"<style>{_CSS}</style></head><body>",
        "<h1>Drift report</h1>",
        f"<p>Run <code>{html.escape(run_id)}</code> · written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>",
    ]
    if champion:
        parts.append(
            f"<p>Champion <code>{html.escape(champion['version'])}</code> (feature set "
            f"{html.escape(str(champion['feature_set_version']))}), trained on "
            f"{champion['train_start']:%Y-%m-%d} – {champion['train_end']:%Y-%m-%d} (end exclusive); "
            f"training-time MAE {_fmt(reference.get('valid_mae') if reference else champion.get('metric_value'))}.</p>"
        )
    if note:
        parts.append(f"<p class='banner ok'>{html.escape(note)}</p>")
    elif drifted:
        feats = sorted({f for e in drifted for f in e["result"].drifted_features})
        parts.append(
            f"<p class='banner bad'><b>Drift detected</b> in {len(drifted)} window(s); first on "
            f"{drifted[0]['day']}. Drifted features: {html.escape(', '.join(feats) or 'none')}.</p>"
        )
    elif evaluated and not evaluated[0]["new_window"]:
        parts.append(
            "<p class='banner ok'>No new day since the last evaluation: the latest window was "
            "re-evaluated for this report (a re-evaluation never alerts).</p>"
        )
    else:
        parts.append("<p class='banner ok'>No drift.</p>")

    if evaluated:
        parts.append(
            "<h2>Windows</h2><table><tr><th>last day</th><th>from</th><th>rows</th><th>MAE</th>"
            "<th>training MAE</th><th>error ratio</th><th>prediction PSI</th><th>drifted features</th>"
            "<th>drift</th><th>reasons</th></tr>"
        )
        for e in evaluated:
            r = e["result"]
            parts.append(
                f"<tr class='{'drift' if r.drift else ''}'><td>{e['day']}</td><td>{e['start']:%Y-%m-%d}</td>"
                f"<td>{e['rows']}</td><td>{_fmt(r.error['mae'])}</td><td>{_fmt(r.error['reference_mae'])}</td>"
                f"<td>{_fmt(r.error['error_ratio'], 2)}</td><td>{_fmt(r.prediction['psi'])}</td>"
                f"<td>{html.escape(', '.join(r.drifted_features))}</td><td>{'yes' if r.drift else 'no'}</td>"
                f"<td>{html.escape('; '.join(r.reasons))}</td></tr>"
            )
        parts.append("</table>")
    if focus is not None and reference is not None and focus_frame is not None:
        r = focus["result"]
        parts.append(
            f"<h2>Window ending {focus['day']}: features</h2><table><tr><th>feature</th><th>monitored</th>"
            "<th>PSI</th><th>KS</th><th>KS p-value</th><th>reference mean</th><th>current mean</th>"
            "<th>drifted</th></tr>"
        )
        for f in [*r.features, r.prediction]:
            parts.append(
                f"<tr class='{'drift' if f['drifted'] else ''}'><td>{html.escape(f['feature'])}</td>"
                f"<td>{'yes' if f['monitored'] else 'no'}</td><td>{_fmt(f['psi'])}</td><td>{_fmt(f['ks_stat'])}</td>"
                f"<td>{_fmt(f['ks_pvalue'], 2)}</td><td>{_fmt(f['ref_mean'])}</td><td>{_fmt(f['cur_mean'])}</td>"
                f"<td>{'yes' if f['drifted'] else 'no'}</td></tr>"
            )
        parts.append("</table>")
        png = plot_distributions(reference, focus_frame, r.features, r.prediction)
        parts.append(
            f"<h2>Reference vs current distributions</h2><img alt='distributions' src='data:image/png;base64,{png}'>"
        )
    parts.append("<h2>Thresholds</h2><table><tr><th>setting</th><th>value</th></tr>")
    for k, v in thresholds.to_dict().items():
        parts.append(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>")
    parts.append(
        "</table><p>Rule: see include/monitoring/drift.py; settings: include/settings.py "
        "(DriftSettings, MLOPS_DRIFT_*).</p></body></html>"
    )
    path = report_dir() / f"drift_{run_key(run_id)}.html"
    tmp = path.parent / (path.name + ".tmp")  # a reader never sees half a report
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    tmp.replace(path)
    return str(path)
