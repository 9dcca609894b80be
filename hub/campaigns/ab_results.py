"""An A/B test's variants compared: per variant the people it reached, the people (not
machines) who opened and clicked it, their rates, and whether the difference on the chosen
metric is more than chance (a pooled two-proportion z-test, two-sided).

Counts are unique people: someone who clicked three links, on two channels, is one click.
Only deliveries the provider accepted count (sent or delivered): a bounce was never read.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from hub.db.models import Campaign, Delivery, Engagement, Notification
from hub.domain import DeliveryState, EngagementKind
from hub.schemas.campaigns import AbMetric, AbMode, AbResultsOut, ArmResultOut

DELIVERED = (DeliveryState.SENT, DeliveryState.DELIVERED)
MIN_DELIVERED = 30  # fewer people than this in a variant: too few to tell
MIN_OUTCOMES = 5  # fewer successes (or failures) than this: the normal approximation fails
SIGNIFICANT = 0.05


@dataclass(frozen=True, slots=True)
class Figures:
    delivered: int = 0
    opens: int = 0
    clicks: int = 0

    def count(self, metric: AbMetric) -> int:
        return self.clicks if metric is AbMetric.CLICK else self.opens

    def rate(self, metric: AbMetric) -> float | None:
        return self.count(metric) / self.delivered if self.delivered else None


@dataclass(frozen=True, slots=True)
class ZTest:
    z: float
    p_value: float


def figures(session: Session, notification_ids: Collection[int]) -> dict[str, Figures]:
    """Per arm (the notifications' `arm`): people delivered, and people who opened and
    clicked, human only."""
    if not notification_ids:
        return {}
    arm = Notification.arm
    reached = session.execute(
        select(arm, func.count(distinct(Delivery.contact_id)))
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.notification_id.in_(notification_ids), Delivery.state.in_(DELIVERED))
        .group_by(arm)
    )
    delivered = {name: int(n) for name, n in reached if name is not None}
    engaged = session.execute(
        select(arm, Engagement.kind, func.count(distinct(Engagement.contact_id)))
        .join(Delivery, Delivery.id == Engagement.delivery_id)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Delivery.notification_id.in_(notification_ids),
            Delivery.state.in_(DELIVERED),
            Engagement.machine.is_(False),
        )
        .group_by(arm, Engagement.kind)
    )
    people: dict[tuple[str, EngagementKind], int] = {
        (name, kind): int(n) for name, kind, n in engaged if name is not None
    }
    return {
        name: Figures(
            delivered=delivered.get(name, 0),
            opens=people.get((name, EngagementKind.OPEN), 0),
            clicks=people.get((name, EngagementKind.CLICK), 0),
        )
        for name in {*delivered, *(name for name, _ in people)}
    }


def z_test(successes: tuple[int, int], totals: tuple[int, int]) -> ZTest | None:
    """Pooled two-proportion z-test of a - b; None when there is no variance to test."""
    (x1, x2), (n1, n2) = successes, totals
    if not n1 or not n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return None
    z = (x1 / n1 - x2 / n2) / spread
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def too_few(found: Figures, metric: AbMetric) -> bool:
    hits = found.count(metric)
    return (
        found.delivered < MIN_DELIVERED
        or hits < MIN_OUTCOMES
        or found.delivered - hits < MIN_OUTCOMES
    )


def p_words(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def compare(
    arms: list[tuple[str, str]], found: dict[str, Figures], metric: AbMetric
) -> AbResultsOut:
    """`arms`: (name, template) in the campaign's order; the best against the runner-up."""
    rows = [
        ArmResultOut(
            name=name,
            template=template,
            delivered=found.get(name, Figures()).delivered,
            opens=found.get(name, Figures()).opens,
            clicks=found.get(name, Figures()).clicks,
            open_rate=found.get(name, Figures()).rate(AbMetric.OPEN),
            click_rate=found.get(name, Figures()).rate(AbMetric.CLICK),
        )
        for name, template in arms
    ]
    ranked = sorted(  # the best first; a tie keeps the campaign's order
        rows, key=lambda row: -(found.get(row.name, Figures()).rate(metric) or 0.0)
    )
    best, runner = ranked[0], ranked[1]
    a, b = found.get(best.name, Figures()), found.get(runner.name, Figures())
    leader = best.name if (a.rate(metric) or 0.0) > (b.rate(metric) or 0.0) else None
    tested = None
    if not (too_few(a, metric) or too_few(b, metric)):
        tested = z_test((a.count(metric), b.count(metric)), (a.delivered, b.delivered))
    note = _note(best.name, runner.name, leader, tested, metric, several=len(rows) > 2)
    return AbResultsOut(
        metric=metric,
        arms=rows,
        leader=leader,
        z=round(tested.z, 4) if tested else None,
        p_value=tested.p_value if tested else None,
        note=note,
    )


def _note(
    best: str,
    runner: str,
    leader: str | None,
    tested: ZTest | None,
    metric: AbMetric,
    *,
    several: bool,
) -> str:
    rate = f"{metric.value} rate"
    if tested is None:
        return (
            f"Too few to tell: each variant needs at least {MIN_DELIVERED} people reached and "
            f"{MIN_OUTCOMES} who did and did not {metric.value}."
        )
    p = p_words(tested.p_value)
    if leader is None:
        return f"{best} and {runner} have the same {rate} ({p})."
    than = f" than {runner}'s, the next best" if several else ""
    if tested.p_value < SIGNIFICANT:
        return f"{leader}'s {rate} is higher{than} ({p})."
    return f"{leader}'s {rate} is higher{than}, but that may be chance ({p})."


def test_notifications(session: Session, campaign: Campaign) -> list[int]:
    """The notifications whose people are compared: every arm's, except a winner's rest
    (sent after the pick, to people who were not in the test)."""
    return [i for ids in _by_arm(session, campaign).values() for i in ids]


def _by_arm(session: Session, campaign: Campaign) -> dict[str, list[int]]:
    rest = (campaign.ab or {}).get("rest_notification")
    query = (
        select(Notification.arm, Notification.id)
        .where(Notification.campaign_id == campaign.id, Notification.arm.is_not(None))
        .order_by(Notification.id)
    )
    if rest is not None:
        query = query.where(Notification.id != int(rest))
    found: dict[str, list[int]] = {}
    for arm, notification_id in session.execute(query):
        found.setdefault(str(arm), []).append(notification_id)
    return found


def for_campaign(session: Session, campaign_id: int) -> AbResultsOut | None:
    """The comparison of a campaign's variants; None when it has none (or is gone)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not campaign.variants or not campaign.ab:
        return None
    return of(session, campaign)


def of(session: Session, campaign: Campaign) -> AbResultsOut:
    """The comparison of a campaign that has variants."""
    test = campaign.ab or {}
    metric = AbMetric(test.get("metric", AbMetric.CLICK))
    arms = [(v["name"], v["template"]) for v in campaign.variants or ()]
    notifications = _by_arm(session, campaign)
    found = figures(session, [i for ids in notifications.values() for i in ids])
    compared = compare(arms, found, metric)
    for row in compared.arms:
        row.notifications = notifications.get(row.name, [])
    compared.test_group_only = test.get("mode") == AbMode.WINNER
    return compared
