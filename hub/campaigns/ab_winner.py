"""A test-then-winner campaign's pick: once its test group's wait has passed, the variant
with the better human rate (unique people per delivered) is sent to everyone else.

Done once, by whichever scheduler gets there: the campaign row is locked (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite's BEGIN IMMEDIATE lets one writer in) and read again inside
the lock, and the pick and the rest's notification are written in that transaction; a
second scheduler finds the pick made and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.campaigns import ab_arms, ab_plan, ab_results
from hub.campaigns.service import SCHEDULE
from hub.db.base import UTCDateTime
from hub.db.models import Campaign, CampaignRun, Notification
from hub.domain import ActorKind, CampaignState, NotificationState
from hub.schemas.campaigns import AbMetric
from hub.services import audit
from hub.services.actor import Actor

log = logging.getLogger("hub.scheduler")
PICKER = Actor(kind=ActorKind.SYSTEM, name="scheduler", source="campaign.ab")


def decide_due(session: Session, *, now: dt.datetime) -> list[int]:
    """Pick the winner of every test whose wait has passed; the rests' notifications (to
    enqueue once the caller has committed)."""
    sending = session.execute(
        select(Campaign.id, Campaign.ab).where(Campaign.state == CampaignState.SENDING)
    ).all()
    made: list[int] = []
    for campaign_id, ab in sending:
        if not ab_plan.awaiting_winner(ab):
            continue
        query = (
            select(Campaign)
            .where(Campaign.id == campaign_id, Campaign.state == CampaignState.SENDING)
            .execution_options(populate_existing=True)  # what the lock holder sees now
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        campaign = session.scalar(query)
        if campaign is None or not ab_plan.awaiting_winner(campaign.ab):
            continue  # another scheduler holds it, or has picked already
        rest = _decide(session, campaign, now)
        if rest is not None:
            made.append(rest)
    return made


def _decide(session: Session, campaign: Campaign, now: dt.datetime) -> int | None:
    """The pick, if the test is over: stored on the campaign, audited, and its rest's
    notification made; the rest's id."""
    ab: dict[str, Any] = dict(campaign.ab or {})
    started = session.scalar(  # the test's dispatch: its notifications' creation
        select(func.min(CampaignRun.created_at, type_=UTCDateTime)).where(
            CampaignRun.campaign_id == campaign.id
        )
    )
    if started is None or now < started + dt.timedelta(minutes=int(ab["wait_minutes"])):
        return None
    fanning_out = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.campaign_id == campaign.id,
            Notification.arm.is_not(None),
            Notification.state != NotificationState.FANNED_OUT,
        )
    )
    if fanning_out:
        return None  # a large test group is still being fanned out: its figures would be short
    metric = AbMetric(ab.get("metric", AbMetric.CLICK))
    found = ab_results.figures(session, ab_results.test_notifications(session, campaign))
    variants = campaign.variants or []
    winner, why = pick(variants, found, metric)
    low, high = ab_plan.rest(ab)
    template = next(v["template"] for v in variants if v["name"] == winner)
    arm = ab_plan.Arm(winner, template, low, high)
    spec = SCHEDULE.validate_python(campaign.schedule)
    rest = ab_arms.notify(
        session, campaign, spec=spec, now=now, template_key=template, arm=arm, alone=True
    )
    decided = ab | {
        "winner": winner,
        "decided_at": now.isoformat(),
        "rates": {
            v["name"]: found.get(v["name"], ab_results.Figures()).rate(metric) for v in variants
        },
        "why": why,
        "rest_notification": rest,
    }
    campaign.ab = decided  # a new dict: the JSON column sees the change
    campaign.updated_at = now
    audit.record(
        session,
        actor=PICKER,
        action=audit.Action.UPDATED,
        resource=audit.Resource.CAMPAIGN,
        key=str(campaign.id),
        before={"ab": ab},
        after={"ab": decided},
    )
    log.info(
        "campaign %s: %s wins (%s); the rest is notification %s", campaign.id, winner, why, rest
    )
    return rest


def pick(
    variants: list[dict[str, Any]], found: dict[str, ab_results.Figures], metric: AbMetric
) -> tuple[str, str]:
    """The variant with the best rate, and why in words; a tie goes to the first of them in
    the campaign's order (the rule is said, so nobody reads a tie as a result)."""
    figures = [(v["name"], found.get(v["name"], ab_results.Figures())) for v in variants]
    rates = [(name, f.rate(metric) or 0.0) for name, f in figures]
    best = max(rate for _, rate in rates)
    leaders = [name for name, rate in rates if rate == best]
    said = "; ".join(
        f"{name}: {f.count(metric)} of {f.delivered} ({_percent(f.rate(metric))})"
        for name, f in figures
    )
    verb = {AbMetric.CLICK: "clicked", AbMetric.OPEN: "opened"}[metric]
    if len(leaders) == 1:
        return leaders[0], f"the highest human {metric.value} rate: people who {verb}, {said}"
    return leaders[0], (
        f"a tie between {', '.join(leaders)} ({said}): the first of them in the campaign's "
        "order wins"
    )


def _percent(rate: float | None) -> str:
    return "nobody reached" if rate is None else f"{rate:.1%}"
