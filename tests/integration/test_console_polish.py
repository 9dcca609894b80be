"""The hub's front page, the start-up banner, the captured messages (paged newest first,
narrowed by channel and address, each message with its HTML in a frame that runs no script)
and a profile's attributes as a table, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.cli import banner
from hub.db.models import Capture
from hub.domain import Channel, StaffRole
from hub.runtime import Runtime
from hub.services import staff
from tests.dispatching import person

PASSWORD = "correct horse battery staple"
ENTRY = re.compile(r'<li class="entry"><a href="/console/captures/(\d+)">([^<]*)</a>')


def signed_in(client: TestClient, runtime: Runtime) -> None:
    with runtime.sessions() as session:
        staff.create(session, "vic@acme.example", PASSWORD, StaffRole.VIEWER)
        session.commit()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token is not None
    fields = {"csrf": token.group(1), "email": "vic@acme.example", "password": PASSWORD}
    assert client.post("/console/login", data=fields, follow_redirects=False).status_code == 303


def captured(runtime: Runtime, *rows: dict[str, object]) -> list[int]:
    with runtime.sessions() as session:
        made = [Capture(**row) for row in rows]
        session.add_all(made)
        session.commit()
        return [c.id for c in made]


def entries(text: str) -> list[tuple[int, str]]:
    return [(int(found), html.unescape(summary)) for found, summary in ENTRY.findall(text)]


def link(text: str, words: str) -> str:
    found = re.search(rf'<a href="([^"]+)">{words}</a>', text)
    assert found is not None, f"no link {words!r}"
    return html.unescape(found.group(1))


def test_the_front_page_says_where_to_go(client: TestClient) -> None:
    front = client.get("/")
    assert front.status_code == 200
    assert front.headers["content-type"].startswith("text/html")
    policy = front.headers["content-security-policy"]
    assert policy.startswith("default-src 'none';")
    assert "script-src" not in policy
    assert "<script" not in front.text
    hrefs = re.findall(r'href="(/[^"]*)"', front.text)
    for needed in ("/console", "/docs", "/preferences"):
        assert needed in hrefs, needed
    assert "signed link" in front.text
    for href in hrefs:  # every link of the page leads somewhere
        assert client.get(href).status_code == 200, href
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_the_banner_names_the_console_and_the_api_docs() -> None:
    assert banner("127.0.0.1", 8000) == (
        "Hub listening on http://127.0.0.1:8000 — console: http://127.0.0.1:8000/console, "
        "API docs: http://127.0.0.1:8000/docs"
    )
    assert banner("::1", 9000).startswith("Hub listening on http://[::1]:9000 — console: ")


def test_captured_messages_come_newest_first_a_page_at_a_time(
    client: TestClient, runtime: Runtime
) -> None:
    ids = captured(
        runtime,
        *(
            {
                "channel": Channel.SMS if i % 3 == 0 else Channel.EMAIL,
                "to": f"+4479460{i:05d}" if i % 3 == 0 else f"p{i}@Example.com",
                "subject": None if i % 3 == 0 else f"Message {i}",
                "text": f"Text {i}: https://hub.example/preferences/{'x' * 300}",
            }
            for i in range(120)
        ),
    )
    ids.reverse()  # newest first
    signed_in(client, runtime)
    first = client.get("/console/captures")
    assert first.status_code == 200
    shown = entries(first.text)
    assert [i for i, _ in shown] == ids[:50]
    assert shown[0][1] == "Message 119"
    assert shown[2][1] == "Text 117: https://hub.example/preferences/" + "x" * 77 + "…"
    assert "Newest</a>" not in first.text
    second = client.get(link(first.text, "Older messages"))
    assert [i for i, _ in entries(second.text)] == ids[50:100]
    third = client.get(link(second.text, "Older messages"))
    assert [i for i, _ in entries(third.text)] == ids[100:]
    assert "Older messages</a>" not in third.text
    assert link(third.text, "Newest") == "/console/captures"

    sms = client.get("/console/captures?channel=sms")
    assert [i for i, _ in entries(sms.text)] == [i for i in ids if (i - ids[-1]) % 3 == 0]
    assert "Older messages</a>" not in sms.text  # 40 of them
    mail = client.get("/console/captures?channel=email")
    assert [i for i, _ in entries(mail.text)] == [i for i in ids if (i - ids[-1]) % 3][:50]
    older = link(mail.text, "Older messages")
    assert older.startswith("/console/captures?channel=email&to=&before=")  # filters kept
    assert len(entries(client.get(older).text)) == 30
    found = client.get("/console/captures?to=P11%40EXAMPLE")  # any part, any case
    assert [summary for _, summary in entries(found.text)] == ["Message 11"]
    assert entries(client.get("/console/captures?to=%25").text) == []  # % is a character
    wrong = client.get("/console/captures?channel=fax")
    assert wrong.status_code == 422
    assert "Channel: choose one from the list." in wrong.text
    assert client.get("/console/captures?before=0").status_code == 422


def test_a_captured_email_shows_its_html_in_a_frame_that_runs_no_script(
    client: TestClient, runtime: Runtime
) -> None:
    mail, hook = captured(
        runtime,
        {
            "channel": Channel.EMAIL,
            "to": "ann@example.com",
            "subject": "Your order shipped",
            "text": "Hello Ann. Manage: https://hub.example/preferences/abc",
            "html": '<html><head><style>p{color:#123456}</style></head><body><p style="margin:0">'
            "Hello Ann</p><script>alert(1)</script></body></html>",
        },
        {"channel": Channel.WEBHOOK, "to": "https://crm.example/hook", "body": b'{"a":1}'},
    )
    signed_in(client, runtime)
    listed = client.get("/console/captures")
    assert listed.headers["content-security-policy"].startswith(
        "default-src 'none'; style-src 'self'; img-src 'self';"
    )
    shown = client.get(f"/console/captures/{mail}")
    assert shown.status_code == 200
    policy = shown.headers["content-security-policy"]
    assert policy.startswith("default-src 'none';")
    assert "script-src" not in policy  # so none: default-src 'none'
    assert "style-src-attr 'unsafe-inline'" in policy  # the e-mail's own style attributes
    assert "frame-ancestors 'none'" in policy
    frames = re.findall(r"<iframe ([^>]*)>", shown.text)
    assert len(frames) == 1
    assert re.search(r"(^| )sandbox( |$)", frames[0]), frames[0]  # no allow-* at all
    assert "allow-" not in frames[0]
    assert "&lt;meta http-equiv=&#34;Content-Security-Policy&#34;" in frames[0]
    assert "<script" not in shown.text  # the e-mail's script is only text of the frame's document
    for words in ("ann@example.com", "Your order shipped", "E-mail", "Hello Ann. Manage: https"):
        assert words in shown.text, words

    sent = client.get(f"/console/captures/{hook}")
    assert "<iframe" not in sent.text
    assert "style-src-attr" not in sent.headers["content-security-policy"]  # no frame: strict
    assert "&#34;a&#34;: 1" in sent.text  # the body, indented
    assert client.get(f"/console/captures/{hook + 1}").status_code == 404
    assert client.get("/console/captures/0").status_code == 422
    assert client.get("/console/captures/x").status_code == 422
    with runtime.reads() as session:
        assert session.scalar(select(Capture.subject).where(Capture.id == mail)) is not None


def test_a_profile_shows_attributes_as_a_table_of_names_and_values(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    attributes = {
        "plan": "gold",
        "seats": 12,
        "vip": True,
        "tags": ["a", "b"],
        "address": {"city": "Oslo", "zip": "0150"},
    }
    person(client, auth, "ann", email="ann@example.com", attributes=attributes)
    person(client, auth, "bob", email="bob@example.com")
    signed_in(client, runtime)
    listed = client.get("/console/contacts")  # the newest people before any search
    assert listed.text.index('href="/console/contacts/bob"') < listed.text.index(
        'href="/console/contacts/ann"'
    )
    profile = client.get("/console/contacts/ann").text
    table = re.search(r'<table class="attributes">(.*?)</table>', profile, re.DOTALL)
    assert table is not None
    assert re.findall(r'<th scope="col">([^<]*)</th>', table.group(1)) == ["Name", "Value"]
    rows = {
        html.unescape(name): html.unescape(re.sub(r"<[^>]+>", "", value))
        for name, value in re.findall(
            r'<tr><th scope="row">([^<]*)</th><td>(.*?)</td></tr>', table.group(1)
        )
    }
    assert rows == {
        "address": '{"city": "Oslo", "zip": "0150"}',
        "plan": "gold",
        "seats": "12",
        "tags": '["a", "b"]',
        "vip": "yes",
    }
    assert "{'city'" not in profile
    assert "['a'" not in profile
