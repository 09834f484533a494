"""Champion/challenger: select the best candidate, compare it with the champion, decide.

* The best candidate is the one with the lowest walk-forward validation MAE (ties: name).
* The champion is scored on the same validation rows: its stored model predicts the validation
  window from the champion's own feature-set version (read from the feature store when it
  differs from the run's), and both are compared on the rows they have in common. This is
  conservative: if the champion's training window overlaps the validation window, it is
  scored partly in-sample.
* Promote when there is no champion (the first model ever becomes champion), when the
  champion cannot be loaded (its artifact is missing, cannot be unpickled by this code, or its
  feature set is no longer built: ``ChampionUnavailable``, named in the decision), or when the
  best candidate's MAE is lower than the champion's by the configured margin
  (``MLOPS_PROMOTION_MARGIN``, a share: 0.02 = 2 %). Otherwise the candidate is rejected.
  Any other error while scoring the champion (the warehouse or object storage unreachable, ...)
  propagates: the task fails and Airflow retries it; it never promotes by default.
* The decision then goes to review (include/training/review.py): with
  ``MLOPS_PROMOTION_APPROVAL=required`` a person approves or rejects a promotion;
  ``review_request`` builds what the reviewer sees, ``final_reason`` what is recorded.
"""

from __future__ import annotations

import logging

from include.features.definitions import feature_columns, feature_set
from include.features.store import read_features
from include.settings import get_settings
from include.training.evaluate import regression_metrics
from include.training.registry import get_model, load_model

log = logging.getLogger(__name__)


def select_best(results: list[dict]) -> dict:
    ok = [r for r in results if r and r.get("metrics", {}).get("valid_mae") is not None]
    if not ok:
        raise ValueError("no evaluated candidate to select from")
    return min(ok, key=lambda r: (r["metrics"]["valid_mae"], r["name"]))


def _read_parquet(uri: str):
    import pandas as pd

    with get_settings().storage.path(uri).open("rb") as fh:
        return pd.read_parquet(fh)


class ChampionUnavailable(Exception):
    """The champion cannot be loaded: a retry cannot fix it, so it cannot defend its title."""


#: what unpickling raises for an artifact this code cannot read (another scikit-learn or project
#: version, a truncated or foreign file); anything else (OSError, a database error) is transient
_INCOMPATIBLE = (ImportError, AttributeError, EOFError, TypeError, ValueError, KeyError, IndexError)


def load_champion_model(champion: dict):
    """The champion's fitted Pipeline, or ``ChampionUnavailable`` (missing or incompatible artifact)."""
    import pickle

    uri = champion["artifact_uri"]
    try:
        return load_model(uri)
    except FileNotFoundError as exc:
        raise ChampionUnavailable(f"artifact missing: {uri}") from exc
    except (pickle.UnpicklingError, *_INCOMPATIBLE) as exc:
        raise ChampionUnavailable(f"artifact incompatible with this code: {uri}: {exc!r}") from exc


def champion_predictions(champion: dict, valid_frame, valid_start, valid_end):
    """(keys frame, predictions) of the champion over the validation window, or raises
    (``ChampionUnavailable`` when the champion cannot be loaded, anything else when transient)."""
    import pandas as pd

    version = champion["feature_set_version"]
    try:
        feature_set(version)
    except (KeyError, ValueError) as exc:
        raise ChampionUnavailable(f"feature set {version} is no longer defined") from exc
    frame = valid_frame if version == valid_frame.attrs.get("feature_set_version") else None
    if frame is None:
        frame = read_features(valid_start, valid_end, version)
    if frame.empty:
        raise ChampionUnavailable(f"no {version} features in the validation window: its feature set is not built")
    model = load_champion_model(champion)
    preds = model.predict(frame[feature_columns(version)])
    return pd.DataFrame(
        {"station_id": frame["station_id"].to_numpy(), "ts": frame["ts"].to_numpy(), "champion_pred": preds}
    )


def compare_with_champion(
    best: dict, champion: dict | None, valid_frame, valid_start, valid_end, margin: float
) -> dict:
    """The promotion decision for ``best`` against ``champion`` (see module docstring)."""
    import numpy as np

    decision = {
        "selected_version": best["version"],
        "selected_name": best["name"],
        "candidate_mae": best["metrics"]["valid_mae"],
        "champion_version": champion["version"] if champion else None,
        "champion_mae": None,
        "margin": margin,
        "changed": True,
    }
    if champion is None:
        return {**decision, "promote": True, "reason": "first model: no champion yet"}
    if champion["version"] == best["version"]:
        return {
            **decision,
            "promote": True,
            "changed": False,
            "reason": "the selected model is already the champion (same data and hyperparameters)",
        }
    try:
        champ = champion_predictions(champion, valid_frame, valid_start, valid_end)
    except ChampionUnavailable as exc:  # a retry cannot fix it; any other error propagates (retried)
        log.warning("champion %s cannot be loaded: %s", champion["version"], exc)
        return {
            **decision,
            "promote": True,
            "champion_unavailable": str(exc),
            "reason": f"promoted without comparison: champion {champion['version']} cannot be loaded ({exc})",
        }
    cand = _read_parquet(best["predictions_uri"])
    both = cand.merge(champ, on=["station_id", "ts"], how="inner")
    if both.empty:
        return {**decision, "promote": True, "reason": "champion has no validation rows in common with the candidate"}
    cand_mae = regression_metrics(both["y"], both["y_pred"])["mae"]
    champ_mae = regression_metrics(both["y"], both["champion_pred"])["mae"]
    threshold = champ_mae * (1.0 - margin)
    promote = bool(np.isfinite(cand_mae) and cand_mae < threshold)
    verdict = "better" if promote else "not better"
    reason = (
        f"candidate MAE {cand_mae:.4f} vs champion {champion['version']} MAE {champ_mae:.4f} on {len(both)} "
        f"validation rows: {verdict} by the margin {margin:.1%} (threshold {threshold:.4f})"
    )
    return {
        **decision,
        "promote": promote,
        "reason": reason,
        "candidate_mae": cand_mae,
        "champion_mae": champ_mae,
        "compared_rows": int(len(both)),
    }


# --- review ------------------------------------------------------------------------------------
def _fmt(value, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) and spec != "s" else str(value)


def review_request(decision: dict, plan: dict) -> tuple[str, str]:
    """Subject and Markdown body of the reviewer's request: the challenger beside the champion."""
    cand = get_model(decision["selected_version"]) or {}
    champ = get_model(decision["champion_version"]) if decision.get("champion_version") else None
    champ = champ or {}
    cm, hm = cand.get("metrics") or {}, champ.get("metrics") or {}
    rows = [
        ("version", decision["selected_version"], decision.get("champion_version") or "(none)"),
        ("model family", cand.get("model_family"), champ.get("model_family")),
        ("MAE on the same validation rows", _fmt(decision.get("candidate_mae")), _fmt(decision.get("champion_mae"))),
        ("walk-forward validation MAE", _fmt(cm.get("valid_mae")), _fmt(hm.get("valid_mae"))),
        ("walk-forward validation RMSE", _fmt(cm.get("valid_rmse")), _fmt(hm.get("valid_rmse"))),
        ("training window", _window(cand), _window(champ)),
        ("feature set", cand.get("feature_set_version"), champ.get("feature_set_version")),
        ("rows trained", _fmt(cand.get("rows_trained"), "d"), _fmt(champ.get("rows_trained"), "d")),
    ]
    table = "\n".join(f"| {name} | {_fmt(a, 's')} | {_fmt(b, 's')} |" for name, a, b in rows)
    body = (
        f"**Policy:** {decision['reason']}\n\n"
        f"**Why this run trained:** {plan.get('reason', '-')}\n\n"
        "| | challenger | champion |\n|---|---|---|\n"
        f"{table}\n\n"
        f"Compared rows: {decision.get('compared_rows', '-')}; margin {decision['margin']:.1%}. "
        "**Approve** promotes the challenger, **Reject** keeps the champion. "
        "No answer before the timeout rejects."
    )
    return f"Promote model {decision['selected_version']} to champion?", body


def _window(row: dict) -> str | None:
    if not row:
        return None
    return f"{row['train_start']:%Y-%m-%d} .. {row['train_end']:%Y-%m-%d}"


def final_reason(decision: dict, review: dict | None) -> str:
    """The reason recorded with the outcome: the policy's, and the reviewer's when a person decided."""
    if not review or review.get("automatic"):
        return decision["reason"]
    who = review.get("by") or "nobody (timeout)"
    comment = f": {review['comment']}" if review.get("comment") else ""
    return f"{review['decision']} by {who}{comment} (policy: {decision['reason']})"
