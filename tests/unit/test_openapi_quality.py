"""The OpenAPI description is one people generate clients from: every operation and field of it
named, tagged, described, with the statuses it really answers, examples and `servers`.

Each test lists every offender it finds, so one run says all that is left to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from hub.app import create_app
from hub.runtime import Runtime
from hub.schemas.campaigns import CampaignIn
from hub.schemas.contacts import ContactIn, ContactOut
from hub.schemas.subscriptions import SubscriptionIn, SubscriptionOut
from hub.schemas.templates import TemplateIn
from hub.schemas.topics import TopicIn, TopicOut
from hub.settings import Settings
from tests.conftest import ON_CI

PUBLIC_URL = "https://hub.example.com/"
OPERATION_ID = re.compile(r"^[a-z_]+\.[a-z_]+$")
METHODS = {"get", "put", "post", "patch", "delete"}
OPS_PATHS = {"/healthz", "/readyz", "/metrics"}
# The operations a client starts with: each shows a request body to copy, and the model the
# server validates it with, so an example that went stale fails here.
MAIN_REQUESTS: dict[str, type[BaseModel] | None] = {
    "contacts.upsert": ContactIn,
    "subscriptions.put": SubscriptionIn,
    "topics.upsert": TopicIn,
    "templates.upsert": TemplateIn,
    "campaigns.create": CampaignIn,
    "notifications.create": None,  # validated by the notifications' own tests
    "notifications.create_batch": None,
}
MAIN_RESPONSES: dict[str, type[BaseModel]] = {
    "contacts.upsert": ContactOut,
    "subscriptions.put": SubscriptionOut,
    "topics.upsert": TopicOut,
}
# A 404 on a path that names no resource, and why it is real.
NOT_FOUND_WITHOUT_PATH = {
    "campaigns.count_audience": "the body's `topic` is looked up as a resource is",
}
# Bodies the size cap does not apply to (BodyLimit's `unlimited` in hub/app.py).
STREAMED = {"contacts.import"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The document the real app serves; building it opens no socket and no database."""
    path: Path = tmp_path_factory.mktemp("openapi") / "hub.db"
    runtime = Runtime.build(Settings(database_url=f"sqlite:///{path}", public_url=PUBLIC_URL))
    try:
        yield create_app(runtime=runtime).openapi()
    finally:
        runtime.close()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def named(method: str, path: str, operation: dict[str, Any]) -> str:
    return f"{operation.get('operationId') or '(no id)'} ({method} {path})"


def report(what: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {what}:\n  " + "\n  ".join(offenders)


def test_only_api_inbound_and_ops_paths_are_described(spec: dict[str, Any]) -> None:
    stray = [
        path
        for path in spec["paths"]
        if not (path.startswith(("/v1/", "/inbound/")) or path in OPS_PATHS)
    ]
    assert not stray, report("paths outside /v1, /inbound and the ops endpoints", stray)
    assert len(list(operations(spec))) >= 60


def test_every_operation_has_a_stable_readable_unique_id(spec: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    offenders = []
    for method, path, operation in operations(spec):
        found = operation.get("operationId", "")
        if not OPERATION_ID.fullmatch(found):
            offenders.append(f"{named(method, path, operation)}: not <resource>.<verb>")
        elif found in seen:
            offenders.append(f"{found}: both {seen[found]} and {method} {path}")
        seen.setdefault(found, f"{method} {path}")
    assert not offenders, report("operation ids to fix", offenders)


def test_every_operation_has_a_described_tag_a_summary_and_a_description(
    spec: dict[str, Any],
) -> None:
    described = {tag["name"] for tag in spec.get("tags", []) if tag.get("description")}
    offenders = []
    for method, path, operation in operations(spec):
        tags = operation.get("tags", [])
        if len(tags) != 1:
            offenders.append(f"{named(method, path, operation)}: tags {tags}, not exactly one")
        offenders += [
            f"{named(method, path, operation)}: tag {tag!r} has no description in `tags`"
            for tag in tags
            if tag not in described
        ]
        for part in ("summary", "description"):
            if not operation.get(part, "").strip():
                offenders.append(f"{named(method, path, operation)}: no {part}")
        if operation.get("summary", "").istitle():  # "Put Contact": FastAPI's, from the name
            offenders.append(f"{named(method, path, operation)}: summary made from its name")
        if operation.get("summary", "") == operation.get("description", ""):
            offenders.append(f"{named(method, path, operation)}: description repeats summary")
    assert not offenders, report("operations missing a tag, summary or description", offenders)


def undescribed(schema: Any, where: str) -> Iterator[str]:
    """Each property of `schema`, and of the schemas inline in it, that has no description.

    A `$ref` is not followed here: every component is walked on its own.
    """
    if not isinstance(schema, dict):
        return
    for name, prop in schema.get("properties", {}).items():
        if not (isinstance(prop, dict) and prop.get("description", "").strip()):
            yield f"{where}.{name}"
        yield from undescribed(prop, f"{where}.{name}")
    for key in ("items", "additionalProperties", "not"):
        yield from undescribed(schema.get(key), f"{where}[{key}]")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, part in enumerate(schema.get(key, [])):
            yield from undescribed(part, f"{where}.{key}[{index}]")


def test_every_schema_property_is_described(spec: dict[str, Any]) -> None:
    offenders = [
        field
        for name, schema in spec["components"]["schemas"].items()
        for field in undescribed(schema, name)
    ]
    for method, path, operation in operations(spec):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            for media in body.get("content", {}).values():
                offenders += undescribed(media.get("schema"), named(method, path, operation))
    assert not offenders, report("schema properties without a description", offenders)


def test_every_parameter_is_described(spec: dict[str, Any]) -> None:
    offenders = [
        f"{named(method, path, operation)}: {parameter['in']} {parameter['name']}"
        for method, path, operation in operations(spec)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description", "").strip()
    ]
    assert not offenders, report("parameters without a description", offenders)


def by_id(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op.get("operationId", ""): op for _, _, op in operations(spec)}


def examples_of(media: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    found = [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    if "example" in media:
        found.append(media["example"])
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return found + list(schema.get("examples", []))


def test_the_main_operations_show_request_examples_the_server_accepts(
    spec: dict[str, Any],
) -> None:
    operations_by_id, components = by_id(spec), spec["components"]["schemas"]
    offenders = []
    for operation_id, model in MAIN_REQUESTS.items():
        if operation_id not in operations_by_id:
            offenders.append(f"{operation_id}: no such operation")
            continue
        media = operations_by_id[operation_id].get("requestBody", {}).get("content", {})
        examples = examples_of(media.get("application/json", {}), components)
        if not examples:
            offenders.append(f"{operation_id}: no request example")
        for example in examples if model is not None else []:
            try:
                model.model_validate(example)
            except ValueError as exc:
                offenders.append(f"{operation_id}: example {example} is refused: {exc}")
    for operation_id, model in MAIN_RESPONSES.items():
        answers = operations_by_id.get(operation_id, {}).get("responses", {})
        examples = [
            example
            for status, answer in answers.items()
            if status.startswith("2")
            for example in examples_of(
                answer.get("content", {}).get("application/json", {}), components
            )
        ]
        if not examples:
            offenders.append(f"{operation_id}: no response example")
        for example in examples:
            try:
                model.model_validate(example)
            except ValueError as exc:
                offenders.append(f"{operation_id}: response example {example} is invalid: {exc}")
    assert not offenders, report("main operations without usable examples", offenders)


def wrong_statuses(path: str, operation: dict[str, Any]) -> Iterator[str]:
    """What `operation` documents that it cannot answer, or cannot answer that it does not."""
    answers, operation_id = operation["responses"], operation.get("operationId", "")
    names_resource = "{" in path
    why = NOT_FOUND_WITHOUT_PATH.get(operation_id)
    if "404" in answers and not names_resource and why is None:
        yield "404, but its path names no resource"
    # A PUT that creates what its path names (201) never finds it missing.
    if names_resource and "404" not in answers and "201" not in answers:
        yield "names a resource in its path but documents no 404"
    if why is not None and why.split("`")[1] not in answers.get("404", {}).get("description", ""):
        yield f"its 404 does not say it is about {why.split('`')[1]}"
    capped = "requestBody" in operation and operation_id not in STREAMED
    if capped != ("413" in answers):
        yield "takes a capped body but documents no 413" if capped else "413, but no capped body"
    has_input = "requestBody" in operation or bool(operation.get("parameters"))
    if has_input != ("422" in answers):
        yield "takes input but documents no 422" if has_input else "422, but it takes no input"
    keyed = bool(operation.get("security"))
    for status in ("401", "403"):
        if keyed and status not in answers:
            yield f"needs an API key but documents no {status}"
    if "401" in answers and not keyed:
        yield "401, but it takes no API key"
    for status, answer in answers.items():
        if not answer.get("description", "").strip():
            yield f"{status} has no description"
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if status.startswith("4") and schema != {"$ref": "#/components/schemas/ErrorOut"}:
            yield f"{status} is not the ErrorOut envelope"


def test_each_operation_documents_the_errors_it_can_really_answer(spec: dict[str, Any]) -> None:
    offenders = [
        f"{named(method, path, operation)}: {problem}"
        for method, path, operation in operations(spec)
        for problem in wrong_statuses(path, operation)
    ]
    assert not offenders, report("wrong error statuses", offenders)


def signed_by_provider(operation: dict[str, Any]) -> bool:
    return "signature" in operation["responses"].get("403", {}).get("description", "")


def test_api_operations_name_their_api_key(spec: dict[str, Any]) -> None:
    """Every operation takes a key but the probes and provider callbacks (signed instead)."""
    offenders = [
        named(method, path, operation)
        for method, path, operation in operations(spec)
        if (path in {"/healthz", "/readyz"} or signed_by_provider(operation))
        == bool(operation.get("security"))
    ]
    assert not offenders, report("operations whose `security` is wrong", offenders)


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    """Checked with the OpenAPI 3.1 meta-schema schemathesis ships (the fuzz test's loader)."""
    try:
        from schemathesis.specs.openapi import definitions
    except ImportError as exc:  # installed by the dev extra
        if ON_CI:
            pytest.fail(f"CI requires schemathesis for the meta-schema: {exc}", pytrace=False)
        pytest.skip(f"schemathesis (which ships the OpenAPI 3.1 meta-schema) is missing: {exc}")
    assert spec["openapi"].startswith("3.1")
    problems = [str(e) for e in definitions.OPENAPI_31_VALIDATOR.iter_errors(spec)]
    assert not problems, report("meta-schema errors", problems)


def test_servers_name_the_public_url(spec: dict[str, Any]) -> None:
    assert spec.get("servers") == [
        {"url": PUBLIC_URL.rstrip("/"), "description": "This hub (HUB_PUBLIC_URL)"}
    ], spec.get("servers")
