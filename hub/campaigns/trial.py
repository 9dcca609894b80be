"""A test send's outcome, read from its delivery row: what the API and the console report
instead of a hopeful "sent".

The database is the truth of a delivery (DESIGN: Delivery), so the answer is read there: the
caller waits a bounded while for the row to reach a final or a clearly pending state, and a
page shown later reads the row again, so a reload shows what is true then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import Delivery, Notification
from hub.domain import DeliveryState, NotificationState
from hub.schemas.campaigns import TestOutcome, TestSendOut

WAIT_SECONDS = 10.0
POLL_SECONDS = 0.1
# "template: variants.ru.email_subject: 'dict object' has no attribute 'x' (line 1)", as the
# composer words a part that failed to render.
_TEMPLATE_ERROR = re.compile(
    r"template: variants\.(?P<variant>[^.]*)\.(?P<part>\S+): (?P<why>.*?)"
    r"(?: \(line (?P<line>\d+)\))?",
    re.DOTALL,
)
_OUTCOMES = {
    DeliveryState.SENT: TestOutcome.DELIVERED,
    DeliveryState.DELIVERED: TestOutcome.DELIVERED,
    DeliveryState.FAILED: TestOutcome.FAILED,
    DeliveryState.BOUNCED: TestOutcome.FAILED,
    DeliveryState.UNKNOWN: TestOutcome.UNKNOWN,
    DeliveryState.SUPPRESSED: TestOutcome.REFUSED,
    DeliveryState.DEFERRED: TestOutcome.WAITING,
    DeliveryState.QUEUED: TestOutcome.PENDING,
    DeliveryState.SENDING: TestOutcome.PENDING,
}


def outcome(session: Session, notification_id: int, *, waited: float | None = None) -> TestSendOut:
    """Where the test notification's (single) delivery is now; `waited`: the seconds the
    caller waited, said in a pending answer."""
    state = session.scalar(select(Notification.state).where(Notification.id == notification_id))
    delivery = session.scalars(
        select(Delivery).where(Delivery.notification_id == notification_id).order_by(Delivery.id)
    ).first()
    see = f"see notification {notification_id}"
    if delivery is None:
        if state is NotificationState.FANNED_OUT:  # nobody to send to: say so, not "sent"
            return TestSendOut(
                notification_id=notification_id,
                outcome=TestOutcome.REFUSED,
                message=f"not sent: no delivery was made ({see})",
            )
        return _pending(notification_id, "queued", waited)
    found = _OUTCOMES[delivery.state]
    address = delivery.address or "the address given"
    error = delivery.error or delivery.reason
    if found is TestOutcome.PENDING:
        return _pending(notification_id, delivery.state.value, waited, delivery.state)
    if found is TestOutcome.DELIVERED:
        if delivery.state is DeliveryState.DELIVERED:
            how = "the provider confirmed it"
        elif delivery.provider == "capture":
            how = "kept by the capture sink: no mail server is configured"
        else:
            how = "accepted by the mail server"
        message = f"delivered to {address} ({how})"
    elif found is TestOutcome.FAILED:
        message = f"{delivery.state.value}: {readable(error or 'no reason recorded')}"
    elif found is TestOutcome.UNKNOWN:
        message = f"unknown: the server may or may not have it ({error or see})"
    elif found is TestOutcome.REFUSED:
        message = f"not sent to {address}: {error or 'refused'}"
    else:
        until = delivery.due_at.strftime("%Y-%m-%d %H:%M UTC") if delivery.due_at else "later"
        message = f"waiting until {until}: {error or 'deferred'}"
    return TestSendOut(
        notification_id=notification_id,
        outcome=found,
        message=message,
        state=delivery.state,
        error=readable(error) if error else None,
    )


def _pending(
    notification_id: int, how: str, waited: float | None, state: DeliveryState | None = None
) -> TestSendOut:
    after = f" after {waited:g} s" if waited else ""
    return TestSendOut(
        notification_id=notification_id,
        outcome=TestOutcome.PENDING,
        message=f"still {how}{after}: see notification {notification_id}",
        state=state,
    )


def readable(error: str) -> str:
    """A template failure as a person reads it: "template: 'dict object' has no attribute
    'discount' in email_subject (line 1)"; any other error as it is."""
    found = _TEMPLATE_ERROR.fullmatch(error)
    if found is None:
        return error
    variant = found["variant"]
    where = found["part"] + (f" of the {variant} variant" if variant else "")
    line = f" (line {found['line']})" if found["line"] else ""
    return f"template: {found['why']} in {where}{line}"


def wait_for_outcome(
    reads: sessionmaker[Session],
    notification_id: int,
    *,
    seconds: float = WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TestSendOut:
    """Poll the delivery until it is no longer queued or sending, or `seconds` have passed.
    Blocks its thread: call it from a worker thread, never on the event loop."""
    deadline = clock() + seconds
    while True:
        with reads() as session:
            found = outcome(session, notification_id, waited=seconds)
        if found.outcome is not TestOutcome.PENDING or clock() >= deadline:
            return found
        sleep(POLL_SECONDS)
