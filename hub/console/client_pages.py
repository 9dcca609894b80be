"""The manager's view of the console: "My clients" (`/console/clients`) lists the clients of
the signed-in staff member's own employee record (those it owns, or its teams' clients),
each with their latest activity in words and their refusals and failures in a period; and
the per-manager report (`/console/clients/managers`, with a CSV of the same) counts, for
every employee who owns a client, the clients they handle and their refusals, failures and
replies. The figures are `hub.services.manager_figures`'; this module only asks and shows.

Every role reads My clients (an account manager may well be a viewer); the per-manager
report is for marketers and admins.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from hub.console.auth import NotAllowed, Staff, StaffDep
from hub.console.pages import page
from hub.db.base import utcnow
from hub.db.models import Contact, StaffUser, Topic
from hub.domain import StaffRole
from hub.services import manager_figures as figures
from hub.services import staff as staff_users
from hub.services.manager_figures import Counts, Latest, Period, Whose
from hub.web import downloads
from hub.web.deps import RuntimeDep

router = APIRouter(prefix="/console/clients", include_in_schema=False)
SECTION = "clients"
PAGE = 50


class Days(enum.IntEnum):
    """The periods the pages offer."""

    WEEK = 7
    MONTH = 30
    QUARTER = 90


DAYS_QUERY = "How many days back the counts look: 7, 30 or 90."
DaysQuery = Annotated[Days, Query(description=DAYS_QUERY)]
WhoseQuery = Annotated[Whose, Query(description="mine: the clients I own; teams: my teams'.")]
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
WHOSE = {Whose.MINE: "My clients", Whose.TEAMS: "My teams' clients"}
HEADINGS = {Whose.MINE: "The clients you own", Whose.TEAMS: "Your teams' clients"}


@dataclass(frozen=True, slots=True)
class ClientRow:
    contact: Contact
    teams: list[str]
    latest: Latest | None
    counts: Counts


def _url(path: str, **params: object) -> str:
    given = {name: value for name, value in params.items() if value is not None}
    return f"{path}?{urlencode(given)}" if given else path


@router.get("")
def my_clients(
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    whose: WhoseQuery = Whose.MINE,
    days: DaysQuery = Days.MONTH,
    before: BeforeQuery = None,
) -> Response:
    now = utcnow()
    period = Period.last(days, now=now)
    rows: list[ClientRow] = []
    older = None
    with runtime.reads() as session:
        user = session.get(StaffUser, staff.id)
        employee = None if user is None else staff_users.employee_of(session, user)
        if employee is not None:
            found = figures.clients_page(
                session, employee.id, whose, before_id=before, limit=PAGE + 1
            )
            shown = found[:PAGE]
            ids = [c.id for c in shown]
            topics = dict(session.execute(select(Topic.key, Topic.name)).all())
            latest = figures.latest(session, shown, topics=topics, now=now)
            counts = figures.counts_for(session, ids, period)
            teams = figures.team_names(session, ids)
            rows = [
                ClientRow(c, teams.get(c.id, []), latest.get(c.id), counts.get(c.id, Counts()))
                for c in shown
            ]
            older = found[PAGE - 1].id if len(found) > PAGE else None
    here = {"whose": whose.value, "days": days.value}
    return page(
        request,
        "clients.html",
        "My clients",
        staff,
        section=SECTION,
        employee=employee,
        rows=rows,
        whose=whose,
        whose_labels=WHOSE,
        headings=HEADINGS,
        days=days,
        periods=list(Days),
        paged=before is not None,
        newest_url=_url("/console/clients", **here),
        older_url=_url("/console/clients", **here, before=older) if older else None,
        may_report=staff.may(StaffRole.MARKETER),
    )


def _may_report(staff: Staff) -> None:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)


@router.get("/managers")
def managers(
    request: Request, staff: StaffDep, runtime: RuntimeDep, days: DaysQuery = Days.MONTH
) -> Response:
    _may_report(staff)
    period = Period.last(days, now=utcnow())
    with runtime.reads() as session:
        rows = figures.by_manager(session, period)
    return page(
        request,
        "managers.html",
        "Clients per manager",
        staff,
        section=SECTION,
        rows=rows,
        totals=figures.totals(rows),
        days=days,
        periods=list(Days),
        period=period,
        csv_url=_url("/console/clients/managers.csv", days=days.value),
    )


@router.get("/managers.csv")
def managers_csv(staff: StaffDep, runtime: RuntimeDep, days: DaysQuery = Days.MONTH) -> Response:
    _may_report(staff)
    period = Period.last(days, now=utcnow())
    with runtime.reads() as session:
        rows = figures.by_manager(session, period)
    return downloads.csv(figures.csv_chunks(rows, period), f"managers-{days.value}-days.csv")
