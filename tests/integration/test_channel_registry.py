"""Channel adapters are found by entry point: built-ins pass one contract, and a third-party
package adds a channel without touching Hub."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.channel_config import channel_options
from hub.channels import registry
from hub.channels.base import ChannelAdapter, ChannelOptions
from hub.domain import Channel
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET
from tests.dispatching import ok, person, settled, topic

THIRD_PARTY = '''
"""A channel someone else wrote: it keeps what it is given."""
from typing import ClassVar
from hub.channels.base import ChannelOptions, OutgoingMessage, Receipt
from hub.domain import Channel

SENT: list[OutgoingMessage] = []


class LoudOptions(ChannelOptions):
    loud_volume: int = 11


class LoudChannel:
    name: ClassVar[str] = "loud"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.EMAIL})
    options_model = LoudOptions

    def __init__(self, options: LoudOptions) -> None:
        self.volume = options.loud_volume

    @classmethod
    def from_options(cls, options: LoudOptions) -> "LoudChannel":
        return cls(options)

    async def send(self, message: OutgoingMessage) -> Receipt:
        SENT.append(message)
        return Receipt(provider_id=f"loud-{len(SENT)}", detail={"volume": self.volume})

    async def aclose(self) -> None:
        return None
'''


def install(site: Path, name: str, module: str, source: str, points: dict[str, str]) -> None:
    """What `pip install` leaves behind: the module and a dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in points.items())
    (info / "entry_points.txt").write_text(f"[hub.channels]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith(("loud_channel", "pager_channel"))]:
        del sys.modules[module]


@pytest.mark.parametrize("name", sorted(registry.available()))
def test_every_registered_adapter_keeps_the_contract(name: str) -> None:
    cls = registry.adapter_class(name)
    assert cls.name == name
    assert cls.kinds
    assert cls.kinds <= set(Channel)
    assert issubclass(cls.options_model, ChannelOptions)
    settings = Settings(
        secret_key=TEST_SECRET,
        smtp_host="127.0.0.1",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        twilio_from="+15005550006",
    )
    options = (
        channel_options(settings)[name]
        if name in channel_options(settings)
        else (cls.options_model())
    )
    assert options.configured
    adapter = cls.from_options(options)
    assert isinstance(adapter, ChannelAdapter)


def test_unknown_and_mismatched_providers_fail_at_start_up_with_a_clear_message() -> None:
    with pytest.raises(registry.ChannelConfigError, match="no channel adapter named 'nope'"):
        registry.choose({"email": "nope"}, {})
    with pytest.raises(registry.ChannelConfigError, match="'twilio-sms' cannot send email"):
        registry.choose({"email": "twilio-sms"}, {})
    with pytest.raises(registry.ChannelConfigError, match="unknown channels: \\['fax'\\]"):
        registry.choose({"fax": "capture"}, {})


def test_two_packages_claiming_one_name_fail_at_start_up(site: Path) -> None:
    install(site, "loud-one", "loud_channel", THIRD_PARTY, {"loud": "loud_channel:LoudChannel"})
    install(
        site, "loud-two", "loud_channel_two", THIRD_PARTY, {"loud": "loud_channel_two:LoudChannel"}
    )
    with pytest.raises(registry.ChannelConfigError, match="'loud' is registered twice"):
        registry.available()


def test_a_third_party_package_adds_a_channel_hub_dispatches_through(
    site: Path, database_url: str, tmp_path: Path
) -> None:
    install(site, "loud-channel", "loud_channel", THIRD_PARTY, {"loud": "loud_channel:LoudChannel"})
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET, channel_providers={"email": "loud"}
    )
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start(sweep=False)
    try:
        from hub.app import create_app
        from hub.domain import Scope
        from tests.conftest import make_key

        with TestClient(create_app(runtime=runtime)) as client:
            auth = make_key(runtime, "loud-test", Scope.ADMIN)
            topic(client, auth, "news")
            person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
            accepted = ok(
                client.post(
                    "/v1/notifications",
                    json={
                        "topic": "news",
                        "content": {"": {"email_subject": "Hi", "email_text": "Hey"}},
                    },
                    headers=auth,
                ),
                202,
            )
            body = settled(client, auth, accepted["id"])
    finally:
        workers.stop()
        runtime.close()
    import loud_channel  # type: ignore[import-not-found]

    (message,) = loud_channel.SENT
    assert message.to == "ann@example.com"
    assert message.subject == "Hi"
    (delivery,) = body["deliveries"]["items"]
    assert delivery["provider"] == "loud"
    assert delivery["provider_id"] == "loud-1"


CALLING_BACK = '''
"""An SMS provider someone else wrote, which calls Hub back with statuses."""
from typing import Any, ClassVar
from hub.channels.base import (
    CallbackPaths, ChannelOptions, InboundText, Keypress, MalformedCallback, OutgoingMessage,
    Receipt, StatusUpdate, UnverifiedCallback,
)
from hub.domain import Channel, DeliveryState


class PagerOptions(ChannelOptions):
    pager_secret: str = "pager-secret"


class PagerCallbacks:
    provider: ClassVar[str] = "pager"
    paths: ClassVar[CallbackPaths] = CallbackPaths(status="/inbound/pager/status")
    answer_type: ClassVar[str] = "text/plain"

    def __init__(self, secret: str) -> None:
        self.secret = secret

    @classmethod
    def from_options(cls, options: Any) -> "PagerCallbacks":
        return cls(options.pager_secret)

    def verified(self, request):
        if request.headers.get("x-pager-secret") != self.secret:
            raise UnverifiedCallback("not from the pager service")
        return dict(line.split("=", 1) for line in request.body.decode().splitlines())

    def status(self, fields):
        state = {"ok": DeliveryState.DELIVERED, "lost": DeliveryState.FAILED}.get(fields["s"])
        if state is None:
            return None
        return StatusUpdate(
            provider="pager", provider_id=fields["id"], state=state, status=fields["s"]
        )

    def text(self, fields):
        raise MalformedCallback("pagers do not text back")

    def keypress(self, fields):
        raise MalformedCallback("pagers do not call")

    def answer_text(self, reply):
        return ""

    def answer_keypress(self):
        return ""


class PagerChannel:
    name: ClassVar[str] = "pager"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.SMS})
    options_model = PagerOptions
    callbacks = PagerCallbacks

    @classmethod
    def from_options(cls, options: PagerOptions) -> "PagerChannel":
        return cls()

    async def send(self, message: OutgoingMessage) -> Receipt:
        return Receipt(provider_id="page-1")

    async def aclose(self) -> None:
        return None
'''


def test_a_third_party_provider_that_calls_back_gets_its_own_callback_routes(
    site: Path, database_url: str
) -> None:
    """A second vendor adds only its package: its reader is served at the paths it names,
    messages sent through it carry them, and what it reports is applied in Hub's words."""
    install(
        site,
        "pager-channel",
        "pager_channel",
        CALLING_BACK,
        {"pager": "pager_channel:PagerChannel"},
    )
    from hub.app import create_app
    from hub.db.models import EarlyCallback

    chosen = registry.choose({"sms": "pager"}, {})
    assert registry.callback_paths(chosen)[Channel.SMS].status == "/inbound/pager/status"
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET)
    runtime = Runtime.build(settings)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            status = "/inbound/pager/status"
            forged = client.post(status, content=b"id=p-1\ns=ok")
            assert forged.status_code == 403
            assert forged.json()["error"]["message"] == "not from the pager service"
            signed = {"x-pager-secret": "pager-secret"}
            assert client.post(status, content=b"id=p-1\ns=ok", headers=signed).status_code == 204
            assert client.post("/inbound/twilio/status").status_code == 403  # Twilio's stay
        with runtime.sessions() as session:
            (parked,) = session.query(EarlyCallback).all()
            assert (parked.provider, parked.provider_id, parked.state) == (
                "pager",
                "p-1",
                "delivered",
            )
    finally:
        runtime.close()
