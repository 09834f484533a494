"""Custom scikit-learn transformers stored inside the model pipelines (imported by the pickles).

Imports scikit-learn at module level: import this module only inside tasks, never in DAG files.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin


class FillAllMissing(TransformerMixin, BaseEstimator):
    """Set the columns that are entirely missing at fit time to ``fill_value`` (pandas in/out).

    HistGradientBoosting handles NaN natively but cannot bin a column without any value (the
    7-day lag when fewer than 8 days of history exist); other columns keep their NaN.
    """

    def __init__(self, fill_value: float = 0.0):
        self.fill_value = fill_value

    def fit(self, X, y=None):
        self.empty_columns_ = [c for c in X.columns if X[c].isna().all()]
        self.feature_names_in_ = list(X.columns)
        return self

    def transform(self, X):
        if not self.empty_columns_:
            return X
        X = X.copy()
        X[self.empty_columns_] = self.fill_value
        return X

    def get_feature_names_out(self, input_features=None):
        return list(self.feature_names_in_)
