"""Hyperparameter sets (from a YAML file, not code) and the scikit-learn pipelines they describe.

Every model is a ``Pipeline`` whose first step selects and prepares the feature columns by
name, so the stored artifact carries its preprocessing and ``predict`` accepts any frame that
has the feature columns (extra columns such as ``station_id`` or ``demand`` are ignored):

* ``hist_gradient_boosting``: ``HistGradientBoostingRegressor``; missing values (lags at the
  start of the history) are handled natively (a column with no value at all is set to 0, see
  include/training/transformers.py), hour and weekday are categorical. Early stopping is off:
  its internal split would shuffle rows across time.
* ``ridge`` / ``elastic_net``: median imputation with missing-value indicators, scaling,
  one-hot hour and weekday (``LinearFeatures``), then the linear model; ElasticNet runs
  coordinate descent on the precomputed Gram matrix (``precompute: true`` unless set).

``log_target: true`` fits on ``log1p(demand)`` and predicts back on the original scale.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

FAMILIES = ("hist_gradient_boosting", "ridge", "elastic_net")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")


class HyperparameterConfigError(ValueError):
    """The hyperparameter file (or DAG param) is malformed: retrying cannot fix it."""


def validate_candidates(raw: Any, source: str = "hyperparameters") -> list[dict]:
    """Check and normalise a list of candidate dicts; raises HyperparameterConfigError."""
    if isinstance(raw, dict):
        raw = raw.get("candidates")
    if not isinstance(raw, list) or not raw:
        raise HyperparameterConfigError(f"{source}: expected a non-empty list under 'candidates'")
    out, names = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise HyperparameterConfigError(f"{source}: candidate #{i} is not a mapping")
        unknown = set(item) - {"name", "family", "params", "log_target"}
        if unknown:
            raise HyperparameterConfigError(f"{source}: candidate #{i} has unknown keys {sorted(unknown)}")
        name, family = item.get("name"), item.get("family")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise HyperparameterConfigError(f"{source}: candidate #{i} needs a name matching {_NAME_RE.pattern}")
        if name in names:
            raise HyperparameterConfigError(f"{source}: duplicate candidate name {name!r}")
        if family not in FAMILIES:
            raise HyperparameterConfigError(f"{source}: candidate {name!r}: family must be one of {FAMILIES}")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise HyperparameterConfigError(f"{source}: candidate {name!r}: params must be a mapping")
        names.add(name)
        out.append({"name": name, "family": family, "params": params, "log_target": bool(item.get("log_target"))})
    return out


def load_candidates(path: str | Path | None = None) -> list[dict]:
    """The hyperparameter sets of ``path`` (default: settings ``training.hyperparams_file``)."""
    import yaml

    from include.settings import get_settings

    path = Path(path or get_settings().training.hyperparams_file)
    if not path.exists():
        raise HyperparameterConfigError(f"hyperparameter file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise HyperparameterConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate_candidates(raw, str(path))


def candidate_fingerprint(candidate: dict) -> str:
    return hashlib.sha256(json.dumps(candidate, sort_keys=True, default=str).encode()).hexdigest()


def build_pipeline(candidate: dict, columns: list[str], categorical: list[str], seed: int = 0):
    """An unfitted Pipeline for ``candidate`` over feature ``columns``: ``select`` (the frame's
    feature columns as one array), then the family's preparation, then ``model``. Training
    fits ``pipeline[1:]`` on slices of ``pipeline[:1]``'s output (include/training/evaluate.py)."""
    import numpy as np
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import ElasticNet, Ridge
    from sklearn.pipeline import Pipeline

    from include.training.transformers import FillAllMissing, LinearFeatures, SelectColumns

    family, params = candidate["family"], dict(candidate["params"])
    columns = list(columns)
    is_categorical = np.isin(columns, list(categorical))
    if family == "hist_gradient_boosting":
        params.setdefault("random_state", seed)
        params["early_stopping"] = False
        select = SelectColumns(columns, dtype="float64")  # the estimator's own dtype: no second copy
        prep = FillAllMissing()
        model = HistGradientBoostingRegressor(categorical_features=is_categorical, **params)
    else:
        # float64: in float32, X'X + alpha I of a million rows with one-hot columns (collinear with
        # the intercept) is singular to Cholesky, and Ridge falls back to an SVD 50x slower
        select = SelectColumns(columns, dtype="float64")
        prep = LinearFeatures(categorical=[int(j) for j in np.flatnonzero(is_categorical)])
        params.setdefault("copy_X", False)  # the design matrix is this fit's own: centre it in place
        if family == "ridge":
            model = Ridge(**params)  # dense, weighted: scikit-learn picks the Cholesky solver
        else:
            params.setdefault("random_state", seed)
            # coordinate descent on the Gram matrix (features x features, computed once per fit):
            # each sweep costs O(features^2) instead of O(rows x features)
            params.setdefault("precompute", True)
            model = ElasticNet(**params)
    if candidate.get("log_target"):
        model = TransformedTargetRegressor(regressor=model, func=np.log1p, inverse_func=np.expm1, check_inverse=False)
    return Pipeline([("select", select), ("prep", prep), ("model", model)])
