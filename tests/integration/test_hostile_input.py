"""Hostile input never gets a 500 and every refusal names its field, on SQLite and PostgreSQL.

One test per class of problem that fuzzing found (PostgreSQL refuses NUL in text and JSONB;
Python's stack, JSON parser and integer guard each have limits of their own), then a bounded
schemathesis run over every operation of the OpenAPI description.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from hub.app import create_app
from hub.runtime import Runtime
from tests.conftest import ON_CI

JSON = {"content-type": "application/json"}
# Examples per operation, mode and path choice; `make fuzz` raises it past 10,000 cases.
EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "15"))
TOPIC = {"name": "News", "allowed_channels": ["email", "sms"]}
SHARDS = 4
SLOW = 60  # seconds a fuzzed call may take before it counts as hung


def without_lifespan(runtime: Runtime) -> Any:
    """The app for schemathesis, which keeps an app's lifespan running until the process
    ends: a second set of in-process workers, sweeper and scheduler per fuzz test, left working
    on the database beside every later test of that process (a call then waited on them past
    10 s). The `client` fixture's app runs the one lifespan this test needs."""
    app = create_app(runtime=runtime)

    async def served(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return served


def without_waiting(case: Any) -> Any:
    """A campaign's test send waits up to `wait` seconds (10 unless given) for an outcome
    that needs a worker, and this app has none: the fuzzed calls ask not to wait, so every
    call stays far inside the client's 10 s read timeout."""
    if case.path.endswith("/test") and isinstance(case.body, dict):
        case.body["wait"] = 0
    return case


def assert_refused(response: Response, status: int, field: str | None) -> dict[str, Any]:
    """The status, the error envelope and, for a field's fault, the field in details and message."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}, error
    if field is not None:
        assert field in [d["field"] for d in error["details"]], error
        assert error["message"].startswith(f"{field}:"), error
    return error


@pytest.fixture
def world(client: TestClient, auth: dict[str, str]) -> None:
    assert client.put("/v1/topics/news", json=TOPIC, headers=auth).status_code == 201
    assert client.put("/v1/contacts/c-1", json={}, headers=auth).status_code == 201


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("topic=%00", "topic"),  # was a 500 on PostgreSQL: NUL in a text parameter
        ("topic=News", "topic"),
        ("attr=plan:a%00b", "attr[0]"),  # was a 500 on PostgreSQL
        ("attr=plan%0A:gold", "attr[0]"),
        ("attr=plan", "attr[0]"),  # was 422 with details null
        ("cursor=%00", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),  # was 422 with details null
        ("limit=-1", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("limit=1e400", "limit"),
        ("email=a%00@example.com", "email"),
    ],
)
def test_bad_query_parameters_are_refused_naming_the_parameter(
    client: TestClient, auth: dict[str, str], query: str, field: str
) -> None:
    assert_refused(client.get(f"/v1/contacts?{query}", headers=auth), 422, field)


@pytest.mark.usefixtures("world")
def test_an_empty_cursor_means_the_first_page(client: TestClient, auth: dict[str, str]) -> None:
    for path in ("/v1/contacts?cursor=", "/v1/topics?cursor=", "/v1/contacts/c-1/timeline?cursor="):
        response = client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["items"]


@pytest.mark.parametrize("depth", [300, 900])
@pytest.mark.parametrize("shape", ["object", "array"])
def test_deep_attributes_are_refused_not_a_stack_overflow(
    client: TestClient, auth: dict[str, str], depth: int, shape: str
) -> None:
    """Deep enough to pass the JSON parser, deep enough to overflow a recursive walk (was 500)."""
    opened, closed = ('{"a":', "}") if shape == "object" else ("[", "]")
    inner = opened * depth + ("1" if shape == "object" else "") + closed * depth
    body = '{"attributes": {"k": ' + inner + "}}"
    response = client.put("/v1/contacts/deep", content=body, headers={**auth, **JSON})
    error = assert_refused(response, 422, "attributes")
    assert "nest" in error["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        pytest.param(b"[" * 10_000 + b"]" * 10_000, JSON, "body", id="nesting-10000"),
        pytest.param(b'{"attributes": {"n": ' + b"9" * 5000 + b"}}", JSON, "body", id="int-5000"),
        pytest.param(b'{"name": "\xff\xfe"}', JSON, "body", id="not-utf8"),
        pytest.param(
            b'{"name": "\xe9"}',
            {"content-type": "application/json; charset=latin-1"},
            "body",
            id="latin-1",
        ),
        pytest.param(b'{"name": "x"}', {"content-type": "text/plain"}, "body", id="text-plain"),
        pytest.param(b"name=x", {"content-type": "application/x-www-form-urlencoded"}, "body"),
        pytest.param(b"<name>x</name>", {"content-type": "application/xml"}, "body", id="xml"),
        pytest.param(b'{"attributes": {"n": NaN}}', JSON, "attributes", id="nan"),
        pytest.param(b'{"attributes": {"n": -Infinity}}', JSON, "attributes", id="infinity"),
        pytest.param(b'{"attributes": {"n": 1e400}}', JSON, "attributes", id="1e400"),
        pytest.param(b'{"attributes": {"k": "\\ud800"}}', JSON, "attributes", id="surrogate"),
        pytest.param(b'{"attributes": {"\\udc00": 1}}', JSON, "attributes", id="surrogate-key"),
        pytest.param(b'{"attributes": {"k\\u0000": 1}}', JSON, "attributes", id="nul-key"),
        pytest.param(b'{"name": "\\ud800"}', JSON, "name", id="surrogate-name"),
        pytest.param(b'{"webhook_url": "https://example.com:99999/"}', JSON, "webhook_url"),
        pytest.param(b'{"webhook_url": "https://example.com:abc/"}', JSON, "webhook_url"),
    ],
)
def test_unreadable_or_unstorable_bodies_get_422_naming_the_field(
    client: TestClient,
    auth: dict[str, str],
    content: bytes,
    content_type: dict[str, str],
    field: str,
) -> None:
    """Parser failures were a bare 400 without details; the rest would fail in the database."""
    response = client.put("/v1/contacts/h-1", content=content, headers={**auth, **content_type})
    assert_refused(response, 422, field)
    assert client.get("/v1/contacts/h-1", headers=auth).status_code == 404


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"": False}, id="empty-name"),  # was a 500: the tree refused what CI sent
        pytest.param({'pl"an': "pro"}, id="quote-in-name"),
        pytest.param({"plan": "a\u0000b"}, id="nul-in-value"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/campaigns/audience", "/v1/campaigns"])
def test_a_flat_segment_is_held_to_the_rules_of_the_tree_it_becomes(
    client: TestClient, auth: dict[str, str], attributes: dict[str, Any], path: str
) -> None:
    """A campaign's flat segment is read as a tree of conditions: what the tree refuses is
    refused at the door, naming the segment's attributes, not a 500 when it is counted."""
    body = {"name": "x", "topic": "news", "template": "t", "segment": {"attributes": attributes}}
    error = assert_refused(client.post(path, json=body, headers=auth), 422, None)
    assert error["details"][0]["field"].startswith("segment.attributes"), error


def test_text_that_merely_looks_like_an_escape_is_kept(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = {"attributes": {"k": "\\u0000 is how JSON spells NUL"}}
    response = client.put("/v1/contacts/h-1", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["attributes"] == body["attributes"]


def test_oversized_bodies_get_413_however_they_are_sent(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    size = runtime.settings.max_request_bytes + 1

    def chunked() -> Iterator[bytes]:  # no Content-Length: was a bare 400
        yield b'{"name": "'
        for _ in range(0, size, 65_536):
            yield b"x" * 65_536
        yield b'"}'

    streamed = client.put("/v1/contacts/big", content=chunked(), headers={**auth, **JSON})
    assert assert_refused(streamed, 413, None)["code"] == "payload_too_large"
    # Only POST /v1/contacts/import streams; a contact whose id is "import" is capped (was not).
    body = b'{"name": "' + b"x" * size + b'"}'
    contact = client.put("/v1/contacts/import", content=body, headers={**auth, **JSON})
    assert assert_refused(contact, 413, None)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"allowed_frequencies": ["daily", "daily"]}, "allowed_frequencies"),  # was accepted
        ({"allowed_channels": ["email", "email"]}, "allowed_channels"),  # was "body"
        ({"default_channels": ["voice"]}, "default_channels"),  # was "body"
        ({"public": 0}, "public"),  # was taken as false
        ({"required": "yes"}, "required"),  # was taken as true
        ({"description": "d" * 10_001}, "description"),
        ({"description": "nul\x00"}, "description"),
    ],
)
def test_topic_errors_name_the_field(
    client: TestClient, auth: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = client.put("/v1/topics/t", json={**TOPIC, **change}, headers=auth)
    assert_refused(response, 422, field)


def test_topic_description_takes_what_the_schema_promises(
    client: TestClient, auth: dict[str, str]
) -> None:
    spec = client.get("/openapi.json").json()["components"]["schemas"]["TopicIn"]
    longest = spec["properties"]["description"]["anyOf"][0]["maxLength"]
    body = {**TOPIC, "description": "d" * longest}
    response = client.put("/v1/topics/t", json=body, headers=auth)  # 255 was enforced
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("world")
def test_quiet_hours_are_returned_in_the_form_the_schema_describes(
    client: TestClient, auth: dict[str, str]
) -> None:
    """`format: time` requires an offset these never carry: every response broke the schema."""
    url = "/v1/contacts/c-1/preferences"
    quiet = {"start": "22:00", "end": "07:30"}
    assert client.patch(url, json={"quiet_hours": quiet}, headers=auth).status_code == 200
    returned = client.get(url, headers=auth).json()["quiet_hours"]
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("QuietHoursIn", "QuietHoursOut"):
        for end in ("start", "end"):
            schema = spec[name]["properties"][end]
            assert "format" not in schema
            assert re.fullmatch(schema["pattern"], returned[end]), (name, returned)
            assert re.fullmatch(schema["pattern"], quiet[end]), (name, quiet)
    offset = {"quiet_hours": {"start": "22:00Z", "end": "07:00"}}
    assert_refused(client.patch(url, json=offset, headers=auth), 422, "quiet_hours")


def test_errors_are_documented_as_the_envelope_they_are(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            expected = {"401", "403", "422"}
            if "{" in path and "201" not in operation["responses"]:
                expected.add("404")  # the path names a resource; a PUT that creates it never 404s
            if "requestBody" in operation and path != "/v1/contacts/import":
                expected.add("413")  # capped JSON bodies; the import is streamed
            for status in expected:
                assert status in operation["responses"], (method, path, status)
            if path != "/v1/contacts/import":  # its own 422 text (owned by the import route)
                content = operation["responses"]["422"]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


@pytest.mark.usefixtures("world")
def test_other_methods_get_405_listing_every_method_of_the_path(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Starlette named only the first route's method (`Allow: PUT` on a contact)."""
    expected = {
        "/v1/contacts/c-1": "DELETE, GET, PATCH, PUT",
        "/v1/contacts/c-1/subscriptions/news": "DELETE, GET, PUT",
        "/v1/contacts/c-1/preferences": "GET, PATCH",
        "/v1/topics/news": "GET, PUT",
        "/v1/topics": "GET",
        "/healthz": "GET",
    }
    for path, allow in expected.items():
        for method in ("OPTIONS", "POST", "TRACE"):
            response = client.request(method, path, headers=auth)
            assert assert_refused(response, 405, None)["code"] == "method_not_allowed"
            assert response.headers["allow"] == allow, (method, path)


def test_head_and_options_never_fail_on_any_path(client: TestClient, auth: dict[str, str]) -> None:
    for path in client.get("/openapi.json").json()["paths"]:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in ("HEAD", "OPTIONS"):
            for headers in (auth, {}):
                response = client.request(method, concrete, headers=headers)
                assert response.status_code < 500, (method, path, response.status_code)
                assert response.status_code >= 400 or method == "HEAD", (method, path)


@pytest.mark.fuzz
@pytest.mark.parametrize("shard", range(SHARDS), ids=lambda n: f"part-{n + 1}-of-{SHARDS}")
def test_the_openapi_description_holds_under_generated_input(
    client: TestClient, auth: dict[str, str], runtime: Runtime, shard: int
) -> None:
    """Schemathesis: no 5xx, and every response matches its documented status, type and schema.

    Deterministic and bounded: about 50 positive and 50 negative cases per operation, half of
    them on an existing contact and topic. Not checked: that every schema-valid request is
    accepted (e-mail, phone, time zone and cursor rules go beyond JSON Schema). The operations
    are dealt into `SHARDS` tests, so the test processes of `make test` share them out.
    """
    try:
        import schemathesis
        from hypothesis import HealthCheck, given, settings
        from hypothesis.errors import InvalidArgument
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
            status_code_conformance,
        )
    except ImportError as exc:  # installed by the dev extra
        if ON_CI:
            pytest.fail(f"CI requires schemathesis: {exc}", pytrace=False)
        pytest.skip(f"schemathesis is not installed: {exc}")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    existing = {"external_id": "c-1", "topic": "news", "key": "news"}

    def seed() -> None:
        """Objects with every optional part filled in, so reads return all of their shape;
        again before each operation, as the one before may have erased or changed them."""
        client.put("/v1/topics/news", json=TOPIC, headers=auth)
        client.put("/v1/contacts/c-1", json={"email": "ann@example.com"}, headers=auth)
        client.put("/v1/contacts/c-1/subscriptions/news", json={}, headers=auth)
        quiet = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "blocked_channels": ["sms"]}
        client.patch("/v1/contacts/c-1/preferences", json=quiet, headers=auth)

    config = schemathesis.Config.from_dict({"generation": {"database": "none"}})
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", without_lifespan(runtime), config=config
    )
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    ran = {"with a key": 0, "without a key": 0}
    impossible: list[str] = []

    def keyless(_: Any, response: Any, case: schemathesis.Case) -> bool:
        """No key, no data: an API path answers 401 (or 404/405/422 before auth), never 2xx."""
        if case.path.startswith("/v1/"):
            assert not 200 <= response.status_code < 300, (case.method, case.path)
        return True

    def run(operation: Any, mode: Any, fixed: dict[str, str] | None, *, keyed: bool) -> None:
        strategy = operation.as_strategy(mode, path_parameters=fixed).map(without_waiting)
        headers = dict(auth) if keyed else {}
        extra = [] if keyed else [keyless]

        @settings(
            max_examples=EXAMPLES if keyed else max(5, EXAMPLES // 5),
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case: schemathesis.Case) -> None:
            ran["with a key" if keyed else "without a key"] += 1
            # The checks are about what is answered, not how fast: beside the other test
            # process a call once took over schemathesis' default 10 s on PostgreSQL.
            case.call_and_validate(headers=headers, checks=[*checks, *extra], timeout=SLOW)

        try:
            call()
        except InvalidArgument as exc:
            # Schemathesis' negative mode sometimes asks for more unique items than an enum
            # has (five distinct channels of four): a generator limit, not a finding.
            if "unique elements" not in str(exc):
                raise
            impossible.append(f"{operation.method.upper()} {operation.path}")

    for number, result in enumerate(schema.get_all_operations()):
        if number % SHARDS != shard:
            continue
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        has_input = bool(names or list(operation.query) or list(operation.body))
        fixed = {k: v for k, v in existing.items() if k in names}
        seed()
        for mode in modes if has_input else modes[:1]:
            for path_parameters in [fixed, None] if fixed else [None]:
                run(operation, mode, path_parameters, keyed=True)
        run(operation, modes[0], fixed or None, keyed=False)
    print(f"\nfuzz: {ran} cases (HUB_FUZZ_EXAMPLES={EXAMPLES})", flush=True)
    if impossible:
        print(f"fuzz: the generator could not build some negative cases for {impossible}")
    assert ran["with a key"] > 1000 // SHARDS
