"""Mail that comes back, through the real `hub serve` with HUB_INBOUND_MAIL_PORT: a DSN to the
VERP address Hub sent from bounces the delivery and suppresses the address; a mail to the
unsubscribe mailbox with the token of the message's own List-Unsubscribe mailto (in the
subject or the address) unsubscribes; anything else changes nothing; the listener never
relays and refuses mail that is too big. Hub sends to an aiosmtpd peer, and is written to
with smtplib, over real sockets."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import os
import smtplib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests import bounce_mail
from tests.conftest import TEST_SECRET
from tests.e2e.test_serve import HUB, free_port
from tests.peers.smtp import Received, SmtpPeer
from tests.serving import wait_ready

BOUNCES = "bounces@example.com"
UNSUBSCRIBE = "unsubscribe@example.com"
MAX_BYTES = 65_536


def hub_environment(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """This machine's environment without its own HUB_ settings, plus the test's."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return kept | {
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": TEST_SECRET,
        "HUB_EMAIL_FROM": "Shop <shop@example.com>",
        "HUB_EMAIL_BOUNCE_ADDRESS": BOUNCES,
        "HUB_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE,
        "HUB_INBOUND_MAIL_MAX_BYTES": str(MAX_BYTES),
        **extra,
    }


@dataclass
class Served:
    base: str
    api: httpx.Client
    smtp: SmtpPeer  # where Hub's own mail goes
    inbound: int  # the inbound mail port
    env: dict[str, str]
    cwd: Path
    output: list[str]

    def send_news(self, external_id: str, address: str) -> tuple[int, Received]:
        """Subscribe a new person to the marketing topic `news` and send them one message:
        the notification's id and the message as the SMTP peer received it."""
        _ok(self.api.put(f"/v1/contacts/{external_id}", json={"email": address}))
        _ok(
            self.api.put(
                f"/v1/contacts/{external_id}/subscriptions/news", json={"channels": ["email"]}
            )
        )
        sent = _ok(
            self.api.post(
                "/v1/notifications",
                json={
                    "topic": "news",
                    "recipients": [external_id],
                    "content": {"": {"email_subject": "News", "email_text": "Hello."}},
                },
            ),
            202,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for mail in self.smtp.received:
                if mail.rcpt_tos == (address,):
                    return sent["id"], mail
            time.sleep(0.1)
        pytest.fail(f"no mail reached the SMTP peer for {address}")

    def status(self, external_id: str) -> str:
        got = _ok(self.api.get(f"/v1/contacts/{external_id}/subscriptions/news"))
        return str(got["status"])

    def timeline(self, external_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _ok(
            self.api.get(f"/v1/contacts/{external_id}/timeline", params={"limit": 500})
        )["items"]
        return items

    def mail(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.inbound, timeout=30)


def _ok(answer: httpx.Response, *statuses: int) -> Any:
    assert answer.status_code in (statuses or (200, 201)), answer.text
    return answer.json()


@contextlib.contextmanager
def serving(tmp_path: Path, database_url: str, **extra: str) -> Iterator[Served]:
    """`hub serve` sending to an SMTP peer and listening for inbound mail; an admin key."""
    with SmtpPeer() as smtp:
        port, inbound = free_port(), free_port()
        env = hub_environment(
            tmp_path,
            database_url,
            HUB_SMTP_HOST="127.0.0.1",
            HUB_SMTP_PORT=str(smtp.port),
            HUB_INBOUND_MAIL_PORT=str(inbound),
            **extra,
        )
        process = subprocess.Popen(
            [HUB, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        output: list[str] = []
        wait_ready(base, process, lambda: process.communicate()[0])
        try:
            created = subprocess.run(
                [HUB, "apikey", "create", "mailroom", "--scope", "admin"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            secret = created.stdout.strip().splitlines()[-1]
            headers = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
                topic = {
                    "name": "News",
                    "category": "marketing",
                    "allowed_channels": ["email"],
                    "default_channels": ["email"],
                }
                _ok(api.put("/v1/topics/news", json=topic))
                yield Served(base, api, smtp, inbound, env, tmp_path, output)
        finally:
            process.terminate()
            output.append(process.communicate(timeout=30)[0])


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    with serving(tmp_path, database_url) as running:
        yield running


def mailto_token(mail: Received) -> str:
    """The token of the message's List-Unsubscribe mailto (`?subject=unsubscribe%20<token>`)."""
    header = "".join(str(mail.message["List-Unsubscribe"]).split())
    mailto = next(u.strip("<>") for u in header.split(",") if u.strip("<>").startswith("mailto:"))
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    assert address == UNSUBSCRIBE
    subject = unquote(query.removeprefix("subject="))
    word, _, token = subject.partition(" ")
    assert word == "unsubscribe", subject
    return token


def plain_mail(sender: str, to: str, subject: str, body: str = "Please stop.") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def test_a_dsn_to_the_verp_address_bounces_the_delivery_and_suppresses_the_address(
    served: Served,
) -> None:
    notification_id, mail = served.send_news("ann", "ann@example.com")
    verp = mail.mail_from
    assert verp.startswith("bounces+hub-"), verp
    assert verp.endswith("@example.com"), verp
    message_id = str(mail.message["Message-ID"])
    report = bounce_mail.dsn("ann@example.com", message_id, to=verp)
    with served.mail() as inbound:
        refused = inbound.sendmail("", [verp], report.replace("\n", "\r\n").encode())
    assert refused == {}

    deliveries = _ok(served.api.get(f"/v1/notifications/{notification_id}"))["deliveries"]
    (delivery,) = deliveries["items"]
    assert delivery["state"] == "bounced"
    suppressed = _ok(
        served.api.get(
            "/v1/suppressions", params={"channel": "email", "address": "ann@example.com"}
        )
    )["items"]
    assert [s["reason"] for s in suppressed] == ["hard_bounce"]
    bounced = [e for e in served.timeline("ann") if e["type"] == "delivery.bounced"]
    assert [e["changes"]["delivery_id"] for e in bounced] == [delivery["id"]]


def test_the_mailto_token_unsubscribes_by_subject_or_by_address_and_a_forged_one_does_not(
    tmp_path: Path, database_url: str
) -> None:
    with serving(tmp_path, database_url) as served:
        _, to_ann = served.send_news("ann", "ann@example.com")
        _, to_bob = served.send_news("bob", "bob@example.com")
        _, to_cy = served.send_news("cy", "cy@example.com")
        ann_token, bob_token = mailto_token(to_ann), mailto_token(to_bob)
        # Cy's own token with its signature changed: accepted (250), and nothing changes.
        real = mailto_token(to_cy)
        forged = real[:-2] + ("AA" if real[-2:] != "AA" else "BB")
        by_address = f"unsubscribe+{bob_token}@example.com"
        with served.mail() as inbound:
            for sender, to, subject in [
                ("cy@example.com", UNSUBSCRIBE, f"unsubscribe {forged}"),
                # As a mail client sends the mailto: the token in the subject, here after Re:.
                ("ann@example.com", UNSUBSCRIBE, f"Re: UNSUBSCRIBE {ann_token}"),
                # The token as the address's detail, and a subject that says nothing.
                ("bob@example.com", by_address, "Stop"),
            ]:
                assert inbound.sendmail(sender, [to], plain_mail(sender, to, subject)) == {}
        assert served.status("ann") == "unsubscribed"
        assert served.status("bob") == "unsubscribed"
        assert served.status("cy") == "subscribed"
        for person in ("ann", "bob"):
            (by_mail,) = [
                e for e in served.timeline(person) if e["source"] == "self-service.mailto"
            ]
            assert (by_mail["type"], by_mail["actor_kind"], by_mail["topic"]) == (
                "subscription.changed",
                "self_service",
                "news",
            )
            assert by_mail["changes"]["status"]["after"] == "unsubscribed", by_mail
        assert all(e["source"] != "self-service.mailto" for e in served.timeline("cy"))
    logged = served.output[0]
    assert "unsubscribe mailbox: contact" in logged, logged
    assert "the token is invalid, nothing done" in logged
    for token in (ann_token, bob_token, forged):
        assert token not in logged  # tokens are credentials: never in the log
