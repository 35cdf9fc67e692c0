"""Reports: read-only aggregates over the log for the operators' console (docs/admin.md).

One small role (`Reports`) with one SQL implementation for both backends, on the SqlStore's
connection hooks, as collection.py is. Every method reads; none writes (a read never writes).

Windows of time are cut by position, not by scanning timestamps: `recorded_at` never decreases
along positions (the writer stamps each commit no earlier than the one before it, storage/sql.py),
so the first position recorded at or after a moment is found by a binary search over the primary
key (about log2(head) point reads), and the aggregates then read a position range of the
`(tenant, position)` index. No new index on the events table, so the write path pays nothing.
Days are UTC days of `recorded_at`: when we learnt of a decision, which is what an operator
watches (the legal time, `occurred_at`, is in each subject's history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from consentry.domain.events import Action
from consentry.storage.sql import SqlStore


@dataclass(frozen=True, slots=True)
class DailyCount:
    """Events of one action recorded on one UTC day."""

    day: date
    action: Action
    count: int


@dataclass(frozen=True, slots=True)
class PurposeCount:
    """Events of one action on one purpose."""

    purpose: str
    action: Action
    count: int


@dataclass(frozen=True, slots=True)
class TenantRow:
    name: str
    created_at: datetime


class Reports(Protocol):
    """Aggregates for dashboards. Read-only."""

    def first_position_since(self, moment: datetime) -> int:
        """The first position recorded at or after `moment` (head + 1 when there is none)."""
        ...

    def daily_actions(self, tenant: str, since: datetime) -> list[DailyCount]:
        """Counts per (UTC day of recorded_at, action) of the tenant's events since `since`."""
        ...

    def purpose_actions(self, tenant: str, since: datetime) -> list[PurposeCount]:
        """Counts per (purpose, action) of the tenant's events since `since`."""
        ...

    def consent_holders(self, tenant: str, purposes: Sequence[str]) -> dict[str, int]:
        """Per purpose, how many subjects' current state is a grant (`given`, or `opted_in`):
        the people a material change of a notice asks to consent again."""
        ...

    def tenants(self) -> list[TenantRow]:
        """Every tenant, by name."""
        ...


_DAY = {
    "sqlite": "substr(recorded_at, 1, 10)",  # RFC 3339 text in UTC (domain.events.format_time)
    "postgres": "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


@dataclass
class SqlReports:
    """Reports on the SQL store of either backend."""

    store: SqlStore

    def first_position_since(self, moment: datetime) -> int:
        s = self.store
        with s._read() as cur:
            cur.execute("SELECT position FROM log_head WHERE id = 1")
            head = int(cur.fetchone()[0])
            low, high = 1, head + 1  # the answer lies in [low, high]
            while low < high:
                middle = (low + high) // 2
                cur.execute(s._sql("SELECT recorded_at FROM events WHERE position = ?"), (middle,))
                row = cur.fetchone()
                if row is None or s._ts_out(row[0]) >= moment:
                    high = middle
                else:
                    low = middle + 1
        return low

    def daily_actions(self, tenant: str, since: datetime) -> list[DailyCount]:
        s = self.store
        start = self.first_position_since(since)
        day = _DAY[s.dialect]
        with s._read() as cur:
            cur.execute(
                s._sql(
                    f"SELECT {day} AS day, action, COUNT(*) FROM events"
                    " WHERE tenant = ? AND position >= ? GROUP BY day, action ORDER BY day, action"
                ),
                (tenant, start),
            )
            rows = cur.fetchall()
        return [DailyCount(date.fromisoformat(r[0]), Action(r[1]), int(r[2])) for r in rows]

    def purpose_actions(self, tenant: str, since: datetime) -> list[PurposeCount]:
        s = self.store
        start = self.first_position_since(since)
        with s._read() as cur:
            cur.execute(
                s._sql(
                    "SELECT purpose, action, COUNT(*) FROM events"
                    " WHERE tenant = ? AND position >= ?"
                    " GROUP BY purpose, action ORDER BY purpose, action"
                ),
                (tenant, start),
            )
            rows = cur.fetchall()
        return [PurposeCount(r[0], Action(r[1]), int(r[2])) for r in rows]

    def consent_holders(self, tenant: str, purposes: Sequence[str]) -> dict[str, int]:
        found = dict.fromkeys(purposes, 0)
        if not purposes:
            return found
        s = self.store
        marks = ", ".join("?" for _ in purposes)
        with s._read() as cur:
            cur.execute(
                s._sql(
                    "SELECT st.purpose, COUNT(*) FROM state st"
                    " JOIN events e ON e.position = st.position"
                    f" WHERE st.tenant = ? AND st.purpose IN ({marks}) AND e.action IN (?, ?)"
                    " GROUP BY st.purpose"
                ),
                (tenant, *purposes, Action.GIVEN.value, Action.OPTED_IN.value),
            )
            for purpose, count in cur.fetchall():
                found[purpose] = int(count)
        return found

    def tenants(self) -> list[TenantRow]:
        s = self.store
        with s._read() as cur:
            cur.execute("SELECT name, created_at FROM tenants ORDER BY name")
            rows = cur.fetchall()
        return [TenantRow(r[0], s._ts_out(r[1])) for r in rows]
