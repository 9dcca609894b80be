"""What Twilio posts back to Hub, read into Hub's words: message and call statuses, texts
people send, keys pressed during a call; and the TwiML that answers them.

Every callback is signed: X-Twilio-Signature covers the URL Twilio was given (so it is checked
against HUB_PUBLIC_URL plus the path, not the URL a proxy hands on) and every form field,
checked with the twilio library's own RequestValidator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from pydantic import SecretStr
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped]
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from hub.channels.base import (
    CallbackPaths,
    CallbackRequest,
    InboundText,
    Keypress,
    MalformedCallback,
    StatusUpdate,
    UnverifiedCallback,
)
from hub.domain import (
    DeliveryNote,
    DeliveryState,
    FailureReason,
    SuppressionReason,
    delivery_reason,
)

PROVIDER = "twilio"
CARRIER_OPT_OUT = 21610  # "Attempt to send to unsubscribed recipient" (STOP at the carrier)
MAX_FIELDS = 200
# A message is queued, sent, then delivered or undelivered; a call is initiated, ringing,
# in progress, then completed, or busy, unanswered, failed or canceled.
STATES: Mapping[str, DeliveryState] = {
    **dict.fromkeys(
        (
            "accepted",
            "scheduled",
            "queued",
            "sending",
            "sent",
            "initiated",
            "ringing",
            "in-progress",
        ),
        DeliveryState.SENT,
    ),
    **dict.fromkeys(("delivered", "read", "completed"), DeliveryState.DELIVERED),
    **dict.fromkeys(
        ("undelivered", "failed", "canceled", "busy", "no-answer"), DeliveryState.FAILED
    ),
}
PERSON = "human"  # AnsweredBy when machine detection heard a person
NOT_SIGNED = "X-Twilio-Signature does not match this request"


def state_of(status: str) -> DeliveryState | None:
    """What one of Twilio's status words (any case) means for a delivery; None if unknown."""
    return STATES.get(status.lower())


class TwilioCallbacks:
    """Reads what Twilio posts to /inbound/twilio/*, for SMS and voice alike."""

    provider: ClassVar[str] = PROVIDER
    paths: ClassVar[CallbackPaths] = CallbackPaths(
        status="/inbound/twilio/status",
        text="/inbound/twilio/sms",
        keypress="/inbound/twilio/voice",
    )
    answer_type: ClassVar[str] = "text/xml"

    def __init__(self, auth_token: str | None) -> None:
        """`auth_token` signs every callback; without one, every callback is refused."""
        self._validator = RequestValidator(auth_token) if auth_token else None

    @classmethod
    def from_options(cls, options: Any) -> TwilioCallbacks:
        token: SecretStr | None = options.twilio_auth_token
        return cls(token.get_secret_value() if token is not None else None)

    def verified(self, request: CallbackRequest) -> dict[str, str]:
        """The form's fields, once X-Twilio-Signature is shown to cover them and the URL.

        Raises:
            UnverifiedCallback: HUB_TWILIO_AUTH_TOKEN unset, no signature, or a wrong one.
        """
        if self._validator is None:
            raise UnverifiedCallback(
                "Twilio callbacks are refused: HUB_TWILIO_AUTH_TOKEN is not set"
            )
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise UnverifiedCallback("missing X-Twilio-Signature")
        try:
            body = request.body.decode("utf-8")
            fields = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))
        except (UnicodeDecodeError, ValueError):
            raise UnverifiedCallback(NOT_SIGNED) from None
        if not self._validator.validate(request.url, fields, signature):
            raise UnverifiedCallback(NOT_SIGNED)
        return fields

    def status(self, fields: Mapping[str, str]) -> StatusUpdate | None:
        """A message's (MessageSid, MessageStatus) or a call's (CallSid, CallStatus) status."""
        sid = fields.get("MessageSid") or fields.get("CallSid")
        status = fields.get("MessageStatus") or fields.get("CallStatus") or fields.get("SmsStatus")
        if not sid or not status:
            return None
        status = status.lower()
        state = state_of(status)
        if state is None:
            return None  # a status we do not know: recorded nowhere, changes nothing
        error_code = fields.get("ErrorCode") or None
        answered_by = fields.get("AnsweredBy") or None  # only when the call asked for it
        failed = state is DeliveryState.FAILED
        reason = None
        if failed:
            reason = delivery_reason(FailureReason.TWILIO, status)
        elif answered_by is not None and answered_by != PERSON:
            reason = delivery_reason(DeliveryNote.ANSWERED_BY, answered_by)
        return StatusUpdate(
            provider=PROVIDER,
            provider_id=sid,
            state=state,
            status=status,
            reason=reason,
            error_code=error_code,
            error=f"Twilio reported {status}" if failed else None,
            answered_by=answered_by,
            # The carrier says the person replied STOP: nothing more on this channel, at once.
            suppress=(
                SuppressionReason.CARRIER_OPT_OUT if error_code == str(CARRIER_OPT_OUT) else None
            ),
        )

    def text(self, fields: Mapping[str, str]) -> InboundText:
        sender = fields.get("From", "")
        if not sender:
            raise MalformedCallback("an inbound SMS needs From")
        return InboundText(
            provider=PROVIDER,
            sender=sender,
            body=fields.get("Body", ""),
            provider_id=fields.get("MessageSid"),
        )

    def keypress(self, fields: Mapping[str, str]) -> Keypress:
        callee = fields.get("To", "")
        if not callee:
            raise MalformedCallback("a keypress callback needs To (the number Hub called)")
        return Keypress(
            provider=PROVIDER,
            callee=callee,
            digits=fields.get("Digits", ""),
            provider_id=fields.get("CallSid"),
        )

    def answer_text(self, reply: str | None) -> str:
        answer = MessagingResponse()
        if reply is not None:
            answer.message(reply)
        return str(answer)

    def answer_keypress(self) -> str:
        answer = VoiceResponse()
        answer.hangup()  # 9 or another key: the message was heard; nothing more to say
        return str(answer)
