"""The e-mail fast path never disagrees with email-validator on an address it takes."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.fields import _plain_email, normalize_email

PROPERTIES = settings(max_examples=3000, deadline=None, database=None)

# Characters near the edges of what the fast path allows, so generated addresses often fall
# just inside or just outside it.
LOCAL_CHARS = "aZ09._%+-!#'*/=?^`{|}~\"@ é"
LABEL_CHARS = "aZ09-_é"
TLDS = ["com", "ORG", "de", "c0m", "x", "test", "local", "onion", "arpa", "invalid", "localhost"]


def expected(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


labels = st.one_of(
    st.text(LABEL_CHARS, min_size=0, max_size=6),
    st.text("aZ09-", min_size=1, max_size=6),
    st.sampled_from(["xn--abc", "ab--cd", "a" * 63, "a" * 64, "-a", "a-", "info"]),
)
addresses = st.builds(
    lambda local, middle, tld: f"{local}@{'.'.join([*middle, tld])}",
    st.one_of(
        st.text(LOCAL_CHARS, min_size=0, max_size=12),
        st.text("aZ09._%+-", min_size=1, max_size=12),
        st.sampled_from(["info", "Sales", "POSTMASTER", "a" * 64, "a" * 65, "a..b", ".a", "a."]),
    ),
    st.lists(labels, min_size=0, max_size=4),
    st.one_of(
        st.sampled_from(TLDS), st.text("aZ", min_size=1, max_size=4), st.text("aZ9-", max_size=4)
    ),
)


@PROPERTIES
@given(addresses)
@example("Ann.Lee@Mail.Example.ORG")
@example(f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 57}.com")  # 254 characters
@example(f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 58}.com")  # 255 characters
def test_fast_path_agrees_with_email_validator(address: str) -> None:
    plain = _plain_email(address)
    if plain is not None:
        assert plain == expected(address)


@PROPERTIES
@given(st.emails())
def test_fast_path_agrees_on_any_valid_address(address: str) -> None:
    plain = _plain_email(address)
    if plain is not None:
        assert plain == expected(address)


@pytest.mark.parametrize(
    "address",
    ["ann@example.com", "Ann.Lee+tag@Mail.Example.ORG", "a_b%c-d@sub-1.example.co.uk"],
)
def test_common_addresses_take_the_fast_path(address: str) -> None:
    assert _plain_email(address) == expected(address)


@pytest.mark.parametrize(
    "address",
    ["Info@example.com", "a@xn--bcher-kva.example", "a@ex--ample.com", "a@b.test", "ä@b.com"],
)
def test_unusual_addresses_go_to_email_validator(address: str) -> None:
    assert _plain_email(address) is None
    normalized = expected(address)
    if normalized is None:
        with pytest.raises(ValueError, match="not a valid e-mail address"):
            normalize_email(address)
    else:
        assert normalize_email(address) == normalized
