"""Keep a live worker's send lease from running out while it is still sending.

A claimed row is `sending` until its lease (`due_at`); past it the sweeper takes the worker
for dead and resends. A relay that takes 5 s a message can hold a batch longer than the
lease, so while the worker sends, a thread moves the lease forward every third of it. Only
rows still held under this claim (`sending`, same attempt) move: a row the sweeper already
took back stays taken. If the worker dies, the renewals stop with it and the lease runs out.
If it lives but its send never returns, renewals stop after `MAX_HOLD`, and the sweeper
takes the rows back (what the stuck send answers later is only logged: outcomes.record).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import Delivery
from hub.dispatch.claim import Claimed
from hub.domain import DeliveryState

log = logging.getLogger("hub.dispatch")
MAX_HOLD = dt.timedelta(minutes=15)  # every adapter times out long before this


class LeaseKeeper:
    """`with LeaseKeeper(...):` around the work done under a claim."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        claimed: Sequence[Claimed],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.sessions = sessions
        self.lease = lease
        self.clock = clock
        self.renewals = 0
        self._by_attempt: dict[int, list[int]] = defaultdict(list)
        for d in claimed:
            self._by_attempt[d.attempts].append(d.id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="send-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        every = self.lease.total_seconds() / 3
        started = self.clock()
        while not self._stop.wait(every):
            if self.clock() - started > MAX_HOLD:
                log.warning(
                    "%s: still sending after %s; no longer renewing their lease",
                    self._ids(),
                    MAX_HOLD,
                )
                return
            try:
                self.renew()
            except SQLAlchemyError as exc:  # the next renewal may get through; the lease is 3x
                log.warning("could not renew the send lease of %s: %s", self._ids(), exc)

    def renew(self) -> None:
        until = self.clock() + self.lease
        with self.sessions() as session, session.begin():
            for attempt, ids in self._by_attempt.items():
                session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id.in_(ids),
                        Delivery.state == DeliveryState.SENDING,
                        Delivery.attempts == attempt,
                    )
                    .values(due_at=until)
                    .execution_options(synchronize_session=False)
                )
        self.renewals += 1

    def _ids(self) -> str:
        ids = sorted(i for group in self._by_attempt.values() for i in group)
        return f"deliveries {ids[0]}..{ids[-1]} ({len(ids)})" if ids else "no deliveries"
