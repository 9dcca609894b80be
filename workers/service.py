"""Wire a process's dispatch: broker, adapters, dispatcher, worker threads and the sweeper.

`hub serve` on the embedded default runs one of these inside the API process (in-process
broker); `hub worker` runs one per worker process against Redis. The API itself only
enqueues, through `runtime.enqueuer`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import dramatiq

from hub.campaigns.scheduler import Scheduler
from hub.channel_config import channel_options, failover_options
from hub.channels import registry
from hub.channels.base import ChannelOptions
from hub.channels.ratelimit import LocalPacer, Pacer
from hub.channels.webhook import WebhookChannel, WebhookOptions
from hub.db.base import utcnow
from hub.dispatch.compose import Composer
from hub.dispatch.dispatcher import Dispatcher, Limits
from hub.dispatch.pause import PauseBoard, Pauses
from hub.dispatch.tracked_links import TrackedLinks
from hub.events.sender import EventRelay
from hub.preferences.tokens import LinkSigner
from hub.queue import QUEUES
from hub.runtime import Runtime
from hub.services import client_events
from hub.settings import Settings
from hub.templates import Renderer
from hub.workers.actors import ParkDeadLetters, declare
from hub.workers.engine import SendEngine

# Batches of client events a sweep forwards at most (200 each): the rest wait for the next.
CLIENT_EVENT_BATCHES = 10
log = logging.getLogger("hub.workers")


def _webhook_options(options: Mapping[str, ChannelOptions], settings: Settings) -> WebhookOptions:
    given = options.get("webhook")
    if isinstance(given, WebhookOptions) and given.webhook_secret is not None:
        return given
    return WebhookOptions(
        webhook_secret=settings.webhook_signing_secret(),
        webhook_allow_private=settings.webhook_allow_private,
    )


def limits(settings: Settings) -> Limits:
    return Limits(
        fanout_batch=settings.fanout_batch_size,
        delivery_batch=settings.delivery_batch_size,
        max_attempts=settings.delivery_max_attempts,
        first_retry=settings.delivery_first_retry_seconds,
        caps=settings.default_caps(),
        queue_lease=dt.timedelta(seconds=settings.queue_lease_seconds),
        send_lease=dt.timedelta(seconds=settings.send_lease_seconds),
    )


def pacing(settings: Settings) -> tuple[Pacer, PauseBoard]:
    """Where send rates and channel pauses are kept (RELIABILITY 30). On the embedded default
    (no broker) one process sends everything, so in it. With a broker, in its Redis: a
    number's rate and a channel's pause then hold for every worker process on every machine
    of this hub (its namespace), not for each one on its own."""
    if settings.broker_url is None:
        return LocalPacer(), Pauses(first=settings.delivery_first_retry_seconds)
    from hub.dispatch import shared_store
    from hub.dispatch.shared_pause import SharedPauses
    from hub.dispatch.shared_rate import SharedPacer

    url, namespace = settings.broker_url, settings.broker_namespace
    return (
        SharedPacer(shared_store.async_client(url), namespace=namespace),
        SharedPauses(
            shared_store.sync_client(url),
            namespace=namespace,
            first=settings.delivery_first_retry_seconds,
        ),
    )


def _one_worker_per_queue(record: logging.LogRecord) -> bool:
    """Each per-queue Worker adds its own bookkeeping middleware to the shared broker, and
    Dramatiq warns about the second. Harmless here: each Worker consumes only its queue."""
    return not record.getMessage().startswith("You're adding a middleware of the same type")


class Workers:
    def __init__(
        self,
        runtime: Runtime,
        *,
        options: Mapping[str, ChannelOptions] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        options = options or channel_options(settings)
        chosen = registry.choose(settings.channel_providers, options)
        pacer, self.pauses = pacing(settings)
        self.engine = SendEngine(
            chosen,
            backups=failover_options(settings, chosen),
            trip_after=settings.failover_trip_after,
            rest=settings.failover_rest_seconds,
            pacer=pacer,
        )
        composer = Composer(
            renderer=Renderer(company_name=settings.company_name),
            links=LinkSigner(
                settings.link_secrets(), max_age=dt.timedelta(days=settings.link_ttl_days)
            ),
            keys=runtime.message_keys,
            hasher=runtime.hasher,
            public_url=settings.public_url,
            unsubscribe_mailto=settings.unsubscribe_mailto,
            voice_opt_out=settings.voice_opt_out,
            caps=settings.default_caps(),
            callback_paths=registry.callback_paths(chosen),
            tracked=TrackedLinks(settings.link_secrets(), public_url=settings.public_url),
        )
        self.dispatcher = Dispatcher(
            sessions=runtime.sessions,
            reads=runtime.reads,
            composer=composer,
            sender=self.engine,
            hasher=runtime.hasher,
            limits=limits(settings),
            clock=clock,
            pauses=self.pauses,
        )
        self.clock = clock
        self.events = EventRelay(
            sessions=runtime.sessions,
            runner=self.engine,
            # The relay's own webhook channel: the same vetting and limits as contacts' webhooks;
            # each endpoint's secret signs its requests.
            channel=WebhookChannel(_webhook_options(options, settings)),
            schedule=settings.event_retry_schedule,
            queue_lease=dt.timedelta(seconds=settings.queue_lease_seconds),
            send_lease=dt.timedelta(seconds=settings.send_lease_seconds),
        )
        # Every process that sweeps also schedules: several schedulers are safe (see
        # hub.campaigns.scheduler), so `hub serve` and each `hub worker` run one.
        self.scheduler = Scheduler(runtime.sessions, runtime.enqueuer)
        broker = runtime.broker
        broker.add_middleware(ParkDeadLetters(runtime.sessions))
        declare(broker, self.dispatcher, runtime.enqueuer, self.events)
        self._workers: list[dramatiq.Worker] = []
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def start(self, *, sweep: bool = True) -> None:
        settings = self.runtime.settings
        # A worker (thread pool) per queue: a paced or stalled channel (1 SMS a second, an
        # SMTP relay that hangs) holds only its own threads, never e-mail's or fan-out's.
        # Few threads per queue: they share one GIL, and more of them only add switching.
        self.runtime.broker.logger.addFilter(_one_worker_per_queue)
        for queue in QUEUES:
            worker = dramatiq.Worker(
                self.runtime.broker,
                queues={queue},
                worker_threads=settings.worker_threads,
                worker_timeout=100,
            )
            worker.start()
            self._workers.append(worker)
        if sweep:
            self._sweeper = threading.Thread(
                target=self._sweep_forever, name="hub-sweeper", daemon=True
            )
            self._sweeper.start()
        log.info(
            "workers started: %d threads per queue, channels %s",
            settings.worker_threads,
            ", ".join(f"{c}={p}" for c, p in self.engine.providers().items()),
        )

    def sweep_once(self) -> int:
        enqueuer = self.runtime.enqueuer
        swept = self.dispatcher.sweep(idle=enqueuer.idle())
        for notification_id in swept.fan_out:
            enqueuer.fan_out(notification_id)
        for channel, ids in swept.deliver:
            enqueuer.deliver(channel, ids)
        self.scheduler.tick()
        told = self._tell_employees()
        for notification_id in told:
            enqueuer.fan_out(notification_id)
        events = self.events.sweep()
        for ids in events:
            enqueuer.events(ids)
        return (
            len(swept.fan_out)
            + len(told)
            + sum(len(ids) for _, ids in swept.deliver)
            + sum(len(ids) for ids in events)
        )

    def _tell_employees(self) -> list[int]:
        """Client events become notifications for the employees who look after the clients:
        a few batches a sweep, so a flood of them cannot hold up the sweep's other steps, and
        a failure here leaves the events waiting without stopping those steps."""
        public_url = self.runtime.settings.public_url
        made: list[int] = []
        for _ in range(CLIENT_EVENT_BATCHES):
            try:
                with self.runtime.sessions() as session, session.begin():
                    done = client_events.forward(session, now=self.clock(), public_url=public_url)
            except client_events.Raced as exc:
                log.info("%s; leaving them to it", exc)
                break
            except Exception:
                log.exception("telling employees of their clients failed; the events wait")
                break
            made += done.notifications
            if done.taken < client_events.BATCH:
                break
        return made

    def _sweep_forever(self) -> None:
        interval = self.runtime.settings.sweep_interval_seconds
        while not self._stop.wait(interval):
            try:
                self.sweep_once()
            except Exception:
                # The database or broker is away: say so, and try again next round.
                log.exception("sweep failed; retrying in %.1f s", interval)

    def stop(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        # All at once: each waits up to a queue poll (0.1 s) for its consumer to notice, and
        # one after another that was most of a stop (and of every test that starts workers).
        if self._workers:
            with ThreadPoolExecutor(len(self._workers), thread_name_prefix="hub-stop") as pool:
                list(pool.map(lambda worker: worker.stop(timeout=10_000), self._workers))
        self.events.close()
        self.engine.close()
        self.pauses.close()
