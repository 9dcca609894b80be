"""SMS and voice through the official twilio library's async path, over one aiohttp pool.

What Twilio posts back (statuses, texts, keypresses) is read in `twilio_callbacks`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self, cast
from urllib.parse import urlencode

import aiohttp
from pydantic import Field, SecretStr, field_validator
from twilio.base import values  # type: ignore[import-untyped]
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from hub.channels.base import (
    AmbiguousDeliveryError,
    ChannelOptions,
    DeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    ProviderCallbacks,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.ratelimit import LocalPacer, Pacer
from hub.channels.twilio_callbacks import CARRIER_OPT_OUT, TwilioCallbacks
from hub.domain import Channel, SuppressionReason

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
TOO_MANY_REQUESTS = 20429
# Languages <Say> speaks, full tag first per language so a bare "ru" or "pt" finds its default.
SAY_LANGUAGES = (  # noqa: SIM905 (a list literal would take 41 lines)
    "en-US en-GB en-AU en-CA en-IN de-DE fr-FR fr-CA es-ES es-MX es-US it-IT pt-BR pt-PT "
    "ru-RU nl-NL pl-PL sv-SE da-DK nb-NO fi-FI is-IS cy-GB ca-ES ja-JP ko-KR zh-CN zh-HK zh-TW "
    "hi-IN tr-TR ro-RO uk-UA cs-CZ el-GR hu-HU id-ID vi-VN th-TH ar-AE he-IL"
).split()
_BY_TAG = {tag.lower(): tag for tag in SAY_LANGUAGES}
_BY_LANGUAGE: dict[str, str] = {}
for _tag in SAY_LANGUAGES:
    _BY_LANGUAGE.setdefault(_tag.split("-")[0], _tag)


def say_language(locale: str | None, default: str) -> str:
    """The <Say language> for a contact's locale ("ru", "ru_RU", "pt-br"), else `default`."""
    if not locale:
        return default
    tag = locale.replace("_", "-").lower()
    return _BY_TAG.get(tag) or _BY_LANGUAGE.get(tag.split("-")[0], default)


class TwilioOptions(ChannelOptions):
    """`HUB_TWILIO_*`. The rate is per From number: a US long code is allowed 1 message (and
    1 call) per second unless its 10DLC campaign or a short code grants more, so 1.0 is safe.
    """

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None  # E.164
    twilio_base_url: str | None = None  # a Twilio-compatible endpoint; None = api.twilio.com
    twilio_rate_per_second: float = Field(default=1.0, gt=0)  # per From number
    twilio_max_concurrency: int = Field(default=32, ge=1)  # requests in flight, per channel
    twilio_timeout: float = Field(default=15.0, gt=0)  # seconds for one whole request
    twilio_voice_language: str = "en-US"  # when the contact's locale has no <Say> voice
    # Twilio's answering machine detection: the final callback says who answered (AnsweredBy),
    # recorded on the timeline. Twilio charges for it, so it is off unless asked for.
    twilio_machine_detection: bool = False

    @field_validator("twilio_from")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError("twilio_from must be an E.164 number such as +15005550006")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)


class TwilioHttpError(Exception):
    """A non-2xx answer, raised by `TwilioAsyncHttpClient` so `Retry-After` is not lost
    (the library's `TwilioRestException` keeps the status and code but drops the headers).
    """

    def __init__(self, status: int, code: int | None, text: str, retry_after: float | None):
        super().__init__(f"HTTP {status} code {code}: {text}")
        self.status, self.code, self.text, self.retry_after = status, code, text, retry_after

    @classmethod
    def from_answer(cls, status: int, body: str, headers: Mapping[str, str]) -> TwilioHttpError:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        code = payload.get("code")
        return cls(
            status,
            code if isinstance(code, int) else None,
            str(payload.get("message") or body[:200]),
            retry_after_seconds(headers.get("Retry-After")),
        )


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date, in seconds from now; None if absent."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class TwilioAsyncHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """The twilio library's async transport, rewritten because the stock
    `AsyncTwilioHttpClient` (9.x) ignores its own `timeout` (aiohttp then waits forever),
    drops `Retry-After`, needs a running loop to be built, and formats log lines per request.

    `base_url` replaces `https://api.twilio.com` (and regional hosts) so tests and benchmarks
    talk to a loopback peer. The session is opened lazily on the loop that first sends.
    """

    def __init__(
        self, *, base_url: str | None = None, timeout: float = 15.0, max_connections: int = 32
    ) -> None:
        super().__init__(logger=None, is_async=True, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._authorization: dict[tuple[str, str], str] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Idle connections are dropped before a typical server's 5 s keep-alive ends, so a
        # send never lands on a socket the server is closing (an ambiguous failure).
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=4)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._client_timeout)
        return self._session

    def _rebase(self, url: str) -> str:
        if self.base_url is None:
            return url
        path_at = url.find("/", url.find("//") + 2)
        return self.base_url + (url[path_at:] if path_at >= 0 else "")

    def _basic(self, auth: tuple[str, str]) -> str:
        if auth not in self._authorization:
            secret = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._authorization[auth] = f"Basic {secret}"
        return self._authorization[auth]

    async def request(  # noqa: PLR0917 (the library calls it with this signature)
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Raises TwilioHttpError on a non-2xx answer, aiohttp errors and TimeoutError as is."""
        session = self._session or self._open()
        if auth is not None:
            headers = {**(headers or {}), "Authorization": self._basic(auth)}
        async with session.request(
            method.upper(),
            self._rebase(uri),
            params=cast("dict[str, str] | None", params),  # Twilio sends str values
            data=urlencode(data, doseq=True) if data else None,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout) if timeout else self._client_timeout,
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
        if answer.status >= 400:
            raise TwilioHttpError.from_answer(answer.status, text, answer.headers)
        return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refused(status: int, code: int | None, text: str, retry_after: float | None) -> DeliveryError:
    where = f"Twilio answered {status}" + (f" (code {code})" if code else "")
    code_text = str(code or status)
    if status == 429 or code == TOO_MANY_REQUESTS or status >= 500 or status == 401:
        # Busy, down, or (401) bad or rotated credentials: every message would fail the same
        # way and none is at fault, so they wait instead of being marked failed for good.
        return RetryableDeliveryError(
            f"{where}: {text}", code=code_text, retry_after=retry_after, unavailable=True
        )
    if code == CARRIER_OPT_OUT:
        return PermanentDeliveryError(
            f"{where}: {text}", code=code_text, suppress=SuppressionReason.CARRIER_OPT_OUT
        )
    return PermanentDeliveryError(f"{where}: {text}", code=code_text)


def translate(exc: BaseException) -> DeliveryError:
    """Map what the library and aiohttp raise to our three errors; the caller chains `exc`."""
    if isinstance(exc, TwilioHttpError):
        return _refused(exc.status, exc.code, exc.text, exc.retry_after)
    if isinstance(exc, TwilioRestException):  # an injected stock client: no Retry-After
        code = exc.code if isinstance(exc.code, int) and exc.code != exc.status else None
        return _refused(int(exc.status), code, str(exc.msg), None)
    # Nothing was sent when the connection could not be made: safe to try again.
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return RetryableDeliveryError(f"cannot reach Twilio: {exc}", unavailable=True)
    # The request left: Twilio may have created the message, and create takes no idempotency
    # key, so only a lookup can tell (RELIABILITY: record `unknown`, never blindly resend).
    if isinstance(exc, TimeoutError):
        return AmbiguousDeliveryError("Twilio did not answer in time after the request was sent")
    if isinstance(exc, json.JSONDecodeError):  # a 2xx whose body is not the resource
        return AmbiguousDeliveryError(f"Twilio's answer could not be read: {exc}")
    return AmbiguousDeliveryError(f"the connection to Twilio failed mid-request: {exc!r}")


TRANSLATED = (
    TwilioHttpError,
    TwilioRestException,
    aiohttp.ClientError,
    TimeoutError,
    json.JSONDecodeError,
)


class _TwilioChannel:
    """What SMS and voice share: credentials, one client, the concurrency cap, the rate."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[Channel]]
    options_model: ClassVar[type[ChannelOptions]] = TwilioOptions
    paced: ClassVar[bool] = True  # takes its limiter from the hub's `pacer`
    callbacks: ClassVar[type[ProviderCallbacks]] = TwilioCallbacks  # statuses, texts, keys

    def __init__(
        self,
        options: TwilioOptions,
        *,
        http_client: AsyncHttpClient | None = None,
        pacer: Pacer | None = None,
    ):
        """Raises ValueError when the options are not `configured`.

        `http_client` (closed by its owner) replaces the one built from the options.
        `pacer` holds the per-number budget: this process's own when None; the hub passes
        one shared by all its processes when it has Redis (RELIABILITY 30).
        """
        if not options.configured or options.twilio_auth_token is None:
            raise ValueError(
                f"{self.name} needs HUB_TWILIO_ACCOUNT_SID, HUB_TWILIO_AUTH_TOKEN and "
                "HUB_TWILIO_FROM"
            )
        self.options = options
        self.sender: str = options.twilio_from or ""
        self._owned = (
            None
            if http_client
            else TwilioAsyncHttpClient(
                base_url=options.twilio_base_url,
                timeout=options.twilio_timeout,
                max_connections=options.twilio_max_concurrency,
            )
        )
        self.client = Client(
            username=options.twilio_account_sid,
            password=options.twilio_auth_token.get_secret_value(),
            account_sid=options.twilio_account_sid,
            http_client=http_client or self._owned,
        )
        self._slots = asyncio.Semaphore(options.twilio_max_concurrency)
        # The budget is the From number's, wherever it is kept; Twilio counts messages and
        # calls separately, so SMS and voice have a key each.
        self.bucket = (pacer or LocalPacer()).limiter(
            f"{self.name}:{self.sender}", rate_per_second=options.twilio_rate_per_second
        )
        # Read by the dispatcher to claim no more than it can send within a lease.
        self.rate_per_second: float | None = options.twilio_rate_per_second

    @classmethod
    def from_options(cls, options: Any, *, pacer: Pacer | None = None) -> Self:
        return cls(options, pacer=pacer)

    async def _create(self, message: OutgoingMessage) -> Any:
        raise NotImplementedError

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Create the message or call; answer with its SID.

        Raises:
            RetryableDeliveryError: 429/20429, 5xx, a bad credential, Twilio unreachable,
                or the shared rate limit out of reach (nothing was sent).
            PermanentDeliveryError: 21610 (suppress: carrier opt-out), 21211/21614 and other
                4xx, or nothing to send.
            AmbiguousDeliveryError: the request left and no answer came within the timeout.
        """
        if not message.text:
            raise PermanentDeliveryError(f"{self.name}: the message has no text")
        async with self._slots:
            # The token is taken inside the cap so a queue released at once cannot burst.
            # A limiter that cannot be consulted raises RetryableDeliveryError: unpaced,
            # nothing goes.
            await self.bucket.acquire()
            try:
                created = await self._create(message)
            except TRANSLATED as exc:
                raise translate(exc) from exc
        return Receipt(provider_id=created.sid, detail={"status": created.status})

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.close()


class SmsChannel(_TwilioChannel):
    """An SMS per message: Body is `message.text`, StatusCallback is `message.callback_url`."""

    name: ClassVar[str] = "twilio-sms"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.SMS})

    async def _create(self, message: OutgoingMessage) -> Any:
        return await self.client.messages.create_async(
            to=message.to,
            from_=self.sender,
            body=message.text,
            status_callback=message.callback_url or values.unset,
        )


class VoiceChannel(_TwilioChannel):
    """A call that says `message.text` in the contact's language, then hangs up."""

    name: ClassVar[str] = "twilio-voice"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.VOICE})
    # Every step, so the timeline shows ringing and answered, not only the end.
    CALLBACK_EVENTS: ClassVar[list[str]] = ["initiated", "ringing", "answered", "completed"]

    def twiml(self, message: OutgoingMessage) -> str:
        response = VoiceResponse()
        language = say_language(message.locale, self.options.twilio_voice_language)
        if message.keypress_url and message.opt_out_prompt:
            # The message, then the opt-out, inside one Gather: a key pressed at any point
            # goes to the keypress URL (signed by Twilio like every callback).
            gather = response.gather(
                num_digits=1, action=message.keypress_url, method="POST", timeout=5
            )
            gather.say(message.text, language=language)
            gather.say(message.opt_out_prompt, language=language)
        else:
            response.say(message.text, language=language)
        return str(response)

    async def _create(self, message: OutgoingMessage) -> Any:
        return await self.client.calls.create_async(
            to=message.to,
            from_=self.sender,
            twiml=self.twiml(message),
            status_callback=message.callback_url or values.unset,
            status_callback_event=self.CALLBACK_EVENTS if message.callback_url else values.unset,
            machine_detection="Enable" if self.options.twilio_machine_detection else values.unset,
        )
