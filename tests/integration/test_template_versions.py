"""Template versions, on SQLite and PostgreSQL: every save that changes a template keeps a
version with who saved it, the API lists, reads and restores them, the audit log records each
save and restore, a notification keeps the parts it was sent with; and a console save of one
language never drops a part, a language or the description it did not edit, nor a change
someone else saved meanwhile."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import AuditEntry, Notification, Template, TemplateVersion
from hub.domain import Scope, StaffRole
from hub.runtime import Runtime
from hub.services import staff
from tests.conftest import make_key
from tests.dispatching import ok, topic

PASSWORD = "correct horse battery staple"
ORDER = {
    "description": "Sent when an order ships",
    "variants": {
        "": {
            "email_subject": "Order {{ data.order.number }} has shipped",
            "email_html": '<p style="color:#123456">Hello {{ contact.name }}</p>',
            "sms_body": "Order {{ data.order.number }} shipped",
            "webhook_json": {"event": "shipped", "order": "{{ data.order.number }}", "n": 1},
        },
        "ru": {"sms_body": "Заказ {{ data.order.number }} отправлен"},
    },
}


def put(client: TestClient, headers: dict[str, str], body: dict[str, Any], *status: int) -> Any:
    return ok(client.put("/v1/templates/order", json=body, headers=headers), *status)


def versions(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(client.get("/v1/templates/order/versions", headers=headers))[
        "items"
    ]
    return items


def audit(runtime: Runtime) -> list[AuditEntry]:
    with runtime.reads() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.resource == "template").order_by(AuditEntry.id)
            )
        )


def test_each_change_is_a_version_that_can_be_read_and_restored(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    created = put(client, crm, ORDER, 201)
    assert created["version"] == 1
    changed = {**ORDER, "variants": {**ORDER["variants"], "": {"sms_body": "Shipped!"}}}
    assert put(client, crm, changed, 200)["version"] == 2
    assert put(client, crm, changed, 200)["version"] == 2  # the same content: no new version

    listed = versions(client, crm)
    assert [v["version"] for v in listed] == [2, 1]  # newest first
    assert {v["saved_by"] for v in listed} == {"API key crm"}
    assert listed[1]["locales"] == ["", "ru"]
    assert listed[1]["description"] == "Sent when an order ships"
    first = ok(client.get("/v1/templates/order/versions/1", headers=crm))
    assert first["variants"] == ORDER["variants"]

    restored = ok(client.post("/v1/templates/order/versions/1/restore", headers=crm))
    assert restored["version"] == 3
    assert restored["variants"] == ORDER["variants"]
    assert restored["description"] == ORDER["description"]
    assert ok(client.get("/v1/templates/order/versions/2", headers=crm))["variants"][""] == {
        "sms_body": "Shipped!"
    }  # the version restored over is kept as it was
    again = ok(client.post("/v1/templates/order/versions/3/restore", headers=crm))
    assert again["version"] == 3  # already its content: nothing changes
    assert [v["version"] for v in versions(client, crm)] == [3, 2, 1]

    entries = audit(runtime)
    assert [(e.action, e.actor_kind, e.actor) for e in entries] == [
        ("created", "api_key", "crm"),
        ("updated", "api_key", "crm"),
        ("restored", "api_key", "crm"),
    ]
    assert entries[1].before == {
        "version": 1,
        "variants..email_subject": "Order {{ data.order.number }} has shipped",
        "variants..email_html": ORDER["variants"][""]["email_html"],
        "variants..sms_body": "Order {{ data.order.number }} shipped",
        "variants..webhook_json": (
            '{\n  "event": "shipped",\n  "n": 1,\n  "order": "{{ data.order.number }}"\n}'
        ),
    }
    assert entries[1].after is not None
    assert entries[1].after["variants..sms_body"] == "Shipped!"
    assert entries[1].after["variants..email_subject"] is None
    assert entries[2].after is not None
    assert entries[2].after["restored_from"] == 1
    assert entries[2].after["version"] == 3


def test_the_versions_api_refuses_with_json_naming_what(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    reader = make_key(runtime, "reader", Scope.NOTIFY)
    put(client, crm, ORDER, 201)
    missing = client.get("/v1/templates/order/versions/9", headers=crm)
    assert missing.status_code == 404
    assert "no version 9" in missing.json()["error"]["message"]
    zero = client.get("/v1/templates/order/versions/0", headers=crm)
    assert zero.status_code == 422
    assert [d["field"] for d in zero.json()["error"]["details"]] == ["version"]
    huge = client.post(f"/v1/templates/order/versions/{2**40}/restore", headers=crm)
    assert huge.status_code == 422
    assert client.get("/v1/templates/nope/versions", headers=crm).status_code == 404
    assert ok(client.get("/v1/templates/order/versions", headers=reader))["items"]
    refused = client.post("/v1/templates/order/versions/1/restore", headers=reader)
    assert refused.status_code == 403
    assert "campaigns" in refused.json()["error"]["message"]


def test_versions_are_paged_newest_first(client: TestClient, runtime: Runtime) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    for n in range(5):
        put(client, crm, {"variants": {"": {"sms_body": f"Version {n + 1}"}}})
    first = ok(client.get("/v1/templates/order/versions?limit=2", headers=crm))
    assert [v["version"] for v in first["items"]] == [5, 4]
    second = ok(
        client.get(
            f"/v1/templates/order/versions?limit=2&cursor={first['next_cursor']}", headers=crm
        )
    )
    assert [v["version"] for v in second["items"]] == [3, 2]


def test_a_notification_keeps_the_parts_it_was_sent_with(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.ADMIN)
    topic(client, crm, "orders", category="transactional")
    put(client, crm, ORDER, 201)
    sent = client.post(
        "/v1/notifications",
        json={
            "topic": "orders",
            "template": "order",
            "data": {"order": {"number": "A-1"}},
        },
        headers=crm | {"Idempotency-Key": "order-a-1"},
    )
    assert sent.status_code in (201, 202), sent.text
    put(client, crm, {"variants": {"": {"sms_body": "Completely different"}}})
    with runtime.reads() as session:
        (kept,) = session.execute(select(Notification.variants, Notification.template_version))
    assert kept.variants == ORDER["variants"]
    assert kept.template_version == 1  # named, so its page can link to that version


# -- the console ----------------------------------------------------------------------------


def signed_in(client: TestClient, runtime: Runtime, role: StaffRole = StaffRole.MARKETER) -> None:
    with runtime.sessions() as session:
        staff.create(session, "mia@acme.example", PASSWORD, role)
        session.commit()
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    fields = {"csrf": token.group(1), "email": "mia@acme.example", "password": PASSWORD}
    assert client.post("/console/login", data=fields, follow_redirects=False).status_code == 303


def editor(client: TestClient, locale: str = "") -> dict[str, str]:
    """The editor's form as a browser would post it back: every field, as shown."""
    page = client.get(f"/console/templates/edit?key=order&locale={locale}")
    assert page.status_code == 200, page.text
    return form_of(page.text)


def form_of(html: str) -> dict[str, str]:
    fields = {
        "csrf": _one(r'name="csrf" value="([^"]+)"', html),
        "version": _one(r'name="version" value="(\d+)"', html),
    }
    for name in ("description", *PARTS, "data", "contact"):
        found = re.search(
            rf'<(?:textarea|input)[^>]* name="{name}"[^>]*?(?:value="([^"]*)")?[^>]*>\n?([^<]*)',
            html,
        )
        if found is None and name in {"data", "contact"}:
            continue  # a viewer's editor has no preview
        assert found, name
        value = found.group(1) if found.group(1) is not None else found.group(2)
        # As a browser sends a textarea: HTML entities read, line ends as CRLF.
        fields[name] = _unescape(value).replace("\n", "\r\n")
    return fields


PARTS = ("email_subject", "email_html", "email_text", "sms_body", "voice_say", "webhook_json")


def _one(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, pattern
    return found.group(1)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def save(client: TestClient, fields: dict[str, str], locale: str = "") -> Any:
    return client.post(
        f"/console/templates/edit?key=order&locale={locale}",
        data=fields | {"action": "save"},
        follow_redirects=False,
    )


def stored(runtime: Runtime) -> Template:
    with runtime.reads() as session:
        template = session.scalar(select(Template).where(Template.key == "order"))
        assert template is not None
        session.expunge(template)
        return template


def test_a_console_save_keeps_every_part_and_field_it_did_not_edit(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)

    fields = editor(client)
    assert fields["description"] == "Sent when an order ships"
    assert '"event": "shipped"' in fields["webhook_json"]  # shown, as JSON text
    fields["sms_body"] = "Order {{ data.order.number }} is on its way"
    answer = save(client, fields)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].endswith("saved=2")

    template = stored(runtime)
    assert template.version == 2
    assert template.description == "Sent when an order ships"
    assert template.variants["ru"] == ORDER["variants"]["ru"]  # another language: untouched
    default = template.variants[""]
    assert default["sms_body"] == "Order {{ data.order.number }} is on its way"
    assert default["webhook_json"] == ORDER["variants"][""]["webhook_json"]
    for part in ("email_subject", "email_html"):  # CRLF from the browser is not an edit
        assert default[part] == ORDER["variants"][""][part]
    assert "email_text" not in default  # an empty field stays no part
    with runtime.reads() as session:
        kept = session.scalar(select(TemplateVersion).where(TemplateVersion.version == 2))
        assert kept is not None
        assert kept.saved_by == "mia@acme.example"
    (entry,) = [e for e in audit(runtime) if e.actor_kind == "staff"]
    assert (entry.action, entry.actor) == ("updated", "mia@acme.example")
    assert set(entry.after or {}) == {"version", "variants..sms_body"}

    unchanged = save(client, editor(client))
    assert unchanged.headers["location"].endswith("unchanged=true")
    assert stored(runtime).version == 2


def test_a_console_save_keeps_what_someone_saved_since_the_form_was_opened(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)
    fields = editor(client)  # opened at version 1

    # Meanwhile the API changes the description and the e-mail subject.
    meanwhile = {
        "description": "Shipping notice",
        "variants": {
            **ORDER["variants"],
            "": {**ORDER["variants"][""], "email_subject": "Shipped: {{ data.order.number }}"},
        },
    }
    assert put(client, crm, meanwhile)["version"] == 2

    fields["sms_body"] = "Shipped, on its way"  # a field nobody else touched
    assert save(client, fields).status_code == 303
    template = stored(runtime)
    assert template.version == 3
    assert template.description == "Shipping notice"
    assert template.variants[""]["email_subject"] == "Shipped: {{ data.order.number }}"
    assert template.variants[""]["sms_body"] == "Shipped, on its way"

    # The same field changed on both sides is refused, naming it; nothing is written.
    fields["email_subject"] = "My own subject"
    refused = save(client, fields)
    assert refused.status_code == 422
    assert "There is a problem" in refused.text
    assert 'href="#email_subject"' in refused.text
    assert "changed by API key crm in version 2 after the version 1 you opened" in refused.text
    assert "My own subject" in refused.text  # what was typed is shown again, not lost
    assert stored(runtime).variants[""]["email_subject"] == "Shipped: {{ data.order.number }}"

    # Shown again on the current version with the edit kept: saving it again keeps both.
    again = form_of(refused.text)
    assert again["version"] == "3"
    assert again["email_subject"] == "My own subject"
    assert again["description"] == "Shipping notice"
    assert save(client, again).status_code == 303
    template = stored(runtime)
    assert template.version == 4
    assert template.variants[""]["email_subject"] == "My own subject"
    assert template.description == "Shipping notice"
    assert template.variants[""]["sms_body"] == "Shipped, on its way"


def test_the_console_edits_the_webhook_json_and_says_when_it_is_not_json(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)
    fields = editor(client)
    fields["webhook_json"] = '{"event": "shipped",'
    refused = save(client, fields)
    assert refused.status_code == 422
    assert 'href="#webhook_json"' in refused.text
    assert "Webhook JSON is not valid JSON" in refused.text
    assert 'id="webhook_json-error"' in refused.text
    assert stored(runtime).version == 1

    fields["webhook_json"] = '{"event": "sent", "to": "{{ contact.external_id }}"}'
    assert save(client, fields).status_code == 303
    assert stored(runtime).variants[""]["webhook_json"] == {
        "event": "sent",
        "to": "{{ contact.external_id }}",
    }


def test_the_console_removes_a_language_emptied_and_restores_it(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)
    fields = editor(client, "ru")
    fields["sms_body"] = ""
    assert save(client, fields, "ru").status_code == 303
    assert set(stored(runtime).variants) == {""}

    history = client.get("/console/templates/history?key=order")
    assert history.status_code == 200
    token = _one(r'name="csrf" value="([^"]+)"', history.text)
    diff = client.get("/console/templates/diff?key=order&b=2")
    assert diff.status_code == 200
    assert "SMS text, language ru" in diff.text
    assert "<del>" in diff.text or "removed" in diff.text
    restored = client.post(
        "/console/templates/restore?key=order&version=1",
        data={"csrf": token},
        follow_redirects=False,
    )
    assert restored.status_code == 303
    assert restored.headers["location"].endswith("restored=1&saved=3")
    template = stored(runtime)
    assert (template.version, template.variants) == (3, ORDER["variants"])
    assert [e.action for e in audit(runtime)][-1] == "restored"


def test_a_viewer_cannot_save_or_restore(client: TestClient, runtime: Runtime) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime, StaffRole.VIEWER)
    fields = editor(client)
    fields["sms_body"] = "Nope"
    assert save(client, fields).status_code == 403
    refused = client.post(
        "/console/templates/restore?key=order&version=1",
        data={"csrf": fields["csrf"]},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert stored(runtime).version == 1


def test_a_key_or_language_typed_wrong_is_shown_back_with_why(
    client: TestClient, runtime: Runtime
) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)
    bad_key = client.get("/console/templates/edit?key=Order%20Updates")
    assert bad_key.status_code == 422
    assert 'href="#new-key"' in bad_key.text
    assert 'id="new-key-error"' in bad_key.text
    assert 'value="Order Updates"' in bad_key.text
    bad_locale = client.get("/console/templates/edit?key=order&locale=russian!")
    assert bad_locale.status_code == 422
    assert 'href="#add-locale"' in bad_locale.text
    assert "a code such as ru" in bad_locale.text
    assert 'value="russian!"' in bad_locale.text
    assert 'name="sms_body"' in bad_locale.text  # the default language's editor, still there


def test_the_preview_frames_the_email_without_script(client: TestClient, runtime: Runtime) -> None:
    crm = make_key(runtime, "crm", Scope.CAMPAIGNS)
    put(client, crm, ORDER, 201)
    signed_in(client, runtime)
    fields = editor(client) | {"action": "preview", "data": '{"order": {"number": "A-7"}}'}
    answer = client.post("/console/templates/edit?key=order&locale=", data=fields)
    assert answer.status_code == 200, answer.text
    policy = answer.headers["content-security-policy"]
    assert policy.startswith("default-src 'none';")
    assert "script-src" not in policy  # so none: default-src 'none'
    assert "style-src-attr 'unsafe-inline'" in policy  # the e-mail's own style attributes
    frames = re.findall(r"<iframe ([^>]*)>", answer.text)
    assert len(frames) == 2
    for frame in frames:
        assert re.search(r"(^| )sandbox( |$)", frame), frame  # no allow-* at all
        assert "allow-" not in frame
        assert "&lt;meta http-equiv=&#34;Content-Security-Policy&#34;" in frame
    assert "Order A-7 shipped" in answer.text  # the SMS
    assert "data.order.number" in answer.text  # the variables, with the preview's value
    # The editor's own page keeps the strict policy.
    assert (
        client.get("/console/templates/edit?key=order")
        .headers["content-security-policy"]
        .startswith("default-src 'none'; style-src 'self'; img-src 'self';")
    )
