"""Issue 15.2: a link issued to one person never opens another person's page.

Links carried the contact's row id alone, and SQLite hands the highest id out again after a
delete: erase a contact, create a new one, and the old link showed the newcomer's page and
could change it. Links now also carry the contact's random link key.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Capture, Contact
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from tests.dispatching import ok, person, settled, topic


@pytest.fixture
def hub(
    admin_hub: tuple[TestClient, dict[str, str], Runtime],
) -> tuple[TestClient, dict[str, str], Runtime]:
    topic(admin_hub[0], admin_hub[1], "news")
    return admin_hub


def mailed_links(client: TestClient, auth: dict[str, str], runtime: Runtime, to: str) -> list[str]:
    """The preferences and unsubscribe paths in the last e-mail captured for `to`."""
    content = {"": {"email_subject": "News", "email_text": "Hello {{ contact.name }}"}}
    sent = ok(
        client.post("/v1/notifications", json={"topic": "news", "content": content}, headers=auth),
        202,
    )
    settled(client, auth, sent["id"])
    with runtime.reads() as session:
        mail = session.scalars(
            select(Capture).where(Capture.to == to).order_by(Capture.id.desc())
        ).first()
    assert mail is not None
    return sorted(set(re.findall(r"/(?:preferences|unsubscribe)/[A-Za-z0-9_.-]+", mail.text or "")))


def contact_id(runtime: Runtime, external_id: str) -> int:
    with runtime.reads() as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    assert found is not None
    return found


def test_an_erased_persons_links_never_open_the_next_persons_page(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person(
        client,
        auth,
        "first",
        name="Anna First",
        email="anna@example.com",
        subscribe={"news": ["email"]},
    )
    old_links = mailed_links(client, auth, runtime, "anna@example.com")
    assert len(old_links) == 2, old_links  # the footer's preferences and unsubscribe links
    first_id = contact_id(runtime, "first")
    assert client.get(old_links[0]).status_code == 200

    ok(client.delete("/v1/contacts/first", headers=auth))
    person(
        client,
        auth,
        "next",
        name="Boris Next",
        email="boris@example.com",
        subscribe={"news": ["email"]},
    )
    if runtime.settings.is_sqlite:
        assert contact_id(runtime, "next") == first_id  # SQLite gave the id out again

    for path in old_links:
        page = client.get(path)
        assert page.status_code == 400, (path, page.text[:300])
        assert "not valid" in page.text
        posted = client.post(path, data={}, headers={"origin": str(client.base_url)})
        assert posted.status_code in (400, 403), posted.text[:300]
    subscriptions = ok(client.get("/v1/contacts/next/subscriptions", headers=auth))
    assert [s["status"] for s in subscriptions] == ["subscribed"]  # the old links changed nothing

    new_links = mailed_links(client, auth, runtime, "boris@example.com")
    page = client.get(next(p for p in new_links if p.startswith("/preferences/")))
    assert page.status_code == 200
    assert 'name="csrf"' in page.text  # the form to change them


def test_a_link_from_before_link_keys_names_only_a_contact_created_before_it(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    """Links in mail sent before the upgrade carry no key: they keep working for their own
    contact until they expire, and never for a contact created after they were issued."""
    client, auth, runtime = hub
    person(client, auth, "old", name="Olga", email="olga@example.com")
    ttl = dt.timedelta(days=runtime.settings.link_ttl_days)
    signer = LinkSigner(runtime.settings.link_secrets(), max_age=ttl)
    legacy = signer._serializers[Purpose.PREFERENCES].dumps([contact_id(runtime, "old"), None])
    assert client.get(f"/preferences/{legacy}").status_code == 200

    ok(client.delete("/v1/contacts/old", headers=auth))
    time.sleep(1.1)  # such a link is stamped to the second: the next one is created after it
    person(client, auth, "new", name="Nina", email="nina@example.com")
    page = client.get(f"/preferences/{legacy}")
    assert page.status_code == 400
    assert "not valid" in page.text
