"""What a running process holds: settings and the pieces built from them, wired once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dramatiq import Broker
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.broker import close as close_broker
from hub.broker import make_broker
from hub.db.engine import make_engine, make_sessions
from hub.queue import Enqueuer
from hub.services.apikeys import Keys
from hub.services.hashing import AddressHasher
from hub.services.message_keys import MessageKeys, installation_token
from hub.settings import Settings
from hub.templates import Renderer
from hub.templates.isolation import RenderProcesses


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    reads: sessionmaker[Session]  # read-only work: never takes SQLite's write lock
    hasher: AddressHasher
    broker: Broker
    enqueuer: Enqueuer
    renderer: Renderer  # in this process: deliveries
    render_processes: RenderProcesses  # in child processes: the API's checks and previews
    keys: Keys  # API keys as the requests of this process see them

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings)
        reads = make_sessions(engine, read_only=True)
        key = settings.hash_key or settings.secret_key
        broker = make_broker(settings.broker_url, namespace=settings.broker_namespace)
        return cls(
            broker=broker,
            enqueuer=Enqueuer(broker),
            renderer=Renderer(company_name=settings.company_name),
            render_processes=RenderProcesses(
                processes=settings.render_processes, company_name=settings.company_name
            ),
            settings=settings,
            engine=engine,
            sessions=make_sessions(engine),
            reads=reads,
            hasher=AddressHasher.from_secret(key.get_secret_value()),
            keys=Keys(reads),
        )

    @cached_property
    def message_keys(self) -> MessageKeys:
        """This installation's Message-ID keys (its token is read, or made, once)."""
        with self.sessions() as session:
            token = installation_token(session)
        key = self.settings.hash_key or self.settings.secret_key
        return MessageKeys.from_secret(key.get_secret_value(), token)

    def close(self) -> None:
        self.render_processes.close()
        close_broker(self.broker)
        self.engine.dispose()
