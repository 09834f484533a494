"""Champion/challenger: select the best candidate, compare it with the champion, decide.

* The best candidate is the one with the lowest walk-forward validation MAE (ties: name).
* The champion is scored on the same validation rows: its stored model predicts the validation
  window from the champion's own feature-set version (read from the feature store when it
  differs from the run's), and both are compared on the rows they have in common. This is
  conservative: if the champion's training window overlaps the validation window, it is
  scored partly in-sample.
* Promote when there is no champion (the first model ever becomes champion), when the
  champion's model cannot be loaded or scored, or when the best candidate's MAE is lower than
  the champion's by the configured margin (``MLOPS_PROMOTION_MARGIN``, a share: 0.02 = 2 %).
  Otherwise the candidate is recorded as rejected.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def select_best(results: list[dict]) -> dict:
    ok = [r for r in results if r and r.get("metrics", {}).get("valid_mae") is not None]
    if not ok:
        raise ValueError("no evaluated candidate to select from")
    return min(ok, key=lambda r: (r["metrics"]["valid_mae"], r["name"]))


def _read_parquet(uri: str):
    import pandas as pd

    from include.settings import get_settings

    with get_settings().storage.path(uri).open("rb") as fh:
        return pd.read_parquet(fh)


def champion_predictions(champion: dict, valid_frame, valid_start, valid_end):
    """(keys frame, predictions) of the champion over the validation window, or raises."""
    import pandas as pd

    from include.features.definitions import feature_columns
    from include.features.store import read_features
    from include.training.registry import load_model

    version = champion["feature_set_version"]
    frame = valid_frame if version == valid_frame.attrs.get("feature_set_version") else None
    if frame is None:
        frame = read_features(valid_start, valid_end, version)
    if frame.empty:
        raise ValueError(f"no {version} features in the validation window to score the champion on")
    model = load_model(champion["artifact_uri"])
    preds = model.predict(frame[feature_columns(version)])
    return pd.DataFrame(
        {"station_id": frame["station_id"].to_numpy(), "ts": frame["ts"].to_numpy(), "champion_pred": preds}
    )


def compare_with_champion(
    best: dict, champion: dict | None, valid_frame, valid_start, valid_end, margin: float
) -> dict:
    """The promotion decision for ``best`` against ``champion`` (see module docstring)."""
    import numpy as np

    from include.training.evaluate import regression_metrics

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
    except Exception as exc:  # the champion cannot be scored: it cannot defend its title
        log.warning("champion %s could not be scored on the validation window: %r", champion["version"], exc)
        return {**decision, "promote": True, "reason": f"champion {champion['version']} could not be scored: {exc!r}"}
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
