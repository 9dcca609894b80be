"""A delivery's `reason` as stored: old rows and the API's answers hold these exact strings."""

from __future__ import annotations

from hub.domain import (
    REASON_LENGTH,
    DeferralReason,
    DeliveryNote,
    FailureReason,
    RefusalReason,
    SoftBounceCause,
    WithdrawalReason,
    delivery_reason,
)


def test_the_stored_strings_do_not_change() -> None:
    assert {r.value for r in FailureReason} == {
        "rejected",
        "gave_up",
        "no_answer",
        "worker_lost",
        "twilio",
        "blocked",
    }
    assert {c.value for c in SoftBounceCause} == {"mailbox_full", "too_large", "expired"}
    assert {r.value for r in WithdrawalReason} == {"chain_stopped", "contact_erased", "cancelled"}
    assert DeferralReason.ESCALATION == "escalation"
    assert DeliveryNote.ANSWERED_BY == "answered_by"


def test_a_reason_with_a_detail_is_joined_by_a_colon() -> None:
    assert delivery_reason(RefusalReason.SUPPRESSED, "hard_bounce") == "suppressed:hard_bounce"
    assert delivery_reason(FailureReason.TWILIO, "undelivered") == "twilio:undelivered"
    assert delivery_reason(DeliveryNote.ANSWERED_BY, "machine_start") == "answered_by:machine_start"


def test_a_reason_without_a_detail_is_its_value_and_every_one_fits_the_column() -> None:
    assert delivery_reason(RefusalReason.NO_ADDRESS) == "no_address"
    assert delivery_reason(RefusalReason.NO_ADDRESS, "") == "no_address"
    assert len(delivery_reason(FailureReason.TWILIO, "x" * 100)) == REASON_LENGTH
