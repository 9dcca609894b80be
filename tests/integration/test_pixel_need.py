"""When a short e-mail with no picture of its own still carries the open pixel (issue 20):
only when something decides by its opens, an escalation step that waits for one or an A/B
test won by opens. Otherwise spam filters would read the lone pixel as image spam."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from hub.db.base import utcnow
from hub.db.models import Campaign, Notification
from hub.dispatch.compose import _counts_opens
from hub.runtime import Runtime
from tests import reporting


def counts_opens(
    runtime: Runtime, *, escalation: list[dict[str, Any]] | None, ab: dict[str, Any] | None
) -> bool:
    now = utcnow()
    with runtime.engine.begin() as db:
        topic_id = reporting.topic(db, "offers", now=now)
        reporting.template(db, "offer", now=now)
        campaign_id, notification_id = reporting.campaign(
            db, topic_id=topic_id, name="Winter", now=now
        )
        db.execute(update(Campaign).where(Campaign.id == campaign_id).values(ab=ab))
        db.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(escalation=escalation)
        )
    with runtime.sessions() as session:
        notification = session.get_one(Notification, notification_id)
        return _counts_opens(session, notification)


@pytest.mark.parametrize(
    ("escalation", "ab", "needed"),
    [
        (None, None, False),
        ([{"channel": "email"}, {"channel": "sms", "unless": "clicked"}], None, False),
        ([{"channel": "email"}, {"channel": "sms", "unless": "opened"}], None, True),
        (None, {"mode": "winner", "sample": 20, "wait_minutes": 60, "metric": "click"}, False),
        (None, {"mode": "winner", "sample": 20, "wait_minutes": 60, "metric": "open"}, True),
    ],
    ids=["nothing", "unless-clicked", "unless-opened", "ab-by-clicks", "ab-by-opens"],
)
def test_the_pixel_is_kept_only_where_opens_decide_something(
    runtime: Runtime,
    escalation: list[dict[str, Any]] | None,
    ab: dict[str, Any] | None,
    needed: bool,
) -> None:
    assert counts_opens(runtime, escalation=escalation, ab=ab) is needed
