"""The request examples the OpenAPI description shows are what a real hub accepts: each one,
sent as documented to its operation, answers 2xx with the documented answer's shape."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

# Each operation's path parameters, in the order a newcomer calls them: the topic, template
# and contact the later examples name exist by the time those are sent.
STEPS: dict[str, dict[str, str]] = {
    "topics.upsert": {"key": "newsletter"},
    "templates.upsert": {"key": "newsletter-december"},
    "contacts.upsert": {"external_id": "crm-1"},
    "subscriptions.put": {"external_id": "crm-1", "topic": "newsletter"},
    "preferences.update": {"external_id": "crm-1"},
    "campaigns.create": {},
    "notifications.create": {},
    "notifications.create_batch": {},
}


def request_examples(operation: dict[str, Any]) -> list[tuple[str, Any]]:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    return [(name, example["value"]) for name, example in media.get("examples", {}).items()]


def test_every_request_example_is_accepted_as_documented(
    client: TestClient, auth: dict[str, str]
) -> None:
    spec = client.get("/openapi.json").json()
    found = {
        operation["operationId"]: (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    # what the notification examples name (crm-1 comes from the contacts.upsert step)
    invoices = {
        "name": "Invoices",
        "audience": "clients",
        "allowed_channels": ["email"],
        "default_channels": ["email"],
        "category": "transactional",
    }
    assert client.put("/v1/topics/invoices", json=invoices, headers=auth).status_code < 300
    invoice = {
        "variants": {
            "": {
                "email_subject": "Invoice {{ data.invoice_id }}",
                "email_text": "{{ data.amount }} {{ data.currency }}",
            }
        }
    }
    assert client.put("/v1/templates/invoice-ready", json=invoice, headers=auth).status_code < 300
    # the owner and team the contact example names
    employee = {"kind": "employee", "name": "Eve Account-Manager"}
    assert client.put("/v1/contacts/emp-7", json=employee, headers=auth).status_code < 300
    team = {"name": "Key accounts (north)"}
    assert client.put("/v1/teams/key-accounts-north", json=team, headers=auth).status_code < 300
    sent = []
    for operation_id, parameters in STEPS.items():
        method, path, operation = found[operation_id]
        examples = request_examples(operation)
        assert examples, f"{operation_id} shows no request example"
        url = re.sub(r"\{(\w+)\}", lambda m, given=parameters: given[m.group(1)], path)
        # The first example shown is the fullest: sent last, so later steps see what it set.
        for name, body in reversed(examples):
            response = client.request(method.upper(), url, json=body, headers=auth)
            status = str(response.status_code)
            assert status.startswith("2"), (operation_id, name, response.text)
            assert status in operation["responses"], (operation_id, name, status)
            documented = operation["responses"][status]["content"]["application/json"]
            schema = documented["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            missing = set(schema.get("required", [])) - set(response.json())
            assert not missing, (operation_id, name, missing)
            sent.append(f"{operation_id}:{name}")
    assert len(sent) >= len(STEPS) + 3, sent  # some operations show several examples
