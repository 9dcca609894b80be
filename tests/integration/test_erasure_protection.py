"""Issue 15.3: erasure protects every address it erases, whatever suppression it had before.

Before, an address already suppressed (manually, by a soft bounce with an expiry, by a STOP)
kept its old reason and expiry when its owner was erased: the suppression could then be lifted
(204) or lapse, and the address, imported again, was contactable for marketing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.dispatching import ok, person, topic

# (channel, reason, expires an hour after the test starts); the time is read by the test, so
# the test's name does not change from one collection to the next (pytest-xdist compares them).
PRIOR = [
    ("email", "manual", False),
    ("email", "soft_bounce", True),
    ("email", "hard_bounce", False),
    ("email", "complaint", False),
    ("sms", "sms_stop", False),
    ("sms", "manual", True),
]


@pytest.fixture
def hub(admin_hub: tuple[TestClient, dict[str, str], Any]) -> tuple[TestClient, dict[str, str]]:
    client, auth, _ = admin_hub
    topic(client, auth, "offers", allowed_channels=["email", "sms"])
    return client, auth


def suppression_of(client: TestClient, auth: dict[str, str], channel: str, address: str) -> dict:
    found = ok(
        client.get(
            "/v1/suppressions", params={"channel": channel, "address": address}, headers=auth
        )
    )["items"]
    assert len(found) == 1, found
    item: dict = found[0]
    return item


@pytest.mark.parametrize(("channel", "reason", "expires"), PRIOR)
def test_erasure_makes_any_prior_suppression_a_permanent_erasure(
    hub: tuple[TestClient, dict[str, str]], channel: str, reason: str, expires: bool
) -> None:
    client, auth = hub
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    expires_at = soon.isoformat() if expires else None
    address = "ada@example.com" if channel == "email" else "+14155550123"
    fields = {"email": address} if channel == "email" else {"phone": address}
    person(client, auth, "ada", subscribe={"offers": [channel]}, **fields)
    added = {"channel": channel, "address": address, "reason": reason, "expires_at": expires_at}
    ok(client.post("/v1/suppressions", json=added, headers=auth))

    ok(client.delete("/v1/contacts/ada", headers=auth))

    row = suppression_of(client, auth, channel, address)
    assert row["reason"] == "erasure"
    assert row["expires_at"] is None  # it cannot lapse
    assert row["address"] is None  # nor keep the address it protects
    assert reason in (row["note"] or "")  # what it was before is kept, in words
    lifted = client.delete(f"/v1/suppressions/{row['id']}", headers=auth)
    assert lifted.status_code == 409, lifted.text  # nor be lifted

    # The address comes back with a new contact: marketing stays refused.
    person(client, auth, "ada-again", subscribe={"offers": [channel]}, **fields)
    explained = ok(
        client.get("/v1/contacts/ada-again/explain", params={"topic": "offers"}, headers=auth)
    )
    refused = {r["channel"]: r for r in explained["outcome"]["refused"]}
    assert channel in refused, explained["outcome"]
    assert "erasure" in str(refused[channel])
    # An hour on, past the old expiry, still refused.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).isoformat()
    explained = ok(
        client.get(
            "/v1/contacts/ada-again/explain",
            params={"topic": "offers", "at": later},
            headers=auth,
        )
    )
    assert channel in {r["channel"] for r in explained["outcome"]["refused"]}
