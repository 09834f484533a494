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
* ``sklearn``: any scikit-learn regressor, named by ``estimator`` (its class name, one of
  ``sklearn.utils.all_estimators(type_filter="regressor")``) with ``params`` its constructor's
  arguments, checked when the file is read; it gets the linear models' preparation (imputed,
  indicated, scaled, one-hot: every regressor accepts that matrix) and ``random_state`` (when it
  has one) set to the seed unless given. Rows are weighted by recency when the estimator's
  ``fit`` takes ``sample_weight``; an estimator without it (``KNeighborsRegressor``) is fitted
  unweighted.

``log_target: true`` fits on ``log1p(demand)`` and predicts back on the original scale.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from include.settings import get_settings

FAMILIES = ("hist_gradient_boosting", "ridge", "elastic_net", "sklearn")
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
        unknown = set(item) - {"name", "family", "estimator", "params", "log_target"}
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
        candidate = {"name": name, "family": family, "params": params, "log_target": bool(item.get("log_target"))}
        if family == "sklearn":
            candidate["estimator"] = _check_estimator(item.get("estimator"), params, f"{source}: candidate {name!r}")
        elif "estimator" in item:
            where = f"{source}: candidate {name!r}"
            raise HyperparameterConfigError(f"{where}: 'estimator' goes with family 'sklearn' only")
        out.append(candidate)
    return out


@functools.cache
def _regressors() -> dict:
    """scikit-learn's regressors by class name (imports scikit-learn: call it inside tasks)."""
    from sklearn.utils import all_estimators

    return dict(all_estimators(type_filter="regressor"))


def _check_estimator(estimator: Any, params: dict, where: str) -> str:
    """``estimator`` if it names a scikit-learn regressor that accepts ``params``."""
    import difflib

    regressors = _regressors()
    if not isinstance(estimator, str) or estimator not in regressors:
        close = difflib.get_close_matches(str(estimator), regressors, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise HyperparameterConfigError(
            f"{where}: estimator must name a scikit-learn regressor "
            f'(sklearn.utils.all_estimators(type_filter="regressor")), not {estimator!r}{hint}'
        )
    try:
        model = regressors[estimator](**params)
        # the estimator's own parameter constraints, checked now rather than at the first fit
        check = getattr(model, "_validate_params", None)
        if check is not None:
            check()
    except (TypeError, ValueError) as exc:
        raise HyperparameterConfigError(f"{where}: bad params for {estimator}: {exc}") from exc
    return estimator


def takes_sample_weight(model) -> bool:
    """Whether ``model`` (a pipeline's last step, possibly inside a TransformedTargetRegressor)
    can be fitted with ``sample_weight``."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.utils.validation import has_fit_parameter

    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor
    return has_fit_parameter(model, "sample_weight")


def load_candidates(path: str | Path | None = None) -> list[dict]:
    """The hyperparameter sets of ``path`` (default: settings ``training.hyperparams_file``)."""
    import yaml

    path = Path(path or get_settings().training.hyperparams_file)
    if not path.exists():
        raise HyperparameterConfigError(f"hyperparameter file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise HyperparameterConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate_candidates(raw, str(path))


def family_label(candidate: dict) -> str:
    """The family as the registry records it: ``sklearn:<Estimator>`` for a named regressor."""
    if candidate["family"] == "sklearn":
        return f"sklearn:{candidate['estimator']}"
    return candidate["family"]


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

    from include.training.transformers import FillAllMissing, LinearFeatures, SelectColumns  # scikit-learn at import

    family, params = candidate["family"], dict(candidate["params"])
    columns = list(columns)
    is_categorical = np.isin(columns, list(categorical))
    if family == "hist_gradient_boosting":
        params.setdefault("random_state", seed)
        params["early_stopping"] = False
        select = SelectColumns(columns, dtype="float64")  # the estimator's own dtype: no second copy
        prep = FillAllMissing()
        model = HistGradientBoostingRegressor(categorical_features=is_categorical, **params)
    elif family == "sklearn":
        select = SelectColumns(columns, dtype="float64")
        prep = LinearFeatures(categorical=[int(j) for j in np.flatnonzero(is_categorical)])
        model = _regressors()[candidate["estimator"]](**params)
        if "random_state" in model.get_params(deep=False) and "random_state" not in params:
            model.set_params(random_state=seed)
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
