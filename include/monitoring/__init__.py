"""Drift monitoring: batch scoring with the champion, drift statistics, reports, summary.

* ``scoring``: find intervals with features but no predictions from the current champion,
  score them (vectorised) and store the predictions (one transaction per batch, COPY).
* ``drift``: per-feature PSI and two-sample KS (SciPy), prediction drift, model error against
  the error measured at training time, and the drift decision (thresholds in
  ``include.settings.DriftSettings``).
* ``evaluate``: windows to evaluate, found from the data; writes ``ml.drift_runs`` and
  ``ml.drift_report``.
* ``report``: the human-readable HTML report with reference-vs-current plots.
* ``summary``: the ``drift`` section of ``reports/run_summary.json``.
* ``steps``: one function per task of dags/drift_monitoring.py.
"""
