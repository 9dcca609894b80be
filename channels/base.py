"""The one small interface every delivery adapter implements, the errors it raises, and the
optional one for providers that call Hub back.

An adapter turns one rendered `OutgoingMessage` into one provider call and answers with a
`Receipt`, or raises one of the three `DeliveryError`s; it never returns a flag. Adapters
receive their options (a pydantic-settings model read from `HUB_*` variables) and build or
receive their own clients; they know nothing of the web app, the database or hub settings.

A provider that calls back (delivery statuses, texts people send, keys pressed during a call)
ships a `ProviderCallbacks` reader beside its adapter: it checks a callback is the provider's
and turns it into the neutral values below, so the web routes and the services that act on
them name no vendor, and a second vendor adds only an adapter and its configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.domain import Channel, DeliveryState, SuppressionReason


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One rendered message for one person on one channel. Fields unused by a channel stay None.

    `key` is stable for the delivery across retries: it is the e-mail Message-ID's left part
    and the webhook-id, so a receiver can drop a resend that a crash made ambiguous.
    """

    delivery_id: int
    channel: Channel
    key: str
    to: str  # e-mail address, E.164 phone number or webhook URL
    to_name: str | None = None
    locale: str | None = None
    subject: str | None = None  # e-mail
    text: str | None = None  # e-mail text part, SMS body, voice script
    html: str | None = None  # e-mail HTML part
    body: bytes | None = None  # webhook: the JSON document, already serialised
    unsubscribe_url: str | None = None  # e-mail: List-Unsubscribe (https, RFC 8058 one-click)
    unsubscribe_mailto: str | None = None  # e-mail: List-Unsubscribe (mailto)
    # E-mail: List-Id (RFC 2919) names the stream, transactional too: `list_id` is its label
    # (the topic key; the sender's domain completes it) and `list_name` its phrase.
    list_id: str | None = None
    list_name: str | None = None
    # E-mail: Feedback-ID for Gmail's feedback loop, "<campaign or api>:<topic>:<sender>".
    feedback_id: str | None = None
    callback_url: str | None = None  # SMS and voice: the provider's status callback
    # Voice: said last, inside a keypress prompt whose digit goes to `keypress_url` (the
    # "press 9 to stop these calls" opt-out).
    opt_out_prompt: str | None = None
    keypress_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # extra e-mail/webhook headers


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the provider said when it accepted the message."""

    provider_id: str | None = None  # Message-ID, Twilio SID, HTTP status...
    detail: Mapping[str, Any] | None = None  # kept on the timeline; never secrets
    captured: OutgoingMessage | None = None  # the capture sink hands back what it kept
    provider: str | None = None  # which provider took it, when a channel has several


class DeliveryError(Exception):
    """Base of the three ways a send can fail. `code` is the provider's own (550, 21610, 503)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RetryableDeliveryError(DeliveryError):
    """Try again later: SMTP 4xx, Twilio 429/5xx, HTTP 408/429/5xx, a refused connection.

    `unavailable` says the provider itself is down or refusing everyone, before anything
    about this message was said: a refused or failed connection, SMTP 421 or a hang-up at
    MAIL, an SMTP host not set; Twilio 5xx, 429 or 401, or no connection. When a whole batch
    meets only that, the dispatcher pauses the channel instead of spending attempts.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        unavailable: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.unavailable = unavailable


class PermanentDeliveryError(DeliveryError):
    """Never retry this message: SMTP 5xx, an invalid number, HTTP 4xx, 410 Gone.

    `suppress` names why the address itself must not be used again (a hard bounce, a carrier
    opt-out); None when only this message was refused.
    """

    def __init__(
        self, message: str, *, code: str | None = None, suppress: SuppressionReason | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.suppress = suppress


class AmbiguousDeliveryError(DeliveryError):
    """The request left but no answer came (a timeout after sending): it may have arrived.

    Recorded as `unknown`; a resend must first look the message up, or carry the same key.
    """


class ChannelOptions(BaseSettings):
    """Base of every adapter's options: read from `HUB_*` environment variables and `.env`."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    @property
    def configured(self) -> bool:
        """Whether enough is set to talk to a real provider; if not, the channel captures."""
        return True


@runtime_checkable
class ChannelAdapter(Protocol):
    """What the dispatcher needs from an adapter. Registered under the `hub.channels` group."""

    name: ClassVar[str]  # the entry-point name, e.g. "smtp"
    kinds: ClassVar[frozenset[Channel]]  # the channels it can serve
    options_model: ClassVar[type[ChannelOptions]]

    @classmethod
    def from_options(cls, options: Any) -> ChannelAdapter: ...

    # An adapter whose provider calls Hub back also names its reader, as
    # `callbacks: ClassVar[type[ProviderCallbacks]]`; the web app serves it at its `paths`.
    #
    # An adapter that paces itself may also set `rate_per_second: float | None`; the
    # dispatcher then claims at most what it can send within one send lease. It should keep
    # its budget in the `channels.ratelimit.Pacer` the hub gives it (declare
    # `paced: ClassVar[bool] = True` and take `from_options(options, pacer=...)`), so the
    # rate holds across every process and machine of the hub, not per process.

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Hand one message to the provider.

        Raises:
            RetryableDeliveryError: the provider is busy or unreachable; nothing was accepted.
            PermanentDeliveryError: the provider refused this message for good.
            AmbiguousDeliveryError: the outcome cannot be known.
        """
        ...

    async def aclose(self) -> None:
        """Close pooled connections. Called once, from the loop that called `send`."""
        ...


# What a provider tells Hub by calling it back, read by the provider's `ProviderCallbacks`.


@dataclass(frozen=True, slots=True)
class CallbackPaths:
    """Where a provider calls Hub back: paths under HUB_PUBLIC_URL, served by the web app and
    written into each message's `callback_url` and `keypress_url`."""

    status: str  # delivery statuses of what Hub sent
    text: str | None = None  # messages people send to Hub's number
    keypress: str | None = None  # keys pressed during one of Hub's calls


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """One callback as it arrived, for the reader to check and decode."""

    url: str  # the URL the provider was given: HUB_PUBLIC_URL, the path and the query
    headers: Mapping[str, str]  # looked up by lower-case name
    body: bytes


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status, in Hub's words. Callbacks arrive late, twice and out of order: `state`
    is all that orders them (a delivery only moves to a higher rank), so a late "sent" never
    undoes "delivered" and a repeated callback changes nothing."""

    provider: str  # who called back ("twilio"): the actor on the timeline
    provider_id: str  # the id the provider gave the message or call when it was sent
    state: DeliveryState  # SENT, DELIVERED or FAILED
    status: str  # the provider's own word, kept on the timeline ("undelivered", "busy")
    # The delivery's reason, built with `hub.domain.delivery_reason` ("twilio:busy" when it
    # failed, "answered_by:machine_start" when no person answered); None when there is none.
    reason: str | None = None
    error_code: str | None = None  # the provider's own
    error: str | None = None  # its account of a failure, kept on the delivery
    answered_by: str | None = None  # voice: what answered, in the provider's words
    suppress: SuppressionReason | None = None  # the address refused for good (carrier STOP)


@dataclass(frozen=True, slots=True)
class InboundText:
    """A message a person sent to Hub's number."""

    provider: str
    sender: str  # E.164
    body: str
    provider_id: str | None  # the provider's id for it; a replay carries the same


@dataclass(frozen=True, slots=True)
class Keypress:
    """Keys pressed during one of Hub's calls (the "press 9 to stop these calls" prompt)."""

    provider: str
    callee: str  # the number Hub called
    digits: str
    provider_id: str | None  # the call's


class CallbackError(Exception):
    """Base of the two ways a callback is not acted on."""


class UnverifiedCallback(CallbackError):
    """Not shown to come from the provider: no signature, a wrong one, or no secret to check
    it with. The web app answers 403 and changes nothing."""


class MalformedCallback(CallbackError):
    """From the provider, but missing what Hub needs to act on it (the web app answers 400)."""


@runtime_checkable
class ProviderCallbacks(Protocol):
    """What Hub needs to hear a provider: built from the adapter's options, one per provider
    (SMS and voice through Twilio share one). Pure: no I/O, no database. `text` and `keypress`
    are called only when `paths` names a path for them."""

    provider: ClassVar[str]  # "twilio"; unique among installed adapters
    paths: ClassVar[CallbackPaths]
    answer_type: ClassVar[str]  # the media type of its answers ("text/xml" for TwiML)

    @classmethod
    def from_options(cls, options: Any) -> ProviderCallbacks: ...

    def verified(self, request: CallbackRequest) -> Mapping[str, str]:
        """The request's fields, once shown to be the provider's.

        Raises:
            UnverifiedCallback: no secret configured, no signature, or one that does not match.
        """
        ...

    def status(self, fields: Mapping[str, str]) -> StatusUpdate | None:
        """A status callback in Hub's words; None for a status Hub does not act on."""
        ...

    def text(self, fields: Mapping[str, str]) -> InboundText:
        """Raises MalformedCallback when it names no sender."""
        ...

    def keypress(self, fields: Mapping[str, str]) -> Keypress:
        """Raises MalformedCallback when it names no number called."""
        ...

    def answer_text(self, reply: str | None) -> str:
        """The answer to a text: `reply` sent back to the sender, or nothing."""
        ...

    def answer_keypress(self) -> str:
        """The answer to a keypress: the call ends."""
        ...
