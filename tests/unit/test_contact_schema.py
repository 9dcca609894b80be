"""ContactIn.given(): the fields the caller sent, as model_dump(exclude_unset=True) gives them."""

from __future__ import annotations

from typing import Any

import pytest

from hub.schemas.contacts import ContactIn


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"name": "Ann", "email": "Ann@Example.COM", "attributes": {"plan": "pro", "n": None}},
        {"kind": "employee", "locale": "en_us", "timezone": "Europe/Berlin", "phone": None},
        {"webhook_url": "https://hooks.example.com/x", "name": "", "email": " "},
    ],
)
def test_given_is_the_sent_fields_in_field_order(data: dict[str, Any]) -> None:
    contact = ContactIn.model_validate(data)
    expected = contact.model_dump(exclude_unset=True)
    assert contact.given() == expected
    assert list(contact.given()) == list(expected)
