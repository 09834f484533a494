"""find_day_file: landing zone first, archive zone for days cold storage moved away."""

from __future__ import annotations

from datetime import date

from include.source.landing import day_file_candidates, find_day_file
from include.source.simulator import file_name

DAY = date(2026, 1, 3)


def test_not_found_anywhere(tmp_storage):
    assert find_day_file(DAY) is None
    assert [str(p) for p in day_file_candidates(DAY)] == [
        "file://" + str(tmp_storage["landing"] / file_name(DAY)),
        "file://" + str(tmp_storage["archive"] / file_name(DAY)),
    ]


def test_archive_is_searched_when_landing_lacks_the_day(tmp_storage):
    (tmp_storage["archive"] / file_name(DAY)).write_bytes(b"x")
    found = find_day_file(DAY)
    assert found is not None and str(found).endswith("archive/" + file_name(DAY))


def test_landing_wins_over_archive(tmp_storage):
    (tmp_storage["archive"] / file_name(DAY)).write_bytes(b"old")
    (tmp_storage["landing"] / file_name(DAY)).write_bytes(b"new")
    assert find_day_file(DAY).read_bytes() == b"new"
