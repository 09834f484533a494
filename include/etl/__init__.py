"""ETL of the source's daily demand files into ``warehouse.demand_hourly``.

- ``rules``: the schema and value rules of a row (shared with the Soda contract; a test keeps them equal).
- ``validation``: vectorised validation of one Parquet chunk (pyarrow/NumPy, no Python loop per row).
- ``loading``: streams a day's file in chunks, COPYs good rows, quarantines bad ones and swaps the day
  in, with its ledger row, in one transaction.
- ``sensor``: the sensor that waits for a day's file in the landing or archive zone.
- ``summary``: the ``etl`` section of reports/run_summary.json.
"""
