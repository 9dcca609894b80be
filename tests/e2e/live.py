"""A hub served over real HTTP on loopback with its workers, mailing an SMTP peer: what the
browser tests open pages on."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.peers.smtp import SmtpPeer
from tests.serving import listening_socket, serving


@dataclass
class LiveHub:
    base: str  # where the browser goes, and the hub's public URL
    api: TestClient  # the same app in process, for seeding and checking
    auth: dict[str, str]  # an admin key
    smtp: SmtpPeer
    runtime: Runtime


@contextlib.contextmanager
def live_hub(template: Path, workdir: Path, **settings: Any) -> Iterator[LiveHub]:
    """A copy of the migrated SQLite `template`, served with `settings` over the defaults."""
    path = workdir / "hub.db"
    shutil.copy(template, path)
    sock, base = listening_socket()
    with SmtpPeer() as smtp:
        runtime = Runtime.build(
            Settings(
                **{
                    "database_url": f"sqlite:///{path}",
                    "secret_key": TEST_SECRET,
                    "public_url": base,
                    "company_name": "Acme Bank",
                    "smtp_host": smtp.host,
                    "smtp_port": smtp.port,
                    "email_from": "Acme Bank <news@acme.example>",
                    "sweep_interval_seconds": 0.2,
                }
                | settings
            )
        )
        workers = Workers(runtime)
        workers.start()
        app = create_app(runtime=runtime)
        try:
            with serving(app, sock):
                api = TestClient(app, raise_server_exceptions=False)
                yield LiveHub(base, api, make_key(runtime, "crm", Scope.ADMIN), smtp, runtime)
        finally:
            workers.stop()
            runtime.close()
