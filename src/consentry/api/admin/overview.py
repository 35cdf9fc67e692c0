"""The overview: how much is recorded, what people decide per purpose, and whether every
consumer and the ledger keep up. Numbers come from the reports store (storage/reports.py), the
log's positions and the ledger; the charts are SVG drawn here (ui/admin/charts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Query, Request, Response

from consentry.api.admin.console import NAV, NavItem, admin_router, render
from consentry.api.admin.session import Viewer
from consentry.domain.events import Action
from consentry.propagation.dead_letters import dead_letters_waiting
from consentry.propagation.kafka import client_config
from consentry.propagation.lag import relay_backlog_seconds
from consentry.propagation.relay import relay_name
from consentry.services import Services
from consentry.storage.ledger_store import StoredCheckpoint
from consentry.storage.reports import DailyCount, PurposeCount, Reports
from consentry.ui.admin.charts import Chart, Series, bar_chart, line_chart

router = admin_router()
NAV.add(NavItem("overview", "Overview", "/admin", "Monitor", 0))

PERIODS = (7, 30, 90)
PURPOSE_ACTIONS = (Action.GIVEN, Action.REFUSED, Action.WITHDRAWN)
ACTION_NAMES = {
    Action.GIVEN: "Grants",
    Action.REFUSED: "Refusals",
    Action.WITHDRAWN: "Withdrawals",
}


@dataclass(frozen=True, slots=True)
class Propagation:
    kafka: bool
    backlog_seconds: float | None
    waiting_events: int | None
    threshold_seconds: float


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    tree_size: int
    checkpoint: StoredCheckpoint | None
    waiting_events: int  # committed in the log, not yet in any tree


def days_of(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


def activity_charts(daily: list[DailyCount], since: date, until: date) -> tuple[Chart, Chart, int]:
    """Events per day (all actions, and withdrawals), the opt-in rate per day, and the total."""
    days = days_of(since, until)
    per_day: dict[date, dict[Action, int]] = {d: {} for d in days}
    for row in daily:
        if row.day in per_day:
            per_day[row.day][row.action] = per_day[row.day].get(row.action, 0) + row.count
    labels = [d.isoformat() for d in days]
    totals = [float(sum(per_day[d].values())) for d in days]
    withdrawals = [float(per_day[d].get(Action.WITHDRAWN, 0)) for d in days]
    rates: list[float | None] = []
    for d in days:
        given, refused = per_day[d].get(Action.GIVEN, 0), per_day[d].get(Action.REFUSED, 0)
        rates.append(given / (given + refused) if given + refused else None)
    events = line_chart(
        "events-per-day",
        "Events recorded per day",
        labels,
        [Series("All events", tuple(totals)), Series("Withdrawals", tuple(withdrawals))],
    )
    opt_in = line_chart(
        "opt-in-rate",
        "Opt-in rate per day (grants among grants and refusals)",
        labels,
        [Series("Opt-in rate", tuple(rates))],
        percent=True,
    )
    return events, opt_in, int(sum(totals))


def purpose_chart(rows: list[PurposeCount], names: dict[str, str]) -> Chart:
    purposes = sorted({r.purpose for r in rows if r.action in PURPOSE_ACTIONS})
    counts = {(r.purpose, r.action): r.count for r in rows}
    return bar_chart(
        "per-purpose",
        "Grants, refusals and withdrawals per purpose",
        [names.get(p, p) for p in purposes],
        [
            Series(ACTION_NAMES[a], tuple(float(counts.get((p, a), 0)) for p in purposes))
            for a in PURPOSE_ACTIONS
        ],
    )


def propagation_status(services: Services) -> Propagation:
    settings = services.settings
    if not settings.kafka_bootstrap_servers:
        return Propagation(False, None, None, settings.propagation_lag_threshold_seconds)
    name = relay_name(settings.kafka_events_topic)
    waiting = services.store.head() - services.store.get_offset(name)
    return Propagation(
        True,
        relay_backlog_seconds(services.store, name),
        max(waiting, 0),
        settings.propagation_lag_threshold_seconds,
    )


def dead_letters(services: Services) -> int | None:
    """Dead letters not replayed yet; None without Kafka or when the broker does not answer."""
    settings = services.settings
    if not settings.kafka_bootstrap_servers:
        return None
    return dead_letters_waiting(
        client_config(settings), settings.kafka_dead_letter_topic, timeout=1.5
    )


def ledger_status(services: Services, tenant: str) -> LedgerStatus:
    ledger = services.ledger.ledger
    return LedgerStatus(
        tree_size=ledger.tree_size(tenant),
        checkpoint=ledger.latest_checkpoint(tenant),
        waiting_events=max(services.store.head() - ledger.integrated_position(), 0),
    )


@router.get("/admin")
def overview(
    request: Request,
    who: Viewer,
    days: Annotated[int, Query(description="the period shown, in days")] = 30,
) -> Response:
    if days not in PERIODS:
        days = 30
    services: Services = request.app.state.services
    reports: Reports = request.app.state.admin_reports
    now = datetime.now(UTC)
    until = now.date()
    since = until - timedelta(days=days - 1)
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    daily = reports.daily_actions(who.tenant, start)
    events, opt_in, total = activity_charts(daily, since, until)
    names = {p.id: p.name for p in services.catalog.purposes(who.tenant).values()}
    per_purpose = purpose_chart(reports.purpose_actions(who.tenant, start), names)
    return render(
        request,
        who,
        "admin/overview.html",
        title="Overview",
        days=days,
        periods=PERIODS,
        total=total,
        charts=[events, opt_in, per_purpose],
        propagation=propagation_status(services),
        ledger=ledger_status(services, who.tenant),
        dead_letters=dead_letters(services),
        head=services.store.head(),
        now=now,
    )
