"""A lifecycle's status at each boundary (00:00 UTC of its dates), its notice, and bad rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cachepoint.models.lifecycle import Lifecycle, LifecycleStatus, lifecycle_from_row

HAIKU_35 = Lifecycle(legacy=date(2025, 12, 19), extended_access=date(2026, 3, 19), end_of_life=date(2026, 6, 19))


def at(*when: int) -> float:
    return datetime(*when, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("instant", "status", "notice"),
    [
        (at(2025, 12, 18, 23, 59, 59), LifecycleStatus.ACTIVE, ""),
        (at(2025, 12, 19), LifecycleStatus.LEGACY, "LEGACY; end-of-life=2026-06-19"),
        (at(2026, 3, 19, 12), LifecycleStatus.LEGACY, "LEGACY; end-of-life=2026-06-19"),  # extended access
        (at(2026, 6, 18, 23, 59, 59), LifecycleStatus.LEGACY, "LEGACY; end-of-life=2026-06-19"),
        (at(2026, 6, 19), LifecycleStatus.END_OF_LIFE, "END_OF_LIFE; end-of-life=2026-06-19"),
    ],
)
def test_status_changes_at_midnight_utc_of_each_date(instant: float, status: LifecycleStatus, notice: str) -> None:
    assert HAIKU_35.status(instant) is status
    assert HAIKU_35.notice(instant) == notice


def test_no_dates_is_active_for_ever_and_an_end_without_a_legacy_date_ends_all_the_same() -> None:
    assert Lifecycle().status(at(2100, 1, 1)) is LifecycleStatus.ACTIVE
    sudden = Lifecycle(end_of_life=date(2026, 4, 28))
    assert sudden.status(at(2026, 4, 27)) is LifecycleStatus.ACTIVE
    assert sudden.status(at(2026, 4, 28)) is LifecycleStatus.END_OF_LIFE


def test_api_dates_are_botocores_members() -> None:
    assert Lifecycle(launched=date(2026, 2, 17)).api_dates() == {"startOfLifeTime": "2026-02-17T00:00:00Z"}
    assert list(HAIKU_35.api_dates()) == ["legacyTime", "publicExtendedAccessTime", "endOfLifeTime"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"legacy": "2026-06-19", "end_of_life": "2026-01-01"}, "must run launched"),
        ({"retired": "2026-01-01"}, "unknown lifecycle keys \\['retired'\\]"),
        ({"legacy": 20260101}, "must be YYYY-MM-DD"),
        ({"legacy": "June 2026"}, "Invalid isoformat"),
    ],
)
def test_bad_rows_are_refused_with_a_reason(row: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lifecycle_from_row(row)
