"""The audit log of configuration changes: staff users, API keys and event endpoints record
who changed what from the API and from the CLI (the console is walked in
tests/e2e/test_console_admin.py), `GET /v1/audit` reads it back newest first with filters and
paging, and no entry ever holds a secret, a password or a key's hash. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db.models import ApiKey, AuditEntry, StaffUser
from hub.domain import Scope, StaffRole
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import ok

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different, longer passphrase"
SIGNING_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 bytes, base64


def entries(client: TestClient, auth: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(client.get("/v1/audit", params=query, headers=auth))["items"]
    return items


def stored(runtime: Runtime) -> str:
    """Every entry as the database holds it, as one text to search for secrets."""
    with runtime.reads() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return json.dumps(
            [[r.actor, r.action, r.resource, r.resource_key, r.before, r.after] for r in rows]
        )


def test_event_endpoint_changes_through_the_api_are_recorded_without_the_secret(
    client: TestClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    created = ok(
        client.post(
            "/v1/event-endpoints",
            json={
                "url": "https://crm.example.com/hub",
                "event_types": ["delivery.sent"],
                "description": "CRM",
                "secret": SIGNING_SECRET,
            },
            headers=auth,
        ),
        201,
    )
    path = f"/v1/event-endpoints/{created['id']}"
    ok(client.patch(path, json={"enabled": False}, headers=auth))
    ok(client.patch(path, json={"enabled": False}, headers=auth))  # no change: no entry
    ok(client.patch(path, json={"url": "https://crm.example.com/v2"}, headers=auth))
    assert client.delete(path, headers=auth).status_code == 204

    found = entries(client, auth, resource="event_endpoint")
    assert [e["action"] for e in found] == ["deleted", "updated", "disabled", "created"]
    assert {e["key"] for e in found} == {str(created["id"])}
    assert {(e["actor_kind"], e["actor"]) for e in found} == {("api_key", "test-service")}
    deleted, updated, disabled, made = found
    assert made["before"] is None
    assert made["after"]["url"] == "https://crm.example.com/hub"
    assert made["after"]["event_types"] == ["delivery.sent"]
    assert disabled["before"]["enabled"] is True
    assert disabled["after"]["enabled"] is False
    assert updated["before"]["url"] == "https://crm.example.com/hub"
    assert updated["after"]["url"] == "https://crm.example.com/v2"
    assert deleted["after"] is None
    assert deleted["before"]["url"] == "https://crm.example.com/v2"
    assert found[0]["at"] >= found[-1]["at"]
    everything = stored(runtime)
    assert SIGNING_SECRET not in everything
    assert "secret" not in everything


def test_keys_and_users_changed_from_the_cli_are_recorded_without_secrets(
    client: TestClient, runtime: Runtime, settings: Settings, auth: dict[str, str]
) -> None:
    env = {"HUB_DATABASE_URL": settings.database_url, "HUB_SECRET_KEY": TEST_SECRET}
    runner = CliRunner()

    def hub(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(cli, list(args), input=stdin, env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    secret = hub("apikey", "create", "billing", "--scope", "notify", "--scope", "contacts")
    secret = secret.strip().splitlines()[-1]
    assert secret.startswith("hub_")
    hub("apikey", "revoke", "billing")
    email = "ada@acme.example"
    hub("user", "create", email, "--role", "marketer", "--password-stdin", stdin=PASSWORD + "\n")
    hub("user", "password", email, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    hub("user", "role", email, "--role", "viewer")
    hub("user", "disable", email)
    hub("user", "enable", email)
    hub("user", "sign-out", email)

    keys = entries(client, auth, resource="api_key", key="billing")
    assert [e["action"] for e in keys] == ["revoked", "created"]
    assert keys[1]["after"] == {"name": "billing", "scopes": ["contacts", "notify"]}
    assert keys[0]["before"] == {"revoked_at": None}
    assert keys[0]["after"]["revoked_at"]
    users = entries(client, auth, resource="staff_user", key=email)
    assert [e["action"] for e in users] == [
        "signed_out",
        "enabled",
        "disabled",
        "updated",
        "password_reset",
        "created",
    ]
    assert {e["actor_kind"] for e in keys + users} == {"cli"}
    assert all(e["actor"].startswith("cli:") for e in keys + users)
    assert users[-1]["after"] == {"email": email, "role": "marketer", "disabled": False}
    assert users[3]["before"]["role"] == "marketer"
    assert users[3]["after"]["role"] == "viewer"
    assert users[2]["after"]["disabled"] is True

    with runtime.reads() as session:
        key_hash = session.scalar(select(ApiKey.token_hash).where(ApiKey.name == "billing"))
        password_hash = session.scalar(select(StaffUser.password_hash))
    assert key_hash
    assert password_hash
    everything = stored(runtime)
    for never in (secret, key_hash, password_hash, PASSWORD, NEW_PASSWORD, "argon2"):
        assert never not in everything


def test_the_last_enabled_admin_stays_one(runtime: Runtime, settings: Settings) -> None:
    with runtime.sessions() as session:
        staff.create(session, "ada@acme.example", PASSWORD, StaffRole.ADMIN)
        session.commit()
    env = {"HUB_DATABASE_URL": settings.database_url, "HUB_SECRET_KEY": TEST_SECRET}
    runner = CliRunner()
    for args in (
        ["user", "disable", "ada@acme.example"],
        ["user", "role", "ada@acme.example", "--role", "viewer"],
    ):
        refused = runner.invoke(cli, args, env=env)
        assert refused.exit_code == 1
        assert "last enabled admin" in refused.output
    with runtime.sessions() as session:
        staff.create(session, "bob@acme.example", PASSWORD, StaffRole.ADMIN)
        session.commit()
    demoted = runner.invoke(cli, ["user", "role", "ada@acme.example", "--role", "viewer"], env=env)
    assert demoted.exit_code == 0, demoted.output
    with runtime.reads() as session:
        roles = dict(session.execute(select(StaffUser.email, StaffUser.role)).all())
    assert roles == {"ada@acme.example": StaffRole.VIEWER, "bob@acme.example": StaffRole.ADMIN}


def test_the_audit_api_pages_filters_and_needs_the_admin_scope(
    client: TestClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    for i in range(5):
        make_key(runtime, f"service-{i}", Scope.NOTIFY)  # set-up code: recorded as the system
    first = ok(client.get("/v1/audit", params={"resource": "api_key", "limit": 2}, headers=auth))
    assert [e["key"] for e in first["items"]] == ["service-4", "service-3"]
    assert first["items"][0]["actor_kind"] == "system"
    second = ok(
        client.get(
            "/v1/audit",
            params={"resource": "api_key", "limit": 2, "cursor": first["next_cursor"]},
            headers=auth,
        )
    )
    assert [e["key"] for e in second["items"]] == ["service-2", "service-1"]
    everything = entries(client, auth, resource="api_key")
    assert [e["key"] for e in everything][-1] == "test-service"  # the fixture's own key
    assert entries(client, auth, resource="topic") == []

    wrong = client.get("/v1/audit", params={"resource": "planet"}, headers=auth)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"][0]["field"] == "resource"
    notify_only = make_key(runtime, "sender", Scope.NOTIFY)
    assert client.get("/v1/audit", headers=notify_only).status_code == 403
    spec = client.get("/openapi.json").json()["paths"]["/v1/audit"]["get"]
    assert spec["operationId"] == "audit.list"
    assert spec["summary"]
    assert "admin" in spec["description"]


def test_a_campaigns_life_is_recorded_with_each_move_and_who_made_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Created, data changed, scheduled, paused, resumed, cancelled: each an entry naming the
    key, and each move with the state it left and the state it reached."""
    topic = {"name": "Offers", "allowed_channels": ["email"], "category": "marketing"}
    ok(client.put("/v1/topics/offers", json=topic, headers=auth), 201)
    template = {"variants": {"": {"email_subject": "Hi", "email_text": "Hello"}}}
    ok(client.put("/v1/templates/hello", json=template, headers=auth), 201)
    body = {"name": "Spring", "topic": "offers", "template": "hello", "data": {"a": 1}}
    made = ok(client.post("/v1/campaigns", json=body, headers=auth), 201)
    path = f"/v1/campaigns/{made['id']}"
    ok(client.patch(path, json={"data": {"a": 2}}, headers=auth))
    for move in ("schedule", "pause", "resume", "cancel"):
        ok(client.post(f"{path}/{move}", headers=auth))

    found = entries(client, auth, resource="campaign")
    assert [e["action"] for e in found] == [
        "cancelled",
        "resumed",
        "paused",
        "scheduled",
        "updated",
        "created",
    ]
    assert {(e["actor_kind"], e["actor"], e["key"]) for e in found} == {
        ("api_key", "test-service", str(made["id"]))
    }
    cancelled, resumed, paused, scheduled, _, created = found
    assert created["after"]["name"] == "Spring"
    assert created["after"]["data"] == {"a": 1}
    assert (scheduled["before"], scheduled["after"]) == ({"state": "draft"}, {"state": "scheduled"})
    assert (paused["before"], paused["after"]) == ({"state": "scheduled"}, {"state": "paused"})
    assert resumed["after"] == {"state": "scheduled"}  # nothing had started
    assert cancelled["after"] == {"state": "cancelled"}
