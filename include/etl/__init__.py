"""ETL of the source's daily demand files into ``warehouse.demand_hourly``.

- ``rules``: the schema and value rules of a row (shared with the Soda contract; a test keeps them equal).
- ``validation``: vectorised validation of one Parquet chunk (pyarrow/NumPy, no Python loop per row).
- ``loading``: ``load_day``, the steps of a load in one transaction: stream the day's file in chunks
  (``streaming``; rows encoded by ``binary_copy``), COPY good rows, quarantine bad ones and swap the
  day in with its ledger row (the SQL of each step: ``day_partition``).
- ``steps``: the ETL DAG's load and asset extra.
- ``sensor``: the sensor that waits for a day's file in the landing or archive zone.
- ``summary``: the ``etl`` section of reports/run_summary.json.
"""
