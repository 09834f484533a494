"""Drift statistics and the drift decision (pure functions: frames in, small dicts out).

Per monitored feature, the recent window is compared with the champion's training reference
(``reference["features"]``, a sample of its training rows):

* **PSI** (Population Stability Index) on the reference's quantile bins (deciles by default),
  computed with NumPy histograms; SciPy has no PSI function. Empty bins are floored at
  ``1e-4`` so the logarithm stays finite.
* **Kolmogorov-Smirnov** two-sample test, ``scipy.stats.ks_2samp``: statistic (the largest
  gap between the two empirical CDFs, an effect size in [0, 1]) and p-value.

A feature *drifts* when all three agree: PSI >= ``psi_threshold``, KS statistic >=
``ks_threshold`` and KS p-value < ``ks_alpha``. PSI alone flags tiny shifts of discrete
features, the p-value alone flags negligible shifts in large samples: the conjunction asks for
a shift that is both significant and large.

The same statistics compare the champion's predictions on the window with its predictions on
its training data (**prediction drift**). Where the truth has arrived (the warehouse has the
demand of the scored rows), the window's **MAE** is compared with the error measured at
training time (the walk-forward validation MAE stored in the reference): ``error_ratio``.

The decision (``decide``), tuned on the simulator (see ``DriftSettings``):

* with truth (at least ``min_truth_rows`` rows): drift when the model got worse AND its inputs
  moved: ``error_ratio >= error_ratio_threshold`` and at least ``min_drifted_features``
  features drift; or when the error alone is far off (``error_ratio >= error_ratio_alone``,
  concept drift without covariate shift);
* without truth: at least ``min_drifted_features`` features drift and the predictions drift.

Calendar features (hour, weekday, weekend, holiday) are reported but not monitored: a two-day
window never has the weekday mix of a three-week reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from include.settings import get_settings

#: name used for the prediction row in ml.drift_report
PREDICTION = "__prediction__"


def _clean(values):
    import numpy as np

    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def psi(reference, current, bins: int = 10, eps: float = 1e-4) -> float:
    """Population Stability Index of ``current`` against ``reference`` on the reference's
    quantile bins. 0 = same distribution; > 0.1 moderate, > 0.25 large shift (rule of thumb)."""
    import numpy as np

    ref, cur = _clean(reference), _clean(current)
    if not len(ref) or not len(cur):
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    n_bins = len(edges) + 1
    ref_share = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n_bins) / len(ref)
    cur_share = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=n_bins) / len(cur)
    ref_share = np.clip(ref_share, eps, None)
    cur_share = np.clip(cur_share, eps, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks(reference, current) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (SciPy): (statistic, p-value)."""
    from scipy import stats

    ref, cur = _clean(reference), _clean(current)
    if not len(ref) or not len(cur):
        return float("nan"), float("nan")
    res = stats.ks_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


@dataclass(frozen=True)
class Thresholds:
    """The knobs ``decide`` uses (a copy of ``DriftSettings``; plain values for XCom and tests)."""

    psi_threshold: float = 0.25
    ks_threshold: float = 0.1
    ks_alpha: float = 0.01
    min_drifted_features: int = 2
    prediction_psi_threshold: float = 0.25
    error_ratio_threshold: float = 1.5
    error_ratio_alone: float = 2.5
    min_truth_rows: int = 500
    psi_bins: int = 10
    max_rows: int = 50_000
    exclude_features: tuple[str, ...] = ("hour_of_day", "day_of_week", "is_weekend", "is_holiday")

    @classmethod
    def from_settings(cls) -> Thresholds:
        d = get_settings().drift
        return cls(**{f: getattr(d, f) for f in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["exclude_features"] = list(self.exclude_features)
        return out


def _sample(values, max_rows: int, seed: int = 0):
    """At most ``max_rows`` values, a deterministic random sample (statistics stay cheap on
    a million rows; KS on 50,000 rows already detects a 0.01 shift of the CDF)."""
    import numpy as np

    values = np.asarray(values)
    if max_rows and len(values) > max_rows:
        idx = np.random.default_rng(seed).choice(len(values), size=max_rows, replace=False)
        return values[np.sort(idx)]
    return values


def compare(name: str, reference, current, t: Thresholds, monitored: bool = True) -> dict:
    """PSI, KS and summary statistics of one column; ``drifted`` per the three-way rule."""
    import numpy as np

    ref, cur = _clean(_sample(reference, t.max_rows)), _clean(_sample(current, t.max_rows, seed=1))
    p = psi(ref, cur, t.psi_bins)
    stat, pvalue = ks(ref, cur)
    drifted = bool(
        monitored and np.isfinite(p) and p >= t.psi_threshold and stat >= t.ks_threshold and pvalue < t.ks_alpha
    )
    return {
        "feature": name,
        "monitored": monitored,
        "psi": p,
        "ks_stat": stat,
        "ks_pvalue": pvalue,
        "ref_mean": float(ref.mean()) if len(ref) else float("nan"),
        "cur_mean": float(cur.mean()) if len(cur) else float("nan"),
        "ref_std": float(ref.std()) if len(ref) else float("nan"),
        "cur_std": float(cur.std()) if len(cur) else float("nan"),
        "ref_rows": int(len(ref)),
        "cur_rows": int(len(cur)),
        "drifted": drifted,
    }


@dataclass
class WindowResult:
    """Everything computed for one window; ``to_dict`` is JSON-able."""

    features: list[dict]
    prediction: dict
    error: dict
    drift: bool
    reasons: list[str]
    drifted_features: list[str]
    thresholds: dict = field(default_factory=dict)

    def scores(self) -> dict:
        """Per drifted feature (and the prediction, if it drifted): PSI and KS, rounded."""
        out = {
            f["feature"]: {"psi": round(f["psi"], 4), "ks": round(f["ks_stat"], 4)}
            for f in self.features
            if f["drifted"]
        }
        if self.prediction.get("drifted"):
            out[PREDICTION] = {"psi": round(self.prediction["psi"], 4), "ks": round(self.prediction["ks_stat"], 4)}
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def error_stats(y_true, y_pred, reference_mae: float | None) -> dict:
    """MAE of the window on the rows whose truth has arrived, and its ratio to training-time MAE."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    n = int(ok.sum())
    mae = float(np.abs(y_true[ok] - y_pred[ok]).mean()) if n else float("nan")
    ratio = mae / reference_mae if n and reference_mae and reference_mae > 0 else float("nan")
    return {"rows_with_truth": n, "mae": mae, "reference_mae": reference_mae, "error_ratio": ratio}


def decide(features: list[dict], prediction: dict, error: dict, t: Thresholds) -> tuple[bool, list[str]]:
    """The drift decision of one window and its reasons (see module docstring)."""
    import math

    drifted = [f["feature"] for f in features if f["drifted"]]
    data_drift = len(drifted) >= t.min_drifted_features
    reasons: list[str] = []
    if data_drift:
        reasons.append(f"{len(drifted)} feature(s) drifted (>= {t.min_drifted_features}): {', '.join(drifted)}")
    if prediction.get("drifted"):
        reasons.append(f"predictions drifted (PSI {prediction['psi']:.3f}, KS {prediction['ks_stat']:.3f})")
    ratio = error.get("error_ratio", float("nan"))
    has_truth = error.get("rows_with_truth", 0) >= t.min_truth_rows and not math.isnan(ratio)
    if has_truth:
        worse = ratio >= t.error_ratio_threshold
        if worse:
            reasons.append(f"error {ratio:.2f}x the training-time MAE (>= {t.error_ratio_threshold})")
        drift = (worse and data_drift) or ratio >= t.error_ratio_alone
    else:
        reasons.append("no truth yet: decided on feature and prediction drift")
        drift = data_drift and bool(prediction.get("drifted"))
    return bool(drift), reasons


def evaluate_window(
    reference: dict,
    window,
    feature_cols: list[str],
    t: Thresholds,
    prediction_col: str = "prediction",
    truth_col: str = "demand",
) -> WindowResult:
    """Compare ``window`` (features, ``prediction``, optional truth) with ``reference``."""
    import numpy as np

    ref_frame = reference["features"]
    excluded = set(t.exclude_features)
    features = [
        compare(c, ref_frame[c].to_numpy(), window[c].to_numpy(), t, monitored=c not in excluded) for c in feature_cols
    ]
    pred = compare(PREDICTION, np.asarray(reference["predictions"]), window[prediction_col].to_numpy(), t)
    pred["drifted"] = bool(
        pred["psi"] >= t.prediction_psi_threshold
        and pred["ks_stat"] >= t.ks_threshold
        and pred["ks_pvalue"] < t.ks_alpha
    )
    truth = window[truth_col].to_numpy() if truth_col in window else np.full(len(window), np.nan)
    error = error_stats(truth, window[prediction_col].to_numpy(), reference.get("valid_mae"))
    drift, reasons = decide(features, pred, error, t)
    return WindowResult(
        features=features,
        prediction=pred,
        error=error,
        drift=drift,
        reasons=reasons,
        drifted_features=[f["feature"] for f in features if f["drifted"]],
        thresholds=t.to_dict(),
    )


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python (XCom, asset extra and JSON reports)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
