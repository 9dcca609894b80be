"""Every endpoint refuses a missing, wrong or revoked key, and a key without the scope."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import ApiKey
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services import apikeys
from tests.conftest import make_key

PUBLIC = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# Providers sign these instead of holding a key: Twilio, Amazon SNS (SES), SendGrid.
SIGNED = ("/inbound/twilio/", "/inbound/email/ses", "/inbound/email/sendgrid")


def operations(client: TestClient, *, inbound: bool = False) -> list[tuple[str, str]]:
    """Every operation behind an API key; or, with `inbound`, every provider callback."""
    spec = client.get("/openapi.json").json()
    found = []
    for path, methods in spec["paths"].items():
        if path in PUBLIC or path.startswith(SIGNED) != inbound:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        found += [(method.upper(), concrete) for method in methods]
    return found


def test_every_operation_needs_a_key(client: TestClient) -> None:
    found = operations(client)
    assert len(found) >= 14
    for method, path in found:
        for headers in ({}, {"Authorization": "Bearer hub_wrong"}, {"Authorization": "Basic x"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


def test_every_provider_callback_needs_a_signature_not_a_key(client: TestClient) -> None:
    found = operations(client, inbound=True)
    assert len(found) >= 5
    for method, path in found:
        for headers in ({}, {"Authorization": "Bearer hub_wrong"}, {"X-Twilio-Signature": "x"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 403, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "forbidden"


def test_scopes_are_enforced(client: TestClient, runtime: Runtime) -> None:
    notify_only = make_key(runtime, "notifier", Scope.NOTIFY)
    response = client.get("/v1/contacts", headers=notify_only)
    assert response.status_code == 403
    assert "contacts" in response.json()["error"]["message"]
    topic = {"name": "x", "allowed_channels": ["email"]}
    contacts_only = make_key(runtime, "crm", Scope.CONTACTS)
    assert client.put("/v1/topics/t", json=topic, headers=contacts_only).status_code == 403
    admin = make_key(runtime, "ops", Scope.ADMIN)
    assert client.put("/v1/topics/t", json=topic, headers=admin).status_code == 201
    assert client.get("/v1/contacts", headers=admin).status_code == 200  # admin implies all
    assert client.get("/v1/topics/t", headers=notify_only).status_code == 200  # any key reads


def test_keys_are_stored_hashed_and_revocable(client: TestClient, runtime: Runtime) -> None:
    headers = make_key(runtime, "crm", Scope.CONTACTS)
    secret = headers["Authorization"].removeprefix("Bearer ")
    with runtime.sessions() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert secret not in repr(vars(stored))
        assert stored.token_hash != secret
        assert apikeys.revoke(session, "crm")
        session.commit()
    assert client.get("/v1/contacts", headers=headers).status_code == 401


def test_secrets_never_reach_the_logs(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = make_key(runtime, "crm", Scope.CONTACTS)
    client.get("/v1/contacts", headers=headers)
    client.get("/v1/contacts", headers={"Authorization": "Bearer hub_guessing"})
    secret = headers["Authorization"].removeprefix("Bearer ")
    assert secret not in caplog.text
    assert "hub_guessing" not in caplog.text


def test_head_answers_like_get_without_a_body(client: TestClient, auth: dict[str, str]) -> None:
    client.put("/v1/contacts/c-1", json={"name": "Ann"}, headers=auth)
    get = client.get("/v1/contacts/c-1", headers=auth)
    head = client.head("/v1/contacts/c-1", headers=auth)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert client.head("/v1/contacts/c-1").status_code == 401
    assert client.head("/healthz").status_code == 200


def test_a_known_key_is_remembered_for_seconds_and_a_revocation_lands_after_them(
    runtime: Runtime,
) -> None:
    now = [100.0]
    keys = apikeys.Keys(runtime.reads, ttl=5.0, clock=lambda: now[0])
    headers = make_key(runtime, "crm", Scope.CONTACTS)
    secret = headers["Authorization"].removeprefix("Bearer ")
    found = keys.principal(secret)
    assert found is not None
    assert found.name == "crm"
    with runtime.sessions() as session:
        assert apikeys.revoke(session, "crm")
        session.commit()
    now[0] += 4.9
    assert keys.principal(secret) == found  # still remembered
    now[0] += 0.2
    assert keys.principal(secret) is None  # looked up again: revoked
    assert keys.principal("hub_" + "x" * 40) is None
    assert keys.principal("not-a-key") is None
