"""The ``etl`` section of reports/run_summary.json, read from the warehouse after the chain ran."""

from __future__ import annotations

from datetime import datetime

from include.warehouse import db


def summary_section(since: datetime | None = None) -> dict:
    """``days_loaded``, ``rows_loaded``, ``rows_quarantined`` over the ledger (the days loaded at or
    after ``since`` when given: ``make run`` passes its start), and the quality gate result per
    day (passed | warned | failed | error | pending). ``wall_s`` is added by the caller."""
    rows = db.fetch_all(
        """
        select interval_start::date, rows_loaded, rows_quarantined,
               coalesce(quality_report->>'status', case when quality_passed then 'passed'
                                                        when not quality_passed then 'failed'
                                                        else 'pending' end)
        from warehouse.load_ledger
        where %(since)s::timestamptz is null or loaded_at >= %(since)s
        order by interval_start
        """,
        {"since": since},
    )
    return {
        "days_loaded": len(rows),
        "rows_loaded": int(sum(r[1] for r in rows)),
        "rows_quarantined": int(sum(r[2] for r in rows)),
        "quality_gate": {r[0].isoformat(): r[3] for r in rows},
    }
