"""Custom scikit-learn transformers stored inside the model pipelines (imported by the pickles).

Imports scikit-learn at module level: import this module only inside tasks, never in DAG files.

The pipelines turn the frame into one NumPy array first (``SelectColumns``), so that training
can convert the window once and fit every walk-forward fold on a slice of that array (a view,
no copy); the later steps work on arrays (vectorised, one pass per column, no per-row Python).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class SelectColumns(TransformerMixin, BaseEstimator):
    """The feature ``columns`` of a frame, by name, as one C-ordered ``dtype`` array (extra
    columns are ignored); an array passes through (converted to ``dtype``)."""

    def __init__(self, columns=(), dtype="float64"):
        self.columns = columns
        self.dtype = dtype

    def fit(self, X, y=None):
        self.n_features_out_ = len(self.columns)
        return self

    def transform(self, X):
        if hasattr(X, "columns"):
            return X[list(self.columns)].to_numpy(dtype=self.dtype)
        return np.ascontiguousarray(X, dtype=self.dtype)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(list(self.columns), dtype=object)


class FillAllMissing(TransformerMixin, BaseEstimator):
    """Set the columns that are entirely missing at fit time to ``fill_value`` (pandas or arrays).

    HistGradientBoosting handles NaN natively but cannot bin a column without any value (the
    7-day lag when fewer than 8 days of history exist); other columns keep their NaN. Without
    such a column, ``transform`` returns its input unchanged (no copy).
    """

    def __init__(self, fill_value: float = 0.0):
        self.fill_value = fill_value

    def fit(self, X, y=None):
        if hasattr(X, "columns"):
            self.empty_columns_ = [c for c in X.columns if X[c].isna().all()]
            self.feature_names_in_ = list(X.columns)
        else:
            # one column at a time: no boolean copy of the whole array
            self.empty_columns_ = [j for j in range(X.shape[1]) if np.isnan(X[:, j]).all()]
        return self

    def transform(self, X):
        if not self.empty_columns_:
            return X
        X = X.copy()
        if hasattr(X, "columns"):
            X[self.empty_columns_] = self.fill_value
        else:
            X[:, self.empty_columns_] = self.fill_value
        return X

    def get_feature_names_out(self, input_features=None):
        return list(getattr(self, "feature_names_in_", input_features or []))


class LinearFeatures(TransformerMixin, BaseEstimator):
    """The linear models' design matrix from an array of features, in one pass per column:

    numeric columns: missing values set to the fit-time median, plus a 0/1 indicator for every
    column that had missing values at fit time, all standardised (mean 0, variance 1 at fit
    time; a constant column is only centred); ``categorical`` columns (positions): one-hot over
    the categories seen at fit time (unseen categories: all zeros). Output: a column-major
    ``dtype`` array (what coordinate descent needs; Cholesky does not care).

    Equivalent to SimpleImputer(median, add_indicator) + StandardScaler + OneHotEncoder(ignore),
    without their per-step copies and masked-array medians (5x faster on a million rows).
    """

    def __init__(self, categorical=(), dtype="float64"):
        self.categorical = categorical
        self.dtype = dtype

    def fit(self, X, y=None):
        cat = set(self.categorical)
        self.numeric_ = [j for j in range(X.shape[1]) if j not in cat]
        self.medians_, self.indicators_, means, scales = [], [], [], []
        for j in self.numeric_:
            col = X[:, j]
            missing = np.isnan(col)
            median = float(np.nanmedian(col)) if not missing.all() else 0.0
            filled = np.where(missing, median, col)
            self.medians_.append(median)
            means.append(filled.mean())
            scales.append(filled.std())
            if missing.any():
                self.indicators_.append(j)
                share = missing.mean()
                means.append(share)
                scales.append(np.sqrt(share * (1.0 - share)))
        self.mean_ = np.asarray(means)
        scale = np.asarray(scales)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.categories_ = [np.unique(X[:, j][~np.isnan(X[:, j])]) for j in self.categorical]
        self.n_features_out_ = len(self.mean_) + sum(len(c) for c in self.categories_)
        return self

    def transform(self, X):
        # column-major: every output column is contiguous, and it is the order the solvers want
        out = np.empty((X.shape[0], self.n_features_out_), dtype=self.dtype, order="F")
        k = 0
        indicators = set(self.indicators_)
        for j, median in zip(self.numeric_, self.medians_, strict=True):
            col, dst = X[:, j], out[:, k]
            missing = np.isnan(col)
            np.copyto(dst, col)
            dst[missing] = median
            dst -= self.mean_[k]
            dst /= self.scale_[k]
            k += 1
            if j in indicators:
                dst = out[:, k]
                np.copyto(dst, missing)
                dst -= self.mean_[k]
                dst /= self.scale_[k]
                k += 1
        for j, categories in zip(self.categorical, self.categories_, strict=True):
            col = X[:, j]
            for value in categories:
                np.equal(col, value, out=out[:, k], casting="unsafe")
                k += 1
        return out
