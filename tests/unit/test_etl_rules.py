"""The Soda contract and the loader's rules must describe the same table."""

from __future__ import annotations

import yaml

from include.quality.gate import CONTRACT
from include.source import rules


def contract() -> dict:
    return yaml.safe_load(CONTRACT.read_text())


def test_contract_ranges_equal_loader_ranges():
    columns = {c["name"]: c for c in contract()["columns"]}
    for name, rng in rules.RANGES.items():
        invalid = [chk["invalid"] for chk in columns[name]["checks"] if "invalid" in chk]
        assert invalid, f"no range check for {name} in the contract"
        assert (invalid[0]["valid_min"], invalid[0]["valid_max"]) == (rng.min, rng.max), name


def test_contract_requires_every_raw_column_and_the_key_is_unique():
    c = contract()
    columns = {col["name"]: col for col in c["columns"]}
    for name in (*rules.RAW_COLUMNS, "source_file"):
        assert any("missing" in chk for chk in columns[name]["checks"]), f"{name} not checked for nulls"
    duplicate = [chk["duplicate"] for chk in c["checks"] if "duplicate" in chk]
    assert duplicate and duplicate[0]["columns"] == list(rules.KEY_COLUMNS)


def test_contract_is_filtered_to_the_interval():
    c = contract()
    assert "${var.interval_start}" in c["filter"] and "${var.interval_end}" in c["filter"]
    assert {"interval_start", "interval_end", "dataset", "max_quarantine_share"} <= set(c["variables"])
