"""The accept path done minimally: the reference `bench/api_load.py` measures Hub beside.

    .venv/bin/python bench/api_reference.py --port 9000 --key SECRET
        [--database-url postgresql+psycopg://...] [--broker-url redis://...]

One uvicorn process serving `POST /v1/notifications` with only what accepting a notification
needs: FastAPI, an API key checked against a cached hash, a pydantic body shaped like Hub's,
the Idempotency-Key reservation, and the notification and its delivery row inserted in one
transaction (SQLite in WAL mode by default; PostgreSQL with --database-url), then, with
--broker-url, a Dramatiq message to Redis. No templates, consent, fan-out, logging or metrics:
it is the floor, so the ratio to it says what Hub's own work costs (issue 19).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import threading
from contextlib import nullcontext
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
keys = Table(
    "ref_idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(64)),
    Column("key", String(255)),
    Column("request_hash", String(64)),
    Column("response", JSON),
    Column("created_at", DateTime(timezone=True)),
    UniqueConstraint("owner", "key"),
)
notifications = Table(
    "ref_notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("topic", String(100)),
    Column("variants", JSON),
    Column("data", JSON),
    Column("recipients", JSON),
    Column("state", String(32)),
    Column("created_at", DateTime(timezone=True)),
)
deliveries = Table(
    "ref_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("notification_id", Integer),
    Column("contact", String(255)),
    Column("channel", String(16)),
    Column("state", String(32)),
)


class Parts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email_subject: str | None = Field(None, max_length=998)
    email_html: str | None = Field(None, max_length=500_000)
    email_text: str | None = Field(None, max_length=500_000)
    sms_body: str | None = Field(None, max_length=1600)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    recipients: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        None, min_length=1, max_length=10_000
    )
    template: str | None = None
    content: dict[str, Parts] | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def build(engine: Engine, key: str, broker_url: str | None) -> FastAPI:
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    # SQLite has one writer: threads take turns on a lock rather than in SQLite's busy
    # handler, which sleeps and polls (Hub does the same, hub.db.engine._WriteQueue).
    writers: Any = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
    send = None
    if broker_url:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=broker_url, namespace="hub-reference")  # type: ignore[no-untyped-call]
        dramatiq.set_broker(broker)

        @dramatiq.actor(broker=broker, queue_name="reference")
        def fan_out(notification_id: int) -> None: ...

        send = fan_out.send
    app = FastAPI()

    @app.post("/v1/notifications", status_code=202)
    def post(
        body: Body,
        authorization: Annotated[str, Header()],
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
    ) -> Any:
        secret = authorization.removeprefix("Bearer ")
        if hashlib.sha256(secret.encode()).hexdigest() != key_hash:
            raise HTTPException(401)
        canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        now = dt.datetime.now(dt.UTC)
        try:
            with writers, engine.begin() as db:
                db.execute(
                    insert(keys),
                    {
                        "owner": "load",
                        "key": idempotency_key,
                        "request_hash": digest,
                        "created_at": now,
                    },
                )
                notification_id = db.execute(
                    insert(notifications).returning(notifications.c.id),
                    {
                        "topic": body.topic,
                        "variants": body.model_dump()["content"],
                        "data": body.data,
                        "recipients": body.recipients,
                        "state": "accepted",
                        "created_at": now,
                    },
                ).scalar_one()
                db.execute(
                    insert(deliveries),
                    {
                        "notification_id": notification_id,
                        "contact": (body.recipients or [""])[0],
                        "channel": "email",
                        "state": "queued",
                    },
                )
                answer = {"id": notification_id, "state": "accepted", "topic": body.topic}
                db.execute(
                    keys.update()
                    .where(keys.c.owner == "load", keys.c.key == idempotency_key)
                    .values(response=answer)
                )
        except IntegrityError:
            with engine.connect() as db:
                stored = db.execute(
                    select(keys.c.response).where(
                        keys.c.owner == "load", keys.c.key == idempotency_key
                    )
                ).scalar_one()
            return JSONResponse(stored, status_code=202)
        if send is not None:
            send(notification_id)
        return answer

    return app


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def wal(connection: Any, _: Any) -> None:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

        return engine
    return create_engine(url, pool_size=40, max_overflow=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--broker-url")
    args = parser.parse_args()
    engine = engine_for(args.database_url)
    metadata.create_all(engine)
    uvicorn.run(
        build(engine, args.key, args.broker_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
