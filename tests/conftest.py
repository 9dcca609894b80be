"""Shared fixtures: migrated databases (SQLite file and real PostgreSQL), the app, API keys.

PostgreSQL and Redis tests skip locally when the server is missing, saying why, and FAIL on CI
(CI=true): a green CI run must mean they ran.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.app import create_app
from hub.db import migrate
from hub.db.base import Base
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services import apikeys
from hub.settings import Settings
from tests.faults.private_redis import PrivateRedis

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# One Redis database per test process (`make test` runs three, pytest-xdist's gw0 to gw2): a
# test that flushes its database never empties another process's queues.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER % 8}")
TEST_SECRET = "test-secret-key-for-the-suite-only"

# Tests that measure time, rate or load run alone after the parallel part of `make test`: a
# second test process beside them would be part of what they measure.
TESTS = Path(__file__).parent
SERIAL_FOLDERS = {"faults"}
SERIAL_MODULES = {
    "e2e/test_hostile_templates.py",  # /healthz latency while a template is killed
    "e2e/test_worker_crash.py",
    "integration/test_hardening.py",
    "integration/test_shared_pacing.py",  # messages per second across processes
    "integration/test_twilio_channel.py",  # a timed back-off
    "unit/test_ratelimit.py",
    "unit/test_template_sandbox.py",  # refused within a second
    "unit/test_template_structure.py",  # the longest hold of the GIL
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(TESTS)
        if where.parts[0] in SERIAL_FOLDERS or where.as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


def service_missing(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why}); start it, or run without CI=true to skip"
    if ON_CI:
        pytest.fail(f"CI requires {message}", pytrace=False)
    pytest.skip(f"{what} not reachable here: {why}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the file (much faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "hub.db"
    settings = Settings(database_url=f"sqlite:///{path}")
    runtime = Runtime.build(settings)
    migrate.upgrade(runtime.engine)
    runtime.close()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the real server, migrated once, dropped at the end."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing(f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()}", exc)
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    runtime = Runtime.build(Settings(database_url=url))
    migrate.upgrade(runtime.engine)
    runtime.close()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database")
    yield url
    truncate(url)


def truncate(url: str) -> None:
    """Empty every table of the shared PostgreSQL test database after a test."""
    engine = create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = Runtime.build(settings)
    yield built
    built.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as test_client:
        yield test_client


def make_key(runtime: Runtime, name: str, *scopes: Scope) -> dict[str, str]:
    with runtime.sessions() as session:
        secret = apikeys.create(session, name, list(scopes))
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def auth(runtime: Runtime) -> dict[str, str]:
    """Headers of a key with the contacts and admin scopes."""
    return make_key(runtime, "test-service", Scope.CONTACTS, Scope.ADMIN)


@pytest.fixture
def admin_hub(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    """The API and its in-process workers, with an admin key."""
    from tests.dispatching import hub_running

    with hub_running(settings) as (client, runtime):
        yield client, make_key(runtime, "admin", Scope.ADMIN), runtime


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis, checked first: skipped locally when it is down, failed on CI."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (the shared one is never stopped or flushed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server (for a private Redis)", "not found on PATH")
    server = PrivateRedis(binary or "redis-server", tmp_path / "redis")
    try:
        server.start()
    except RuntimeError as exc:
        service_missing(f"a private redis-server on port {server.port}", exc)
    yield server
    server.stop()
