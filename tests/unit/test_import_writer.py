"""The import's shortcut for a new contact's changes gives what the general path gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import ContactKind
from hub.schemas.contacts import ContactIn
from hub.services.contacts import changes, merged
from hub.services.imports.writer import created_json

PROPERTIES = settings(max_examples=500, deadline=None, database=None)

texts = st.text(max_size=8)  # any Unicode, quotes, backslashes and control characters included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
givens = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(ContactKind),
        "name": st.none() | texts,
        "email": st.none() | texts,
        "locale": st.none() | texts,
        "timezone": texts,
        "attributes": st.dictionaries(texts, json_values, max_size=4),
    },
)


@PROPERTIES
@given(givens)
def test_created_json_is_json_dumps_of_the_changes(given_fields: dict[str, Any]) -> None:
    after = merged({**ContactIn().model_dump(), "attributes": {}}, given_fields)
    assert created_json(after) == json.dumps(changes({}, after))
