"""A report counts once: the receipt of each bounce or complaint Hub acted on, and the days
an address's soft bounces counted on.

Both rules live in unique keys of `bounce_receipts`, not in a read-then-write: two copies of
one report arriving together (a mail system resending, Hub's inbound mail listener beside an
ESP's webhook) race to insert the same (delivery, kind, status), and the loser's insert fails
inside its own SAVEPOINT, leaving its transaction usable. The same holds for (address, day) of
soft bounces.

A hard bounce or a complaint counts once per delivery whatever its status: its receipt keeps
the status as "", so the same refusal reported twice (once by a detector that found no status,
once by the DSN's 5.1.1) is one event on the timeline, not two. Soft bounces and blocks keep
their status in the key: a later report with another status is news about the message.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.channels.email.reports import Kind, Verdict
from hub.db.models import BounceReceipt

SOFT_LIMIT, SOFT_WINDOW = 3, dt.timedelta(days=7)
STATUS_LENGTH = 32
ONCE_PER_DELIVERY = frozenset({Kind.HARD_BOUNCE, Kind.COMPLAINT})


def first_copy(
    session: Session, *, delivery_id: int, verdict: Verdict, address_hash: str, now: dt.datetime
) -> BounceReceipt | None:
    """The new receipt for this report, or None when the same report (same delivery and kind,
    and for soft bounces and blocks the same status) was recorded before: then nothing is to
    change."""
    status = "" if verdict.kind in ONCE_PER_DELIVERY else (verdict.status or "")[:STATUS_LENGTH]
    receipt = BounceReceipt(
        delivery_id=delivery_id,
        kind=verdict.kind.value,
        status=status,
        address_hash=address_hash,
        soft_day=None,
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(receipt)
    except IntegrityError:
        return None
    return receipt


def count_soft(session: Session, receipt: BounceReceipt, *, now: dt.datetime) -> bool:
    """Count a soft bounce on its address's tally for today; False when one counted on that
    address today already (a slow message's retries, several messages bouncing at once)."""
    try:
        with session.begin_nested():
            session.execute(
                update(BounceReceipt)
                .where(BounceReceipt.id == receipt.id)
                .values(soft_day=now.astimezone(dt.UTC).date())
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        return False
    return True


def soft_days(session: Session, address_hash: str, *, now: dt.datetime) -> int:
    """On how many days within SOFT_WINDOW up to `now` (today included) soft bounces of the
    address counted."""
    since = (now.astimezone(dt.UTC) - SOFT_WINDOW).date()
    count = session.scalar(
        select(func.count())
        .select_from(BounceReceipt)
        .where(BounceReceipt.address_hash == address_hash, BounceReceipt.soft_day > since)
    )
    return int(count or 0)
