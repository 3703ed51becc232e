"""A model version's lifecycle (Bedrock's Active → Legacy → public extended access → end of life) as data,
evaluated at an injected instant, and the policy that says what end of life does to a call.

Bedrock's control plane knows two statuses, `ACTIVE` and `LEGACY` (botocore's `FoundationModelLifecycleStatus`),
with the four dates `startOfLifeTime`, `legacyTime`, `publicExtendedAccessTime` and `endOfLifeTime`. Past its
end of life a model drops out of the control plane and its invocations fail with a 404; `END_OF_LIFE` is our
name for that state, never sent as a status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

END_OF_LIFE_MESSAGE = ("This model version has reached the end of its life. Please refer to the AWS documentation "
                       "for more details.")  # fmt: skip  # Bedrock Runtime's 404 (public reports, 2025-2026)


class LifecycleStatus(StrEnum):
    ACTIVE = "ACTIVE"
    LEGACY = "LEGACY"
    END_OF_LIFE = "END_OF_LIFE"


class LifecyclePolicy(StrEnum):
    """`enforce`: as Bedrock does (end-of-life calls get its 404, the model leaves the control plane).
    `report`: serve it anyway, marked in the control plane, the `x-cachepoint-lifecycle` header and the logs."""

    ENFORCE = "enforce"
    REPORT = "report"

    def serves(self, status: LifecycleStatus) -> bool:
        """Whether a model in this state is callable and listed."""
        return status is not LifecycleStatus.END_OF_LIFE or self is LifecyclePolicy.REPORT


@dataclass(frozen=True)
class Lifecycle:
    """Dates in UTC; a state starts at 00:00 of its date. No dates: active for ever."""

    launched: date | None = None
    legacy: date | None = None
    extended_access: date | None = None  # public extended access: still served, at higher prices
    end_of_life: date | None = None

    def __post_init__(self) -> None:
        dated = [d for d in (self.launched, self.legacy, self.extended_access, self.end_of_life) if d is not None]
        if dated != sorted(dated):
            raise ValueError("lifecycle dates must run launched ≤ legacy ≤ extended_access ≤ end_of_life")

    def status(self, now_s: float) -> LifecycleStatus:
        today = datetime.fromtimestamp(now_s, UTC).date()
        if self.end_of_life is not None and today >= self.end_of_life:
            return LifecycleStatus.END_OF_LIFE
        if self.legacy is not None and today >= self.legacy:
            return LifecycleStatus.LEGACY
        return LifecycleStatus.ACTIVE

    def notice(self, now_s: float) -> str:
        """The `x-cachepoint-lifecycle` value: '' while active, else the status and the date that matters."""
        status = self.status(now_s)
        if status is LifecycleStatus.ACTIVE:
            return ""
        return f"{status.value}; end-of-life={self.end_of_life}" if self.end_of_life else status.value

    def api_dates(self) -> dict[str, str]:
        """botocore's date members of `FoundationModelLifecycle`, as ISO 8601 instants."""
        members = {"startOfLifeTime": self.launched, "legacyTime": self.legacy,
                   "publicExtendedAccessTime": self.extended_access, "endOfLifeTime": self.end_of_life}  # fmt: skip
        return {name: f"{day.isoformat()}T00:00:00Z" for name, day in members.items() if day is not None}


def lifecycle_from_row(row: Mapping[str, Any] | None) -> Lifecycle:
    """A catalog row's `lifecycle = { launched, legacy, extended_access, end_of_life }` (TOML dates or ISO strings)."""
    row = row or {}
    unknown = set(row) - {"launched", "legacy", "extended_access", "end_of_life"}
    if unknown:
        raise ValueError(f"unknown lifecycle keys {sorted(unknown)}")
    return Lifecycle(**{key: as_date(value) for key, value in row.items()})


def as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"a lifecycle date must be YYYY-MM-DD, not {value!r}")
