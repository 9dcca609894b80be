"""One reading of a webhook URL at save time and at send time, over a table of spellings.

Each spelling is saved (the API's field type and the private-address check) and sent (the
webhook channel, over a mock transport that records where it would connect): both must reach
the same verdict about the same host, and nothing but a clear refusal may come out.
"""

# Look-alike characters (full-width forms, Unicode full stops) are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import re

import httpx
import pytest
import yarl
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, TypeAdapter, ValidationError

from hub.channels import signing, webhook_urls
from hub.channels.base import OutgoingMessage, PermanentDeliveryError
from hub.channels.webhook import WebhookChannel, WebhookOptions
from hub.channels.webhook_urls import InvalidWebhookUrl
from hub.domain import Channel
from hub.fields import WebhookUrl
from hub.services.contacts import check_webhook_target
from hub.services.errors import InvalidField

pytestmark = pytest.mark.anyio
SAVE: TypeAdapter[str] = TypeAdapter(WebhookUrl)

# spelling -> the URL stored and requested; every one of these names a public host
PUBLIC = {
    "https://hooks.example.com/in?x=1": "https://hooks.example.com/in?x=1",
    "HTTPS://Hooks.EXAMPLE.com:8443/In": "https://hooks.example.com:8443/In",
    "https://café.example/hook": "https://xn--caf-dma.example/hook",
    "https://cafe\u0301.example/hook": "https://xn--caf-dma.example/hook",  # NFD is the same
    "https://XN--CAF-DMA.example/hook": "https://xn--caf-dma.example/hook",  # mixed-case Punycode
    "https://ｈｏｏｋｓ．example。com/": "https://hooks.example.com/",  # full-width letters, dots
    "https://hooks｡example.com/": "https://hooks.example.com/",  # U+FF61
    "https://ex\u00adample.com/": "https://example.com/",  # a soft hyphen is ignored
    "https://faß.de/": "https://xn--fa-hia.de/",  # IDNA 2008, not transitional: ß stays
    "https://hooks.example.com./": "https://hooks.example.com./",  # a trailing dot stays
    "https://r3---sn-abc.example.com/": "https://r3---sn-abc.example.com/",
    "https://my_service.example.com/": "https://my_service.example.com/",
    "http://134744072/": "http://8.8.8.8/",  # IPv4 spellings are written as connect() reads them
    "http://０ｘ８．８．８．８/": "http://8.8.8.8/",
    "http://[2606:4700:0:0:0:0:0:1111]:8080/": "http://[2606:4700::1111]:8080/",
    "https://example.com:/": "https://example.com/",
    "https://example.com/#@127.0.0.1": "https://example.com/#@127.0.0.1",  # a fragment, not a host
    "https://example.com/a b\\c?q=x y": "https://example.com/a b\\c?q=x y",  # httpx encodes them
}

# spelling -> the host the check refuses (loopback, private, link-local, this machine)
FORBIDDEN = {
    "http://127。0。0。1/": "127.0.0.1",  # U+3002 ideographic full stop
    "http://127．0．0．1/": "127.0.0.1",  # U+FF0E full-width full stop
    "http://127｡0｡0｡1/": "127.0.0.1",  # U+FF61 half-width ideographic full stop
    "http://１２７.０.０.１/": "127.0.0.1",  # full-width digits
    "http://127.0.0.1./": "127.0.0.1",
    "http://127.1/": "127.0.0.1",
    "http://2130706433/": "127.0.0.1",  # decimal
    "http://0x7F000001/": "127.0.0.1",  # hex
    "http://０ｘ７ｆ.1/": "127.0.0.1",
    "http://0177.0.0.1/": "127.0.0.1",  # octal
    "http://169.254.169.254/latest": "169.254.169.254",
    "http://10｡0｡0｡1/": "10.0.0.1",
    "http://localhost/": "localhost",
    "http://LocalHost:8080/": "localhost",
    "http://ｌｏｃａｌｈｏｓｔ/": "localhost",
    "http://ⓛocalhost/": "localhost",  # a circled letter is mapped to the letter
    "http://localhost。/": "localhost.",
    "http://api.localhost/": "api.localhost",
    "http://[::1]/": "::1",
    "http://[0:0:0:0:0:0:0:1]:80/": "::1",
    "http://[::ffff:127.0.0.1]/": "::ffff:7f00:1",
}

# spelling -> part of the reason given
INVALID = {
    "http://xn--localhost/": "Punycode",
    "http://XN--LOCALHOST/": "Punycode",
    "http://xn--a.example/": "Punycode",
    "http://xn---bbk.example/": "Punycode",  # not the canonical encoding of its label
    "http://💩.example/": "domain name",
    "http://a\u2024b.example/": "domain name",  # one-dot leader: no separator, refused
    "http://a\ufe52b.example/": "domain name",  # small full stop
    "http://127.0.0.1%2e/": "percent-encode",
    "http://%6cocalhost/": "percent-encode",
    "http://[fe80::1%25eth0]/": "IPv6 zone",
    "http://[::1%25lo]/": "IPv6 zone",
    "http://user@example.com/": "credentials",
    "http://@example.com/": "credentials",
    "http://127.0.0.1:80@example.com/": "credentials",
    "http://example.com\\@127.0.0.1/": "credentials",
    "http://127.0.0.1\\.example.com/": "not allowed in names",
    "http://exa mple.com/": "not allowed in names",
    "http://example.com\t/": "control characters",
    "http://1.2.3.4.5/": "IPv4",
    "http://256.0.0.1/": "IPv4",
    "http://example.0x1/": "IPv4",
    "http://a..b/": "empty label",
    "http://.example.com/": "empty label",
    "http://a!b.example/": "'!'",
    "http://example.com:0/": "port",
    "http://example.com:65536/": "port",
    "http://example.com:８０/": "port",
    "http://[::1]x/": "IPv6",
    "http://[v1.x]/": "IPv6",
    "ftp://example.com/": "http or https",
    "//example.com/": "http or https",
    "http:///hook": "host",
    "http://\ud800.example/": "Unicode",
}


@pytest.mark.parametrize(("spelling", "url"), PUBLIC.items())
def test_public_spellings_are_stored_as_they_are_sent(spelling: str, url: str) -> None:
    assert SAVE.validate_python(spelling) == url
    check_webhook_target(spelling, allow_private=False)
    assert webhook_urls.normalize(url) == url  # reading it again changes nothing


@pytest.mark.parametrize(("spelling", "host"), FORBIDDEN.items())
def test_forbidden_spellings_are_refused_at_save(spelling: str, host: str) -> None:
    with pytest.raises(InvalidField, match="private") as caught:
        check_webhook_target(SAVE.validate_python(spelling), allow_private=False)
    assert caught.value.field == "webhook_url"
    check_webhook_target(spelling, allow_private=True)  # on-premise installs may allow them
    target = webhook_urls.parse(spelling)
    assert target.host == host
    assert target.forbidden


@pytest.mark.parametrize(("spelling", "reason"), INVALID.items())
def test_unreadable_spellings_are_refused_at_save(spelling: str, reason: str) -> None:
    with pytest.raises(ValidationError, match="(?i)" + re.escape(reason)):  # 422 on the field
        SAVE.validate_python(spelling)
    with pytest.raises(InvalidField) as refused:  # even where private targets are allowed
        check_webhook_target(spelling, allow_private=True, field="url")
    assert refused.value.field == "url"
    with pytest.raises(InvalidWebhookUrl) as caught:
        webhook_urls.parse(spelling)
    assert reason in str(caught.value)


class Recorder(httpx.AsyncBaseTransport):
    """A transport that answers 204 and keeps the URL each request would connect to."""

    def __init__(self) -> None:
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return httpx.Response(204, stream=httpx.ByteStream(b""))


async def send(to: str) -> tuple[Recorder, PermanentDeliveryError | None]:
    recorder = Recorder()
    options = WebhookOptions(webhook_secret=SecretStr(signing.generate_secret()))
    channel = WebhookChannel(options, transport=recorder)
    message = OutgoingMessage(delivery_id=1, channel=Channel.WEBHOOK, key="k", to=to, body=b"{}")
    try:
        await channel.send(message)
    except PermanentDeliveryError as exc:
        return recorder, exc
    finally:
        await channel.aclose()
    return recorder, None


@pytest.mark.parametrize(("spelling", "url"), PUBLIC.items())
async def test_public_spellings_are_sent_where_they_were_checked(spelling: str, url: str) -> None:
    recorder, refused = await send(spelling)  # a legacy row, stored before normalisation
    assert refused is None
    (requested,) = recorder.urls
    assert requested.raw_host.decode() == webhook_urls.parse(url).host


@pytest.mark.parametrize("spelling", FORBIDDEN)
async def test_forbidden_spellings_are_refused_at_send(spelling: str) -> None:
    recorder, refused = await send(spelling)
    assert refused is not None
    assert refused.code == "forbidden_address"
    assert recorder.urls == []


@pytest.mark.parametrize("spelling", INVALID)
async def test_unreadable_spellings_fail_for_good_at_send(spelling: str) -> None:
    recorder, refused = await send(spelling)  # never a crash, never a retry
    assert refused is not None
    assert refused.code == "invalid_url"
    assert recorder.urls == []


# Characters that have broken URL parsers: separators and their look-alikes, percent, IDNA
# mappings, ignorables, combining marks, digits of other widths.
HOST_CHARS = "aZ09.-_%@:[]\\/ 。．｡․﹒ＡＺ０９xX\u00df\u200b\u00ad\u0301é\u0430ⓛ"
hosts = st.one_of(
    st.text(HOST_CHARS, min_size=0, max_size=12),
    st.builds("".join, st.lists(st.sampled_from(["xn--", "127", "0x7f", ".", "。", "1", "[::1]"]))),
)


@settings(max_examples=2000, deadline=None, database=None)
@given(host=hosts, port=st.sampled_from(["", ":80", ":0", ":x"]))
@example(host="xn--localhost", port="")
@example(host="127。0。0。1", port="")
def test_every_host_is_read_one_way_or_refused(host: str, port: str) -> None:
    """What parse accepts, it reads once for all: normalising is idempotent, and httpx and
    yarl (aiohttp's parser) read the same host from the normalised URL."""
    url = f"http://{host}{port}/hook"
    try:
        target = webhook_urls.parse(url)
    except InvalidWebhookUrl:
        return
    assert webhook_urls.parse(target.url) == target
    assert target.host.isascii()
    assert httpx.URL(target.url).raw_host.decode() == target.host
    assert yarl.URL(target.url, encoded=True).raw_host == target.host
