"""Contact import over HTTP and through `import_contacts`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select, text

from hub.db.base import utcnow
from hub.db.models import Contact, ContactEvent
from hub.domain import ActorKind, Scope
from hub.runtime import Runtime
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.imports import ImportFormat, format_for, import_contacts, writer
from tests.conftest import make_key

URL = "/v1/contacts/import"
NDJSON = "application/x-ndjson"


def post(
    client: TestClient, auth: dict[str, str], body: str | bytes, content_type: str = "text/csv"
) -> Any:
    content = body.encode() if isinstance(body, str) else body
    return client.post(URL, content=content, headers={**auth, "content-type": content_type})


def imported(
    client: TestClient, auth: dict[str, str], body: str | bytes, content_type: str = "text/csv"
) -> dict[str, Any]:
    response = post(client, auth, body, content_type)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def contact(client: TestClient, auth: dict[str, str], external_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/contacts/{external_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def errors(report: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["line"], e["field"]) for e in report["errors"]]


def test_csv_creates_then_updates_and_counts_unchanged_rows(
    client: TestClient, auth: dict[str, str]
) -> None:
    first = imported(
        client,
        auth,
        "external_id,name,email,phone,locale,timezone,attr.plan\n"
        "c-1,Ann Lee,Ann@Example.COM,+44 20 7946 0958,en_gb,Europe/London,gold\n"
        "c-2,Bo Chen,bo@example.com,,,,\n",
    )
    assert first == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "subscribed": 0,
        "errors": [],
        "errors_truncated": False,
    }
    ann = contact(client, auth, "c-1")
    assert ann["email"] == "Ann@example.com"  # normalised as the API does
    assert ann["phone"] == "+442079460958"
    assert ann["locale"] == "en-GB"
    assert ann["attributes"] == {"plan": "gold"}
    assert contact(client, auth, "c-2")["timezone"] == "UTC"  # the API's default

    again = imported(
        client, auth, "external_id,name,email\nc-1,Ann Lee,ann@example.org\nc-2,Bo Chen,\n"
    )
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert contact(client, auth, "c-1")["email"] == "ann@example.org"


def test_csv_merges_given_fields_and_attributes_key_by_key(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = {
        "name": "Ann Lee",
        "email": "ann@example.com",
        "phone": "+14155552671",
        "attributes": {"plan": "gold", "seats": 12, "region": "eu"},
    }
    assert client.put("/v1/contacts/c-1", json=body, headers=auth).status_code == 201
    report = imported(
        client,
        auth,
        "external_id,name,email,phone,attributes,attr.plan\n"
        'c-1,Ann L.,, ,"{""seats"": null, ""tier"": 2}",silver\n',
    )
    assert report["updated"] == 1, report
    ann = contact(client, auth, "c-1")
    assert ann["name"] == "Ann L."
    assert ann["email"] == "ann@example.com"  # empty and blank cells leave a field as it is
    assert ann["phone"] == "+14155552671"
    assert ann["attributes"] == {"plan": "silver", "region": "eu", "tier": 2}


def test_ndjson_merges_and_null_clears_a_field(client: TestClient, auth: dict[str, str]) -> None:
    lines = [
        {"external_id": "c-1", "email": "ann@example.com", "phone": "+14155552671"},
        {"external_id": "c-2", "kind": "employee", "attributes": {"team": "ops", "level": 3}},
        {"external_id": "c-1", "phone": None, "attributes": {"plan": "gold"}},
        {"external_id": "c-2", "attributes": {"level": None}},
    ]
    body = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    report = imported(client, auth, body, NDJSON)
    assert (report["rows"], report["created"], report["updated"]) == (4, 2, 2)
    ann = contact(client, auth, "c-1")
    assert ann["phone"] is None
    assert ann["email"] == "ann@example.com"
    assert ann["attributes"] == {"plan": "gold"}
    assert contact(client, auth, "c-2")["attributes"] == {"team": "ops"}
    assert contact(client, auth, "c-2")["kind"] == "employee"


@pytest.mark.parametrize("content_type", ["application/jsonl", "application/x-jsonlines"])
def test_other_ndjson_media_types(
    client: TestClient, auth: dict[str, str], content_type: str
) -> None:
    report = imported(
        client, auth, '{"external_id": "c-1"}\r\n{"external_id": "c-2"}', content_type
    )
    assert report["created"] == 2


def test_bad_rows_are_reported_and_good_rows_kept(client: TestClient, auth: dict[str, str]) -> None:
    body = (
        "external_id,email,phone,timezone,webhook_url,kind\n"  # line 1
        "ok-1,ok1@example.com,,,,\n"  # 2
        "bad-email,not-an-address,,,,\n"  # 3
        "bad-two,,4155552671,Mars/Olympus,,\n"  # 4: two bad fields
        ",nobody@example.com,,,,\n"  # 5: no id
        "bad-hook,,,,http://127.0.0.1/hook,\n"  # 6
        "bad-kind,,,,,robot\n"  # 7
        "too-wide,a@example.com,,,,,extra\n"  # 8
        "bad\x01id,,,,,\n"  # 9
        "\n"  # 10: blank, not a row
        "ok-2,ok2@example.com,+14155552671,Asia/Tokyo,https://hooks.example.com/x,employee\n"  # 11
    )
    report = imported(client, auth, body)
    assert report["rows"] == 9
    assert (report["created"], report["failed"]) == (2, 7)
    assert errors(report) == [
        (3, "email"),
        (4, "phone"),
        (4, "timezone"),
        (5, "external_id"),
        (6, "webhook_url"),
        (7, "kind"),
        (8, "row"),
        (9, "external_id"),
    ]
    reasons = {(e["line"], e["field"]): e["reason"] for e in report["errors"]}
    assert "international form" in reasons[(4, "phone")]
    assert reasons[(5, "external_id")] == "is required"
    assert "private" in reasons[(6, "webhook_url")]
    assert "7 cells" in reasons[(8, "row")]
    assert contact(client, auth, "ok-2")["kind"] == "employee"
    assert client.get("/v1/contacts/bad-email", headers=auth).status_code == 404


def test_ndjson_bad_lines(client: TestClient, auth: dict[str, str]) -> None:
    body = (
        '{"external_id": "ok-1"}\n'  # 1
        "\n"  # 2
        "{nope\n"  # 3
        "[1, 2]\n"  # 4
        '{"external_id": "x", "nickname": "Annie", "email": "bad"}\n'  # 5
        '{"email": "a@example.com"}\n'  # 6
        '{"external_id": 42, "name": "Numeric id"}\n'  # 7
        '{"external_id": ["x"]}\n'  # 8
    )
    report = imported(client, auth, body, NDJSON)
    assert (report["rows"], report["created"], report["failed"]) == (7, 2, 5)
    assert errors(report) == [
        (3, "row"),
        (4, "row"),
        (5, "email"),
        (5, "nickname"),
        (6, "external_id"),
        (8, "external_id"),
    ]
    assert contact(client, auth, "42")["name"] == "Numeric id"


def test_quoted_multi_line_fields_keep_line_numbers(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = (
        "external_id,name,email\r\n"  # 1
        'c-1,"Ann\r\nLee",ann@example.com\r\n'  # 2-3
        "c-2,Bo,not-an-address\r\n"  # 4
        'c-3,"Cy\n\nDee",bad@\r\n'  # 5-7
        'c-4,"unterminated,x@example.com\r\n'  # 8 to the end
        "c-5,Eve,eve@example.com\r\n"
    )
    report = imported(client, auth, body)
    assert errors(report) == [(4, "email"), (5, "email"), (8, "row")]
    assert contact(client, auth, "c-1")["name"] == "Ann\r\nLee"
    assert report["created"] == 1


def test_bom_and_a_streamed_body_in_small_chunks(client: TestClient, auth: dict[str, str]) -> None:
    data = "\ufeffexternal_id,name\n" + "".join(f"c-{i},Zoë Łukasz 日本 {i}\n" for i in range(300))
    encoded = data.encode()

    def body() -> Iterator[bytes]:
        for start in range(0, len(encoded), 7):
            yield encoded[start : start + 7]

    response = client.post(URL, content=body(), headers={**auth, "content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 300
    assert contact(client, auth, "c-299")["name"] == "Zoë Łukasz 日本 299"


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("external_id,name,nickname", "'nickname'"),
        ("external_id;name;email", "separated by commas"),
        ("name,email", "external_id"),
        ("external_id,name,name", "twice"),
        ("", "empty"),
    ],
)
def test_unknown_or_missing_columns_refuse_the_import(
    client: TestClient, auth: dict[str, str], header: str, named: str
) -> None:
    response = post(client, auth, f"{header}\nc-1,Ann,x\n" if header else "")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == "header"
    assert named in error["message"]
    assert client.get("/v1/contacts/c-1", headers=auth).status_code == 404


def test_body_that_is_not_utf8_is_refused_naming_the_line(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = b"external_id,name\nc-1,Ann\nc-2,Ren\xe9e\nc-3,Cy\n"
    response = post(client, auth, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith("body: line 3: is not UTF-8")
    assert contact(client, auth, "c-1")["name"] == "Ann"  # rows before it are kept
    assert client.get("/v1/contacts/c-3", headers=auth).status_code == 404


def test_a_header_that_is_not_utf8_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    response = post(client, auth, b"external_id,n\xe4me\nc-1,Ann\n")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("body: line 1: is not UTF-8")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "text/csv; charset=latin-1", "multipart/form-data"],
)
def test_other_media_types_get_415(
    client: TestClient, auth: dict[str, str], content_type: str
) -> None:
    response = post(client, auth, "external_id\nc-1\n", content_type)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "text/csv" in error["message"] or "only UTF-8" in error["message"]


def test_import_needs_a_key_with_the_contacts_scope(client: TestClient, runtime: Runtime) -> None:
    response = client.post(URL, content=b"external_id\nc-1\n", headers={"content-type": "text/csv"})
    assert response.status_code == 401
    notify_only = make_key(runtime, "notifier", Scope.NOTIFY)
    assert post(client, notify_only, "external_id\nc-1\n").status_code == 403


def test_events_match_what_the_api_writes(client: TestClient, auth: dict[str, str]) -> None:
    imported(client, auth, "external_id,name,attr.plan\nc-1,Ann,gold\n")
    imported(client, auth, "external_id,name,attr.plan\nc-1,Ann,silver\n")
    imported(client, auth, "external_id,name,attr.plan\nc-1,Ann,silver\n")  # unchanged: no event
    events = client.get("/v1/contacts/c-1/timeline", headers=auth).json()["items"]
    assert [e["type"] for e in events] == ["contact.updated", "contact.created"]
    updated, created = events
    assert updated["changes"] == {"attributes.plan": {"before": "gold", "after": "silver"}}
    assert updated["source"] == "api.import"
    assert updated["actor"] == "test-service"
    assert updated["actor_kind"] == "api_key"
    assert created["changes"]["name"] == {"before": None, "after": "Ann"}
    assert created["changes"]["timezone"] == {"before": None, "after": "UTC"}


def test_a_large_import_spans_batches_and_keeps_rows_around_a_bad_one(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    size = runtime.settings.import_batch_size
    rows = [f"c-{i},Person {i},p{i}@example.com" for i in range(2500)]
    rows[1300] = "c-1300,Person 1300,broken-address"
    rows[2400] = "c-10,Renamed in a later batch,"  # same contact as row 10, another batch
    rows[21] = "c-20,Renamed in the same batch,"  # same contact as row 20, same batch
    report = imported(client, auth, "external_id,name,email\n" + "\n".join(rows) + "\n")
    assert size < 2500
    assert report["rows"] == 2500
    assert (report["created"], report["updated"], report["failed"]) == (2497, 2, 1)
    assert errors(report) == [(1302, "email")]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 2497
    assert contact(client, auth, "c-10")["name"] == "Renamed in a later batch"
    assert contact(client, auth, "c-10")["email"] == "p10@example.com"
    events = client.get("/v1/contacts/c-20/timeline", headers=auth).json()["items"]
    assert [e["type"] for e in events] == ["contact.updated", "contact.created"]
    assert events[0]["changes"] == {
        "name": {"before": "Person 20", "after": "Renamed in the same batch"}
    }


def test_errors_listed_are_capped(client: TestClient, auth: dict[str, str]) -> None:
    body = "external_id,email\n" + "".join(f"c-{i},bad\n" for i in range(1100))
    report = imported(client, auth, body)
    assert report["failed"] == 1100
    assert len(report["errors"]) == 1000
    assert report["errors_truncated"] is True


# import_contacts itself: chunking, worker processes, races


ACTOR = Actor(kind=ActorKind.CLI, name="test", source="test.import")


def run(runtime: Runtime, chunks: Iterator[bytes] | list[bytes], **options: Any) -> Any:
    options = {"fmt": ImportFormat.CSV, "allow_private_webhooks": False, **options}
    return import_contacts(runtime.sessions, chunks, actor=ACTOR, **options)


def test_chunks_may_split_rows_and_characters_anywhere(runtime: Runtime) -> None:
    text = "external_id,name,attr.city\n" + "".join(
        f'c-{i},"Zoë\nÅsa {i}",Zürich 東京 🚀\n' for i in range(40)
    )
    data = text.encode()
    assert any(not chunk.isascii() for chunk in [data[i : i + 3] for i in range(0, len(data), 3)])
    for size in (1, 2, 3, 5):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        report = run(runtime, iter(pieces), batch_size=7)
        assert report.failed == 0
        assert report.rows == 40
    with runtime.sessions() as session:
        found = session.scalar(select(Contact).where(Contact.external_id == "c-39"))
        assert found is not None
        assert found.name == "Zoë\nÅsa 39"
        assert found.attributes == {"city": "Zürich 東京 🚀"}


def test_invalid_utf8_split_across_chunks_names_its_line(runtime: Runtime) -> None:
    data = "external_id,name\nc-1,Åsa\nc-2,Bo\nc-3,".encode() + b"\xf0\x9f\x9a" + b",x\nc-4,D\n"
    for cut in range(len(data) - 12, len(data) - 6):
        with pytest.raises(InvalidField, match="line 4: is not UTF-8"):
            run(runtime, [data[:cut], data[cut:]], batch_size=1)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 2


def test_progress_is_reported_after_each_batch(runtime: Runtime) -> None:
    data = ("external_id\n" + "".join(f"c-{i}\n" for i in range(25))).encode()
    seen: list[tuple[int, int]] = []
    run(runtime, [data], batch_size=10, progress=lambda t: seen.append((t.bytes_read, t.rows)))
    assert seen == [(len(data), 10), (len(data), 20), (len(data), 25)]


def test_worker_processes_give_the_same_result(runtime: Runtime) -> None:
    lines = [
        json.dumps({"external_id": f"c-{i % 150}", "name": f"N{i}", "phone": "+14155552671"})
        for i in range(300)
    ]
    lines[77] = '{"external_id": "bad", "email": "nope"}'
    data = ("\n".join(lines) + "\n").encode()
    report = run(
        runtime, [data[:1000], data[1000:]], fmt=ImportFormat.NDJSON, batch_size=20, workers=2
    )
    assert (report.rows, report.created, report.updated, report.failed) == (300, 150, 149, 1)
    assert [(e.line, e.field) for e in report.errors] == [(78, "email")]
    with runtime.sessions() as session:
        names = {
            row[0]: row[1] for row in session.execute(select(Contact.external_id, Contact.name))
        }
        assert names["c-149"] == "N299"
        assert session.scalar(select(func.count()).select_from(ContactEvent)) == 299


def test_a_batch_that_races_a_concurrent_create_is_retried(runtime: Runtime) -> None:
    if runtime.settings.is_sqlite:
        pytest.skip("SQLite transactions take the write lock at BEGIN: this race cannot happen")
    raced: list[str] = []

    def create_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO contacts") and not raced:
            raced.append("c-2")
            now = utcnow()
            with runtime.engine.begin() as other:
                other.execute(
                    insert(Contact),
                    [
                        {
                            "external_id": "c-2",
                            "kind": "client",
                            "name": "Other",
                            "timezone": "UTC",
                            "attributes": {},
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )

    event.listen(runtime.engine, "before_cursor_execute", create_first)
    try:
        report = run(runtime, [b"external_id,name\nc-1,Ann\nc-2,Bo\n"])
    finally:
        event.remove(runtime.engine, "before_cursor_execute", create_first)
    assert raced
    assert (report.created, report.updated) == (1, 1)
    with runtime.sessions() as session:
        assert session.scalar(select(Contact.name).where(Contact.external_id == "c-2")) == "Bo"


@pytest.mark.parametrize(
    ("content_type", "filename", "expected"),
    [
        ("text/csv; charset=UTF-8", None, ImportFormat.CSV),
        ("application/x-ndjson", "x.csv", ImportFormat.NDJSON),
        (None, "Contacts.CSV", ImportFormat.CSV),
        (None, "contacts.jsonl", ImportFormat.NDJSON),
        ("text/ndjson", None, ImportFormat.NDJSON),
    ],
)
def test_format_for(content_type: str | None, filename: str | None, expected: ImportFormat) -> None:
    assert format_for(content_type, filename) is expected


@pytest.mark.parametrize(
    ("content_type", "filename"),
    [
        ("text/xml", "x.csv"),
        (None, "contacts.txt"),
        (None, None),
        ("text/csv; charset=latin-1", None),
    ],
)
def test_format_for_refuses(content_type: str | None, filename: str | None) -> None:
    with pytest.raises(ValueError, match=r"CSV|UTF-8"):
        format_for(content_type, filename)


def test_a_big_import_gives_postgresql_statistics(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "ANALYZE_AFTER", 10)
    data = ("external_id\n" + "".join(f"c-{i}\n" for i in range(30))).encode()
    assert run(runtime, [data], batch_size=4).created == 30
    with runtime.sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            analyzed = session.scalar(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'contacts'")
            )
            assert analyzed is not None
